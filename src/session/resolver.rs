use std::sync::Arc;

use http::request::Parts;

use super::SessionUser;
use crate::store::BoxError;

/// The session backend failed (not "no session": that is `Ok(None)`).
#[derive(Debug, thiserror::Error)]
#[error("the session backend failed")]
pub struct SessionError(#[source] pub BoxError);

/// Finds the logged-in user of a request, from its headers (cookies) or extensions
/// (a session middleware's handle).
///
/// `Ok(None)` means "not logged in" (answered 401); an error means the backend could
/// not tell (answered 503, never a pass).
///
/// ```
/// use http::request::Parts;
/// use tower_api_key::session::{SessionError, SessionResolver, SessionUser};
///
/// /// Trusts a header set by an authenticating reverse proxy.
/// struct FromProxy;
///
/// #[tower_api_key::async_trait]
/// impl SessionResolver for FromProxy {
///     async fn resolve(&self, parts: &Parts) -> Result<Option<SessionUser>, SessionError> {
///         Ok(parts
///             .headers
///             .get("x-authenticated-user")
///             .and_then(|v| v.to_str().ok())
///             .map(SessionUser::new))
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait SessionResolver: Send + Sync + 'static {
    /// The request's user, if it carries a valid session.
    async fn resolve(&self, parts: &Parts) -> Result<Option<SessionUser>, SessionError>;
}

#[async_trait::async_trait]
impl<T: SessionResolver + ?Sized> SessionResolver for Arc<T> {
    async fn resolve(&self, parts: &Parts) -> Result<Option<SessionUser>, SessionError> {
        (**self).resolve(parts).await
    }
}
