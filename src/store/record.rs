use std::{borrow::Borrow, collections::BTreeMap, fmt, time::SystemTime};

use sha2::{Digest, Sha256};

use super::UseSlot;
use crate::{
    key::{ApiKey, KeyHash, KeyMode, KeyPrefix},
    policy::{RateLimit, Restrictions},
};

/// A key record's stable identifier, e.g. `key_1f0c…`.
///
/// Unlike the prefix it says nothing about the key; management endpoints address keys
/// by id. Stores may use their own ids ([`KeyId::new`]).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct KeyId(String);

impl KeyId {
    /// Wraps an id read back from storage.
    pub fn new(id: impl Into<String>) -> Self {
        KeyId(id.into())
    }

    /// The id derived for a key: `key_` and 24 hex digits of a domain-separated
    /// SHA-256 of the key's hash. Unique per key, stable, and reveals nothing about it.
    pub fn for_key(hash: &KeyHash) -> Self {
        let digest = Sha256::new()
            .chain_update(b"tower-api-key/key-id/v1\0")
            .chain_update(hash.as_bytes())
            .finalize();
        KeyId(format!(
            "key_{}",
            base16ct::lower::encode_string(&digest[..12])
        ))
    }

    /// The id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("KeyId").field(&self.0).finish()
    }
}

impl Borrow<str> for KeyId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// Everything a server keeps about one key — never the key itself, only its hash.
///
/// Fields are public to read and update. To create one, use [`KeyRecord::builder`] for
/// a freshly minted key, or [`KeyRecord::from_parts`] in a store that reads records
/// back; the struct is `#[non_exhaustive]` so that fields added later (restrictions,
/// limits) do not break stores written against this version.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyRecord {
    /// Stable identifier.
    pub id: KeyId,
    /// Public prefix, unique across the store; the lookup index.
    pub prefix: KeyPrefix,
    /// SHA-256 of the whole key.
    pub hash: KeyHash,
    /// The account the key acts for.
    pub owner: String,
    /// A label its owner chose ("ci", "zapier"…); may be empty.
    pub name: String,
    /// What the key may do, e.g. `["leads:read", "signals:write"]`.
    pub scopes: Vec<String>,
    /// Live or test; always the prefix's mode.
    pub mode: KeyMode,
    /// When it was minted.
    pub created_at: SystemTime,
    /// When it stops working by itself, if ever.
    pub expires_at: Option<SystemTime>,
    /// When it was (or will be) revoked.
    pub revoked_at: Option<SystemTime>,
    /// Where and for what it may be used (empty: anywhere, for anything its scopes
    /// allow).
    pub restrictions: Restrictions,
    /// Its own request rate, overriding the layer's default.
    pub rate_limit: Option<RateLimit>,
    /// When it was last seen on a request, as stored; written at most once per key per
    /// interval (see [`LastUse`](super::LastUse), which also has the unwritten value).
    pub last_used_at: Option<SystemTime>,
    /// Free-form notes about the key, by name: public data your code attaches (an
    /// order number, the app the key was made for) and what the management module
    /// records itself, such as a lifecycle hook's failure under `hook.<name>.error`
    /// (see [`KeyHooks`](crate::manage::KeyHooks)). Owners see it in their key views;
    /// never put a secret here. Text without NUL characters (PostgreSQL refuses them).
    /// Change one entry of a stored record with
    /// [`KeyStore::set_metadata`](super::KeyStore::set_metadata).
    pub metadata: BTreeMap<String, String>,
    /// Where this copy of the record, while a store keeps it in memory, finds its
    /// last-use state: bookkeeping, not data.
    pub(crate) use_slot: UseSlot,
}

impl fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let KeyRecord {
            id,
            prefix,
            hash,
            owner,
            name,
            scopes,
            mode,
            created_at,
            expires_at,
            revoked_at,
            restrictions,
            rate_limit,
            last_used_at,
            metadata,
            use_slot: _,
        } = self;
        f.debug_struct("KeyRecord")
            .field("id", id)
            .field("prefix", prefix)
            .field("hash", hash)
            .field("owner", owner)
            .field("name", name)
            .field("scopes", scopes)
            .field("mode", mode)
            .field("created_at", created_at)
            .field("expires_at", expires_at)
            .field("revoked_at", revoked_at)
            .field("restrictions", restrictions)
            .field("rate_limit", rate_limit)
            .field("last_used_at", last_used_at)
            .field("metadata", metadata)
            .finish()
    }
}

impl KeyRecord {
    /// Starts a record for a freshly minted key owned by `owner`: id derived from the
    /// key ([`KeyId::for_key`]), created now, no scopes.
    pub fn builder(key: &ApiKey, owner: impl Into<String>) -> KeyRecordBuilder {
        let hash = key.hash();
        Self::from_parts(KeyId::for_key(&hash), key.prefix(), hash, owner)
    }

