//! Rate limits shared by many instances (`shared_rate_limits`): several axum Routers,
//! each with its own layer as separate instances have, over one store — the
//! in-memory store (instances in one process), Redis and PostgreSQL
//! (`eval "$(bash scripts/services.sh)"`).

mod common;

use std::time::Duration;

use axum::{routing::get, Router};
use common::wrong_secret;
use http::StatusCode;
use tower_api_key::{
    auth::Authenticator,
    policy::RateLimit,
    store::{
        InsertRule, KeyStore, Lease, LeaseRequest, PostgresKeyStore, QuotaStore, RedisKeyStore,
        StoreError,
    },
    ApiKey, ApiKeyLayer, InMemoryKeyStore, KeyMode, KeyRecord, Principal,
};

/// `n` instances of one app over `store`, which also keeps the quotas: every key
/// limited to `rate` unless it has its own, clients to `failures` failed attempts.
fn instances<S>(store: &S, n: usize, rate: Option<&str>, failures: &str) -> Vec<Router>
where
    S: KeyStore + QuotaStore + Clone,
{
    (0..n)
        .map(|_| {
            let auth = Authenticator::builder(store.clone())
                .rate_limit(rate.map(|r| r.parse::<RateLimit>().unwrap()))
                .failed_attempts_limit(failures.parse::<RateLimit>().unwrap())
                .rate_limit_headers(true)
                .shared_rate_limits(store.clone())
                .build();
            Router::new()
                .route(
                    "/api/account",
                    get(|p: Principal| async move { p.owner().to_owned() }),
                )
                .layer(ApiKeyLayer::new(auth))
        })
        .collect()
}

async fn key(store: &impl KeyStore, rate: Option<&str>) -> String {
    let key = ApiKey::generate(KeyMode::Live).unwrap();
    let record = KeyRecord::builder(&key, "acct_shared")
        .rate_limit(rate.map(|r| r.parse::<RateLimit>().unwrap()))
        .build();
    store
        .insert(record, InsertRule::Unconditional)
        .await
        .unwrap();
    key.expose_secret().to_owned()
}

use common::get_account_from as call;

/// A key limited to 30 a minute, called 120 times round-robin over four instances:
/// at most 30 admitted in all (one more if a token refilled meanwhile), not 30 on
/// each; the rest 429 with `Retry-After`; the headers tell the key's quota. (At its
/// limit each instance waits for a slice to refill — one token each here — so up to
/// three of the 30 may still wait in the store when the burst ends.)
async fn four_instances_admit_a_keys_limit_once<S>(store: S)
where
    S: KeyStore + QuotaStore + Clone,
{
    let routers = instances(&store, 4, None, "1000/m");
    let limited = key(&store, Some("30/m")).await;
    let mut admitted = 0;
    let mut lowest_remaining = u32::MAX;
    for i in 0..120 {
        let reply = call(&routers[i % 4], &limited, "192.0.2.1:1000").await;
        match reply.status {
            StatusCode::OK => {
                admitted += 1;
                let state = reply.header("ratelimit");
                let remaining: u32 = state
                    .split(";r=")
                    .nth(1)
                    .and_then(|rest| rest.split(';').next())
                    .and_then(|r| r.parse().ok())
                    .unwrap_or_else(|| panic!("RateLimit header: {state}"));
                lowest_remaining = lowest_remaining.min(remaining);
            }
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(!reply.header("retry-after").is_empty());
                assert_eq!(
                    reply.envelope().error.code,
                    tower_api_key::ErrorCode::RateLimited
                );
            }
            other => panic!("unexpected {other}: {}", reply.body),
        }
    }
    assert!(
        (27..=31).contains(&admitted),
        "four instances together admitted {admitted} of a 30/m key"
    );
    assert!(
        lowest_remaining <= 3,
        "the headers tell the key's remaining quota, not an instance's: {lowest_remaining}"
    );
    // Another key is untouched.
    let other = key(&store, Some("30/m")).await;
    assert_eq!(
        call(&routers[1], &other, "192.0.2.1:1000").await.status,
        StatusCode::OK
    );
}

