//! Per-key usage through the layer, as an owner reads it: every outcome counted
//! against its key (and nothing against any key for unknown keys), counts written in
//! one batch per interval, nothing lost to a failed write, instances summed.

mod common;

use std::time::{Duration, SystemTime};

use axum::{routing::get, Router};
use http::{Method, StatusCode};
use tower::ServiceExt;
use tower_api_key::{
    manage::{KeyUsage, Keys, UsageQuery, UsageStep},
    policy::Restrictions,
    store::{KeyStore, LastUse, UsageCounts, UsageOutcome},
    ApiKey, ApiKeyLayer, Authenticator, InMemoryKeyStore, KeyMode, KeyRecord, Principal,
    RequireScopeLayer,
};

use common::{get_account_from, insert, request, wrong_secret, TestStore};

const OWNER: &str = "acct_usage";

/// `GET /api/account` (any key) and `GET /api/admin` (scope `admin`) behind the layer.
fn api(auth: Authenticator) -> Router {
    Router::new()
        .route(
            "/api/account",
            get(|p: Principal| async move { p.owner().to_owned() }),
        )
        .route(
            "/api/admin",
            get(|| async { "admin" }).layer(RequireScopeLayer::new("admin")),
        )
        .layer(ApiKeyLayer::new(auth))
}

async fn status(router: &Router, uri: &str, key: &str) -> StatusCode {
    let mut request = request(Method::GET, uri, Some(key));
    let addr: std::net::SocketAddr = "127.0.0.1:40000".parse().expect("address");
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(addr));
    router
        .clone()
        .oneshot(request)
        .await
        .expect("infallible")
        .status()
}

/// A key of `OWNER` stored as `build` makes its record.
async fn key_with(
    store: &InMemoryKeyStore,
    build: impl FnOnce(tower_api_key::store::KeyRecordBuilder) -> tower_api_key::store::KeyRecordBuilder,
) -> (ApiKey, KeyRecord) {
    let key = ApiKey::generate(KeyMode::Live).expect("mint");
    let record = build(KeyRecord::builder(&key, OWNER)).build();
    insert(store, record.clone()).await;
    (key, record)
}

async fn usage_of(keys: &Keys, record: &KeyRecord) -> KeyUsage {
    keys.usage(OWNER, &record.id, UsageQuery::default())
        .await
        .expect("usage")
}

/// The key's counts as the store holds them (nothing pending added).
async fn stored(store: &dyn KeyStore, record: &KeyRecord) -> UsageCounts {
    let now = SystemTime::now();
    let mut total = UsageCounts::default();
    for bucket in store
        .usage(
            &record.id,
            now - Duration::from_secs(7200),
            now + Duration::from_secs(3600),
        )
        .await
        .expect("usage")
    {
        total.add_all(&bucket.counts);
    }
    total
}

