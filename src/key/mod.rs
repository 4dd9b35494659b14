//! The key format: minting, parsing and hashing API keys.
//!
//! A key looks like `pk_live_<64 lowercase hex>` (`pk_test_…` in test mode). Its first
//! 24 characters — namespace, mode and 16 hex digits — are the public [`KeyPrefix`]: safe
//! to log, display and index. The rest is secret; the server keeps only the SHA-256
//! [`KeyHash`] of the whole key.
//!
//! ```
//! use tower_api_key::key::{ApiKey, KeyFormat, KeyMode};
//!
//! let key = ApiKey::generate(KeyMode::Live).expect("the OS random source works");
//! assert!(key.expose_secret().starts_with("pk_live_"));
//! assert_eq!(key.prefix().as_str().len(), 24);
//!
//! // What a server stores, and what it compares later (in constant time).
//! let hash = key.hash();
//! let presented = ApiKey::parse(key.expose_secret(), &KeyFormat::default()).unwrap();
//! assert_eq!(presented.hash(), hash);
//!
//! // `Debug` never shows the secret.
//! assert!(!format!("{key:?}").contains(key.expose_secret()));
//! ```

mod api_key;
mod checksum;
mod format;
mod hash;
mod prefix;
mod signing;

pub use api_key::{ApiKey, KeyParseError, MintError};
pub use checksum::{has_valid_checksum, Checksum};
pub use format::{InvalidNamespace, KeyFormat, KeyMode};
pub use hash::KeyHash;
pub(crate) use prefix::{is_zero, PrefixHashing};
pub use prefix::{InvalidPrefix, KeyPrefix};
pub use signing::{InvalidSecret, KeySecret};

/// Number of random bytes in a key's secret part.
pub(crate) const SECRET_BYTES: usize = 32;
/// Number of hex digits in a key's secret part.
pub(crate) const SECRET_HEX: usize = SECRET_BYTES * 2;
/// Number of hex digits of the secret part that belong to the public prefix.
pub(crate) const PREFIX_HEX: usize = 16;
