use std::{
    collections::BTreeMap,
    fmt,
    time::{Duration, SystemTime},
};

use http::StatusCode;
use serde::{Deserialize, Serialize, Serializer};

use super::HookFailure;
use crate::{
    error::{is_scope_token, ApiError, ErrorCode},
    key::{ApiKey, KeyMode, KeyPrefix, MintError},
    policy::{RateLimit, Restrictions},
    store::{KeyId, KeyRecord, StoreError},
};

/// Longest key name accepted.
const MAX_NAME: usize = 100;
/// Most scopes one request may name (before duplicates are dropped).
pub(crate) const MAX_SCOPES: usize = 64;
/// Longest scope accepted.
const MAX_SCOPE_LEN: usize = 128;
/// How many keys an owner may hold that are not revoked, by default.
pub(crate) const DEFAULT_MAX_KEYS_PER_OWNER: usize = 100;
/// How long a revoked key stays in the named-key list, marked revoked.
pub(crate) const REVOKED_SHOWN_FOR: Duration = Duration::from_secs(7 * 24 * 3600);
/// Furthest expiry accepted: 100 years.
const MAX_LIFETIME: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
/// Longest rotation grace period accepted: 30 days.
pub(crate) const MAX_GRACE: Duration = Duration::from_secs(30 * 24 * 3600);

/// What to mint: name, scopes, expiry and mode. All optional; `Deserialize` reads the
/// JSON a management endpoint receives (`expires_at` as RFC 3339).
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
    #[serde(with = "rfc3339_opt")]
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

/// A freshly minted key: the raw key, to show exactly once, and its view.
pub struct MintedKey {
    pub(crate) key: ApiKey,
    pub(crate) view: KeyView,
    pub(crate) hook_failures: Vec<HookFailure>,
}

impl MintedKey {
    /// The raw key. Show it to its owner in this response and never again; do not log
    /// it.
    pub fn api_key(&self) -> &ApiKey {
        &self.key
    }

    /// The stored key, as later views show it (prefix only).
    pub fn view(&self) -> &KeyView {
        &self.view
    }

    /// The [hooks](super::KeyHooks) that failed after minting (logged too); empty when
    /// all succeeded. The key works regardless.
    pub fn hook_failures(&self) -> &[HookFailure] {
        &self.hook_failures
    }
}

impl fmt::Debug for MintedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MintedKey")
            .field("key", &self.key)
            .field("view", &self.view)
            .field("hook_failures", &self.hook_failures)
            .finish()
    }
}

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum KeyStatus {
    /// Works, and is not being replaced.
    Active,
    /// Works until its scheduled revocation (a rotation's grace period).
    Retiring,
    /// Past its expiry.
    Expired,
    /// Revoked.
    Revoked,
}

/// A key as its owner sees it after minting: everything but the secret. Timestamps
/// serialise as RFC 3339 (`2026-11-23T17:00:00Z`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct KeyView {
    /// Stable id, used to revoke or rotate this key.
    pub id: KeyId,
    /// The owner's label.
    pub name: String,
    /// Public prefix, e.g. `pk_live_0123456789abcdef`.
    pub prefix: KeyPrefix,
    /// Live or test.
    pub mode: KeyMode,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Active, retiring, expired or revoked.
    pub status: KeyStatus,
    /// When it was minted.
    #[serde(serialize_with = "rfc3339")]
    pub created_at: SystemTime,
    /// When it was last used, including uses not yet written to the store.
    #[serde(serialize_with = "rfc3339_opt::serialize")]
    pub last_used_at: Option<SystemTime>,
    /// When it expires by itself, if ever.
    #[serde(serialize_with = "rfc3339_opt::serialize")]
    pub expires_at: Option<SystemTime>,
    /// When it was, or will be, revoked.
    #[serde(serialize_with = "rfc3339_opt::serialize")]
    pub revoked_at: Option<SystemTime>,
    /// Where and for what the key may be used: `{"ips":[…],"origins":[…],"routes":[…]}`,
    /// each list empty when that kind is unrestricted. A rotation's successor keeps them.
    pub restrictions: Restrictions,
    /// The key's own request rate (`"100/10s"`), or `null` when it has the layer's
    /// default. A rotation's successor keeps it.
    pub rate_limit: Option<RateLimit>,
    /// The record's [metadata](crate::store::KeyRecord::metadata), such as a failed
    /// hook's `hook.<name>.error`; `{}` when none.
    pub metadata: BTreeMap<String, String>,
}

impl KeyView {
    pub(crate) fn of(
        record: &KeyRecord,
        last_used_at: Option<SystemTime>,
        now: SystemTime,
    ) -> Self {
        let status = if record.is_revoked_at(now) {
            KeyStatus::Revoked
        } else if record.is_expired_at(now) {
            KeyStatus::Expired
        } else if record.revoked_at.is_some() {
            KeyStatus::Retiring
        } else {
            KeyStatus::Active
        };
        KeyView {
            id: record.id.clone(),
            name: record.name.clone(),
            prefix: record.prefix,
            mode: record.mode,
            scopes: record.scopes.clone(),
            status,
            created_at: record.created_at,
            last_used_at,
            expires_at: record.expires_at,
            revoked_at: record.revoked_at,
            restrictions: record.restrictions.clone(),
            rate_limit: record.rate_limit,
            metadata: record.metadata.clone(),
        }
    }
}

