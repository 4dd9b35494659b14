use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{ready, Context, Poll},
};

use bytes::Bytes;
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower::Service;

use crate::policy::RateLimitStatus;

/// A refusal, already rendered as the envelope response.
pub(crate) type Refusal = Response<Bytes>;

/// The part of a check that must wait (a store lookup, a session lookup), owned so
/// it can outlive `call`; yields what goes into the request's extensions, or the
/// refusal, rendered only when the future is polled (so it is boxed once).
pub(crate) type Admission<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

/// A refusal not yet rendered: the crate's error types.
pub(crate) trait Rejection {
    /// The envelope response.
    fn render(self) -> Refusal;
}

impl Rejection for crate::error::AuthError {
    fn render(self) -> Refusal {
        self.into_http_response()
    }
}

impl Rejection for crate::error::ApiError {
    fn render(self) -> Refusal {
        self.into_http_response()
    }
}

/// What a guard adds to the inner service's response: the key's standing against its
/// rate, as the `RateLimit` headers, when they are on.
///
/// Kept as the plain value they are made from, and made only once the response is
/// there: nothing that must be dropped is alive across the inner service's `call`, so
/// its future is built in place in the answer rather than copied there.
pub(crate) type ExtraHeaders = Option<RateLimitStatus>;

/// What a guard admits into the request's extensions.
pub(crate) trait Admitted: Clone + Send + Sync + 'static {
    /// What to add to the inner service's response on its behalf, as headers (the
    /// inner service's own headers of the same name win).
    fn response_headers(&self) -> ExtraHeaders {
        None
    }
}

/// Guards that only let a request through (the cross-origin guard) admit nothing.
impl Admitted for () {}

pin_project! {
    /// Response future of the crate's guards ([`ApiKeyService`](crate::auth::ApiKeyService),
    /// [`RequireScope`](crate::auth::RequireScope), the session guard).
    ///
    /// Finishes the check if it had to wait, puts the verified `T` (a
    /// [`Principal`](crate::Principal), a session user) into the request's extensions
    /// and drives the inner service's future (not boxed) — or answers with the refusal
    /// without ever calling the inner service.
    ///
    /// The response has the inner service's own body type, so an admitted response
    /// passes through untouched (axum does not box it again); a refusal's envelope is
    /// built into that type with `From<Bytes>`. For an inner body type without
    /// `From<Bytes>`, wrap the inner service's bodies in
    /// [`ResponseBody`](crate::middleware::ResponseBody).
    pub struct ResponseFuture<S, B, T, E>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B, T, E>,
        // What to add to the inner service's response, apart from the state: written
        // on its own, it lets the inner future be built in place.
        headers: ExtraHeaders,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B, T, E>
    where
        S: Service<Request<B>>,
    {
        Verifying {
            verify: Admission<T, E>,
            // The ready inner service and the request, until verification succeeds;
            // boxed so the future stays small on the common path, which never waits.
            pending: Option<Box<(S, Request<B>)>>,
        },
        Inner {
            #[pin]
            future: S::Future,
        },
        Refused {
            refusal: Option<Refusal>,
        },
    }
}

// The constructors of the states other than `Inner` are out of line: a guard's code
// for a request admitted at once stays small (the hot path's cost is its code).
impl<S: Service<Request<B>>, B, T, E> ResponseFuture<S, B, T, E> {
    #[inline(never)]
    pub(crate) fn verifying(verify: Admission<T, E>, service: S, request: Request<B>) -> Self {
        ResponseFuture {
            state: State::Verifying {
                verify,
                pending: Some(Box::new((service, request))),
            },
            headers: None,
        }
    }

    pub(crate) fn inner(future: S::Future) -> Self {
        Self::inner_with(future, None)
    }

    /// The inner service's future, whose response gets `headers` added.
    #[inline(always)]
    pub(crate) fn inner_with(future: S::Future, headers: ExtraHeaders) -> Self {
        ResponseFuture {
            state: State::Inner { future },
            headers,
        }
    }

    #[cold]
    #[inline(never)]
    pub(crate) fn refused(refusal: Refusal) -> Self {
        ResponseFuture {
            state: State::Refused {
                refusal: Some(refusal),
            },
            headers: None,
        }
    }
}

impl<S, B, T, E, ResBody> Future for ResponseFuture<S, B, T, E>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: From<Bytes>,
    T: Admitted,
    E: Rejection,
{
    type Output = Result<Response<ResBody>, S::Error>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Nearly every poll: an admitted request's inner future, whose answer gets no
        // headers added and is passed on as it is, never moved through here.
        let this = self.as_mut().project();
        if let (StateProj::Inner { future }, None) = (this.state.project(), this.headers) {
            return future.poll(cx);
        }
        poll_other(self, cx)
    }
}

/// [`ResponseFuture`]'s poll in every other state: verifying, headers to add, refused.
/// Out of line, so that the code of the common poll stays small.
#[inline(never)]
fn poll_other<S, B, T, E, ResBody>(
    mut future: Pin<&mut ResponseFuture<S, B, T, E>>,
    cx: &mut Context<'_>,
) -> Poll<Result<Response<ResBody>, S::Error>>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: From<Bytes>,
    T: Admitted,
    E: Rejection,
{
    loop {
        let mut this = future.as_mut().project();
        match this.state.as_mut().project() {
            StateProj::Verifying { verify, pending } => {
                let outcome = ready!(verify.as_mut().poll(cx));
                let Some(pair) = pending.take() else {
                    panic!("ResponseFuture polled after completion");
                };
                let (mut service, mut request) = *pair;
                match outcome {
                    Ok(admitted) => {
                        *this.headers = admitted.response_headers();
                        request.extensions_mut().insert(admitted);
                        let future = service.call(request);
                        this.state.set(State::Inner { future });
                    }
                    Err(refusal) => return Poll::Ready(Ok(refusal.render().map(ResBody::from))),
                }
            }
            StateProj::Inner { future } => {
                let mut response = ready!(future.poll(cx))?;
                if let Some(status) = this.headers.take() {
                    let own = response.headers_mut();
                    for (name, value) in status.headers() {
                        if let Some(name) = name {
                            own.entry(name).or_insert(value);
                        }
                    }
                }
                return Poll::Ready(Ok(response));
            }
            StateProj::Refused { refusal } => {
                let Some(refusal) = refusal.take() else {
                    panic!("ResponseFuture polled after completion");
                };
                return Poll::Ready(Ok(refusal.map(ResBody::from)));
            }
        }
    }
}

impl<S: Service<Request<B>>, B, T, E> fmt::Debug for ResponseFuture<S, B, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
