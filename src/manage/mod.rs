//! Key management: mint, view, rotate and revoke keys for their owners, as plain async
//! functions over any [`KeyStore`](crate::store::KeyStore) and, with the `axum`
//! feature, as a ready router behind the session guard.
//!
//! Two policies: [`OneActiveKeys`] (one key per owner — create answers 409 while one
//! is active) and [`NamedKeys`] (many named keys per owner). Rotation mints a
//! successor and lets the old key work for a grace period, so "create the new key,
//! update your services, then the old one stops" works under either policy.
//!
//! The raw key exists only in the [`MintedKey`] a create or rotate returns; every view
//! after that shows the prefix only.
//!
//! [`KeyHooks`] run after every create, rotate and revoke with the key's public view
//! (never the raw key): create a webhook app, send an e-mail, or keep an
//! [`AuditTrail`] of who did what to which key, when and from where.

mod acting_key;
mod audit;
mod caller;
#[cfg(feature = "dashboard")]
#[cfg_attr(docsrs, doc(cfg(feature = "dashboard")))]
pub mod dashboard;
mod error;
mod hooks;
mod keys;
mod leak;
mod named;
mod new_key;
mod one_active;
#[cfg(feature = "axum")]
mod router;
#[cfg(feature = "secret-scanning")]
mod secret_scanning;
mod time;
mod usage;
mod view;

pub use audit::{AuditEntry, AuditSink, AuditTrail, MemoryAuditSink, TracingAuditSink};
pub use caller::{Actor, Caller};
pub use error::ManageError;
pub use hooks::{HookError, HookFailure, KeyAction, KeyEvent, KeyHooks};
pub use keys::Keys;
pub use leak::{LeakAction, LeakReport, LeakVerdict};
pub use named::NamedKeys;
pub use new_key::NewKey;
pub use one_active::OneActiveKeys;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use router::{router, ManagementRoutes, NamedKeysApi, MAX_BODY_BYTES};
#[cfg(feature = "secret-scanning")]
pub use secret_scanning::{
    InvalidScannerKeys, ScannerKeys, SecretScanning, MAX_REPORTED_TOKENS, MAX_REPORT_BYTES,
};
pub use usage::{KeyUsage, UsagePoint, UsageQuery, UsageStep, MAX_USAGE_BUCKETS};
pub use view::{ActiveKey, KeyRef, KeyStatus, KeyView, MintedKey, UsageTotals};