    /// Starts a record from stored parts, for [`KeyStore`](super::KeyStore)
    /// implementations reading a row back. The mode is the prefix's; set the rest with
    /// the builder (`created_at`, `revoked_at`… accept `Option`s as read).
    pub fn from_parts(
        id: KeyId,
        prefix: KeyPrefix,
        hash: KeyHash,
        owner: impl Into<String>,
    ) -> KeyRecordBuilder {
        KeyRecordBuilder {
            record: KeyRecord {
                id,
                prefix,
                hash,
                owner: owner.into(),
                name: String::new(),
                scopes: Vec::new(),
                mode: prefix.mode(),
                created_at: SystemTime::now(),
                expires_at: None,
                revoked_at: None,
                last_used_at: None,
                restrictions: Restrictions::default(),
                rate_limit: None,
                metadata: BTreeMap::new(),
                use_slot: UseSlot::default(),
            },
        }
    }

    /// Revoked at or before `now`.
    pub fn is_revoked_at(&self, now: SystemTime) -> bool {
        self.revoked_at.is_some_and(|at| at <= now)
    }

    /// Expired at or before `now`.
    pub fn is_expired_at(&self, now: SystemTime) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// Still works at `now`: neither revoked nor expired by then (a scheduled
    /// revocation still in the future does not stop it).
    pub fn works_at(&self, now: SystemTime) -> bool {
        !self.is_revoked_at(now) && !self.is_expired_at(now)
    }

    /// Whether the key carries `scope` (exact match).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Counts as the owner's active key for [`InsertRule::NoOtherActiveKey`]: no
    /// revocation, not even a scheduled one, and not expired at `now`.
    ///
    /// [`InsertRule::NoOtherActiveKey`]: crate::store::InsertRule::NoOtherActiveKey
    pub fn is_active_key_at(&self, now: SystemTime) -> bool {
        self.revoked_at.is_none() && !self.is_expired_at(now)
    }
}

/// Builds a [`KeyRecord`] for a new key; see [`KeyRecord::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct KeyRecordBuilder {
    record: KeyRecord,
}

impl KeyRecordBuilder {
    /// A label for the key.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.record.name = name.into();
        self
    }

    /// Adds one scope.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.record.scopes.push(scope.into());
        self
    }

    /// Adds several scopes.
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.record
            .scopes
            .extend(scopes.into_iter().map(Into::into));
        self
    }

    /// When the key stops working by itself (`None`: never).
    pub fn expires_at(mut self, at: impl Into<Option<SystemTime>>) -> Self {
        self.record.expires_at = at.into();
        self
    }

    /// When it was minted (defaults to now).
    pub fn created_at(mut self, at: SystemTime) -> Self {
        self.record.created_at = at;
        self
    }

    /// When it was, or will be, revoked (stores reading a row back).
    pub fn revoked_at(mut self, at: impl Into<Option<SystemTime>>) -> Self {
        self.record.revoked_at = at.into();
        self
    }

    /// When it was last used (stores reading a row back).
    pub fn last_used_at(mut self, at: impl Into<Option<SystemTime>>) -> Self {
        self.record.last_used_at = at.into();
        self
    }

    /// Where and for what the key may be used.
    pub fn restrictions(mut self, restrictions: Restrictions) -> Self {
        self.record.restrictions = restrictions;
        self
    }

    /// Its own request rate, overriding the layer's default.
    pub fn rate_limit(mut self, rate: impl Into<Option<RateLimit>>) -> Self {
        self.record.rate_limit = rate.into();
        self
    }

    /// Sets one metadata entry (see [`KeyRecord::metadata`]).
    pub fn metadata(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.record.metadata.insert(name.into(), value.into());
        self
    }

    /// Overrides the derived id.
    pub fn id(mut self, id: KeyId) -> Self {
        self.record.id = id;
        self
    }

    /// The record.
    pub fn build(self) -> KeyRecord {
        self.record
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn builder_and_states() {
        let key = ApiKey::generate(KeyMode::Test).unwrap();
        let now = SystemTime::now();
        let r = KeyRecord::builder(&key, "acct")
            .name("ci")
            .scope("a")
            .scopes(["b", "c"])
            .expires_at(now + Duration::from_secs(60))
            .metadata("app", "zapier")
            .build();
        assert_eq!(r.prefix, key.prefix());
        assert_eq!(r.metadata["app"], "zapier");
        assert_eq!(r.mode, KeyMode::Test);
        assert_eq!(r.scopes, ["a", "b", "c"]);
        assert!(r.has_scope("b") && !r.has_scope("d"));
        assert!(!r.is_expired_at(now) && r.is_expired_at(now + Duration::from_secs(60)));
        assert!(r.is_active_key_at(now));
        assert!(r.id.as_str().starts_with("key_") && r.id.as_str().len() == 28);
        assert_eq!(r.id, KeyId::for_key(&key.hash()));
        assert!(!format!("{r:?}").contains(&key.expose_secret()[24..]));

        let t = now - Duration::from_secs(5);
        let back = KeyRecord::from_parts(r.id.clone(), r.prefix, r.hash, "acct")
            .name("ci")
            .scopes(["a", "b", "c"])
            .created_at(r.created_at)
            .expires_at(r.expires_at)
            .revoked_at(t)
            .last_used_at(None)
            .metadata("app", "zapier")
            .build();
        assert_eq!(back.mode, KeyMode::Test);
        assert!(back.is_revoked_at(now) && !back.is_active_key_at(now));
        assert_eq!(
            KeyRecord {
                revoked_at: None,
                ..back
            },
            r
        );
    }
}
