//! Where key records live: the [`KeyStore`] trait and the embedded [`InMemoryKeyStore`].
//!
//! A store keeps [`KeyRecord`]s — never keys, only their SHA-256 hashes — and finds them
//! by their public prefix. The layer makes exactly one [`KeyStore::find_by_prefix`] call
//! per request; key management uses the rest.
//!
//! ```
//! use tower_api_key::{key::{ApiKey, KeyMode}, store::{InMemoryKeyStore, InsertRule, KeyRecord, KeyStore}};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let store = InMemoryKeyStore::new();
//! let key = ApiKey::generate(KeyMode::Live)?;
//! let record = KeyRecord::builder(&key, "acct_42").name("ci").scope("leads:read").build();
//! store.insert(record, InsertRule::Unconditional).await?;
//!
//! let found = store.find_by_prefix(&key.prefix()).await?.expect("just inserted");
//! assert_eq!(found.owner, "acct_42");
//! assert_eq!(found.hash, key.hash());
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # Writing a store
//!
//! Implement [`KeyStore`] with `#[tower_api_key::async_trait]` (the crate re-exports
//! [`async_trait`](crate::async_trait)). The contract, which every method's
//! documentation spells out, in short:
//!
//! - `find_by_prefix` returns the record whatever its state (revoked, expired): the
//!   layer decides what a state means. An error means "could not tell", and the layer
//!   answers 503 — so never turn an outage into `Ok(None)`.
//! - `insert` is atomic with its [`InsertRule`]: two concurrent inserts for one owner
//!   under [`InsertRule::NoOtherActiveKey`] must not both succeed. The enum may grow:
//!   a store refuses a rule it does not know (`StoreError::Backend`), never treating
//!   it as unconditional.
//! - `revoke` is immediate and durable when it returns.
//! - `set_metadata` changes one entry atomically, leaving every other entry and field
//!   as it is.
//! - Every call is bounded in time: a store backed by a network service sets its own
//!   timeouts and answers [`StoreError::Timeout`] rather than hanging the request.
//! - A store shared by several instances can report their changes through
//!   [`KeyStore::watch`], so that caches drop revoked keys at once.
//!
//! The `test-util` feature's `conformance` module checks all of this: run
//! `key_store_conformance!` from your tests, as the built-in stores do.
//!
//! ## Implement a store
//!
//! A whole store over one `Mutex<HashMap>` (every call takes the lock, so every call
//! is atomic), and the conformance suite run over it:
//!
//! ```
//! use std::{
//!     collections::HashMap,
//!     sync::{Arc, Mutex, MutexGuard, PoisonError},
//!     time::SystemTime,
//! };
//!
//! use tower_api_key::{
//!     key::KeyPrefix,
//!     store::{InsertRule, KeyId, KeyRecord, KeyStore, Result, StoreError},
//! };
//!
//! #[derive(Default)]
//! struct MapStore(Mutex<HashMap<KeyPrefix, KeyRecord>>);
//!
//! impl MapStore {
//!     fn records(&self) -> MutexGuard<'_, HashMap<KeyPrefix, KeyRecord>> {
//!         self.0.lock().unwrap_or_else(PoisonError::into_inner)
//!     }
//! }
//!
//! /// The record with this id, to change in place.
//! fn by_id<'a>(
//!     records: &'a mut HashMap<KeyPrefix, KeyRecord>,
//!     id: &KeyId,
//! ) -> Option<&'a mut KeyRecord> {
//!     records.values_mut().find(|r| &r.id == id)
//! }
//!
//! #[async_trait::async_trait]
//! impl KeyStore for MapStore {
//!     async fn find_by_prefix(&self, prefix: &KeyPrefix) -> Result<Option<Arc<KeyRecord>>> {
//!         Ok(self.records().get(prefix).cloned().map(Arc::new))
//!     }
//!
//!     async fn insert(&self, record: KeyRecord, rule: InsertRule) -> Result<()> {
//!         let mut records = self.records();
//!         if records.contains_key(&record.prefix) || by_id(&mut records, &record.id).is_some() {
//!             return Err(StoreError::Duplicate);
//!         }
//!         let mut owned = records.values_mut().filter(|r| r.owner == record.owner);
//!         match rule {
//!             InsertRule::Unconditional => {}
//!             InsertRule::NoOtherActiveKey => {
//!                 if owned.any(|r| r.is_active_key_at(record.created_at)) {
//!                     return Err(StoreError::ActiveKeyExists);
//!                 }
//!             }
//!             InsertRule::Replace { old, revoke_at } => {
//!                 let old = owned.find(|r| r.id == old).ok_or(StoreError::NotFound)?;
//!                 if old.revoked_at.is_some() {
//!                     return Err(StoreError::AlreadyRevoked);
//!                 }
//!                 old.revoked_at = Some(revoke_at);
//!             }
//!             // A rule this store does not know is refused, never ignored.
//!             _ => return Err(StoreError::backend("unknown insert rule")),
//!         }
//!         records.insert(record.prefix, record);
//!         Ok(())
//!     }
//!
//!     async fn revoke(&self, id: &KeyId, at: SystemTime) -> Result<Option<KeyRecord>> {
//!         let mut records = self.records();
//!         Ok(by_id(&mut records, id).map(|r| {
//!             r.revoked_at = Some(r.revoked_at.map_or(at, |earlier| earlier.min(at)));
//!             r.clone()
//!         }))
//!     }
//!
//!     async fn list_by_owner(&self, owner: &str) -> Result<Vec<KeyRecord>> {
//!         let records = self.records();
//!         let mut owned: Vec<_> = records.values().filter(|r| r.owner == owner).cloned().collect();
//!         owned.sort_by_key(|r| r.created_at);
//!         Ok(owned)
//!     }
//!
//!     async fn record_last_use(&self, id: &KeyId, at: SystemTime) -> Result<()> {
//!         if let Some(r) = by_id(&mut self.records(), id) {
//!             r.last_used_at = r.last_used_at.max(Some(at));
//!         }
//!         Ok(())
//!     }
//!
//!     async fn set_metadata(&self, id: &KeyId, name: &str, value: Option<&str>) -> Result<()> {
//!         let mut records = self.records();
//!         let r = by_id(&mut records, id).ok_or(StoreError::NotFound)?;
//!         match value {
//!             Some(value) => r.metadata.insert(name.to_owned(), value.to_owned()),
//!             None => r.metadata.remove(name),
//!         };
//!         Ok(())
//!     }
//! }
//!
//! // In your tests, `key_store_conformance!(map_store, async { MapStore::default() });`
//! // makes one `#[test]` per check; here every check runs at once.
//! tower_api_key::key_store_conformance!(run: async { MapStore::default() });
//! ```
//!
//! # The stores
//!
//! [`InMemoryKeyStore`] is always there. Behind features: `SqliteKeyStore` (`sqlite`),
//! `PostgresKeyStore` (`postgres`), `RedisKeyStore` (`redis`), and `CachedKeyStore`
//! (`cache`) to put in front of any of them.

