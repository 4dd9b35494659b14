//! `CachedKeyStore` in front of a store whose behaviour the test controls: hits that
//! never reach the store, unknown prefixes remembered, errors never cached, timeouts,
//! the TTL bound, and a lookup racing a revocation (forced with a slow store).
#![cfg(feature = "cache")]

mod common;

use std::{
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst},
        Arc,
    },
    time::{Duration, Instant, SystemTime},
};

use common::{request, Reply};
use http::{Method, StatusCode};
use tokio::sync::Semaphore;
use tower::ServiceExt;
use tower_api_key::{
    key::KeyPrefix,
    store::{CachedKeyStore, Change, ChangeListener, InsertRule, KeyId, StoreError, Watching},
    ApiKey, ApiKeyLayer, InMemoryKeyStore, KeyMode, KeyRecord, KeyStore,
};

tower_api_key::key_store_conformance!(conformance_in_memory, async {
    CachedKeyStore::new(InMemoryKeyStore::new())
});
tower_api_key::key_store_conformance!(conformance_slow_store, async {
    CachedKeyStore::new(Controlled::default())
});

/// An in-memory store that answers only asynchronously, as a database does, counts
/// its lookups, can fail or hang, and can hold a lookup after it read the record.
#[derive(Clone, Default)]
struct Controlled {
    inner: InMemoryKeyStore,
    lookups: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
    hanging: Arc<AtomicBool>,
    /// When set, a lookup waits for a permit after reading the record.
    hold: Arc<std::sync::Mutex<Option<Arc<Semaphore>>>>,
    /// With a change feed: the listener it reports to (the test plays the feed).
    feed: Option<Arc<std::sync::Mutex<Option<Listener>>>>,
}

type Listener = std::sync::Weak<dyn ChangeListener>;

impl Controlled {
    fn lookups(&self) -> usize {
        self.lookups.load(SeqCst)
    }

    fn with_feed() -> Self {
        Controlled {
            feed: Some(Arc::default()),
            ..Controlled::default()
        }
    }

    /// Reports a change as the store's feed would.
    fn report(&self, change: Change) {
        let listener = self.feed.as_ref().unwrap().lock().unwrap().clone();
        listener.unwrap().upgrade().unwrap().changed(change);
    }
}

#[async_trait::async_trait]
impl KeyStore for Controlled {
    async fn find_by_prefix(
        &self,
        prefix: &KeyPrefix,
    ) -> Result<Option<Arc<KeyRecord>>, StoreError> {
        self.lookups.fetch_add(1, SeqCst);
        tokio::task::yield_now().await;
        if self.hanging.load(SeqCst) {
            std::future::pending::<()>().await;
        }
        if self.failing.load(SeqCst) {
            return Err(StoreError::backend("connection refused"));
        }
        let found = self.inner.find_by_prefix(prefix).await;
        let hold = self.hold.lock().unwrap().clone();
        if let Some(gate) = hold {
            let _permit = gate.acquire().await.unwrap();
        }
        found
    }

    async fn insert(&self, record: KeyRecord, rule: InsertRule) -> Result<(), StoreError> {
        self.inner.insert(record, rule).await
    }

    async fn revoke(&self, id: &KeyId, at: SystemTime) -> Result<Option<KeyRecord>, StoreError> {
        self.inner.revoke(id, at).await
    }

    async fn list_by_owner(&self, owner: &str) -> Result<Vec<KeyRecord>, StoreError> {
        self.inner.list_by_owner(owner).await
    }

    async fn record_last_use(&self, id: &KeyId, at: SystemTime) -> Result<(), StoreError> {
        self.inner.record_last_use(id, at).await
    }

    async fn set_metadata(
        &self,
        id: &KeyId,
        name: &str,
        value: Option<&str>,
    ) -> Result<(), StoreError> {
        self.inner.set_metadata(id, name, value).await
    }

    fn watch(&self, listener: std::sync::Weak<dyn ChangeListener>) -> Watching {
        match &self.feed {
            Some(feed) => {
                *feed.lock().unwrap() = Some(listener);
                Watching::Started
            }
            None => Watching::Unsupported,
        }
    }
}

async fn mint(store: &impl KeyStore) -> (ApiKey, KeyRecord) {
    let key = ApiKey::generate(KeyMode::Live).unwrap();
    let record = KeyRecord::builder(&key, "acct").build();
    store
        .insert(record.clone(), InsertRule::Unconditional)
        .await
        .unwrap();
    (key, record)
}

/// A router behind the layer over `store`; `GET /api/account` answers the owner.
fn router(store: impl KeyStore) -> axum::Router {
    use axum::routing::get;
    axum::Router::new()
        .route(
            "/api/account",
            get(|p: tower_api_key::Principal| async move { p.owner().to_owned() }),
        )
        .layer(ApiKeyLayer::new(store))
}

async fn get(router: &axum::Router, key: &ApiKey) -> Reply {
    let response = router
        .clone()
        .oneshot(request(
            Method::GET,
            "/api/account",
            Some(key.expose_secret()),
        ))
        .await
        .unwrap();
    Reply::read(response).await
}

