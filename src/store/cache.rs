use std::{
    fmt,
    sync::{
        atomic::{AtomicU64, Ordering::SeqCst},
        Arc,
    },
    time::{Duration, SystemTime},
};

use moka::sync::Cache;

use super::{
    timeout::{bounded, DEFAULT_TIMEOUT},
    Change, ChangeListener, InsertRule, KeyId, KeyRecord, KeyStore, Result, Watching,
};
use crate::key::{KeyPrefix, PrefixHashing};

/// A cache in front of any [`KeyStore`] (feature `cache`): verified requests are
/// answered from memory, without a round trip to the database, and a revoked key is
/// never brought back.
///
/// - **Positive entries** (records found) live for [`ttl`](CachedKeyStoreBuilder::ttl)
///   (default 30 s); **negative entries** (prefixes not found) for
///   [`negative_ttl`](CachedKeyStoreBuilder::negative_ttl) (default 10 s), so a storm
///   of unknown prefixes does not reach the database. Both are bounded in number
///   ([`capacity`](CachedKeyStoreBuilder::capacity)), so memory is too. Errors are
///   never cached: a failing store answers 503 for every key not cached.
/// - **Changes through this cache** (revoke, rotate, insert) drop the key's entry
///   before the call returns.
/// - **Changes through other instances** reach it through the store's change feed
///   ([`KeyStore::watch`]: PostgreSQL `LISTEN/NOTIFY`, Redis pub/sub), typically
///   within milliseconds. While the feed is down, and after it comes back (when the
///   whole cache is cleared), entries are bounded by the TTL: **the worst case for a
///   key revoked on another instance is the positive TTL**, the same as for a store
///   without a feed (SQLite shared by several processes, a store of your own).
/// - **Revocation cannot be undone by a race**: a lookup that started before a
///   revocation, and so read the record before it, never leaves that record cached
///   after the revocation returns (a generation counter: every invalidation bumps it,
///   and a lookup that sees it moved drops what it cached).
/// - Calls to the wrapped store are bounded by [`timeout`](CachedKeyStoreBuilder::timeout)
///   (default 2 s) and fail with [`StoreError::Timeout`](super::StoreError::Timeout).
///
/// Cloning is cheap: clones share the cache.
///
/// ```
/// use std::time::Duration;
/// use tower_api_key::store::{CachedKeyStore, InMemoryKeyStore};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = CachedKeyStore::builder(InMemoryKeyStore::new())
///     .ttl(Duration::from_secs(10))
///     .capacity(50_000)
///     .build();
/// # });
/// ```
pub struct CachedKeyStore<S> {
    shared: Arc<Shared<S>>,
}

impl<S> Clone for CachedKeyStore<S> {
    fn clone(&self) -> Self {
        CachedKeyStore {
            shared: self.shared.clone(),
        }
    }
}

struct Shared<S> {
    store: S,
    found: Cache<KeyPrefix, Arc<KeyRecord>, PrefixHashing>,
    // Keyed by prefixes callers made up: the default (randomly keyed) hasher.
    missing: Cache<KeyPrefix, ()>,
    generation: AtomicU64,
    timeout: Duration,
    watching: std::sync::OnceLock<Watching>,
}

impl<S> Shared<S> {
    /// Drops what is cached for `prefix`. The generation moves first, so a lookup
    /// under way drops what it is about to cache.
    fn forget(&self, prefix: &KeyPrefix) {
        self.generation.fetch_add(1, SeqCst);
        self.found.invalidate(prefix);
        self.missing.invalidate(prefix);
    }

    fn forget_all(&self) {
        self.generation.fetch_add(1, SeqCst);
        self.found.invalidate_all();
        self.missing.invalidate_all();
    }

    fn cached(&self, prefix: &KeyPrefix) -> Option<Option<Arc<KeyRecord>>> {
        if let Some(record) = self.found.get(prefix) {
            return Some(Some(record));
        }
        self.missing.get(prefix).map(|()| None)
    }
}

impl<S: Send + Sync + 'static> ChangeListener for Shared<S> {
    fn changed(&self, change: Change) {
        match change {
            Change::Key(prefix) => self.forget(&prefix),
            Change::All => self.forget_all(),
        }
    }
}

impl<S: KeyStore> CachedKeyStore<S> {
    /// A cache with the default settings in front of `store`.
    pub fn new(store: S) -> Self {
        Self::builder(store).build()
    }

