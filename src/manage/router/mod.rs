//! [`ManagementRoutes`]: the key management endpoints as an axum router.

mod acting;
mod envelope;
mod format;
mod request;
#[cfg(feature = "secret-scanning")]
mod secret_scanning;
mod usage;

use std::net::IpAddr;

use axum::{
    body::Body,
    extract::{rejection::PathRejection, FromRequestParts, Path, Request, State},
    handler::Handler,
    middleware,
    response::Response,
    routing::{any, get, post},
    Router,
};
use bytes::Bytes;
use http::{header, request::Parts, HeaderMap, StatusCode, Uri};
use serde_json::{json, Value};

use acting::Acting;
use envelope::{envelope_errors, no_such_route};
pub use format::NamedKeysApi;
use request::{body, path_id, Named, Rotation};
use usage::UsageParams;

#[cfg(feature = "dashboard")]
use super::dashboard::{self, DashboardConfig};
use super::{Caller, KeyRef, Keys};
use crate::{
    auth::Authenticator,
    error::{json_response, ApiError, ErrorCode},
    session::{SessionGuardLayer, SessionUser},
};

/// The largest request body a management route reads: 16 KiB.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// What the create and rotate answers say next to the raw key.
const SHOWN_ONCE: &str =
    "Save this key now: it is shown only once. Later views show its prefix only.";

/// The management endpoints, mounted behind the session guard (feature `axum`).
///
/// | route | does | answers |
/// | --- | --- | --- |
/// | `GET /api/v1/partners/api-key` | the owner's active key and retiring ones | 200, 404 |
/// | `POST /api/v1/partners/api-key` | mint the owner's one key (body optional: [`NewKey`](super::NewKey)) | 201 with `api_key` (once), 409 while one is active |
/// | `DELETE /api/v1/partners/api-key` | with `{"id":…}` (or `{"prefix":…}`): revoke exactly that key; with no body: revoke every working key of the owner, named keys included; with the key's own `Authorization: Bearer`: revoke that key | 200, 404, 409 (that key no longer works) |
/// | `GET /api/v1/partners/api-key/usage` | the active key's requests by hour or day (`?from=…&to=…&step=hour\|day`, RFC 3339 UTC; default the last 24 hours by hour, or 30 days by day); `?id=…` names another of the owner's keys | 200 ([`KeyUsage`](super::KeyUsage)), 400, 404, 422 |
/// | `POST /api/v1/partners/api-key/rotate` | successor to the active key (the one `GET` shows); the old one works `grace_seconds` more; with `"id"` (or `"prefix"`) only if that is still the active key | 201, 404, 409 |
/// | `GET /api/user/keys` | the owner's keys (revoked ones for 7 days, marked so) | 200 |
/// | `POST /api/user/keys` | mint a named key (`{"name":…}`) | 201 with `api_key` (once) |
/// | `DELETE /api/user/keys` | with `{"id":…}` (or `{"prefix":…}`): revoke exactly that key | 200, 404, 422 without a key named |
/// | `DELETE /api/user/keys/{id}` | revoke exactly that key | 200, 404 (also for another owner's key) |
/// | `POST /api/user/keys/{id}/rotate` | successor key with a grace period | 201, 404, 409 |
/// | `GET /api/user/keys/{id}/usage` | that key's requests by hour or day (the same query) | 200, 400, 404 (also for another owner's key), 422 |
/// | `POST /api/secret-scanning` (with [`secret_scanning`](Self::secret_scanning), feature `secret-scanning`) | a secret scanner's signed leak report | 200, 400, 401, 413, 503 |
///
/// Every route but the self-revoking `DELETE` and the leak reports (authenticated by
/// their signature) needs a browser session, and unsafe methods pass the guard's
/// cross-origin rules. A bearer key is never enough, unless you name a management
/// scope with [`bearer_scope`](Self::bearer_scope): then a key that carries it manages
/// its own owner's named keys, within its own bounds. The named-keys routes speak the
/// crate's detailed format or, with [`named_api`](Self::named_api), the compact
/// contract many services already publish ([`NamedKeysApi`]). A key that
/// revokes itself goes through the same verification as the API layer: the
/// failed-attempts budget, its restrictions and its rate limit apply. A rotation's
/// successor keeps every bound of the old key (scopes, mode, expiry, restrictions,
/// rate limit). Both paths are configurable, and either shape can be left out.
///
/// Every answer of these routes — errors of the request's shape included: an unknown
/// path below them (404), a wrong method (405, with `Allow`), a body over
/// [`MAX_BODY_BYTES`] (413), an undecodable path — is JSON with `Cache-Control:
/// no-store`, and every error is the crate's envelope. A request body must be a JSON
/// object (or empty where the route allows it): arrays, scalars and `null` get 400.
///
/// Both shapes manage the same owner's keys: with both mounted, an owner can hold named
/// keys next to the one-active key (the one-active view shows the newest active key).
/// To enforce one key per owner, mount only that shape: `.named_path(None)`.
///
/// The [hooks](super::KeyHooks) registered on `keys` learn who acted (the session
/// user; the key, for a self-revoking `DELETE` or a key managing keys; the scanner,
/// for a leak report) and the client's address, as
/// the authenticator names it: the connection's peer (axum's `ConnectInfo`, or
/// [`PeerAddr`](crate::policy::PeerAddr)), or behind the proxies given to
/// [`trusted_proxies`](crate::auth::AuthenticatorBuilder::trusted_proxies) the
/// rightmost untrusted forwarded hop. A create or rotate answer in the detailed format
/// lists failed hooks in `hook_errors` (`[{"hook":"webhook","error":"…"}]`, only when
/// one failed; the compact contract has no such field, and the failures stay in the
/// key's metadata and the log). With the `dashboard`
/// feature, [`dashboard`](Self::dashboard) adds the key dashboard page.
#[derive(Clone, Debug)]
pub struct ManagementRoutes {
    keys: Keys,
    guard: SessionGuardLayer,
    auth: Authenticator,
    one_active: Option<String>,
    named: Option<String>,
    named_api: NamedKeysApi,
    bearer_scope: Option<String>,
    #[cfg(feature = "dashboard")]
    dashboard: Option<DashboardConfig>,
    #[cfg(feature = "secret-scanning")]
    secret_scanning: Option<super::SecretScanning>,
}

