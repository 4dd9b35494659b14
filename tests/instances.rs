//! Many instances over one real server — PostgreSQL (`TEST_POSTGRES_URL`) and Redis
//! (`TEST_REDIS_URL`), the same tests for each: every instance is its own connection
//! pool and `CachedKeyStore`, as two processes would be. A key minted on one works on
//! the other, a key revoked on one is refused on the other within 100 ms (and no
//! request started after the revocation returned gets through), a lookup racing a
//! revocation cannot resurrect a key, and a store that stops or hangs fails closed and
//! recovers within 5 s.
#![cfg(all(feature = "postgres", feature = "redis", feature = "cache"))]

mod common;

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering::SeqCst},
        Arc,
    },
    time::{Duration, Instant, SystemTime},
};

use common::{
    proxy::{Mode, Proxy},
    request, Reply,
};
use http::{Method, StatusCode};
use tower::ServiceExt;
use tower_api_key::{
    key::KeyPrefix,
    store::{
        CachedKeyStore, ChangeListener, InMemoryKeyStore, InsertRule, KeyId, Lookup,
        PostgresKeyStore, QuotaStore, RedisKeyStore, StoreError, Watching,
    },
    ApiKey, ApiKeyLayer, KeyMode, KeyRecord, KeyStore, Principal,
};

/// A shared store the tests run against (keys, and shared rate-limit quotas).
trait Backend: KeyStore + QuotaStore + Clone {
    /// The environment variable with the server's URL.
    const URL: &'static str;
    /// A new connection (pool) to the server at `url`, migrated.
    async fn open(url: &str, timeout: Duration) -> Self;
}

impl Backend for PostgresKeyStore {
    const URL: &'static str = "TEST_POSTGRES_URL";
    async fn open(url: &str, timeout: Duration) -> Self {
        let store = PostgresKeyStore::connect(url)
            .await
            .expect("connect")
            .with_timeout(timeout);
        store.migrate().await.expect("migrate");
        store
    }
}

impl Backend for RedisKeyStore {
    const URL: &'static str = "TEST_REDIS_URL";
    async fn open(url: &str, timeout: Duration) -> Self {
        let store = RedisKeyStore::builder(url)
            .timeout(timeout)
            .build()
            .await
            .expect("connect");
        store.migrate().await.expect("migrate");
        store
    }
}

const TIMEOUT: Duration = Duration::from_secs(2);

/// One instance: its own connection, behind its own cache.
async fn instance<B: Backend>(url: &str) -> CachedKeyStore<B> {
    let cache = CachedKeyStore::new(B::open(url, TIMEOUT).await);
    assert_eq!(cache.watching(), Watching::Started);
    cache
}

/// Each test, for each backend.
macro_rules! for_each_backend {
    ($($test:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    if let Some(url) = super::common::server_url(
                        <tower_api_key::store::PostgresKeyStore as super::Backend>::URL,
                    ) {
                        super::$test::<tower_api_key::store::PostgresKeyStore>(&url).await;
                    }
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    if let Some(url) = super::common::server_url(
                        <tower_api_key::store::RedisKeyStore as super::Backend>::URL,
                    ) {
                        super::$test::<tower_api_key::store::RedisKeyStore>(&url).await;
                    }
                }
            )*
        }
    };
}

for_each_backend!(
    minted_on_one_instance_works_on_the_other_and_revocation_reaches_it_within_100ms,
    revoke_under_load_lets_nothing_through_after_it_returns,
    a_cold_lookup_on_a_slow_store_cannot_resurrect_a_key_revoked_elsewhere,
    a_stopped_store_fails_closed_and_recovers_within_5s,
    a_paused_store_answers_503_within_the_timeout_plus_1s,
    a_key_revoked_while_the_feed_is_cut_is_never_served_from_memory,
    silently_dead_connections_are_replaced_within_5s,
    a_stopped_or_paused_quota_store_falls_back_then_shares_again,
);

fn router(store: impl KeyStore) -> axum::Router {
    axum::Router::new()
        .route(
            "/api/account",
            axum::routing::get(|p: Principal| async move { p.owner().to_owned() }),
        )
        .layer(ApiKeyLayer::new(store))
}

async fn get(router: &axum::Router, key: &ApiKey) -> StatusCode {
    let response = router
        .clone()
        .oneshot(request(
            Method::GET,
            "/api/account",
            Some(key.expose_secret()),
        ))
        .await
        .unwrap();
    Reply::read(response).await.status
}

