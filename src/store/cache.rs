use std::{
    fmt,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering::SeqCst},
        Arc,
    },
    time::{Duration, SystemTime},
};

use moka::sync::Cache;
use tokio::sync::broadcast;

use super::{
    timeout::{bounded, DEFAULT_TIMEOUT},
    Change, ChangeListener, InsertRule, KeyId, KeyRecord, KeyStore, Lookup, Result, UsageBatch,
    UsageBucket, Watching,
};
use crate::{
    key::{KeyPrefix, PrefixHashing},
    telemetry::{self, CacheLookup},
};

/// The least time a write through the cache gives other instances to apply its
/// change after the feed delivered it.
const SETTLE: Duration = Duration::from_millis(5);

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
///   within milliseconds. Entries are served only while the feed is subscribed: until
///   it first is, and from the moment it reports its connection lost
///   ([`Change::Disconnected`]) until it is back ([`Change::All`], which also clears
///   the cache), every lookup goes to the store. A feed that dies silently is noticed
///   by its ping within about a second plus the timeout. With a store that has no
///   feed (SQLite shared by several processes, a store of your own), **a key revoked
///   elsewhere is refused within the positive TTL**.
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

/// The cache has nothing to say about a prefix: ask the store.
struct NotCached;

struct Shared<S> {
    store: S,
    found: Cache<KeyPrefix, Arc<KeyRecord>, PrefixHashing>,
    // Keyed by prefixes callers made up: the default (randomly keyed) hasher.
    missing: Cache<KeyPrefix, ()>,
    generation: AtomicU64,
    /// Whether entries may be served: always without a change feed (the TTL bounds
    /// them); with one, only while it is subscribed.
    live: AtomicBool,
    timeout: Duration,
    watching: std::sync::OnceLock<Watching>,
    /// Changes heard on the feed, for writers waiting to hear their own.
    heard: broadcast::Sender<Change>,
    /// How long a write through this cache waits to hear itself on the feed.
    echo_wait: Duration,
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

    /// What the cache holds for `prefix`: `Ok(record)` or `Ok(None)` (known to be
    /// unknown), or [`NotCached`] when the store must be asked.
    fn cached(&self, prefix: &KeyPrefix) -> Result<Option<Arc<KeyRecord>>, NotCached> {
        if !self.live.load(SeqCst) {
            return Err(NotCached);
        }
        if let Some(record) = self.found.get(prefix) {
            telemetry::cache_lookup(CacheLookup::Hit);
            return Ok(Some(record));
        }
        let missing = self.missing.get(prefix).map(|()| None).ok_or(NotCached);
        if missing.is_ok() {
            telemetry::cache_lookup(CacheLookup::NegativeHit);
        }
        missing
    }
}

impl<S: Send + Sync + 'static> ChangeListener for Shared<S> {
    fn changed(&self, change: Change) {
        match change {
            Change::Key(prefix) => self.forget(&prefix),
            Change::All => {
                self.forget_all();
                self.live.store(true, SeqCst);
            }
            Change::Disconnected => {
                self.live.store(false, SeqCst);
                self.forget_all();
            }
        }
        // Nobody waiting is fine.
        let _ = self.heard.send(change);
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
            echo_wait: Duration::from_millis(100),
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
    echo_wait: Duration,
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

    /// With a change feed, how long a revocation or rotation through this cache waits,
    /// before it returns, to hear its own change come back on the feed, plus as long
    /// again for the other instances (whose feeds got it at the same time) to apply
    /// it. That the others have applied it is likely, not proven. Default 100 ms (the
    /// documented cross-instance bound); zero returns at once.
    pub fn echo_wait(mut self, wait: Duration) -> Self {
        self.echo_wait = wait;
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
            live: AtomicBool::new(false),
            timeout: self.timeout,
            watching: std::sync::OnceLock::new(),
            heard: broadcast::channel(256).0,
            echo_wait: self.echo_wait,
        });
        let listener: Arc<dyn ChangeListener> = shared.clone();
        let watching = shared.store.watch(Arc::downgrade(&listener));
        let _ = shared.watching.set(watching);
        if watching == Watching::Unsupported {
            shared.live.store(true, SeqCst);
        }
        CachedKeyStore { shared }
    }
}