/// The default [`ManagementRoutes`] as a router: both shapes at their default paths.
///
/// ```
/// use axum::Router;
/// use tower_api_key::{auth::Authenticator, manage::{self, Keys}, session::{CookieSessions, SessionGuardLayer}, store::InMemoryKeyStore};
///
/// let store = InMemoryKeyStore::new();
/// let auth = Authenticator::new(store.clone());
/// let keys = Keys::new(store).last_use(auth.last_use().clone());
/// let guard = SessionGuardLayer::new(CookieSessions::new(&[9u8; 64]).unwrap());
/// let app: Router = Router::new().merge(manage::router(keys, guard, auth));
/// ```
pub fn router<S: Clone + Send + Sync + 'static>(
    keys: Keys,
    guard: SessionGuardLayer,
    auth: Authenticator,
) -> Router<S> {
    ManagementRoutes::new(keys, guard, auth).into_router()
}

impl ManagementRoutes {
    /// Both shapes at their default paths: `/api/v1/partners/api-key` (one active
    /// key) and `/api/user/keys` (named keys). `auth` verifies the bearer key of a
    /// self-revoking `DELETE`, and views show the last uses it noted (unless `keys`
    /// was given another [`LastUse`](crate::store::LastUse) log).
    pub fn new(keys: Keys, guard: SessionGuardLayer, auth: Authenticator) -> Self {
        let keys = if keys.has_last_use() {
            keys
        } else {
            keys.last_use(auth.last_use().clone())
        };
        ManagementRoutes {
            keys,
            guard,
            auth,
            one_active: Some("/api/v1/partners/api-key".into()),
            named: Some("/api/user/keys".into()),
            named_api: NamedKeysApi::default(),
            bearer_scope: None,
            #[cfg(feature = "dashboard")]
            dashboard: None,
            #[cfg(feature = "secret-scanning")]
            secret_scanning: None,
        }
    }

