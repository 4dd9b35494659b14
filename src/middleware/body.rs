use std::{
    fmt,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// A body that is either a service's own body or the JSON envelope of a refusal:
    /// for services whose body type cannot be made `From<Bytes>`.
    ///
    /// The crate's guards answer with the inner service's body type and build a
    /// refusal's envelope into it with `From<Bytes>` (`axum::body::Body` and
    /// `http_body_util::Full<Bytes>` can). Behind `Router::layer` the inner body is
    /// axum's `Body`, so this only matters where a guard wraps a service whose body
    /// type cannot: `http_body_util::Empty`, a boxed body, or a tower-http layer's
    /// own body when that layer sits inside the guard (`TraceLayer`,
    /// `CompressionLayer`). Put such layers outside the guard, or wrap the inner
    /// service's bodies (any `http_body::Body` with `Bytes` data) in this type:
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{Request, Response};
    /// use http_body_util::Empty;
    /// use bytes::Bytes;
    /// use tower::{ServiceBuilder, ServiceExt};
    /// use tower_api_key::{middleware::ResponseBody, store::InMemoryKeyStore, ApiKeyLayer};
    ///
    /// let service = ServiceBuilder::new()
    ///     .layer(ApiKeyLayer::new(InMemoryKeyStore::new()))
    ///     .map_response(|response: Response<Empty<Bytes>>| response.map(ResponseBody::new))
    ///     .service_fn(|_request: Request<()>| async {
    ///         Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
    ///     });
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let response = service.oneshot(Request::new(())).await.unwrap();
    /// assert_eq!(response.status(), 401);
    /// # });
    /// ```
    pub struct ResponseBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Inner { #[pin] body: B },
        Envelope { data: Option<Bytes> },
    }
}

impl<B> ResponseBody<B> {
    /// Wraps a service's own body.
    pub fn new(body: B) -> Self {
        ResponseBody {
            kind: Kind::Inner { body },
        }
    }

    fn envelope(data: Bytes) -> Self {
        ResponseBody {
            kind: Kind::Envelope { data: Some(data) },
        }
    }
}

impl<B> From<Bytes> for ResponseBody<B> {
    fn from(data: Bytes) -> Self {
        Self::envelope(data)
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx),
            KindProj::Envelope { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Envelope { data } => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Envelope { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}

impl<B> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Inner { .. } => f.write_str("ResponseBody::Inner"),
            Kind::Envelope { .. } => f.write_str("ResponseBody::Envelope"),
        }
    }
}