#[async_trait::async_trait]
impl<S: KeyStore> KeyStore for CachedKeyStore<S> {
    async fn find_by_prefix(&self, prefix: &KeyPrefix) -> Result<Option<Arc<KeyRecord>>> {
        let shared = &self.shared;
        if let Ok(cached) = shared.cached(prefix) {
            return Ok(cached);
        }
        telemetry::cache_lookup(CacheLookup::Miss);
        let generation = shared.generation.load(SeqCst);
        let found = bounded(shared.timeout, shared.store.find_by_prefix(prefix)).await?;
        if !shared.live.load(SeqCst) {
            return Ok(found);
        }
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

    fn lookup_now(&self, prefix: &KeyPrefix) -> Option<Result<Lookup>> {
        if let Ok(cached) = self.shared.cached(prefix) {
            return Some(Ok(Lookup::found(cached)));
        }
        // The wrapped store may answer at once too (in memory); not cached then.
        self.shared.store.lookup_now(prefix)
    }

    async fn insert(&self, record: KeyRecord, rule: InsertRule) -> Result<()> {
        let shared = &self.shared;
        let prefix = record.prefix;
        let replaced = match &rule {
            InsertRule::Replace { old, .. } => Some(old.clone()),
            _ => None,
        };
        let echo = self.listen_for_echo();
        let outcome = bounded(shared.timeout, shared.store.insert(record, rule)).await;
        shared.forget(&prefix);
        if let Some(old) = &replaced {
            let old_prefix = self.forget_id(old);
            // A rotation changes the old key: other instances must hear of it.
            if outcome.is_ok() {
                self.await_echo(echo, old_prefix.unwrap_or(prefix)).await;
            }
        }
        outcome
    }

    async fn revoke(&self, id: &KeyId, at: SystemTime) -> Result<Option<KeyRecord>> {
        let shared = &self.shared;
        let echo = self.listen_for_echo();
        let outcome = bounded(shared.timeout, shared.store.revoke(id, at)).await;
        match &outcome {
            Ok(Some(record)) => {
                shared.forget(&record.prefix);
                self.await_echo(echo, record.prefix).await;
            }
            // Not found, or unknown outcome (it may have been revoked): no cached copy
            // of that id may outlive this call.
            _ => {
                self.forget_id(id);
            }
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

    async fn set_metadata(&self, id: &KeyId, name: &str, value: Option<&str>) -> Result<()> {
        bounded(
            self.shared.timeout,
            self.shared.store.set_metadata(id, name, value),
        )
        .await
    }

    fn watch(&self, listener: std::sync::Weak<dyn ChangeListener>) -> Watching {
        self.shared.store.watch(listener)
    }

    fn keeps_usage(&self) -> bool {
        self.shared.store.keeps_usage()
    }

    async fn add_usage(&self, batch: &UsageBatch) -> Result<()> {
        bounded(self.shared.timeout, self.shared.store.add_usage(batch)).await
    }

    async fn usage(
        &self,
        id: &KeyId,
        from: SystemTime,
        to: SystemTime,
    ) -> Result<Vec<UsageBucket>> {
        bounded(self.shared.timeout, self.shared.store.usage(id, from, to)).await
    }
}

impl<S> CachedKeyStore<S> {
    /// Drops the cached record with this id, found by a scan: only rotations and
    /// failed revocations need it, and they are rare. Returns its prefix if it was
    /// cached.
    fn forget_id(&self, id: &KeyId) -> Option<KeyPrefix> {
        let shared = &self.shared;
        shared.generation.fetch_add(1, SeqCst);
        let (prefix, _) = shared.found.iter().find(|(_, record)| record.id == *id)?;
        shared.forget(&prefix);
        Some(*prefix)
    }

    /// Starts listening for the feed's echo of a write about to be made (before it,
    /// so the echo cannot be missed). `None` without a feed or without a wait.
    fn listen_for_echo(&self) -> Option<broadcast::Receiver<Change>> {
        let shared = &self.shared;
        let feed = shared.watching.get() == Some(&Watching::Started) && shared.live.load(SeqCst);
        (feed && !shared.echo_wait.is_zero()).then(|| shared.heard.subscribe())
    }

    /// Waits, at most the echo wait, until the feed brings back the change to
    /// `prefix` (or a reset), so that every instance listening has it.
    async fn await_echo(&self, echo: Option<broadcast::Receiver<Change>>, prefix: KeyPrefix) {
        let Some(mut echo) = echo else { return };
        let heard = async {
            loop {
                match echo.recv().await {
                    Ok(Change::Key(changed)) if changed != prefix => continue,
                    // Our change, a reset, a lag (ours may be among what was missed)
                    // or a closed feed: stop waiting.
                    _ => return,
                }
            }
        };
        let started = tokio::time::Instant::now();
        let wait = self.shared.echo_wait;
        if tokio::time::timeout(wait, heard).await.is_ok() {
            telemetry::feed_lag(started.elapsed());
            // Every instance got the change when we did; give the others' listeners
            // as long again (at least a few ms, within the wait) to apply it.
            let settle = (started.elapsed() + SETTLE).min(wait.saturating_sub(started.elapsed()));
            tokio::time::sleep(settle).await;
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
            .field("echo_wait", &self.echo_wait)
            .finish_non_exhaustive()
    }
}