    /// Mounts the one-active-key shape at `path`, or leaves it out with `None`.
    pub fn one_active_path(mut self, path: Option<&str>) -> Self {
        self.one_active = path.map(Into::into);
        self
    }

    /// Mounts the named-keys shape at `path`, or leaves it out with `None`.
    pub fn named_path(mut self, path: Option<&str>) -> Self {
        self.named = path.map(Into::into);
        self
    }

    /// The wire format of the named-keys routes: the crate's detailed views (the
    /// default), or the compact contract ([`NamedKeysApi::Compact`]). The dashboard
    /// works with either: it asks for the detailed answers
    /// ([`NamedKeysApi::DETAILED_MEDIA_TYPE`]).
    ///
    /// ```
    /// # use tower_api_key::{auth::Authenticator, manage::{Keys, ManagementRoutes}, session::{CookieSessions, SessionGuardLayer}, store::InMemoryKeyStore};
    /// use tower_api_key::manage::NamedKeysApi;
    /// # let store = InMemoryKeyStore::new();
    /// # let (keys, auth) = (Keys::new(store.clone()), Authenticator::new(store));
    /// # let guard = SessionGuardLayer::new(CookieSessions::new(&[9u8; 64]).unwrap());
    ///
    /// let app: axum::Router = ManagementRoutes::new(keys, guard, auth)
    ///     .one_active_path(None)
    ///     .named_api(NamedKeysApi::Compact)
    ///     .bearer_scope("keys:manage")
    ///     .into_router();
    /// ```
    pub fn named_api(mut self, api: NamedKeysApi) -> Self {
        self.named_api = api;
        self
    }

    /// Lets a key that carries `scope` manage its owner's named keys with
    /// `Authorization: Bearer <key>`, besides the owner's browser session. Off by
    /// default: without it a bearer key manages nothing.
    ///
    /// Only `Authorization: Bearer` takes this path (other schemes, such as a
    /// browser's cached Basic credentials, are left to the session). A key acting so
    /// goes through the authenticator's pipeline as on your API (the failed-attempts
    /// budget, its restrictions and rate limit apply; a revoked, expired or unknown key
    /// gets the same 401), and:
    /// - without `scope` it gets 403 `insufficient_scope`;
    /// - a key that was rotated out (in its grace period) or reported leaked manages
    ///   nothing (403);
    /// - it lists, mints, rotates and revokes its own owner's keys only;
    /// - a key it mints gets only scopes it holds, its mode, an expiry no later than
    ///   its own, and no looser restrictions or rate limit; it rotates only keys
    ///   bounded at least as it is (403 otherwise; see
    ///   [`Caller::acting_key`](super::Caller::acting_key));
    /// - the hooks and the audit trail name the key as the actor
    ///   ([`Actor::Key`](super::Actor::Key)).
    ///
    /// The one-active routes stay session-only (their `DELETE` with a bearer key
    /// revokes that key, as before).
    pub fn bearer_scope(mut self, scope: impl Into<String>) -> Self {
        self.bearer_scope = Some(scope.into());
        self
    }

    /// Adds the leak-report route (feature `secret-scanning`) at `scanning`'s path:
    /// a secret scanner's signed report of leaked keys, acted on through these routes'
    /// `keys` (its hooks and audit trail included). See [`SecretScanning`](super::SecretScanning).
    #[cfg(feature = "secret-scanning")]
    #[cfg_attr(docsrs, doc(cfg(feature = "secret-scanning")))]
    pub fn secret_scanning(mut self, scanning: super::SecretScanning) -> Self {
        self.secret_scanning = Some(scanning);
        self
    }

