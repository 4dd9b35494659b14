use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use tower::Service;

use super::{
    authenticator::{Head, Started},
    ApiKeyLayer, Authenticator, Principal,
};
use crate::{
    error::AuthError,
    middleware::{take_ready, Admitted, ResponseFuture},
};

/// Middleware that admits only requests carrying a valid API key; see
/// [`ApiKeyLayer`].
///
/// On success the [`Principal`](super::Principal) is in the request's extensions when
/// the inner service sees it. On refusal the inner service is not called.
#[derive(Clone, Debug)]
pub struct ApiKeyService<S> {
    inner: S,
    auth: Authenticator,
}

impl<S> ApiKeyService<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, auth: impl Into<Authenticator>) -> Self {
        ApiKeyService {
            inner,
            auth: auth.into(),
        }
    }

    /// A layer that wraps services in `ApiKeyService`.
    pub fn layer(auth: impl Into<Authenticator>) -> ApiKeyLayer {
        ApiKeyLayer::new(auth)
    }

    crate::macros::inner_service_accessors!();
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ApiKeyService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ResBody: From<Bytes>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody, Principal, AuthError>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        match self.auth.start(Head::of_request(&request)) {
            Started::Verified(principal) => {
                let headers = principal.response_headers();
                request.extensions_mut().insert(principal);
                ResponseFuture::inner_with(self.inner.call(request), headers)
            }
            Started::Refused(error) => ResponseFuture::refused(error.into_http_response()),
            Started::Pending(verify) => {
                // The inner service will be called later, from the future.
                ResponseFuture::verifying(verify, take_ready(&mut self.inner), request)
            }
        }
    }
}