/// The one-active-key view: the owner's active key, and keys still working during a
/// rotation's grace period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActiveKey {
    /// The active key.
    #[serde(flatten)]
    pub key: KeyView,
    /// Older keys that keep working until their `revoked_at`.
    pub retiring: Vec<KeyView>,
}

/// A key as its owner names it in a request: by [`KeyId`] or by [`KeyPrefix`], the two
/// things a key view shows.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyRef {
    /// By its id (`key_…`).
    Id(KeyId),
    /// By its public prefix (`pk_live_…`).
    Prefix(KeyPrefix),
}

impl KeyRef {
    /// Whether `record` is the key this names.
    pub(crate) fn names(&self, record: &KeyRecord) -> bool {
        match self {
            KeyRef::Id(id) => &record.id == id,
            KeyRef::Prefix(prefix) => &record.prefix == prefix,
        }
    }
}

impl From<KeyId> for KeyRef {
    fn from(id: KeyId) -> Self {
        KeyRef::Id(id)
    }
}

impl From<KeyPrefix> for KeyRef {
    fn from(prefix: KeyPrefix) -> Self {
        KeyRef::Prefix(prefix)
    }
}

/// Why a management operation was refused. Converts into the [`ApiError`] envelope.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManageError {
    /// No such key for this owner (another owner's key is "not found" too): 404.
    #[error("no such API key")]
    NotFound,
    /// The owner already has an active key (one-active policy): 409.
    #[error("an API key is already active")]
    ActiveKeyExists,
    /// The key is revoked, expired or already being replaced: 409.
    #[error("the API key is revoked, expired or already being replaced")]
    AlreadyRevoked,
    /// The key named is no longer the owner's active key (a rotation or another
    /// page got there first): 409.
    #[error("the API key is no longer the active key")]
    NotActiveKey,
    /// The owner holds as many keys as [`Keys::max_keys_per_owner`] allows: 409.
    ///
    /// [`Keys::max_keys_per_owner`]: super::Keys::max_keys_per_owner
    #[error("the owner holds the most API keys allowed ({max})")]
    TooManyKeys {
        /// The cap.
        max: usize,
    },
    /// The request is well-formed but its content is not acceptable: 422.
    #[error("{0}")]
    Invalid(&'static str),
    /// The store failed: 503.
    #[error("the key store failed")]
    Store(#[source] StoreError),
    /// The OS random source failed: 500.
    #[error("minting failed")]
    Mint(#[source] MintError),
}

impl From<StoreError> for ManageError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::ActiveKeyExists => ManageError::ActiveKeyExists,
            StoreError::AlreadyRevoked => ManageError::AlreadyRevoked,
            StoreError::NotFound => ManageError::NotFound,
            other => ManageError::Store(other),
        }
    }
}

impl From<ManageError> for ApiError {
    fn from(error: ManageError) -> Self {
        match error {
            ManageError::NotFound => ApiError::new(ErrorCode::NotFound, "No such API key."),
            ManageError::ActiveKeyExists => ApiError::new(
                ErrorCode::Conflict,
                "An API key is already active. Revoke it first (or rotate it) to create a new one.",
            ),
            ManageError::AlreadyRevoked => ApiError::new(
                ErrorCode::Conflict,
                "This API key is revoked, expired or already being replaced.",
            ),
            ManageError::NotActiveKey => ApiError::new(
                ErrorCode::Conflict,
                "This API key is no longer the active key: reload to see the current one.",
            ),
            ManageError::TooManyKeys { max } => ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "You have the most API keys allowed ({max}). Revoke one to create another."
                ),
            ),
            ManageError::Invalid(message) => {
                ApiError::new(ErrorCode::UnprocessableContent, message)
            }
            ManageError::Store(_) => ApiError::new(
                ErrorCode::InternalError,
                "Key storage is temporarily unavailable. Please retry shortly.",
            )
            .with_status(StatusCode::SERVICE_UNAVAILABLE)
            .with_retry_after(Duration::from_secs(1)),
            ManageError::Mint(_) => ApiError::new(ErrorCode::InternalError, "Minting failed."),
        }
    }
}

/// RFC 3339 in UTC; a time RFC 3339 cannot hold (after year 9999, before 1970) as
/// seconds since the epoch rather than an error.
pub(super) fn rfc3339<S: Serializer>(at: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    use std::fmt::Write;
    let mut text = String::new();
    match write!(text, "{}", humantime::format_rfc3339_seconds(*at)) {
        Ok(()) => serializer.serialize_str(&text),
        Err(_) => {
            let secs = at
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            serializer.serialize_u64(secs)
        }
    }
}

/// `Option<SystemTime>` as an RFC 3339 string or `null`.
mod rfc3339_opt {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        at: &Option<SystemTime>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => super::rfc3339(at, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<SystemTime>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| humantime::parse_rfc3339_weak(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}