    /// Adds the key dashboard page (feature `dashboard`) at `config`'s path, behind the
    /// session guard, calling the shapes mounted here; see [`dashboard`](super::dashboard).
    ///
    /// ```
    /// use axum::Router;
    /// # use tower_api_key::{auth::Authenticator, manage::{Keys, ManagementRoutes}, session::{CookieSessions, SessionGuardLayer}, store::InMemoryKeyStore};
    /// use tower_api_key::manage::dashboard::DashboardConfig;
    /// # let store = InMemoryKeyStore::new();
    /// # let (keys, auth) = (Keys::new(store.clone()), Authenticator::new(store));
    /// # let guard = SessionGuardLayer::new(CookieSessions::new(&[9u8; 64]).unwrap());
    ///
    /// let app: Router = ManagementRoutes::new(keys, guard, auth)
    ///     .dashboard(DashboardConfig::new("/settings/api-keys").login_url("/login"))
    ///     .into_router();
    /// ```
    #[cfg(feature = "dashboard")]
    #[cfg_attr(docsrs, doc(cfg(feature = "dashboard")))]
    pub fn dashboard(mut self, config: DashboardConfig) -> Self {
        self.dashboard = Some(config);
        self
    }

    /// The OpenAPI 3.1 description (feature `openapi`) of the routes this router
    /// mounts, at their configured paths: bodies, answers, the error envelope, and the
    /// session and bearer schemes. Serve it (`doc.to_json()`) or merge it into yours.
    ///
    /// ```
    /// # use tower_api_key::{auth::Authenticator, manage::{Keys, ManagementRoutes}, session::{CookieSessions, SessionGuardLayer}, store::InMemoryKeyStore};
    /// # let store = InMemoryKeyStore::new();
    /// # let (keys, auth) = (Keys::new(store.clone()), Authenticator::new(store));
    /// # let guard = SessionGuardLayer::new(CookieSessions::new(&[9u8; 64]).unwrap());
    /// let routes = ManagementRoutes::new(keys, guard, auth);
    /// let doc = routes.openapi();
    /// assert!(doc.paths.paths.contains_key("/api/user/keys/{id}/usage"));
    /// ```
    #[cfg(feature = "openapi")]
    #[cfg_attr(docsrs, doc(cfg(feature = "openapi")))]
    pub fn openapi(&self) -> utoipa::openapi::OpenApi {
        crate::openapi::management(
            self.one_active.as_deref(),
            self.named.as_deref(),
            self.named_api,
            self.bearer_scope.is_some(),
            self.secret_scanning_path(),
        )
    }

    /// Where the leak-report route is mounted, if it is.
    #[cfg(feature = "openapi")]
    fn secret_scanning_path(&self) -> Option<&str> {
        #[cfg(feature = "secret-scanning")]
        return self.secret_scanning.as_ref().map(|s| s.path.as_str());
        #[cfg(not(feature = "secret-scanning"))]
        return None;
    }

    /// The router, to `merge` into your app.
    pub fn into_router<S: Clone + Send + Sync + 'static>(self) -> Router<S> {
        let guard = self.guard.clone();
        let mut router = Router::new();
        #[cfg(feature = "dashboard")]
        if let Some(config) = self.dashboard.clone() {
            let endpoints = dashboard::Endpoints {
                one_active: self.one_active.clone(),
                named: self.named.clone(),
                conflict: ApiError::from(super::ManageError::ActiveKeyExists)
                    .message()
                    .to_owned(),
                keys: self.keys.clone(),
            };
            router = router.merge(dashboard::router(config, guard.clone(), endpoints));
        }
        if let Some(path) = &self.one_active {
            router = router
                .route(
                    path,
                    get(view_active.layer(guard.clone()))
                        .post(create_active.layer(guard.clone()))
                        .delete(revoke_active),
                )
                .route(
                    &format!("{path}/rotate"),
                    post(rotate_active.layer(guard.clone())),
                )
                .route(
                    &format!("{path}/usage"),
                    get(usage_active.layer(guard.clone())),
                )
                .route(&format!("{path}/{{*rest}}"), any(no_such_route));
        }
        // The named routes admit their caller themselves ([`Acting`]): a session, or
        // a key with the management scope.
        if let Some(path) = &self.named {
            router = router
                .route(
                    path,
                    get(list_named)
                        .post(create_named)
                        .delete(revoke_named_in_body),
                )
                .route(
                    &format!("{path}/{{id}}"),
                    axum::routing::delete(revoke_named),
                )
                .route(&format!("{path}/{{id}}/rotate"), post(rotate_named))
                .route(&format!("{path}/{{id}}/usage"), get(usage_named))
                .route(&format!("{path}/{{id}}/{{*rest}}"), any(no_such_route));
        }
        #[cfg(feature = "secret-scanning")]
        if let Some(scanning) = &self.secret_scanning {
            router = router.route(&scanning.path, post(secret_scanning::receive));
        }
        router
            .layer(middleware::map_response(envelope_errors))
            .with_state(self)
    }
}