#[tokio::test]
async fn hits_and_unknown_prefixes_are_answered_from_memory() {
    let store = Controlled::default();
    let cache = CachedKeyStore::new(store.clone());
    assert_eq!(cache.watching(), Watching::Unsupported);
    let (key, _) = mint(&cache).await;
    let app = router(cache.clone());
    for _ in 0..50 {
        assert_eq!(get(&app, &key).await.status, StatusCode::OK);
    }
    assert_eq!(store.lookups(), 1, "one lookup, then the cache");

    let unknown = ApiKey::generate(KeyMode::Live).unwrap();
    for _ in 0..50 {
        assert_eq!(get(&app, &unknown).await.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(store.lookups(), 2, "an unknown prefix is looked up once");

    // Minting under a prefix remembered as unknown makes it known at once.
    let record = KeyRecord::builder(&unknown, "acct").build();
    cache
        .insert(record, InsertRule::Unconditional)
        .await
        .unwrap();
    assert_eq!(get(&app, &unknown).await.status, StatusCode::OK);
}

#[tokio::test]
async fn errors_are_never_cached_and_recovery_is_immediate() {
    let store = Controlled::default();
    let cache = CachedKeyStore::new(store.clone());
    let (key, _) = mint(&cache).await;
    let app = router(cache.clone());
    store.failing.store(true, SeqCst);
    for _ in 0..3 {
        let reply = get(&app, &key).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "fail closed");
        assert_eq!(reply.header("retry-after"), "1");
    }
    store.failing.store(false, SeqCst);
    assert_eq!(
        get(&app, &key).await.status,
        StatusCode::OK,
        "error was not cached"
    );
    // Cached now: the store failing again does not matter until the entry expires.
    store.failing.store(true, SeqCst);
    assert_eq!(get(&app, &key).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_hanging_store_times_out_into_503() {
    let store = Controlled::default();
    let cache = CachedKeyStore::builder(store.clone())
        .timeout(Duration::from_millis(200))
        .build();
    let (key, _) = mint(&cache).await;
    store.hanging.store(true, SeqCst);
    let app = router(cache);
    let started = Instant::now();
    let reply = get(&app, &key).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_millis(1200),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn changes_behind_the_cache_s_back_show_within_the_ttl() {
    let store = Controlled::default();
    let cache = CachedKeyStore::builder(store.clone())
        .ttl(Duration::from_millis(300))
        .build();
    let (key, record) = mint(&cache).await;
    let app = router(cache);
    assert_eq!(get(&app, &key).await.status, StatusCode::OK);
    // Revoked directly in the store (another process, no change feed).
    store
        .inner
        .revoke(&record.id, SystemTime::now())
        .await
        .unwrap();
    assert_eq!(
        get(&app, &key).await.status,
        StatusCode::OK,
        "stale within the TTL"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        get(&app, &key).await.status,
        StatusCode::UNAUTHORIZED,
        "bounded by it"
    );
}

/// The race the generation counter exists for: a lookup reads the record, the key is
/// revoked through the cache, then the lookup finishes. Its stale record must not be
/// served afterwards.
#[tokio::test]
async fn a_lookup_racing_a_revocation_never_resurrects_the_key() {
    for _ in 0..20 {
        let store = Controlled::default();
        let cache = CachedKeyStore::new(store.clone());
        let (key, record) = mint(&cache).await;
        let gate = Arc::new(Semaphore::new(0));
        *store.hold.lock().unwrap() = Some(gate.clone());

        // 1. A cold lookup reads the live record and is held there.
        let racing = {
            let cache = cache.clone();
            let prefix = key.prefix();
            tokio::spawn(async move { cache.find_by_prefix(&prefix).await })
        };
        while store.lookups() == 0 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        // 2. The key is revoked through the cache, and that returns.
        cache.revoke(&record.id, SystemTime::now()).await.unwrap();
        // 3. The held lookup finishes with the stale record (it started earlier).
        *store.hold.lock().unwrap() = None;
        gate.add_permits(1);
        let stale = racing.await.unwrap().unwrap().unwrap();
        assert!(stale.revoked_at.is_none(), "the race was forced");
        // 4. Every request from now on sees the revocation.
        let app = router(cache.clone());
        let reply = get(&app, &key).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "revocation undone by a race"
        );
    }
}

/// With a change feed, entries are served only while it is subscribed: not before its
/// first `All`, not from its `Disconnected` until the next `All`.
#[tokio::test]
async fn nothing_is_served_from_memory_while_the_feed_cannot_hear() {
    let store = Controlled::with_feed();
    let cache = CachedKeyStore::new(store.clone());
    assert_eq!(cache.watching(), Watching::Started);
    let (key, record) = mint(&cache).await;
    let app = router(cache.clone());

    // Not subscribed yet: every request asks the store.
    for _ in 0..3 {
        let before = store.lookups();
        assert_eq!(get(&app, &key).await.status, StatusCode::OK);
        assert!(
            store.lookups() > before,
            "served from memory before subscribing"
        );
    }
    store.report(Change::All);
    assert_eq!(get(&app, &key).await.status, StatusCode::OK);
    let cached = store.lookups();
    for _ in 0..3 {
        assert_eq!(get(&app, &key).await.status, StatusCode::OK);
    }
    assert_eq!(store.lookups(), cached, "subscribed: served from memory");

    // The feed drops; meanwhile another instance revokes the key (unheard).
    store.report(Change::Disconnected);
    store
        .inner
        .revoke(&record.id, SystemTime::now())
        .await
        .unwrap();
    let reply = get(&app, &key).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "never served stale");
    store.report(Change::All);
    assert_eq!(get(&app, &key).await.status, StatusCode::UNAUTHORIZED);
}