/// A client guessing over four instances gets one budget in all: after 12 failures
/// (its budget), every instance answers 429; its valid key still works.
async fn a_clients_failed_attempts_are_counted_across_instances<S>(store: S)
where
    S: KeyStore + QuotaStore + Clone,
{
    let routers = instances(&store, 4, None, "12/m");
    let valid = key(&store, None).await;
    let guess = wrong_secret(&valid);
    // An address of its own, so runs over one server do not share a budget.
    let last = rand_byte() % 200 + 20;
    let attacker = format!("198.51.100.{last}:4000");
    let mut refused = Vec::new();
    for i in 0..24 {
        refused.push(call(&routers[i % 4], &guess, &attacker).await.status);
    }
    let unauthorized = refused
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    assert!(
        (12..=13).contains(&unauthorized),
        "the budget of 12 held across instances: {refused:?}"
    );
    assert_eq!(refused[23], StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        call(&routers[2], &valid, &attacker).await.status,
        StatusCode::OK
    );
}

fn rand_byte() -> u8 {
    ApiKey::generate(KeyMode::Test)
        .unwrap()
        .prefix()
        .as_str()
        .as_bytes()[23]
}

/// The quota store failing makes no valid key fail: each instance admits its share
/// (here the whole limit: it never saw another instance) and answers 429 beyond it.
#[tokio::test]
async fn a_failing_quota_store_falls_back_instead_of_refusing_valid_keys() {
    struct Down;
    #[async_trait::async_trait]
    impl QuotaStore for Down {
        async fn lease(&self, _: &LeaseRequest<'_>) -> Result<Lease, StoreError> {
            Err(StoreError::Timeout)
        }
    }
    let store = InMemoryKeyStore::new();
    let auth = Authenticator::builder(store.clone())
        .rate_limit("5/m".parse::<RateLimit>().ok())
        .shared_rate_limits(Down)
        .build();
    let router = Router::new()
        .route("/api/account", get(|| async { "ok" }))
        .layer(ApiKeyLayer::new(auth));
    let valid = key(&store, None).await;
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(call(&router, &valid, "192.0.2.7:1").await.status);
    }
    assert_eq!(statuses[..5], [StatusCode::OK; 5], "{statuses:?}");
    assert_eq!(statuses[5..], [StatusCode::TOO_MANY_REQUESTS; 2]);
}

/// Ends the test when its server is not there (said in the output; fails in CI).
async fn redis() -> Option<RedisKeyStore> {
    let url = common::server_url("TEST_REDIS_URL")?;
    Some(RedisKeyStore::connect(&url).await.expect("redis"))
}

async fn postgres() -> Option<PostgresKeyStore> {
    let url = common::server_url("TEST_POSTGRES_URL")?;
    let store = PostgresKeyStore::connect(&url).await.expect("postgres");
    store.migrate().await.expect("migrate");
    Some(store)
}

#[tokio::test]
async fn in_memory_four_instances_admit_a_keys_limit_once() {
    four_instances_admit_a_keys_limit_once(InMemoryKeyStore::new()).await;
}

#[tokio::test]
async fn in_memory_a_clients_failed_attempts_are_counted_across_instances() {
    a_clients_failed_attempts_are_counted_across_instances(InMemoryKeyStore::new()).await;
}

#[tokio::test]
async fn redis_four_instances_admit_a_keys_limit_once() {
    if let Some(store) = redis().await {
        four_instances_admit_a_keys_limit_once(store).await;
    }
}

#[tokio::test]
async fn redis_a_clients_failed_attempts_are_counted_across_instances() {
    if let Some(store) = redis().await {
        a_clients_failed_attempts_are_counted_across_instances(store).await;
    }
}

#[tokio::test]
async fn postgres_four_instances_admit_a_keys_limit_once() {
    if let Some(store) = postgres().await {
        four_instances_admit_a_keys_limit_once(store).await;
    }
}