/// A JSON answer that is never cached.
fn answer(status: StatusCode, body: Value) -> Response {
    json_response(status, Bytes::from(body.to_string()), HeaderMap::new())
}

/// A JSON answer that is never cached, its fields in the order `T` declares them (a
/// documented contract's order, where one is served).
fn answer_in_order<T: serde::Serialize>(status: StatusCode, body: &T) -> Answer {
    let bytes = serde_json::to_vec(body)
        .map_err(|_| ApiError::new(ErrorCode::InternalError, "The answer could not be encoded."))?;
    Ok(json_response(status, Bytes::from(bytes), HeaderMap::new()))
}

/// A value as JSON; serialising our own types cannot fail, but if it did the answer
/// is an error, not a panic.
fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, ApiError> {
    serde_json::to_value(value)
        .map_err(|_| ApiError::new(ErrorCode::InternalError, "The answer could not be encoded."))
}

/// The client's address as the authenticator names it (the connection's peer, or
/// behind its trusted proxies the rightmost untrusted hop), for the hooks.
fn client_addr(routes: &ManagementRoutes, parts: &Parts) -> Option<IpAddr> {
    routes
        .auth
        .trusted_proxies()
        .client_of(&parts.headers, &parts.extensions)
}

/// The session user the guard layer admitted, acting for themselves (the one-active
/// routes).
struct UserCaller(Acting);

impl FromRequestParts<ManagementRoutes> for UserCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        routes: &ManagementRoutes,
    ) -> Result<Self, Self::Rejection> {
        let user = SessionUser::from_request_parts(parts, routes).await?;
        Ok(UserCaller(Acting::user(&user, client_addr(routes, parts))))
    }
}

pub(super) type Answer = Result<Response, ApiError>;

async fn view_active(State(r): State<ManagementRoutes>, user: SessionUser) -> Answer {
    let view = r.keys.one_active().view(user.id()).await?;
    Ok(answer(StatusCode::OK, to_json(&view)?))
}

async fn create_active(
    State(r): State<ManagementRoutes>,
    UserCaller(by): UserCaller,
    request: Body,
) -> Answer {
    let new = body(request).await?;
    let minted = r.keys.one_active().create(&by.caller, &by.owner, new).await;
    NamedKeysApi::Detailed.minted(minted)
}

async fn rotate_active(
    State(r): State<ManagementRoutes>,
    UserCaller(by): UserCaller,
    request: Body,
) -> Answer {
    let rotation = body::<Rotation>(request).await?;
    let (keys, owner, grace) = (r.keys.one_active(), &by.owner, rotation.grace());
    NamedKeysApi::Detailed.minted(match rotation.key()? {
        Some(key) => keys.rotate_key(&by.caller, owner, key, grace).await,
        None => keys.rotate(&by.caller, owner, grace).await,
    })
}

