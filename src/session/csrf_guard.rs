use std::{
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{Request, Response};
use tower::{Layer, Service};

use super::CrossOriginProtection;
use crate::{error::ApiError, middleware::ResponseFuture};

impl<S> Layer<S> for CrossOriginProtection {
    type Service = CrossOriginGuard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CrossOriginGuard {
            inner,
            rules: Arc::new(self.clone()),
        }
    }
}

/// Middleware that refuses cross-origin requests with unsafe methods (403, the
/// envelope) before they reach the inner service; made by using a
/// [`CrossOriginProtection`] as a layer.
#[derive(Clone, Debug)]
pub struct CrossOriginGuard<S> {
    inner: S,
    rules: Arc<CrossOriginProtection>,
}

impl<S> CrossOriginGuard<S> {
    crate::macros::inner_service_accessors!();
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for CrossOriginGuard<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<Bytes>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody, (), ApiError>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let (parts, body) = request.into_parts();
        if self.rules.check_request(&parts).is_err() {
            let refusal: Response<Bytes> =
                ApiError::forbidden("Cross-origin request refused.").into_http_response();
            return ResponseFuture::refused(refusal);
        }
        ResponseFuture::inner(self.inner.call(Request::from_parts(parts, body)))
    }
}