#[cfg(feature = "cache")]
mod cache;
mod change;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "redis"))]
mod codec;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod conformance;
#[cfg(any(feature = "postgres", feature = "redis"))]
mod feed;
mod last_use;
mod memory;
mod prefix_table;
mod quota;
mod record;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
mod redis;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub mod sql;
#[cfg(any(
    feature = "sqlite",
    feature = "postgres",
    feature = "redis",
    feature = "cache"
))]
mod timeout;
mod usage;

use std::{sync::Arc, time::SystemTime};

use subtle::Choice;

#[cfg(feature = "redis")]
pub use self::redis::{RedisKeyStore, RedisKeyStoreBuilder};
#[cfg(feature = "cache")]
#[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
pub use cache::{CachedKeyStore, CachedKeyStoreBuilder};
pub use change::{Change, ChangeListener, Watching};
pub use last_use::LastUse;
pub(crate) use last_use::{last_use_clock_ms, UseSlot};
pub use memory::InMemoryKeyStore;
pub use quota::{Lease, LeaseRequest, QuotaBucket, QuotaStore};
pub use record::{KeyId, KeyRecord, KeyRecordBuilder};
pub use usage::{
    usage_hour, usage_hour_start, UsageBatch, UsageBucket, UsageCounts, UsageDelta, UsageNotKept,
    UsageOutcome,
};
pub(crate) use usage::{usage_hour_after, HOUR_MS};