async fn mint(store: &impl KeyStore) -> (ApiKey, KeyRecord) {
    let key = ApiKey::generate(KeyMode::Live).unwrap();
    let record = KeyRecord::builder(&key, "acct-instances").build();
    store
        .insert(record.clone(), InsertRule::Unconditional)
        .await
        .unwrap();
    (key, record)
}

/// Polls `store` until the key reads as revoked; how long that took.
async fn until_revoked(store: &impl KeyStore, prefix: &KeyPrefix, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let record = match store.lookup_now(prefix) {
            Some(found) => found.map(Lookup::into_found),
            None => store.find_by_prefix(prefix).await,
        };
        if record.unwrap().unwrap().is_revoked_at(SystemTime::now()) {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "not revoked within {limit:?}");
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

tower_api_key::key_store_conformance!(conformance_cached_postgres, async {
    match common::server_url(PostgresKeyStore::URL) {
        Some(url) => Some(instance::<PostgresKeyStore>(&url).await),
        None => None,
    }
});
tower_api_key::key_store_conformance!(conformance_cached_redis, async {
    match common::server_url(RedisKeyStore::URL) {
        // A namespace of its own: the usage retention a check sets holds for a whole
        // namespace, and for good.
        Some(url) => {
            let key = tower_api_key::ApiKey::generate(tower_api_key::KeyMode::Test).expect("mint");
            let store = RedisKeyStore::builder(&url)
                .namespace(format!(
                    "tower-api-key-test:{}",
                    &key.prefix().as_str()[8..]
                ))
                .timeout(TIMEOUT)
                .build()
                .await
                .expect("connect");
            store.migrate().await.expect("migrate");
            Some(CachedKeyStore::new(store))
        }
        None => None,
    }
});

async fn minted_on_one_instance_works_on_the_other_and_revocation_reaches_it_within_100ms<
    B: Backend,
>(
    url: &str,
) {
    let a = instance::<B>(url).await;
    let b = instance::<B>(url).await;
    let (app_a, app_b) = (router(a.clone()), router(b.clone()));
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        let (key, record) = mint(&a).await;
        assert_eq!(
            get(&app_b, &key).await,
            StatusCode::OK,
            "minted on A, works on B"
        );
        assert_eq!(get(&app_b, &key).await, StatusCode::OK, "now cached on B");
        a.revoke(&record.id, SystemTime::now()).await.unwrap();
        assert_eq!(
            get(&app_a, &key).await,
            StatusCode::UNAUTHORIZED,
            "at once on A"
        );
        let took = until_revoked(&b, &record.prefix, Duration::from_millis(100)).await;
        slowest = slowest.max(took);
        assert_eq!(get(&app_b, &key).await, StatusCode::UNAUTHORIZED);
    }
    eprintln!(
        "{}: revocation reached the other instance within {slowest:?} (10 trials)",
        B::URL
    );
}

