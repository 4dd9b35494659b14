#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub, clippy::unwrap_used)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod macros;

pub mod auth;
pub mod error;
pub mod key;
pub mod manage;
pub mod middleware;
pub mod policy;
pub mod session;
pub mod store;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;

#[cfg(feature = "dashboard")]
#[cfg_attr(docsrs, doc(cfg(feature = "dashboard")))]
pub mod dashboard;

pub use auth::{ApiKeyLayer, Authenticator, Principal, RequireScopeLayer};
pub use error::{ApiError, AuthError, ErrorCode};
pub use key::{ApiKey, KeyMode};
pub use store::{InMemoryKeyStore, KeyRecord, KeyStore};
