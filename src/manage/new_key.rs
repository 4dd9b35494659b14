//! [`NewKey`]: what an owner asks for when minting, and its bounds.

use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::ManageError;
use crate::{error::is_scope_token, key::KeyMode};

/// Longest key name accepted.
const MAX_NAME: usize = 100;
/// Most scopes one request may name (before duplicates are dropped).
const MAX_SCOPES: usize = 64;
/// Longest scope accepted.
const MAX_SCOPE_LEN: usize = 128;
/// Furthest expiry accepted: 100 years.
const MAX_LIFETIME: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// What to mint: name, scopes, expiry and mode. All optional; `Deserialize` reads the
/// JSON a management endpoint receives (`expires_at`, or `expiresAt`, as RFC 3339).
///
/// ```
/// use tower_api_key::manage::NewKey;
///
/// let new = NewKey::named("zapier").scope("leads:read");
/// let from_json: NewKey = serde_json::from_str(
///     r#"{"name":"ci","scopes":["leads:read"],"expires_at":"2030-01-01T00:00:00Z","mode":"test"}"#,
/// ).unwrap();
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewKey {
    /// A label the owner chooses; at most 100 characters, no control characters.
    pub name: String,
    /// Scopes (at most 64, each at most 128 characters; repeats are dropped); when
    /// empty, the management's default scopes apply.
    pub scopes: Vec<String>,
    /// When the key stops working by itself; must lie in the future.
    #[serde(with = "super::time::rfc3339_opt", alias = "expiresAt")]
    pub expires_at: Option<SystemTime>,
    /// Live (default) or test.
    pub mode: Option<KeyMode>,
}

impl NewKey {
    /// A key with this name.
    pub fn named(name: impl Into<String>) -> Self {
        NewKey {
            name: name.into(),
            ..NewKey::default()
        }
    }

    /// Adds a scope.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scopes.push(scope.into());
        self
    }

    /// Sets the expiry.
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Sets the mode.
    pub fn mode(mut self, mode: KeyMode) -> Self {
        self.mode = Some(mode);
        self
    }

    /// Drops repeated scopes, keeping the first of each in order.
    pub(crate) fn dedup_scopes(&mut self) {
        let mut seen = std::collections::BTreeSet::new();
        self.scopes.retain(|scope| seen.insert(scope.clone()));
    }

    pub(crate) fn validate(&self, now: SystemTime) -> Result<(), ManageError> {
        if self.name.chars().count() > MAX_NAME || self.name.chars().any(char::is_control) {
            return Err(ManageError::Invalid(
                "A key name has at most 100 characters and no control characters.",
            ));
        }
        if self.scopes.len() > MAX_SCOPES {
            return Err(ManageError::Invalid("A key has at most 64 scopes."));
        }
        if !self
            .scopes
            .iter()
            .all(|s| s.len() <= MAX_SCOPE_LEN && is_scope_token(s))
        {
            return Err(ManageError::Invalid(
                "Each scope is one word of at most 128 printable ASCII characters, without quotes or backslashes.",
            ));
        }
        if let Some(at) = self.expires_at {
            if at <= now {
                return Err(ManageError::Invalid("expires_at must lie in the future."));
            }
            if at.duration_since(now).unwrap_or_default() > MAX_LIFETIME {
                return Err(ManageError::Invalid(
                    "expires_at must lie within 100 years.",
                ));
            }
        }
        Ok(())
    }
}
