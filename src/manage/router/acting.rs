//! Who acts on a named-keys route: the owner's browser session, or (when the routes
//! allow it) a key that carries the management scope.

use axum::{extract::FromRequestParts, response::Response};
use http::{header, request::Parts};

use super::{client_addr, ManagementRoutes};
use crate::{
    error::ApiError,
    manage::{Caller, NamedKeysApi},
    session::SessionUser,
};

/// The owner whose keys a request manages, and who acts for them.
///
/// With [`ManagementRoutes::bearer_scope`] set, a request that sends
/// `Authorization: Bearer` is a key acting: it goes through the authenticator's whole
/// pipeline (the failed-attempts budget, its restrictions and rate limit, usage
/// counting), must carry the scope, and is then held to [`Caller::acting_key`]'s rules
/// (its own owner only, nothing beyond its own bounds, not rotated out or reported
/// leaked). Any other request needs the session guard's admission (cross-origin rules,
/// then a session).
pub(super) struct Acting {
    pub(super) owner: String,
    pub(super) caller: Caller,
    /// The format the answer is written in ([`NamedKeysApi::for_request`]).
    pub(super) format: NamedKeysApi,
}

impl FromRequestParts<ManagementRoutes> for Acting {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        routes: &ManagementRoutes,
    ) -> Result<Self, Self::Rejection> {
        let client = client_addr(routes, parts);
        let format = routes.named_api.for_request(&parts.headers);
        let scope = match &routes.bearer_scope {
            Some(scope) if sends_bearer(parts) => scope,
            _ => {
                let user = routes
                    .guard
                    .admit(parts)
                    .await
                    .map_err(ApiError::into_http_response)?;
                return Ok(Acting {
                    format,
                    ..Acting::user(&user, client)
                });
            }
        };
        let key = routes
            .auth
            .authenticate(parts)
            .await
            .map_err(|refused| refused.into_http_response())?;
        key.require_scope(scope.clone())
            .map_err(|refused| refused.into_http_response())?;
        let caller = Caller::acting_key(&key)
            .map_err(|refused| ApiError::from(refused).into_http_response())?;
        Ok(Acting {
            owner: key.owner().to_owned(),
            caller: caller.from_addr(client),
            format,
        })
    }
}

/// Whether the request sends `Authorization: Bearer …` (any other scheme, such as a
/// browser's cached Basic credentials, leaves it to the session).
fn sends_bearer(parts: &Parts) -> bool {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.as_bytes().get(..7))
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case(b"bearer "))
}

impl Acting {
    /// The session user, acting for themselves (answered in the default format).
    pub(super) fn user(user: &SessionUser, client: Option<std::net::IpAddr>) -> Self {
        Acting {
            owner: user.id().to_owned(),
            caller: Caller::user(user.id()).from_addr(client),
            format: NamedKeysApi::default(),
        }
    }
}
