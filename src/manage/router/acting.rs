//! Who acts on a named-keys route: the owner's browser session, or (when the routes
//! allow it) a key that carries the management scope.

use axum::{extract::FromRequestParts, response::Response};
use http::{header, request::Parts};

use super::{client_addr, ManagementRoutes};
use crate::{
    error::{ApiError, ErrorCode},
    manage::Caller,
    session::SessionUser,
};

/// The owner whose keys a request manages, and who acts for them.
///
/// With [`ManagementRoutes::bearer_scope`] set, a request that sends `Authorization`
/// is a key acting: it goes through the authenticator's whole pipeline (the
/// failed-attempts budget, its restrictions and rate limit, usage counting), must
/// carry the scope, must not be rotated out, and acts for its own owner only, granting
/// only scopes it holds ([`Caller::acting_key`]). Any other request needs the session
/// guard's admission (cross-origin rules, then a session).
pub(super) struct Acting {
    pub(super) owner: String,
    pub(super) caller: Caller,
}

impl FromRequestParts<ManagementRoutes> for Acting {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        routes: &ManagementRoutes,
    ) -> Result<Self, Self::Rejection> {
        let client = client_addr(routes, parts);
        let scope = match &routes.bearer_scope {
            Some(scope) if parts.headers.contains_key(header::AUTHORIZATION) => scope,
            _ => {
                let user = routes
                    .guard
                    .admit(parts)
                    .await
                    .map_err(ApiError::into_http_response)?;
                return Ok(Acting::user(&user, client));
            }
        };
        let key = routes
            .auth
            .authenticate(parts)
            .await
            .map_err(|refused| refused.into_http_response())?;
        key.require_scope(scope.clone())
            .map_err(|refused| refused.into_http_response())?;
        if key.retires_at().is_some() {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "A key that was rotated out cannot manage keys.",
            )
            .into_http_response());
        }
        Ok(Acting {
            owner: key.owner().to_owned(),
            caller: Caller::acting_key(&key).from_addr(client),
        })
    }
}

impl Acting {
    /// The session user, acting for themselves.
    pub(super) fn user(user: &SessionUser, client: Option<std::net::IpAddr>) -> Self {
        Acting {
            owner: user.id().to_owned(),
            caller: Caller::user(user.id()).from_addr(client),
        }
    }
}