#[cfg(feature = "postgres")]
pub use sql::PostgresKeyStore;
#[cfg(feature = "sqlite")]
pub use sql::SqliteKeyStore;

use crate::key::KeyPrefix;

/// A boxed error from a store's backend (database driver, network…).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What can go wrong in a [`KeyStore`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A record with the same id or prefix already exists.
    #[error("a key with the same id or prefix already exists")]
    Duplicate,
    /// [`InsertRule::NoOtherActiveKey`] was asked for and the owner has an active key.
    #[error("the owner already has an active key")]
    ActiveKeyExists,
    /// [`InsertRule::Replace`] named a key that does not exist or belongs to another
    /// owner, or [`KeyStore::set_metadata`] a key that does not exist.
    #[error("no such key for this owner")]
    NotFound,
    /// [`InsertRule::Replace`] named a key that is already revoked, or already being
    /// replaced (its revocation is scheduled).
    #[error("the key is already revoked or being replaced")]
    AlreadyRevoked,
    /// The backend did not answer in time.
    #[error("the key store did not answer in time")]
    Timeout,
    /// The backend failed (connection lost, query failed…).
    #[error("the key store failed")]
    Backend(#[source] BoxError),
}

impl StoreError {
    /// Wraps a backend error.
    pub fn backend(error: impl Into<BoxError>) -> Self {
        StoreError::Backend(error.into())
    }
}

/// Result alias for store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What [`KeyStore::lookup_now`] found: the record with the prefix or, when there is
/// none, optionally a stored record the verifier compares the presented key against in
/// its place (a *decoy*), so that an unknown prefix does the same work as a wrong
/// secret. Which of the two it holds is kept as a [`subtle::Choice`] inside, and the
/// verifier never branches on it.
#[derive(Debug, Clone)]
pub struct Lookup {
    record: Option<Arc<KeyRecord>>,
    hit: Choice,
}

impl Default for Lookup {
    /// Nothing found, no decoy.
    fn default() -> Self {
        Lookup::found(None)
    }
}

impl Lookup {
    /// A lookup's answer without a decoy.
    pub fn found(found: Option<Arc<KeyRecord>>) -> Self {
        let hit = Choice::from(u8::from(found.is_some()));
        Lookup { record: found, hit }
    }

    /// Nothing has the prefix; `decoy`, another stored record read the way a hit is
    /// read, stands in for the comparison.
    pub fn decoy(decoy: Arc<KeyRecord>) -> Self {
        Lookup {
            record: Some(decoy),
            hit: Choice::from(0),
        }
    }

    /// A record read for a prefix and, without a branch, whether it is the prefix's.
    pub(crate) fn candidate(record: Arc<KeyRecord>, hit: Choice) -> Self {
        Lookup {
            record: Some(record),
            hit,
        }
    }

    /// The record with the prefix, if any (a decoy is not returned). This branches on
    /// the answer: the verifier compares against the record without branching.
    pub fn into_found(self) -> Option<Arc<KeyRecord>> {
        self.record.filter(|_| bool::from(self.hit))
    }

    /// The record to compare against (found or decoy), and whether it was found.
    pub(crate) fn into_parts(self) -> (Option<Arc<KeyRecord>>, Choice) {
        (self.record, self.hit)
    }
}