    /// Starts configuring a cache in front of `store`.
    pub fn builder(store: S) -> CachedKeyStoreBuilder<S> {
        CachedKeyStoreBuilder {
            store,
            ttl: Duration::from_secs(30),
            negative_ttl: Duration::from_secs(10),
            capacity: 100_000,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The wrapped store.
    pub fn get_ref(&self) -> &S {
        &self.shared.store
    }

    /// Whether changes made through other instances reach this cache
    /// ([`Watching::Started`]) or only its TTL bounds them.
    pub fn watching(&self) -> Watching {
        self.shared
            .watching
            .get()
            .copied()
            .unwrap_or(Watching::Unsupported)
    }

    /// Drops every cached entry.
    pub fn clear(&self) {
        self.shared.forget_all();
    }
}

/// Configures a [`CachedKeyStore`].
#[must_use]
pub struct CachedKeyStoreBuilder<S> {
    store: S,
    ttl: Duration,
    negative_ttl: Duration,
    capacity: u64,
    timeout: Duration,
}

impl<S: KeyStore> CachedKeyStoreBuilder<S> {
    /// How long a found record is served from memory: the bound on how stale it can
    /// be when the change feed is down or absent. Default 30 s.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long an unknown prefix is remembered as unknown. Default 10 s.
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = ttl;
        self
    }

    /// How many records (and, separately, unknown prefixes) are kept at most; the
    /// least useful go first. Default 100,000 each.
    pub fn capacity(mut self, capacity: u64) -> Self {
        self.capacity = capacity;
        self
    }

    /// How long a call to the wrapped store may take before it fails with
    /// [`StoreError::Timeout`](super::StoreError::Timeout). Default 2 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The cache. It subscribes to the store's change feed
    /// ([`KeyStore::watch`]), which for PostgreSQL and Redis needs a tokio runtime:
    /// build it inside one.
    pub fn build(self) -> CachedKeyStore<S> {
        let shared = Arc::new(Shared {
            store: self.store,
            found: Cache::builder()
                .max_capacity(self.capacity)
                .time_to_live(self.ttl)
                .build_with_hasher(PrefixHashing::default()),
            missing: Cache::builder()
                .max_capacity(self.capacity)
                .time_to_live(self.negative_ttl)
                .build(),
            generation: AtomicU64::new(0),
            timeout: self.timeout,
            watching: std::sync::OnceLock::new(),
        });
        let listener: Arc<dyn ChangeListener> = shared.clone();
        let watching = shared.store.watch(Arc::downgrade(&listener));
        let _ = shared.watching.set(watching);
        CachedKeyStore { shared }
    }
}

#[async_trait::async_trait]
impl<S: KeyStore> KeyStore for CachedKeyStore<S> {
    async fn find_by_prefix(&self, prefix: &KeyPrefix) -> Result<Option<Arc<KeyRecord>>> {
        let shared = &self.shared;
        if let Some(cached) = shared.cached(prefix) {
            return Ok(cached);
        }
        let generation = shared.generation.load(SeqCst);
        let found = bounded(shared.timeout, shared.store.find_by_prefix(prefix)).await?;
        match &found {
            Some(record) => shared.found.insert(*prefix, record.clone()),
            None => shared.missing.insert(*prefix, ()),
        }
        // An invalidation since the lookup began may have been about this very
        // record: drop what was just cached rather than serve it.
        if shared.generation.load(SeqCst) != generation {
            shared.found.invalidate(prefix);
            shared.missing.invalidate(prefix);
        }
        Ok(found)
    }

    fn find_by_prefix_now(&self, prefix: &KeyPrefix) -> Option<Result<Option<Arc<KeyRecord>>>> {
        if let Some(cached) = self.shared.cached(prefix) {
            return Some(Ok(cached));
        }
        // The wrapped store may answer at once too (in memory); not cached then.
        self.shared.store.find_by_prefix_now(prefix)
    }

    async fn insert(&self, record: KeyRecord, rule: InsertRule) -> Result<()> {
        let shared = &self.shared;
        let prefix = record.prefix;
        let replaced = match &rule {
            InsertRule::Replace { old, .. } => Some(old.clone()),
            _ => None,
        };
        let outcome = bounded(shared.timeout, shared.store.insert(record, rule)).await;
        shared.forget(&prefix);
        if let Some(old) = replaced {
            self.forget_id(&old);
        }
        outcome
    }

    async fn revoke(&self, id: &KeyId, at: SystemTime) -> Result<Option<KeyRecord>> {
        let shared = &self.shared;
        let outcome = bounded(shared.timeout, shared.store.revoke(id, at)).await;
        match &outcome {
            Ok(Some(record)) => shared.forget(&record.prefix),
            // Not found, or unknown outcome (it may have been revoked): no cached copy
            // of that id may outlive this call.
            _ => self.forget_id(id),
        }
        outcome
    }

    async fn list_by_owner(&self, owner: &str) -> Result<Vec<KeyRecord>> {
        bounded(self.shared.timeout, self.shared.store.list_by_owner(owner)).await
    }

    async fn record_last_use(&self, id: &KeyId, at: SystemTime) -> Result<()> {
        bounded(
            self.shared.timeout,
            self.shared.store.record_last_use(id, at),
        )
        .await
    }

    fn watch(&self, listener: std::sync::Weak<dyn ChangeListener>) -> Watching {
        self.shared.store.watch(listener)
    }
}

impl<S> CachedKeyStore<S> {
    /// Drops the cached record with this id, found by a scan: only rotations and
    /// failed revocations need it, and they are rare.
    fn forget_id(&self, id: &KeyId) {
        let shared = &self.shared;
        shared.generation.fetch_add(1, SeqCst);
        if let Some((prefix, _)) = shared.found.iter().find(|(_, record)| record.id == *id) {
            shared.forget(&*prefix);
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for CachedKeyStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedKeyStore")
            .field("store", &self.shared.store)
            .field("cached", &self.shared.found.entry_count())
            .field("cached_missing", &self.shared.missing.entry_count())
            .finish_non_exhaustive()
    }
}

impl<S> fmt::Debug for CachedKeyStoreBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedKeyStoreBuilder")
            .field("ttl", &self.ttl)
            .field("negative_ttl", &self.negative_ttl)
            .field("capacity", &self.capacity)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