async fn revoke_under_load_lets_nothing_through_after_it_returns<B: Backend>(url: &str) {
    let a = instance::<B>(url).await;
    let b = instance::<B>(url).await;
    let app_b = router(b.clone());
    let mut late_successes = 0;
    let mut after_revoke = 0;
    for _ in 0..20 {
        let (key, record) = mint(&a).await;
        assert_eq!(get(&app_b, &key).await, StatusCode::OK);
        let stop = Arc::new(AtomicBool::new(false));
        let epoch = Instant::now();
        let hammers: Vec<_> = (0..4)
            .map(|_| {
                let (app, key, stop) = (app_b.clone(), key.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    while !stop.load(SeqCst) {
                        let started = epoch.elapsed();
                        seen.push((started, get(&app, &key).await));
                        // A cache hit never waits: leave the runtime to the others,
                        // as a server does between requests.
                        tokio::task::yield_now().await;
                    }
                    seen
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        a.revoke(&record.id, SystemTime::now()).await.unwrap();
        let revoked = epoch.elapsed();
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop.store(true, SeqCst);
        for hammer in hammers {
            for (started, status) in hammer.await.unwrap() {
                if started > revoked {
                    after_revoke += 1;
                    if status == StatusCode::OK {
                        late_successes += 1;
                    }
                }
            }
        }
    }
    assert!(
        after_revoke > 100,
        "the hammers ran after the revocations: {after_revoke}"
    );
    assert_eq!(
        late_successes, 0,
        "{late_successes} of {after_revoke} requests started after revoke returned got 200"
    );
}

/// A store that reads the record, then takes `delay` to answer: a cold lookup on a
/// slow database. It passes the change feed through.
#[derive(Clone)]
struct Slow<S> {
    inner: S,
    delay: Duration,
}

#[async_trait::async_trait]
impl<S: KeyStore> KeyStore for Slow<S> {
    async fn find_by_prefix(
        &self,
        prefix: &KeyPrefix,
    ) -> Result<Option<Arc<KeyRecord>>, StoreError> {
        let found = self.inner.find_by_prefix(prefix).await;
        tokio::time::sleep(self.delay).await;
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
        self.inner.watch(listener)
    }
}

async fn a_cold_lookup_on_a_slow_store_cannot_resurrect_a_key_revoked_elsewhere<B: Backend>(
    url: &str,
) {
    let a = instance::<B>(url).await;
    let slow = Slow {
        inner: B::open(url, TIMEOUT).await,
        delay: Duration::from_millis(500),
    };
    let b = CachedKeyStore::new(slow);
    assert_eq!(b.watching(), Watching::Started);
    let (key, record) = mint(&a).await;
    let cold = {
        let b = b.clone();
        let prefix = record.prefix;
        tokio::spawn(async move { b.find_by_prefix(&prefix).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await; // B has read the live record
    a.revoke(&record.id, SystemTime::now()).await.unwrap();
    let stale = cold.await.unwrap().unwrap().unwrap();
    assert!(
        stale.revoked_at.is_none(),
        "the lookup started before the revocation"
    );
    let app_b = router(b.clone());
    assert_eq!(get(&app_b, &key).await, StatusCode::UNAUTHORIZED);
}

/// An uncached store reached through a proxy that can cut or freeze the connection.
async fn behind_proxy<B: Backend>(url: &str, timeout: Duration) -> (Proxy, B) {
    let parsed = url::Url::parse(url).expect("server url");
    let upstream: SocketAddr = format!(
        "{}:{}",
        parsed.host_str().expect("host"),
        parsed.port().expect("the test server's url names its port")
    )
    .parse()
    .expect("a loopback address");
    let proxy = Proxy::start(upstream).await;
    let mut proxied = parsed.clone();
    proxied.set_port(Some(proxy.addr.port())).expect("port");
    let store = B::open(proxied.as_str(), timeout).await;
    (proxy, store)
}

async fn a_stopped_store_fails_closed_and_recovers_within_5s<B: Backend>(url: &str) {
    let (proxy, store) = behind_proxy::<B>(url, Duration::from_millis(500)).await;
    let (key, _) = mint(&store).await;
    let app = router(store);
    assert_eq!(get(&app, &key).await, StatusCode::OK);

    proxy.set(Mode::Down);
    let down = Instant::now();
    while down.elapsed() < Duration::from_secs(2) {
        let status = get(&app, &key).await;
        assert!(
            status.is_server_error(),
            "store down: {status}, never 200 or 401"
        );
    }

    proxy.set(Mode::Open);
    let up = Instant::now();
    loop {
        let status = get(&app, &key).await;
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "recovering");
        assert!(
            up.elapsed() < Duration::from_secs(5),
            "not recovered within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "{}: recovered {:?} after the store came back",
        B::URL,
        up.elapsed()
    );
}

async fn a_paused_store_answers_503_within_the_timeout_plus_1s<B: Backend>(url: &str) {
    let timeout = Duration::from_millis(500);
    let (proxy, store) = behind_proxy::<B>(url, timeout).await;
    let (key, _) = mint(&store).await;
    let app = router(store);
    assert_eq!(get(&app, &key).await, StatusCode::OK);

    proxy.set(Mode::Paused);
    for _ in 0..3 {
        let started = Instant::now();
        let status = get(&app, &key).await;
        let took = started.elapsed();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(took < timeout + Duration::from_secs(1), "took {took:?}");
    }
    proxy.set(Mode::Open);
    let up = Instant::now();
    while get(&app, &key).await != StatusCode::OK {
        assert!(
            up.elapsed() < Duration::from_secs(5),
            "not recovered within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Instance B reaches the store (and its change feed) through a proxy that is cut
/// while A revokes a key B has cached: B must not answer from memory what it can no
/// longer hear about — 503 while cut, 401 once back.
async fn a_key_revoked_while_the_feed_is_cut_is_never_served_from_memory<B: Backend>(url: &str) {
    let a = instance::<B>(url).await;
    let (proxy, store_b) = behind_proxy::<B>(url, Duration::from_millis(500)).await;
    let b = CachedKeyStore::new(store_b);
    let app_b = router(b.clone());
    let (key, record) = mint(&a).await;
    // Subscribed and cached on B.
    let started = Instant::now();
    while b.lookup_now(&record.prefix).is_none() {
        assert_eq!(get(&app_b, &key).await, StatusCode::OK);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "B never cached the key"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    proxy.set(Mode::Down);
    a.revoke(&record.id, SystemTime::now()).await.unwrap();
    let cut = Instant::now();
    while cut.elapsed() < Duration::from_secs(2) {
        let status = get(&app_b, &key).await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "served from memory while deaf"
        );
    }
    proxy.set(Mode::Open);
    let back = Instant::now();
    loop {
        let status = get(&app_b, &key).await;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "recovering");
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "not recovered within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The connections made so far go silent (half-open: no reset, no answer) while new
/// ones work: 503s, then working again within 5 s on fresh connections.
async fn silently_dead_connections_are_replaced_within_5s<B: Backend>(url: &str) {
    let (proxy, store) = behind_proxy::<B>(url, Duration::from_millis(500)).await;
    let (key, _) = mint(&store).await;
    let app = router(store);
    assert_eq!(get(&app, &key).await, StatusCode::OK);
    proxy.freeze_existing();
    let frozen = Instant::now();
    loop {
        let status = get(&app, &key).await;
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "a dead connection fails closed"
        );
        assert!(
            frozen.elapsed() < Duration::from_secs(5),
            "not recovered within 5 s"
        );
    }
    eprintln!(
        "{}: recovered from dead connections in {:?}",
        B::URL,
        frozen.elapsed()
    );
}

/// Finding (issue 16): a quota-store outage must not refuse valid keys. Two
/// instances share a key's 6/m through a store that is then cut, then frozen: the
/// first instance alone admits its share (3: it has seen the other) and answers 429
/// beyond it, never 503; once the store answers again, it admits the key's whole 6.
async fn a_stopped_or_paused_quota_store_falls_back_then_shares_again<B: Backend>(url: &str) {
    let timeout = Duration::from_millis(300);
    let (proxy, quotas) = behind_proxy::<B>(url, timeout).await;
    let keys = InMemoryKeyStore::new();
    let apps: Vec<axum::Router> = (0..2)
        .map(|_| {
            let auth = tower_api_key::Authenticator::builder(keys.clone())
                .rate_limit("6/m".parse::<tower_api_key::policy::RateLimit>().ok())
                .shared_rate_limits(quotas.clone())
                .build();
            axum::Router::new()
                .route("/api/account", axum::routing::get(|| async { "ok" }))
                .layer(ApiKeyLayer::new(auth))
        })
        .collect();
    // `requests` to the instances in turn (`step` 1) or to the first alone (`step` 0).
    let admitted = |key: ApiKey, step: usize| {
        let apps = apps.clone();
        async move {
            let mut statuses = Vec::new();
            for i in 0..10 {
                statuses.push(get(&apps[(i * step) % 2], &key).await);
            }
            for status in &statuses {
                assert!(
                    matches!(*status, StatusCode::OK | StatusCode::TOO_MANY_REQUESTS),
                    "only 200 or 429: {statuses:?}"
                );
            }
            statuses.iter().filter(|s| **s == StatusCode::OK).count()
        }
    };
    // Shared: both lease on one key (slices of one), and hear of each other.
    assert_eq!(admitted(mint(&keys).await.0, 1).await, 6);
    for mode in [Mode::Down, Mode::Paused] {
        proxy.set(mode);
        assert_eq!(
            admitted(mint(&keys).await.0, 0).await,
            3,
            "{}: the share",
            B::URL
        );
        proxy.set(Mode::Open);
        let back = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(600)).await;
            if admitted(mint(&keys).await.0, 0).await == 6 {
                break;
            }
            assert!(back.elapsed() < Duration::from_secs(10), "not shared again");
        }
    }
}