/// The condition an [`insert`](KeyStore::insert) must check atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InsertRule {
    /// Insert unless the id or prefix is taken.
    Unconditional,
    /// Insert only if the owner has no *active* key: one whose `revoked_at` is unset
    /// and that has not expired at the new record's `created_at`. A key with a
    /// revocation scheduled in the future (a rotation's grace period) does not count.
    /// Fails with [`StoreError::ActiveKeyExists`].
    NoOtherActiveKey,
    /// Rotation: in one atomic step, schedule the revocation of the key `old` at
    /// `revoke_at` and insert the new record. `old` must belong to the new record's
    /// owner ([`StoreError::NotFound`]) and have no revocation yet, not even a scheduled
    /// one ([`StoreError::AlreadyRevoked`]), so two concurrent rotations of one key
    /// cannot both succeed.
    Replace {
        /// The key being replaced.
        old: KeyId,
        /// When it stops working: now for an immediate switch, later for a grace
        /// period.
        revoke_at: SystemTime,
    },
}

/// Storage for key records, shared by the layer and key management.
///
/// Object-safe: use it as `Arc<dyn KeyStore>`. See the [module docs](self) for the
/// contract an implementation keeps.
#[async_trait::async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// Finds the record with this prefix, in whatever state it is. `Ok(None)` only when
    /// no such record exists.
    async fn find_by_prefix(&self, prefix: &KeyPrefix) -> Result<Option<Arc<KeyRecord>>>;

    /// The same answer as [`find_by_prefix`](Self::find_by_prefix), given at once
    /// without waiting, by stores that hold records in memory (the in-memory store, a
    /// cache on a hit): the layer asks this first and, when it answers, verifies the
    /// request without allocating a future. `None` — the default — means "ask
    /// `find_by_prefix`"; never block here.
    ///
    /// The answer is a [`Lookup`]: [`Lookup::found`] with the record (or `None`), or,
    /// when no record has the prefix, [`Lookup::decoy`] with another stored record read
    /// as a hit would be, so that an unknown prefix costs the same memory work (and
    /// time) as a wrong secret. [`Lookup::into_found`] gives the plain answer back.
    fn lookup_now(&self, prefix: &KeyPrefix) -> Option<Result<Lookup>> {
        let _ = prefix;
        None
    }

    /// Stores a new record, checking `rule` atomically with the write.
    async fn insert(&self, record: KeyRecord, rule: InsertRule) -> Result<()>;

    /// Revokes the record with this id as of `at` and returns it as stored. A record
    /// already revoked keeps its earlier `revoked_at`. `at` may lie in the future: the
    /// key then keeps working until that instant. `Ok(None)` when no such record exists.
    async fn revoke(&self, id: &KeyId, at: SystemTime) -> Result<Option<KeyRecord>>;

    /// All of an owner's records, revoked and expired ones included, oldest first.
    async fn list_by_owner(&self, owner: &str) -> Result<Vec<KeyRecord>>;

    /// Notes that the key was used at `at` (a later `at` than the stored one wins).
    /// `list_by_owner` shows it; a lookup by prefix through a cache may not yet.
    async fn record_last_use(&self, id: &KeyId, at: SystemTime) -> Result<()>;

    /// Sets the metadata entry `name` of the record with this id to `value`, or
    /// removes it when `value` is `None` (removing an absent entry is no error). One
    /// entry changes atomically, whatever happens to the record's other entries and
    /// fields meanwhile: two concurrent calls for different names both take effect.
    /// [`StoreError::NotFound`] when no such record exists.
    ///
    /// Metadata says nothing about whether a key works, so, like
    /// [`record_last_use`](Self::record_last_use), a change is no event for
    /// [`watch`](Self::watch): `list_by_owner` shows it at once, a lookup by prefix
    /// through a cache may not yet.
    async fn set_metadata(&self, id: &KeyId, name: &str, value: Option<&str>) -> Result<()>;

    /// Reports changes made through *any* instance sharing this store (inserts,
    /// revocations, rotations) to `listener`, for as long as it lives: how a cache in
    /// front of a shared store hears that a key was revoked elsewhere. A store with a
    /// change feed (PostgreSQL `LISTEN/NOTIFY`, Redis pub/sub) starts a background task
    /// and reports [`Change::All`] whenever it (re)connects, since changes may have
    /// been missed meanwhile; the task ends once the listener is dropped.
    ///
    /// The default, for stores without a feed, is [`Watching::Unsupported`].
    fn watch(&self, listener: std::sync::Weak<dyn ChangeListener>) -> Watching {
        let _ = listener;
        Watching::Unsupported
    }

    /// Whether this store keeps per-key usage ([`add_usage`](Self::add_usage) and
    /// [`usage`](Self::usage) work). The layer counts usage only for a store that
    /// does; the default is `false`, and every built-in store keeps it.
    fn keeps_usage(&self) -> bool {
        false
    }

    /// Adds each delta's counts to its key's hour, atomically per counter: two
    /// instances adding to one hour at once lose nothing of each other's. Hours before
    /// [`UsageBatch::keep_from`] are past the retention: drop them (now, or as the
    /// store expires data) and never return them from [`usage`](Self::usage).
    ///
    /// Usage is bookkeeping: like [`record_last_use`](Self::record_last_use) it is no
    /// event for [`watch`](Self::watch). The default answers
    /// [`StoreError::Backend`] with [`UsageNotKept`].
    async fn add_usage(&self, batch: &UsageBatch) -> Result<()> {
        let _ = batch;
        Err(StoreError::backend(UsageNotKept))
    }

    /// The key's hourly counts for the hours that start in `from..to`, oldest first;
    /// hours with nothing counted may be left out. The default answers
    /// [`StoreError::Backend`] with [`UsageNotKept`].
    async fn usage(
        &self,
        id: &KeyId,
        from: SystemTime,
        to: SystemTime,
    ) -> Result<Vec<UsageBucket>> {
        let _ = (id, from, to);
        Err(StoreError::backend(UsageNotKept))
    }
}