/// With `Authorization`, the key revokes itself (a leaked key can be killed by whoever
/// holds it), verified as the API layer verifies it; otherwise the session user revokes
/// the key the body names, or with no body every working key of theirs.
async fn revoke_active(State(r): State<ManagementRoutes>, request: Request) -> Answer {
    let (parts, request) = request.into_parts();
    let client = client_addr(&r, &parts);
    let revoked = if parts.headers.contains_key(header::AUTHORIZATION) {
        let principal = match r.auth.authenticate(&parts).await {
            Ok(principal) => principal,
            Err(refused) => return Ok(refused.into_http_response()),
        };
        let own = KeyRef::Id(principal.key_id().clone());
        if let Some(named) = body::<Named>(request).await?.key()? {
            if named != own && named != KeyRef::Prefix(principal.prefix()) {
                return Err(ApiError::new(
                    ErrorCode::Forbidden,
                    "A key can revoke only itself.",
                ));
            }
        }
        let caller = Caller::key(principal.prefix()).from_addr(client);
        let named = r.keys.named();
        vec![
            named
                .revoke(&caller, principal.owner(), principal.key_id())
                .await?,
        ]
    } else {
        let user = r.guard.admit(&parts).await?;
        let caller = Caller::user(user.id()).from_addr(client);
        let keys = r.keys.one_active();
        match body::<Named>(request).await?.key()? {
            Some(key) => vec![keys.revoke_key(&caller, user.id(), key).await?],
            None => keys.revoke(&caller, user.id()).await?,
        }
    };
    Ok(answer(
        StatusCode::OK,
        json!({ "revoked": to_json(&revoked)? }),
    ))
}

async fn list_named(State(r): State<ManagementRoutes>, by: Acting) -> Answer {
    let keys = r.keys.named().list(&by.owner).await?;
    by.format.listed(&keys)
}

async fn create_named(State(r): State<ManagementRoutes>, by: Acting, request: Body) -> Answer {
    let new = body(request).await?;
    let minted = r.keys.named().create(&by.caller, &by.owner, new).await;
    by.format.minted(minted)
}

async fn revoke_named(
    State(r): State<ManagementRoutes>,
    by: Acting,
    id: Result<Path<String>, PathRejection>,
) -> Answer {
    let id = path_id(id)?;
    let view = r.keys.named().revoke(&by.caller, &by.owner, &id).await?;
    by.format.revoked(&view)
}

/// `DELETE {path}` with `{"id":…}` (or `{"prefix":…}`) in the body.
async fn revoke_named_in_body(
    State(r): State<ManagementRoutes>,
    by: Acting,
    request: Body,
) -> Answer {
    let Some(key) = body::<Named>(request).await?.key()? else {
        return Err(ApiError::new(
            ErrorCode::UnprocessableContent,
            r#"Name the key to revoke: {"id":"…"}."#,
        ));
    };
    let view = r
        .keys
        .named()
        .revoke_key(&by.caller, &by.owner, &key)
        .await?;
    by.format.revoked(&view)
}

async fn rotate_named(
    State(r): State<ManagementRoutes>,
    by: Acting,
    id: Result<Path<String>, PathRejection>,
    request: Body,
) -> Answer {
    let id = path_id(id)?;
    let rotation = body::<Rotation>(request).await?;
    if rotation.id.is_some() || rotation.prefix.is_some() {
        return Err(ApiError::new(
            ErrorCode::UnprocessableContent,
            "This route names the key in its path; the body takes grace_seconds only.",
        ));
    }
    let named = r.keys.named();
    let minted = named
        .rotate(&by.caller, &by.owner, &id, rotation.grace())
        .await;
    by.format.minted(minted)
}

/// The active key's usage, or with `?id=` another of the owner's keys'.
async fn usage_active(State(r): State<ManagementRoutes>, user: SessionUser, uri: Uri) -> Answer {
    let params = UsageParams::of(&uri, true)?;
    let query = params.query(std::time::SystemTime::now())?;
    let id = match params.id() {
        Some(id) => id,
        None => r.keys.one_active().view(user.id()).await?.key.id,
    };
    let usage = r.keys.usage(user.id(), &id, query).await?;
    Ok(answer(StatusCode::OK, to_json(&usage)?))
}

async fn usage_named(
    State(r): State<ManagementRoutes>,
    by: Acting,
    id: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Answer {
    let id = path_id(id)?;
    let query = UsageParams::of(&uri, false)?.query(std::time::SystemTime::now())?;
    let usage = r.keys.usage(&by.owner, &id, query).await?;
    Ok(answer(StatusCode::OK, to_json(&usage)?))
}