#[tokio::test]
async fn every_outcome_is_counted_against_its_key_and_unknown_keys_against_none() {
    let store = InMemoryKeyStore::new();
    let auth = Authenticator::new(store.clone());
    let keys = Keys::new(store.clone()).last_use(auth.last_use().clone());
    let router = api(auth.clone());
    let past = SystemTime::now() - Duration::from_secs(60);
    let (ok, ok_record) = key_with(&store, |r| r).await;
    let (revoked, revoked_record) = key_with(&store, |r| r.revoked_at(Some(past))).await;
    let (expired, expired_record) = key_with(&store, |r| r.expires_at(Some(past))).await;
    let (restricted, restricted_record) = key_with(&store, |r| {
        r.restrictions(Restrictions::default().allow_ip("203.0.113.0/24".parse().expect("cidr")))
    })
    .await;
    let (limited, limited_record) = key_with(&store, |r| {
        r.rate_limit(
            "1/m"
                .parse::<tower_api_key::policy::RateLimit>()
                .expect("rate"),
        )
    })
    .await;

    for _ in 0..3 {
        assert_eq!(
            status(&router, "/api/account", ok.expose_secret()).await,
            StatusCode::OK
        );
    }
    assert_eq!(
        status(&router, "/api/admin", ok.expose_secret()).await,
        StatusCode::FORBIDDEN
    );
    // Guesses: an unknown key, and the right prefix with a wrong secret. Not the key's.
    let unknown = ApiKey::generate(KeyMode::Live).expect("mint");
    let guess = wrong_secret(ok.expose_secret());
    for key in [unknown.expose_secret(), guess.as_str()] {
        assert_eq!(
            status(&router, "/api/account", key).await,
            StatusCode::UNAUTHORIZED
        );
    }
    for _ in 0..2 {
        assert_eq!(
            status(&router, "/api/account", revoked.expose_secret()).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        status(&router, "/api/account", expired.expose_secret()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(&router, "/api/account", restricted.expose_secret()).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(&router, "/api/account", limited.expose_secret()).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&router, "/api/account", limited.expose_secret()).await,
        StatusCode::TOO_MANY_REQUESTS
    );

    let expected = [
        (
            &ok_record,
            UsageCounts::default()
                .with(UsageOutcome::Admitted, 4)
                .with(UsageOutcome::InsufficientScope, 1),
        ),
        (
            &revoked_record,
            UsageCounts::default().with(UsageOutcome::Revoked, 2),
        ),
        (
            &expired_record,
            UsageCounts::default().with(UsageOutcome::Expired, 1),
        ),
        (
            &restricted_record,
            UsageCounts::default().with(UsageOutcome::Restricted, 1),
        ),
        (
            &limited_record,
            UsageCounts::default()
                .with(UsageOutcome::Admitted, 1)
                .with(UsageOutcome::RateLimited, 1),
        ),
    ];
    // At once, before anything is written: the views add what is pending here.
    for (record, counts) in expected {
        let usage = usage_of(&keys, record).await;
        assert_eq!(usage.total, counts, "{}", record.name);
        assert_eq!(usage.buckets.len(), 24, "the last 24 hours, by hour");
        assert_eq!(
            usage.buckets.last().expect("a bucket").counts,
            counts,
            "this hour"
        );
    }
    let ok_usage = usage_of(&keys, &ok_record).await.total;
    assert_eq!((ok_usage.admitted(), ok_usage.refused()), (3, 1));

    // Written in one batch: the store has them, and the views do not count them twice.
    assert_eq!(stored(&store, &ok_record).await, UsageCounts::default());
    auth.flush().await.expect("flush");
    for (record, counts) in expected {
        assert_eq!(
            stored(&store, record).await,
            counts,
            "stored: {}",
            record.name
        );
        assert_eq!(
            usage_of(&keys, record).await.total,
            counts,
            "no double count"
        );
    }
}

#[tokio::test]
async fn counts_reach_the_store_in_one_batch_per_interval_not_per_request() {
    let store = TestStore::default();
    let auth = Authenticator::builder(store.clone())
        .last_use(LastUse::new(Duration::from_millis(300)))
        .build();
    let router = common::account_api(auth.clone());
    let (ok, record) = key_with(&store.inner, |r| r).await;
    for _ in 0..50 {
        let reply = get_account_from(&router, ok.expose_secret(), "127.0.0.1:1").await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    assert_eq!(store.usage_writes(), 0, "no store write per request");
    tokio::time::sleep(Duration::from_millis(350)).await;
    // The first request past the interval carries the batch (its own count included).
    get_account_from(&router, ok.expose_secret(), "127.0.0.1:1").await;
    get_account_from(&router, ok.expose_secret(), "127.0.0.1:1").await;
    assert_eq!(store.usage_writes(), 1, "one batch for the interval");
    assert_eq!(
        stored(&store.inner, &record).await,
        UsageCounts::default().with(UsageOutcome::Admitted, 51)
    );
}

#[tokio::test]
async fn a_failed_usage_write_loses_nothing() {
    let store = TestStore {
        fail_usage: true,
        ..TestStore::default()
    };
    let auth = Authenticator::new(store.clone());
    let keys = Keys::new(store.clone()).last_use(auth.last_use().clone());
    let router = common::account_api(auth.clone());
    let (ok, record) = key_with(&store.inner, |r| r).await;
    for _ in 0..5 {
        get_account_from(&router, ok.expose_secret(), "127.0.0.1:1").await;
    }
    assert!(auth.flush().await.is_err(), "the store refused the batch");
    assert!(auth.flush().await.is_err(), "and again");
    let five = UsageCounts::default().with(UsageOutcome::Admitted, 5);
    assert_eq!(
        usage_of(&keys, &record).await.total,
        five,
        "still pending, still shown"
    );
    // Written once the store takes it: exactly once.
    let written = auth
        .last_use()
        .flush_usage(&store.inner)
        .await
        .expect("flush");
    assert_eq!(written, 1, "one key-hour");
    assert_eq!(stored(&store.inner, &record).await, five);
    assert_eq!(
        auth.last_use()
            .flush_usage(&store.inner)
            .await
            .expect("flush"),
        0
    );
}

#[tokio::test]
async fn instances_counts_sum_in_the_store() {
    let store = InMemoryKeyStore::new();
    let (ok, record) = key_with(&store, |r| r).await;
    let instances: Vec<Authenticator> = (0..2).map(|_| Authenticator::new(store.clone())).collect();
    for (n, auth) in instances.iter().enumerate() {
        let router = common::account_api(auth.clone());
        for _ in 0..=n {
            get_account_from(&router, ok.expose_secret(), "127.0.0.1:1").await;
        }
        auth.flush().await.expect("flush");
    }
    assert_eq!(
        stored(&store, &record).await,
        UsageCounts::default().with(UsageOutcome::Admitted, 3)
    );
}

/// A durable store hands the layer a fresh record per request (nothing kept between
/// requests): a scope refusal later in the request is still counted.
#[tokio::test]
async fn a_durable_store_counts_scope_refusals_too() {
    let file = std::env::temp_dir().join(format!(
        "tower-api-key-usage-{}.db",
        ApiKey::generate(KeyMode::Live).expect("mint").prefix()
    ));
    let store =
        tower_api_key::store::SqliteKeyStore::connect(&format!("sqlite://{}", file.display()))
            .await
            .expect("sqlite");
    store.migrate().await.expect("migrate");
    let key = ApiKey::generate(KeyMode::Live).expect("mint");
    let record = KeyRecord::builder(&key, OWNER).build();
    store
        .insert(
            record.clone(),
            tower_api_key::store::InsertRule::Unconditional,
        )
        .await
        .expect("insert");
    let auth = Authenticator::new(store.clone());
    let router = api(auth.clone());
    assert_eq!(
        status(&router, "/api/account", key.expose_secret()).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&router, "/api/admin", key.expose_secret()).await,
        StatusCode::FORBIDDEN
    );
    auth.flush().await.expect("flush");
    let counts = stored(&store, &record).await;
    assert_eq!(
        (
            counts.admitted(),
            counts.get(UsageOutcome::InsufficientScope)
        ),
        (1, 1)
    );
    let _ = std::fs::remove_file(&file);
}

#[tokio::test]
async fn usage_reads_by_day_and_refuses_other_owners_and_bad_ranges() {
    let store = InMemoryKeyStore::new();
    let auth = Authenticator::new(store.clone());
    let keys = Keys::new(store.clone()).last_use(auth.last_use().clone());
    let (ok, record) = key_with(&store, |r| r).await;
    let router = common::account_api(auth.clone());
    get_account_from(&router, ok.expose_secret(), "127.0.0.1:1").await;
    let now = SystemTime::now();
    let month = UsageQuery::last(Duration::from_secs(30 * 86_400), UsageStep::Day, now);
    let usage = keys.usage(OWNER, &record.id, month).await.expect("usage");
    assert_eq!(usage.buckets.len(), 30, "30 days, today's included");
    assert_eq!(usage.total.admitted(), 1);
    assert_eq!(usage.buckets.last().expect("today").counts.admitted(), 1);
    let json = serde_json::to_value(&usage).expect("json");
    assert_eq!(json["step"], "day");
    assert_eq!(json["total"]["admitted"], 1);
    assert_eq!(json["buckets"][29]["admitted"], 1);

    let other = keys
        .usage("someone_else", &record.id, UsageQuery::default())
        .await;
    assert!(matches!(
        other,
        Err(tower_api_key::manage::ManageError::NotFound)
    ));
    let backwards = UsageQuery {
        from: now,
        to: now - Duration::from_secs(7200),
        step: UsageStep::Hour,
    };
    let refused = keys.usage(OWNER, &record.id, backwards).await;
    assert!(matches!(
        refused,
        Err(tower_api_key::manage::ManageError::Invalid(_))
    ));
    let too_long = UsageQuery::last(Duration::from_secs(3 * 365 * 86_400), UsageStep::Day, now);
    let refused = keys.usage(OWNER, &record.id, too_long).await;
    assert!(matches!(
        refused,
        Err(tower_api_key::manage::ManageError::Invalid(_))
    ));
}