#[async_trait::async_trait]
impl<T: KeyStore + ?Sized> KeyStore for Arc<T> {
    async fn find_by_prefix(&self, prefix: &KeyPrefix) -> Result<Option<Arc<KeyRecord>>> {
        (**self).find_by_prefix(prefix).await
    }

    fn lookup_now(&self, prefix: &KeyPrefix) -> Option<Result<Lookup>> {
        (**self).lookup_now(prefix)
    }

    async fn insert(&self, record: KeyRecord, rule: InsertRule) -> Result<()> {
        (**self).insert(record, rule).await
    }

    async fn revoke(&self, id: &KeyId, at: SystemTime) -> Result<Option<KeyRecord>> {
        (**self).revoke(id, at).await
    }

    async fn list_by_owner(&self, owner: &str) -> Result<Vec<KeyRecord>> {
        (**self).list_by_owner(owner).await
    }

    async fn record_last_use(&self, id: &KeyId, at: SystemTime) -> Result<()> {
        (**self).record_last_use(id, at).await
    }

    async fn set_metadata(&self, id: &KeyId, name: &str, value: Option<&str>) -> Result<()> {
        (**self).set_metadata(id, name, value).await
    }

    fn watch(&self, listener: std::sync::Weak<dyn ChangeListener>) -> Watching {
        (**self).watch(listener)
    }

    fn keeps_usage(&self) -> bool {
        (**self).keeps_usage()
    }

    async fn add_usage(&self, batch: &UsageBatch) -> Result<()> {
        (**self).add_usage(batch).await
    }

    async fn usage(
        &self,
        id: &KeyId,
        from: SystemTime,
        to: SystemTime,
    ) -> Result<Vec<UsageBucket>> {
        (**self).usage(id, from, to).await
    }
}
