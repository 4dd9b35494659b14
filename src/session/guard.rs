use std::{
    fmt,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{request::Parts, Request, Response, StatusCode};
use tower::{Layer, Service};

use super::{CrossOriginProtection, SessionResolver, SessionUser};
use crate::{
    error::{ApiError, ErrorCode},
    middleware::{take_ready, ResponseFuture},
};

/// Admits only requests with a valid browser session; see the [module docs](super).
///
/// ```
/// use axum::{routing::post, Router};
/// use tower_api_key::session::{CrossOriginProtection, SessionGuardLayer, SessionUser};
/// # use tower_api_key::session::{SessionResolver, SessionError};
/// # struct MySessions;
/// # #[tower_api_key::async_trait]
/// # impl SessionResolver for MySessions {
/// #     async fn resolve(&self, _: &http::request::Parts) -> Result<Option<SessionUser>, SessionError> { Ok(None) }
/// # }
///
/// let guard = SessionGuardLayer::new(MySessions)
///     .cross_origin(CrossOriginProtection::new().server_origin("https://app.example.com"));
/// let app: Router = Router::new()
///     .route("/settings/password", post(|user: SessionUser| async move { user.id().to_owned() }))
///     .layer(guard);
/// ```
#[derive(Clone)]
pub struct SessionGuardLayer {
    resolver: Arc<dyn SessionResolver>,
    csrf: Arc<CrossOriginProtection>,
}

impl SessionGuardLayer {
    /// A guard that finds sessions with `resolver`, with the default cross-origin rules.
    pub fn new(resolver: impl SessionResolver) -> Self {
        SessionGuardLayer {
            resolver: Arc::new(resolver),
            csrf: Arc::new(CrossOriginProtection::new()),
        }
    }

    /// Replaces the cross-origin rules (this server's origin, trusted origins).
    pub fn cross_origin(mut self, csrf: CrossOriginProtection) -> Self {
        self.csrf = Arc::new(csrf);
        self
    }

    /// The guard's whole decision for a request head, for handlers that combine a
    /// session with another credential: cross-origin rules first (403), then the
    /// session (401 without one, 503 if the backend failed).
    pub async fn admit(&self, parts: &Parts) -> Result<SessionUser, ApiError> {
        self.check_origin(parts)?;
        resolve(&*self.resolver, parts).await
    }

    fn check_origin(&self, parts: &Parts) -> Result<(), ApiError> {
        self.csrf.check_request(parts).map_err(|_| {
            ApiError::new(
                ErrorCode::Forbidden,
                "Cross-origin request refused for this session route.",
            )
        })
    }
}

async fn resolve(resolver: &dyn SessionResolver, parts: &Parts) -> Result<SessionUser, ApiError> {
    match resolver.resolve(parts).await {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(ApiError::new(
            ErrorCode::Unauthorized,
            "This route needs a logged-in browser session.",
        )),
        Err(_) => Err(ApiError::new(
            ErrorCode::InternalError,
            "Sessions are temporarily unavailable. Please retry shortly.",
        )
        .with_status(StatusCode::SERVICE_UNAVAILABLE)
        .with_retry_after(std::time::Duration::from_secs(1))),
    }
}

impl fmt::Debug for SessionGuardLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionGuardLayer")
            .field("cross_origin", &self.csrf)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for SessionGuardLayer {
    type Service = SessionGuard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionGuard {
            inner,
            guard: self.clone(),
        }
    }
}

/// Middleware that admits only requests with a valid session; see
/// [`SessionGuardLayer`].
#[derive(Clone, Debug)]
pub struct SessionGuard<S> {
    inner: S,
    guard: SessionGuardLayer,
}

impl<S> SessionGuard<S> {
    crate::macros::inner_service_accessors!();
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionGuard<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ResBody: From<Bytes>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody, SessionUser, ApiError>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let (parts, body) = request.into_parts();
        if let Err(error) = self.guard.check_origin(&parts) {
            return ResponseFuture::refused(error.into_http_response());
        }
        // The resolver reads a copy of the head while the request waits with the
        // ready inner service.
        let head = parts.clone();
        let request = Request::from_parts(parts, body);
        let resolver = self.guard.resolver.clone();
        let admission = Box::pin(async move { resolve(&*resolver, &head).await });
        ResponseFuture::verifying(admission, take_ready(&mut self.inner), request)
    }
}
