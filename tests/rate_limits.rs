//! Per-key rate limits and the failed-attempts budget, through a real axum Router.

mod common;

use std::net::SocketAddr;

use axum::{routing::get, Router};
use common::{wrong_secret, Reply, TestStore};
use http::{Request, StatusCode};
use tower_api_key::{
    auth::{Authenticator, AuthenticatorBuilder},
    policy::RateLimit,
    store::{InsertRule, KeyStore},
    ApiKey, ApiKeyLayer, InMemoryKeyStore, KeyMode, KeyRecord, Principal,
};

struct App {
    router: Router,
    store: InMemoryKeyStore,
}

type Configure = fn(AuthenticatorBuilder) -> AuthenticatorBuilder;

fn app(configure: impl FnOnce(AuthenticatorBuilder) -> AuthenticatorBuilder) -> App {
    app_over(TestStore::default(), configure)
}

/// The app over a store that may make the layer wait.
fn app_over(
    test_store: TestStore,
    configure: impl FnOnce(AuthenticatorBuilder) -> AuthenticatorBuilder,
) -> App {
    let store = test_store.inner.clone();
    let auth = configure(Authenticator::builder(test_store)).build();
    let router = Router::new()
        .route(
            "/api/account",
            get(|p: Principal| async move { p.owner().to_owned() }),
        )
        .layer(ApiKeyLayer::new(auth));
    App { router, store }
}

impl App {
    async fn key(&self, rate: Option<RateLimit>) -> String {
        let key = ApiKey::generate(KeyMode::Live).unwrap();
        let record = KeyRecord::builder(&key, "o").rate_limit(rate).build();
        self.store
            .insert(record, InsertRule::Unconditional)
            .await
            .unwrap();
        key.expose_secret().to_owned()
    }

    async fn call(&self, key: &str, from: &str) -> Reply {
        common::get_account_from(&self.router, key, from).await
    }
}

const CLIENT: &str = "192.0.2.10:5000";

#[tokio::test]
async fn over_the_limit_is_429_with_retry_after_and_other_keys_are_untouched() {
    let app = app(|b| b.rate_limit("5/10s".parse::<RateLimit>().unwrap()));
    let a = app.key(None).await;
    let b = app.key(None).await;
    for _ in 0..5 {
        assert_eq!(app.call(&a, CLIENT).await.status, StatusCode::OK);
    }
    let reply = app.call(&a, CLIENT).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        reply.envelope().error.code,
        tower_api_key::ErrorCode::RateLimited
    );
    let retry: u64 = reply.header("retry-after").parse().unwrap();
    assert!(
        (1..=2).contains(&retry),
        "one request refills every 2 s: {retry}"
    );
    assert_eq!(reply.header("cache-control"), "no-store");
    assert_eq!(app.call(&b, CLIENT).await.status, StatusCode::OK);
}

