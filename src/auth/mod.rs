//! The middleware: [`ApiKeyLayer`] requires a valid API key, [`RequireScopeLayer`]
//! requires a scope, and [`Authenticator`] is the framework-free verifier under both.
//!
//! What happens to a request:
//!
//! 1. The credential is read from `Authorization: Bearer <key>` (scheme
//!    case-insensitive, one or more spaces, then exactly the key). No header: 401
//!    without `error=`. Anything else unusable — another scheme, a quoted or listed
//!    token, tabs, non-ASCII, two headers — 401 `error="invalid_token"`. The query
//!    string and `Proxy-Authorization` are never read.
//! 2. The key's shape is checked: length, namespace, `live`/`test`, lowercase hex;
//!    a key of a mode the deployment does not accept is refused here (401).
//! 3. One store lookup by the 24-character prefix; the presented key's SHA-256 is
//!    compared with the stored digest in constant time. An unknown prefix is hashed and
//!    compared against a dummy digest and gets a byte-identical 401, so neither the
//!    verifier's timing nor the body tells which prefixes exist. A failing store gives 503 with `Retry-After`:
//!    the request fails closed.
//! 4. Revoked or expired keys: 401. A key outside its [restrictions](crate::policy)
//!    (client address, origin, route): 403.
//! 5. The [`Principal`] goes into the request extensions and the inner service is
//!    called. On any refusal it is not.
//!
//! # Example
//!
//! ```
//! use axum::{routing::get, Router};
//! use tower::ServiceExt;
//! use tower_api_key::{
//!     key::{ApiKey, KeyMode},
//!     store::{InMemoryKeyStore, InsertRule, KeyRecord, KeyStore},
//!     ApiKeyLayer, Principal,
//! };
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let store = InMemoryKeyStore::new();
//! let key = ApiKey::generate(KeyMode::Live)?;
//! store.insert(KeyRecord::builder(&key, "acct_1").build(), InsertRule::Unconditional).await?;
//!
//! let app = Router::new()
//!     .route("/whoami", get(|p: Principal| async move { p.owner().to_owned() }))
//!     .layer(ApiKeyLayer::new(store));
//!
//! let request = http::Request::get("/whoami")
//!     .header("authorization", format!("Bearer {}", key.expose_secret()))
//!     .body(axum::body::Body::empty())?;
//! let response = app.clone().oneshot(request).await?;
//! assert_eq!(response.status(), 200);
//!
//! let anonymous = http::Request::get("/whoami").body(axum::body::Body::empty())?;
//! let response = app.oneshot(anonymous).await?;
//! assert_eq!(response.status(), 401);
//! assert_eq!(response.headers()["www-authenticate"], "Bearer realm=\"api\"");
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! Without axum, wrap any `tower::Service<http::Request<B>>` — a hyper `service_fn`
//! through `tower::ServiceBuilder`, for instance; see `examples/hyper.rs`.

mod authenticator;
mod credential;
mod layer;
mod principal;
mod scope;
mod service;
mod shared_limits;

pub use authenticator::{Authenticator, AuthenticatorBuilder};
pub use layer::ApiKeyLayer;
pub use principal::Principal;
pub use scope::{RequireScope, RequireScopeLayer};
pub use service::ApiKeyService;