#[tokio::test]
async fn postgres_a_clients_failed_attempts_are_counted_across_instances() {
    if let Some(store) = postgres().await {
        a_clients_failed_attempts_are_counted_across_instances(store).await;
    }
}

/// Slices cost few round trips: 400 requests of a key limited to 800 a minute over
/// two instances ask the store for slices of 100 — a handful of asks, not 400.
#[tokio::test]
async fn most_requests_spend_a_local_slice() {
    use std::sync::{
        atomic::{AtomicU32, Ordering::SeqCst},
        Arc,
    };
    #[derive(Clone, Default)]
    struct Counted(InMemoryKeyStore, Arc<AtomicU32>);
    #[async_trait::async_trait]
    impl QuotaStore for Counted {
        async fn lease(&self, request: &LeaseRequest<'_>) -> Result<Lease, StoreError> {
            self.1.fetch_add(1, SeqCst);
            self.0.lease(request).await
        }
    }
    let store = InMemoryKeyStore::new();
    let quotas = Counted(store.clone(), Arc::default());
    let routers: Vec<Router> = (0..2)
        .map(|_| {
            let auth = Authenticator::builder(store.clone())
                .rate_limit("800/m".parse::<RateLimit>().ok())
                .shared_rate_limits(quotas.clone())
                .build();
            Router::new()
                .route("/api/account", get(|| async { "ok" }))
                .layer(ApiKeyLayer::new(auth))
        })
        .collect();
    let valid = key(&store, None).await;
    for i in 0..400 {
        let reply = call(&routers[i % 2], &valid, "192.0.2.8:1").await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    let asks = quotas.1.load(SeqCst);
    assert!(asks <= 8, "{asks} store asks for 400 requests");
    tokio::time::sleep(Duration::ZERO).await;
}

/// Finding: a request waiting for its key's shared-limit lease was admitted even when
/// the key was revoked (and the revoke returned) during the wait. A key admitted
/// after a wait is now looked up again: refused.
#[tokio::test]
async fn a_key_revoked_while_its_lease_was_asked_for_is_refused() {
    use std::sync::Arc;
    use tokio::sync::Semaphore;

    /// Leases only once the test lets it.
    struct Gated(InMemoryKeyStore, Arc<Semaphore>);
    #[async_trait::async_trait]
    impl QuotaStore for Gated {
        async fn lease(&self, request: &LeaseRequest<'_>) -> Result<Lease, StoreError> {
            self.1.acquire().await.expect("gate").forget();
            self.0.lease(request).await
        }
    }
    let store = InMemoryKeyStore::new();
    let gate = Arc::new(Semaphore::new(0));
    // Slices of one: every request asks for its lease.
    let auth = Authenticator::builder(store.clone())
        .rate_limit("50/m".parse::<RateLimit>().ok())
        .shared_rate_limits(Gated(InMemoryKeyStore::new(), gate.clone()))
        .build();
    let router = Router::new()
        .route("/api/account", get(|| async { "ok" }))
        .layer(ApiKeyLayer::new(auth));
    let minted = ApiKey::generate(KeyMode::Live).unwrap();
    let record = KeyRecord::builder(&minted, "acct").build();
    let id = record.id.clone();
    store
        .insert(record, InsertRule::Unconditional)
        .await
        .unwrap();
    let key = minted.expose_secret().to_owned();
    // A first request: its lease granted at once; its last use noted (the next is
    // not due for a while, so nothing else looks the key up again).
    gate.add_permits(1);
    assert_eq!(
        call(&router, &key, "192.0.2.9:1").await.status,
        StatusCode::OK
    );
    let waiting = tokio::spawn(async move { call(&router, &key, "192.0.2.9:1").await.status });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiting.is_finished(), "the request waits for its lease");
    store
        .revoke(&id, std::time::SystemTime::now())
        .await
        .unwrap()
        .expect("revoked");
    gate.add_permits(1);
    assert_eq!(waiting.await.unwrap(), StatusCode::UNAUTHORIZED);
}
