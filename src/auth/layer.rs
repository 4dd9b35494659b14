use tower::Layer;

use super::{ApiKeyService, Authenticator};

/// Requires a valid API key on every request to the wrapped service.
///
/// Takes a [`KeyStore`](crate::store::KeyStore) directly for the defaults, or an
/// [`Authenticator`] built with [`Authenticator::builder`]. Cheap to clone.
///
/// See the [module docs](super) for what happens to a request.
#[derive(Clone, Debug)]
pub struct ApiKeyLayer {
    auth: Authenticator,
}

impl ApiKeyLayer {
    /// A layer over a store (default settings) or a configured [`Authenticator`].
    pub fn new(auth: impl Into<Authenticator>) -> Self {
        ApiKeyLayer { auth: auth.into() }
    }

    /// The authenticator this layer uses, e.g. to share it with non-HTTP code.
    pub fn authenticator(&self) -> &Authenticator {
        &self.auth
    }
}

impl<S> Layer<S> for ApiKeyLayer {
    type Service = ApiKeyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ApiKeyService::new(inner, self.auth.clone())
    }
}