#[tokio::test]
async fn ietf_rate_limit_headers_when_switched_on() {
    let with_headers: Configure = |b| {
        b.rate_limit("3/m".parse::<RateLimit>().unwrap())
            .rate_limit_headers(true)
    };
    // The immediate path (in-memory store) and the waiting one (a store to await).
    for app in [
        app(with_headers),
        app_over(TestStore::async_lookups(), with_headers),
    ] {
        let key = app.key(None).await;
        for remaining in [2, 1, 0] {
            let reply = app.call(&key, CLIENT).await;
            assert_eq!(reply.status, StatusCode::OK);
            assert_eq!(reply.header("ratelimit-policy"), r#""key";q=3;w=60"#);
            let reset = 20 * (3 - remaining);
            assert_eq!(
                reply.header("ratelimit"),
                format!(r#""key";r={remaining};t={reset}"#)
            );
        }
        let reply = app.call(&key, CLIENT).await;
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(reply.header("ratelimit"), r#""key";r=0;t=60"#);
        assert_eq!(reply.header("ratelimit-policy"), r#""key";q=3;w=60"#);
        assert!(!reply.header("retry-after").is_empty());

        // A key's own rate is the one advertised; a key without one, none at all
        // (here every key has the default).
        let own = app.key(Some("100/10s".parse().unwrap())).await;
        let reply = app.call(&own, CLIENT).await;
        assert_eq!(reply.header("ratelimit-policy"), r#""key";q=100;w=10"#);
        assert_eq!(reply.header("ratelimit"), r#""key";r=99;t=1"#);
    }

    // A wrong key is not a key's request: no quota is advertised.
    let plain = app(with_headers);
    let key = plain.key(None).await;
    let reply = plain.call(&wrong_secret(&key), CLIENT).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.headers.get("ratelimit").is_none());
}

#[tokio::test]
async fn no_rate_limit_headers_by_default_or_without_a_rate() {
    let off = app(|b| b.rate_limit("1/m".parse::<RateLimit>().unwrap()));
    let key = off.key(None).await;
    let reply = off.call(&key, CLIENT).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.headers.get("ratelimit").is_none());
    let reply = off.call(&key, CLIENT).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(reply.headers.get("ratelimit").is_none());

    let unlimited = app(|b| b.rate_limit_headers(true));
    let key = unlimited.key(None).await;
    let reply = unlimited.call(&key, CLIENT).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.headers.get("ratelimit").is_none());
    assert!(reply.headers.get("ratelimit-policy").is_none());
}

#[tokio::test]
async fn a_key_s_own_rate_overrides_the_default() {
    let app = app(|b| b.rate_limit("1000/s".parse::<RateLimit>().unwrap()));
    let strict = app.key(Some("2/m".parse().unwrap())).await;
    let loose = app.key(None).await;
    assert_eq!(app.call(&strict, CLIENT).await.status, StatusCode::OK);
    assert_eq!(app.call(&strict, CLIENT).await.status, StatusCode::OK);
    let reply = app.call(&strict, CLIENT).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = reply.header("retry-after").parse().unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    for _ in 0..20 {
        assert_eq!(app.call(&loose, CLIENT).await.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn guesses_under_a_prefix_never_use_up_that_key_s_quota() {
    let app = app(|b| {
        b.rate_limit("3/m".parse::<RateLimit>().unwrap())
            .failed_attempts_limit(None)
    });
    let victim = app.key(None).await;
    for _ in 0..200 {
        let reply = app.call(&wrong_secret(&victim), "198.51.100.1:1").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    for _ in 0..3 {
        assert_eq!(app.call(&victim, CLIENT).await.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn a_client_over_its_failure_budget_gets_429s_for_its_failures_only() {
    let app = app(|b| b.failed_attempts_limit("10/m".parse::<RateLimit>().unwrap()));
    let key = app.key(None).await;
    let attacker = "203.0.113.66:4000";
    let mut statuses = Vec::new();
    for _ in 0..15 {
        statuses.push(app.call(&wrong_secret(&key), attacker).await.status);
    }
    assert!(
        statuses[..10]
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    assert!(
        statuses[10..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let reply = app.call(&wrong_secret(&key), attacker).await;
    assert!(reply.header("retry-after").parse::<u64>().unwrap() >= 1);
    assert!(reply.body.contains(r#""code":"rate_limited""#));
    // Valid keys are untouched: from the same address, and from any other.
    assert_eq!(app.call(&key, attacker).await.status, StatusCode::OK);
    assert_eq!(app.call(&key, CLIENT).await.status, StatusCode::OK);
}

#[tokio::test]
async fn limits_are_off_by_default_for_keys() {
    let app = app(|b| b);
    let key = app.key(None).await;
    for _ in 0..500 {
        assert_eq!(app.call(&key, CLIENT).await.status, StatusCode::OK);
    }
}

/// Resident memory of this process, in bytes (Linux).
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// A storm of 1,000,000 wrong keys from 65,536 client addresses: limiter state is
/// kept only for verified keys and recently failing addresses, so memory stays flat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_a_million_wrong_keys_keeps_memory_bounded() {
    let store = InMemoryKeyStore::new();
    let auth = Authenticator::builder(store.clone())
        .rate_limit("100/s".parse::<RateLimit>().unwrap())
        .build();
    let valid = ApiKey::generate(KeyMode::Live).unwrap();
    store
        .insert(
            KeyRecord::builder(&valid, "o").build(),
            InsertRule::Unconditional,
        )
        .await
        .unwrap();
    let request = |key: &str, i: u32| {
        let mut request = Request::get("/api/account")
            .header("authorization", format!("Bearer {key}"))
            .body(())
            .unwrap();
        let ip = std::net::Ipv4Addr::from(0x0a00_0000 | (i % 65_536));
        let peer = tower_api_key::policy::PeerAddr(SocketAddr::from((ip, 4000)));
        request.extensions_mut().insert(peer);
        request.into_parts().0
    };
    // Warm up allocator and limiter maps, then measure.
    for i in 0..10_000 {
        let _ = auth
            .authenticate(&request(&format!("pk_live_{i:064x}"), i))
            .await;
    }
    let before = rss();
    let mut refused = 0u32;
    for i in 0..1_000_000u32 {
        let key = format!("pk_live_{:064x}", u64::from(i) * 7919 + 1);
        if auth.authenticate(&request(&key, i)).await.is_err() {
            refused += 1;
        }
    }
    let after = rss();
    assert_eq!(refused, 1_000_000);
    let growth = after.saturating_sub(before);
    eprintln!(
        "RSS before {} KiB, after {} KiB",
        before / 1024,
        after / 1024
    );
    assert!(
        growth < 50 * 1024 * 1024,
        "grew by {} MB",
        growth / (1024 * 1024)
    );
    // The valid key still works, from a fresh address.
    assert!(auth
        .authenticate(&request(valid.expose_secret(), 70_000))
        .await
        .is_ok());
}
