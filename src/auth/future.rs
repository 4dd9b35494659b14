use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{ready, Context, Poll},
};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower::Service;

use super::{Principal, ResponseBody};
use crate::error::AuthError;

/// The store lookup and checks, owned so it can outlive `call`.
pub(crate) type VerifyFuture = Pin<Box<dyn Future<Output = Result<Principal, AuthError>> + Send>>;

pin_project! {
    /// Response future of [`ApiKeyService`](super::ApiKeyService) and
    /// [`RequireScope`](super::RequireScope).
    ///
    /// Verifies the key, then drives the inner service's future (not boxed), or
    /// answers with the refusal without ever calling the inner service.
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<B>>,
    {
        Verifying {
            verify: VerifyFuture,
            // The ready inner service and the request, until verification succeeds;
            // boxed so the future stays small on the common path, which never waits.
            pending: Option<Box<(S, Request<B>)>>,
        },
        Inner {
            #[pin]
            future: S::Future,
        },
        Refused {
            error: Option<AuthError>,
        },
    }
}

impl<S: Service<Request<B>>, B> ResponseFuture<S, B> {
    pub(crate) fn verifying(verify: VerifyFuture, service: S, request: Request<B>) -> Self {
        ResponseFuture {
            state: State::Verifying {
                verify,
                pending: Some(Box::new((service, request))),
            },
        }
    }

    pub(crate) fn inner(future: S::Future) -> Self {
        ResponseFuture {
            state: State::Inner { future },
        }
    }

    pub(crate) fn refused(error: AuthError) -> Self {
        ResponseFuture {
            state: State::Refused { error: Some(error) },
        }
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut this = self.as_mut().project();
            match this.state.as_mut().project() {
                StateProj::Verifying { verify, pending } => {
                    let outcome = ready!(verify.as_mut().poll(cx));
                    let Some(pair) = pending.take() else {
                        panic!("ResponseFuture polled after completion");
                    };
                    let (mut service, mut request) = *pair;
                    match outcome {
                        Ok(principal) => {
                            request.extensions_mut().insert(principal);
                            let future = service.call(request);
                            this.state.set(State::Inner { future });
                        }
                        Err(error) => return Poll::Ready(Ok(error.into_response())),
                    }
                }
                StateProj::Inner { future } => {
                    return future
                        .poll(cx)
                        .map(|result| result.map(|res| res.map(ResponseBody::inner)));
                }
                StateProj::Refused { error } => {
                    let Some(error) = error.take() else {
                        panic!("ResponseFuture polled after completion");
                    };
                    return Poll::Ready(Ok(error.into_response()));
                }
            }
        }
    }
}

impl<S: Service<Request<B>>, B> fmt::Debug for ResponseFuture<S, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
