#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub, clippy::unwrap_used)]
#![deny(clippy::option_option)]
// The declared `rust-version` is what CI builds with; no newer API slips in.
#![deny(clippy::incompatible_msrv)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod macros;

pub mod auth;
pub mod error;
pub mod key;
pub mod manage;
pub mod middleware;
#[cfg(feature = "openapi")]
#[cfg_attr(docsrs, doc(cfg(feature = "openapi")))]
pub mod openapi;
pub mod policy;
pub mod session;
pub mod store;
mod telemetry;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;

/// The `async-trait` attribute, re-exported so implementing [`KeyStore`],
/// [`SessionResolver`](session::SessionResolver), [`KeyHooks`](manage::KeyHooks) or
/// [`AuditSink`](manage::AuditSink) needs no dependency of your own: write
/// `#[tower_api_key::async_trait]` on the `impl`.
///
/// ```
/// use tower_api_key::session::{SessionError, SessionResolver, SessionUser};
///
/// struct Nobody;
///
/// #[tower_api_key::async_trait]
/// impl SessionResolver for Nobody {
///     async fn resolve(
///         &self,
///         _: &http::request::Parts,
///     ) -> Result<Option<SessionUser>, SessionError> {
///         Ok(None)
///     }
/// }
/// ```
pub use async_trait::async_trait;

pub use auth::{ApiKeyLayer, Authenticator, Principal, RequireScopeLayer};
pub use error::{ApiError, AuthError, ErrorCode};
pub use key::{ApiKey, KeyMode};
pub use store::{InMemoryKeyStore, KeyRecord, KeyStore};
