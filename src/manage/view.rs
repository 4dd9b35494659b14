//! What owners see of their keys: [`KeyView`], [`ActiveKey`], a freshly
//! [`MintedKey`], and [`KeyRef`], how a request names one of them.

use std::{collections::BTreeMap, fmt, time::SystemTime};

use serde::Serialize;

use super::HookFailure;
use crate::{
    key::{ApiKey, KeyMode, KeyPrefix},
    policy::{RateLimit, Restrictions},
    store::{KeyId, KeyRecord, UsageCounts},
};

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
    #[serde(serialize_with = "super::time::rfc3339")]
    pub created_at: SystemTime,
    /// When it was last used, including uses not yet written to the store.
    #[serde(serialize_with = "super::time::rfc3339_opt::serialize")]
    pub last_used_at: Option<SystemTime>,
    /// When it expires by itself, if ever.
    #[serde(serialize_with = "super::time::rfc3339_opt::serialize")]
    pub expires_at: Option<SystemTime>,
    /// When it was, or will be, revoked.
    #[serde(serialize_with = "super::time::rfc3339_opt::serialize")]
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
    /// The key's requests over the last 24 hours and 30 days, in the views that list
    /// keys (`None`, and absent from the JSON, in the answers to changes, and when the
    /// store keeps no usage or could not be read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageTotals>,
}

/// A key's request totals, counts not yet written included:
/// `{"last_24_hours":{…},"last_30_days":{…}}`, each as [`UsageCounts`] serialises.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct UsageTotals {
    /// The hours that started in the last 24 hours (the current one included).
    pub last_24_hours: UsageCounts,
    /// The hours that started in the last 30 days.
    pub last_30_days: UsageCounts,
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
            usage: None,
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
