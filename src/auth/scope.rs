use std::{
    borrow::Cow,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{Request, Response};
use tower::{Layer, Service};

use super::Principal;
use crate::{
    error::{is_scope_token, AuthError, AuthErrorKind},
    middleware::ResponseFuture,
};

/// Requires the verified key to carry a scope; put it on the routes that need one,
/// inside an [`ApiKeyLayer`](super::ApiKeyLayer).
///
/// A key without the scope gets 403 `forbidden` with
/// `WWW-Authenticate: Bearer …, error="insufficient_scope", scope="…"`. A request that
/// reached it without a verified key (the `ApiKeyLayer` is missing or outside) gets 401
/// — with the default realm, as no layer configured one: authentication always comes
/// before authorization.
///
/// ```
/// use axum::{routing::post, Router};
/// use tower_api_key::{ApiKeyLayer, InMemoryKeyStore, RequireScopeLayer};
///
/// let app: Router = Router::new()
///     .route("/api/signals", post(|| async { "created" }))
///     .route_layer(RequireScopeLayer::new("signals:write"))
///     .layer(ApiKeyLayer::new(InMemoryKeyStore::new()));
/// ```
#[derive(Clone, Debug)]
pub struct RequireScopeLayer {
    scope: Cow<'static, str>,
}

impl RequireScopeLayer {
    /// Requires `scope`.
    ///
    /// # Panics
    ///
    /// If `scope` is not one RFC 6749 scope token: empty, or with a space (one layer
    /// per required scope), a control character, `"`, `\` or non-ASCII — a
    /// configuration mistake, caught when the router is built.
    pub fn new(scope: impl Into<Cow<'static, str>>) -> Self {
        let scope = scope.into();
        assert!(
            is_scope_token(&scope),
            "RequireScopeLayer: {scope:?} is not a valid RFC 6749 scope"
        );
        RequireScopeLayer { scope }
    }
}

impl<S> Layer<S> for RequireScopeLayer {
    type Service = RequireScope<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireScope {
            inner,
            scope: self.scope.clone(),
        }
    }
}

/// Middleware that requires a scope; see [`RequireScopeLayer`].
#[derive(Clone, Debug)]
pub struct RequireScope<S> {
    inner: S,
    scope: Cow<'static, str>,
}

impl<S> RequireScope<S> {
    crate::macros::inner_service_accessors!();
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequireScope<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<Bytes>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody, Principal, AuthError>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let check = match request.extensions().get::<Principal>() {
            None => Err(AuthError::new(AuthErrorKind::MissingCredentials)),
            Some(principal) => principal.require_scope(self.scope.clone()),
        };
        match check {
            Ok(()) => ResponseFuture::inner(self.inner.call(request)),
            Err(error) => ResponseFuture::refused(error.into_http_response()),
        }
    }
}
