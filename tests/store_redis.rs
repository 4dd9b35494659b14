//! The Redis store: the conformance suite, the change feed between two instances, and
//! failures (no server, a hung server). Needs `TEST_REDIS_URL`
//! (`eval "$(scripts/services.sh)"`); the failure tests start their own
//! `redis-server`.
#![cfg(feature = "redis")]

mod common;

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    sync::{Arc, Weak},
    time::{Duration, Instant, SystemTime},
};

use tokio::sync::mpsc;
use tower_api_key::{
    auth::Authenticator,
    error::AuthErrorKind,
    key::{ApiKey, KeyMode},
    store::{
        Change, ChangeListener, InMemoryKeyStore, InsertRule, KeyRecord, KeyStore, LeaseRequest,
        QuotaBucket, QuotaStore, RedisKeyStore, StoreError, Watching,
    },
};

/// The test server's store in a namespace of its own (the usage retention a check
/// sets holds for a whole namespace, and for good), or `None` (said in the output)
/// when there is none.
async fn test_store() -> Option<RedisKeyStore> {
    match common::server_url("TEST_REDIS_URL") {
        Some(url) => Some(store_at(&url, &fresh_namespace()).await),
        None => None,
    }
}

tower_api_key::key_store_conformance!(redis, test_store());
tower_api_key::quota_store_conformance!(redis_quotas, test_store());

/// Two clients on one namespace, as two instances: usage adds from both all land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_adds_from_two_clients_all_land() {
    let Some(url) = common::server_url("TEST_REDIS_URL") else {
        return;
    };
    let namespace = fresh_namespace();
    let (a, b) = (
        store_at(&url, &namespace).await,
        store_at(&url, &namespace).await,
    );
    tower_api_key::store::conformance::usage_adds_from_two_handles_all_land(a, b).await;
}

/// A namespace no other test (or earlier run) uses.
fn fresh_namespace() -> String {
    let key = ApiKey::generate(KeyMode::Test).expect("OS random source");
    format!("tower-api-key-test:{}", &key.prefix().as_str()[8..])
}

fn new_record(owner: &str) -> KeyRecord {
    KeyRecord::builder(&ApiKey::generate(KeyMode::Live).expect("mint"), owner).build()
}

async fn store_at(url: &str, namespace: &str) -> RedisKeyStore {
    RedisKeyStore::builder(url)
        .namespace(namespace)
        .build()
        .await
        .expect("build")
}

/// A plain connection to look at what the store wrote.
async fn raw(url: &str) -> ::redis::aio::MultiplexedConnection {
    ::redis::Client::open(url)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}

/// Hears changes on a channel the test reads.
struct Forward(mpsc::UnboundedSender<Change>);

impl ChangeListener for Forward {
    fn changed(&self, change: Change) {
        let _ = self.0.send(change);
    }
}

fn listen(store: &RedisKeyStore) -> (Arc<Forward>, mpsc::UnboundedReceiver<Change>) {
    let (sender, changes) = mpsc::unbounded_channel();
    let listener = Arc::new(Forward(sender));
    let weak: Weak<dyn ChangeListener> = Arc::downgrade(&listener) as _;
    assert_eq!(store.watch(weak), Watching::Started);
    (listener, changes)
}

/// The next change, within `limit`.
async fn next(changes: &mut mpsc::UnboundedReceiver<Change>, limit: Duration) -> Change {
    tokio::time::timeout(limit, changes.recv())
        .await
        .unwrap_or_else(|_| panic!("no change within {limit:?}"))
        .expect("feed open")
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_is_idempotent_and_checks_the_layout() {
    let Some(url) = common::server_url("TEST_REDIS_URL") else {
        return;
    };
    let namespace = fresh_namespace();
    let store = store_at(&url, &namespace).await;
    store.migrate().await.expect("first migrate");
    store.migrate().await.expect("second migrate");
    store_at(&url, &namespace)
        .await
        .migrate()
        .await
        .expect("another instance");
    let mut conn = raw(&url).await;
    let version: String = ::redis::cmd("GET")
        .arg(format!("{namespace}:schema"))
        .query_async(&mut conn)
        .await
        .expect("get");
    assert_eq!(version, "1");

    let other = fresh_namespace();
    let _: () = ::redis::cmd("SET")
        .arg(format!("{other}:schema"))
        .arg("99")
        .query_async(&mut conn)
        .await
        .expect("set");
    let refused = store_at(&url, &other).await.migrate().await;
    assert!(
        matches!(refused, Err(StoreError::Backend(_))),
        "an unknown layout version must be refused, got {refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn records_are_stored_as_columns_and_corruption_is_an_error() {
    let Some(url) = common::server_url("TEST_REDIS_URL") else {
        return;
    };
    let namespace = fresh_namespace();
    let store = store_at(&url, &namespace).await;
    let key = ApiKey::generate(KeyMode::Live).expect("mint");
    let at = SystemTime::UNIX_EPOCH + Duration::new(1_800_000_000, 123_456_789);
    let record = KeyRecord::builder(&key, "acct").created_at(at).build();
    store
        .insert(record.clone(), InsertRule::Unconditional)
        .await
        .expect("insert");

    let mut conn = raw(&url).await;
    let hash_key = format!("{namespace}:key:{}", key.prefix());
    let fields: std::collections::HashMap<String, String> = ::redis::cmd("HGETALL")
        .arg(&hash_key)
        .query_async(&mut conn)
        .await
        .expect("hgetall");
    assert_eq!(fields["hash"], key.hash().to_hex(), "the hash, as hex");
    assert_eq!(
        fields["created_at"], "1800000000123456789",
        "exact nanoseconds"
    );
    assert!(
        !fields.contains_key("revoked_at"),
        "unset fields are absent"
    );
    let secret = &key.expose_secret()[24..];
    assert!(
        fields.values().all(|value| !value.contains(secret)),
        "no secret is stored"
    );

    assert_eq!(fields["metadata"], "{}", "metadata is JSON");

    // A record an earlier version wrote has no metadata field: it reads as none, and
    // takes some.
    let _: () = ::redis::cmd("HDEL")
        .arg(&hash_key)
        .arg("metadata")
        .query_async(&mut conn)
        .await
        .expect("hdel");
    let found = store.find_by_prefix(&key.prefix()).await.expect("find");
    assert_eq!(
        found.as_deref(),
        Some(&record),
        "read back without metadata"
    );
    store
        .set_metadata(&record.id, "hook.webhook.error", Some("down"))
        .await
        .expect("set_metadata");
    let metadata: String = ::redis::cmd("HGET")
        .arg(&hash_key)
        .arg("metadata")
        .query_async(&mut conn)
        .await
        .expect("hget");
    assert_eq!(metadata, r#"{"hook.webhook.error":"down"}"#);

    let _: () = ::redis::cmd("HSET")
        .arg(&hash_key)
        .arg("created_at")
        .arg("yesterday")
        .query_async(&mut conn)
        .await
        .expect("hset");
    let found = store.find_by_prefix(&key.prefix()).await;
    assert!(
        matches!(found, Err(StoreError::Backend(_))),
        "a corrupt record is a backend error, got {found:?}"
    );
    let revoked = store.revoke(&record.id, at).await;
    assert!(
        matches!(revoked, Err(StoreError::Backend(_))),
        "scripts refuse an unreadable time too, got {revoked:?}"
    );
}

/// The scripts compare times exactly, also where doubles cannot tell them apart (1 ns
/// apart at 1.8e18 ns, around 2^53, before the epoch, near the end of i64).
#[tokio::test(flavor = "multi_thread")]
async fn scripts_compare_times_exactly() {
    let Some(url) = common::server_url("TEST_REDIS_URL") else {
        return;
    };
    let store = store_at(&url, &fresh_namespace()).await;
    let ascending: Vec<i64> = vec![
        i64::MIN + 1,
        -1_000_000_001,
        -1_000_000_000,
        -999_999_999,
        -1,
        0,
        1,
        999_999_999,
        1_000_000_000,
        (1 << 53) - 1,
        1 << 53,
        (1 << 53) + 1,
        1_800_000_000_123_456_788,
        1_800_000_000_123_456_789,
        i64::MAX - 1,
        i64::MAX,
    ];
    let time = |nanos: i64| {
        let magnitude = Duration::from_nanos(nanos.unsigned_abs());
        if nanos >= 0 {
            SystemTime::UNIX_EPOCH + magnitude
        } else {
            SystemTime::UNIX_EPOCH - magnitude
        }
    };
    for (i, &early) in ascending.iter().enumerate() {
        for &late in &ascending[i + 1..] {
            for order in [[early, late], [late, early]] {
                let record = new_record("times");
                store
                    .insert(record.clone(), InsertRule::Unconditional)
                    .await
                    .expect("insert");
                let mut stored = None;
                for nanos in order {
                    store
                        .record_last_use(&record.id, time(nanos))
                        .await
                        .expect("last use");
                    stored = store.revoke(&record.id, time(nanos)).await.expect("revoke");
                }
                let stored = stored.expect("found");
                assert_eq!(
                    stored.last_used_at,
                    Some(time(late)),
                    "last use of {order:?} keeps the later"
                );
                assert_eq!(
                    stored.revoked_at,
                    Some(time(early)),
                    "revocations at {order:?} keep the earlier"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_reach_another_instance() {
    let Some(url) = common::server_url("TEST_REDIS_URL") else {
        return;
    };
    const SOON: Duration = Duration::from_millis(100);
    let namespace = fresh_namespace();
    let a = store_at(&url, &namespace).await;
    let b = store_at(&url, &namespace).await;
    let (_listener, mut changes) = listen(&b);
    assert_eq!(
        next(&mut changes, Duration::from_secs(5)).await,
        Change::All,
        "subscribing reports All"
    );

    let first = new_record("acct");
    a.insert(first.clone(), InsertRule::Unconditional)
        .await
        .expect("insert");
    assert_eq!(next(&mut changes, SOON).await, Change::Key(first.prefix));

    a.revoke(&first.id, SystemTime::now())
        .await
        .expect("revoke")
        .expect("found");
    assert_eq!(next(&mut changes, SOON).await, Change::Key(first.prefix));

    let second = new_record("acct");
    a.insert(second.clone(), InsertRule::Unconditional)
        .await
        .expect("insert");
    assert_eq!(next(&mut changes, SOON).await, Change::Key(second.prefix));
    let third = new_record("acct");
    a.insert(
        third.clone(),
        InsertRule::Replace {
            old: second.id.clone(),
            revoke_at: SystemTime::now(),
        },
    )
    .await
    .expect("rotate");
    assert_eq!(next(&mut changes, SOON).await, Change::Key(second.prefix));
    assert_eq!(next(&mut changes, SOON).await, Change::Key(third.prefix));

    // Writes that change nothing a lookup sees publish nothing.
    let refused = a
        .insert(new_record("acct"), InsertRule::NoOtherActiveKey)
        .await;
    assert!(matches!(refused, Err(StoreError::ActiveKeyExists)));
    let again = a.insert(third.clone(), InsertRule::Unconditional).await;
    assert!(matches!(again, Err(StoreError::Duplicate)));
    a.record_last_use(&third.id, SystemTime::now())
        .await
        .expect("last use");
    let earlier = a
        .revoke(&first.id, SystemTime::now())
        .await
        .expect("revoke");
    assert!(earlier.is_some());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        changes.try_recv().is_err(),
        "refused or no-op writes publish nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_the_listener_ends_the_feed() {
    let Some(url) = common::server_url("TEST_REDIS_URL") else {
        return;
    };
    let namespace = fresh_namespace();
    let channel = format!("{namespace}:changes");
    let store = store_at(&url, &namespace).await;
    let mut conn = raw(&url).await;
    let subscribers = |conn: &mut ::redis::aio::MultiplexedConnection| {
        let mut conn = conn.clone();
        let channel = channel.clone();
        async move {
            let (_, count): (String, u32) = ::redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg(&channel)
                .query_async(&mut conn)
                .await
                .expect("numsub");
            count
        }
    };
    let (listener, mut changes) = listen(&store);
    assert_eq!(
        next(&mut changes, Duration::from_secs(5)).await,
        Change::All
    );
    assert_eq!(subscribers(&mut conn).await, 1, "the feed is subscribed");

    drop(listener);
    let deadline = Instant::now() + Duration::from_secs(3);
    while subscribers(&mut conn).await > 0 {
        assert!(
            Instant::now() < deadline,
            "the feed still listens 3 s after its listener was dropped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_server_is_an_error_not_none() {
    let timeout = Duration::from_millis(300);
    let store = RedisKeyStore::builder("redis://127.0.0.1:1")
        .timeout(timeout)
        .build()
        .await
        .expect("building does not connect");
    let prefix = ApiKey::generate(KeyMode::Live).expect("mint").prefix();
    let started = Instant::now();
    let found = store.find_by_prefix(&prefix).await;
    assert!(found.is_err(), "an outage must be an error, got {found:?}");
    assert!(started.elapsed() < timeout + Duration::from_secs(1));
    let inserted = store
        .insert(new_record("acct"), InsertRule::Unconditional)
        .await;
    assert!(inserted.is_err());
    assert!(store.list_by_owner("acct").await.is_err());
    assert!(store.migrate().await.is_err());
}

/// A throwaway `redis-server`, killed when dropped (even when the test panics).
struct Server {
    child: Child,
    url: String,
}

impl Server {
    /// A server on a free port, once it answers; `None` (skip) without `redis-server`.
    async fn start() -> Option<Server> {
        if Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            common::skip("redis-server is not on PATH", common::SERVICES);
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        Some(Server::on(port).await)
    }

    async fn on(port: u16) -> Server {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let server = Server {
            child,
            url: format!("redis://127.0.0.1:{port}"),
        };
        let client = ::redis::Client::open(server.url.as_str()).expect("url");
        for _ in 0..100 {
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await {
                if ::redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
                {
                    return server;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server on port {port} did not start");
    }

    fn port(&self) -> u16 {
        self.url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port")
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} failed");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hung_server_times_out_then_recovers() {
    let Some(server) = Server::start().await else {
        return;
    };
    let timeout = Duration::from_millis(300);
    let store = RedisKeyStore::builder(&server.url)
        .timeout(timeout)
        .build()
        .await
        .expect("build");
    let record = new_record("acct");
    store
        .insert(record.clone(), InsertRule::Unconditional)
        .await
        .expect("insert");

    server.signal("-STOP");
    let started = Instant::now();
    let found = store.find_by_prefix(&record.prefix).await;
    assert!(
        matches!(found, Err(StoreError::Timeout)),
        "a hung server must be a Timeout, got {found:?}"
    );
    assert!(started.elapsed() < timeout + Duration::from_secs(1));

    server.signal("-CONT");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match store.find_by_prefix(&record.prefix).await {
            Ok(Some(found)) => {
                assert_eq!(*found, record);
                break;
            }
            other => assert!(
                Instant::now() < deadline,
                "not working 5 s after the server resumed: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn feed_reports_all_after_reconnecting() {
    let Some(server) = Server::start().await else {
        return;
    };
    let port = server.port();
    let store = RedisKeyStore::builder(&server.url)
        .timeout(Duration::from_millis(300))
        .build()
        .await
        .expect("build");
    let (_listener, mut changes) = listen(&store);
    assert_eq!(
        next(&mut changes, Duration::from_secs(5)).await,
        Change::All
    );

    drop(server);
    assert_eq!(
        next(&mut changes, Duration::from_secs(5)).await,
        Change::Disconnected,
        "a lost connection is reported: nothing cached may be trusted"
    );
    let server = Server::on(port).await;
    assert_eq!(
        next(&mut changes, Duration::from_secs(5)).await,
        Change::All,
        "a resubscription reports All: changes may have been missed"
    );
    let record = new_record("acct");
    store
        .insert(record.clone(), InsertRule::Unconditional)
        .await
        .expect("insert after the restart");
    assert_eq!(
        next(&mut changes, Duration::from_millis(100)).await,
        Change::Key(record.prefix)
    );
    drop(server);
}

/// Compiles only if the store's own futures are `Send` (spawnable).
#[allow(dead_code)]
fn futures_are_send(
    store: &RedisKeyStore,
) -> impl std::future::Future<Output = tower_api_key::store::Result<()>> + Send + '_ {
    store.migrate()
}

/// A server that would forget acknowledged writes on restart (no append-only file)
/// is refused by `migrate`, unless the check is turned off on purpose.
#[tokio::test(flavor = "multi_thread")]
async fn migrate_refuses_a_server_that_could_lose_revocations() {
    let Some(server) = Server::start().await else {
        return;
    };
    let store = RedisKeyStore::connect(&server.url).await.expect("build");
    let refused = store.migrate().await;
    assert!(
        matches!(&refused, Err(StoreError::Backend(e)) if e.to_string().contains("appendonly")),
        "{refused:?}"
    );
    let unchecked = RedisKeyStore::builder(&server.url)
        .check_durability(false)
        .build()
        .await
        .expect("build");
    unchecked
        .migrate()
        .await
        .expect("migrate without the check");
}

/// How many scripts the server has cached (`INFO memory`).
async fn cached_scripts(url: &str) -> usize {
    let info: String = ::redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut raw(url).await)
        .await
        .expect("info");
    info.lines()
        .find_map(|line| line.strip_prefix("number_of_cached_scripts:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("number_of_cached_scripts in INFO memory")
}

/// Finding: `migrate` loaded four of the store's five Lua scripts. On a fresh server,
/// after `migrate`, every operation of the store runs without the server caching one
/// script more: each was already loaded (a script run before it is loaded gets
/// `NOSCRIPT`, and is then loaded and counted).
#[tokio::test(flavor = "multi_thread")]
async fn migrate_loads_every_script_the_store_runs() {
    let Some(server) = Server::start().await else {
        return;
    };
    let store = RedisKeyStore::builder(&server.url)
        .check_durability(false)
        .build()
        .await
        .expect("build");
    assert_eq!(cached_scripts(&server.url).await, 0, "a fresh server");
    store.migrate().await.expect("migrate");
    let loaded = cached_scripts(&server.url).await;
    assert!(loaded > 0, "migrate loads the scripts");

    let first = new_record("acct");
    let first_id = first.id.clone();
    store
        .insert(first, InsertRule::NoOtherActiveKey)
        .await
        .expect("insert");
    let successor = new_record("acct");
    let successor_id = successor.id.clone();
    store
        .insert(
            successor,
            InsertRule::Replace {
                old: first_id,
                revoke_at: SystemTime::now(),
            },
        )
        .await
        .expect("rotate");
    store
        .insert(new_record("acct"), InsertRule::Unconditional)
        .await
        .expect("insert");
    store
        .record_last_use(&successor_id, SystemTime::now())
        .await
        .expect("last use");
    store
        .set_metadata(&successor_id, "note", Some("x"))
        .await
        .expect("metadata");
    assert_eq!(store.list_by_owner("acct").await.expect("list").len(), 3);
    store
        .revoke(&successor_id, SystemTime::now())
        .await
        .expect("revoke")
        .expect("found");
    let rate = "5/m".parse().unwrap();
    store
        .lease(&LeaseRequest::new("key:x", rate, 1))
        .await
        .expect("lease");

    assert_eq!(
        cached_scripts(&server.url).await,
        loaded,
        "a script the store runs was not loaded by migrate"
    );
}

/// Quota buckets are strings in `QuotaBucket`'s text form (the script and the Rust
/// algorithm read each other's), and expire once they are the same as fresh ones.
#[tokio::test]
async fn quota_buckets_are_readable_and_expire() {
    let Some(url) = common::server_url("TEST_REDIS_URL") else {
        return;
    };
    let namespace = fresh_namespace();
    let store = store_at(&url, &namespace).await;
    let rate = "10/s".parse().unwrap();
    let lease = store
        .lease(&LeaseRequest::new("key:y", rate, 7).want(3))
        .await
        .expect("lease");
    assert_eq!(lease.granted(), 3);
    let mut conn = raw(&url).await;
    let name = format!("{namespace}:quota:key:y");
    let text: String = ::redis::cmd("GET")
        .arg(&name)
        .query_async(&mut conn)
        .await
        .expect("get");
    assert!(QuotaBucket::parse(&text).is_some(), "unreadable: {text}");
    assert!(text.contains(" 7:3:"), "holder 7's lease of 3: {text}");
    let ttl: i64 = ::redis::cmd("PTTL")
        .arg(&name)
        .query_async(&mut conn)
        .await
        .expect("pttl");
    // Full again 300 ms after the grant; the lease ends after 250 ms; a second of slack.
    assert!((1_000..=1_300).contains(&ttl), "expires in {ttl} ms");
}

/// Finding (issue 16): the limiter must not turn a quota store outage into refusals.
/// With the quota server paused, valid keys are admitted up to the instance's share
/// of their limit (the first request waits for the store's timeout, the next ones
/// do not wait); once it resumes, limits are counted there again.
#[tokio::test(flavor = "multi_thread")]
async fn a_paused_quota_server_falls_back_then_shares_again() {
    let Some(server) = Server::start().await else {
        return;
    };
    let timeout = Duration::from_millis(300);
    let quotas = RedisKeyStore::builder(&server.url)
        .timeout(timeout)
        .build()
        .await
        .expect("build");
    let keys = InMemoryKeyStore::new();
    let auth = Authenticator::builder(keys.clone())
        .rate_limit("5/m".parse::<tower_api_key::policy::RateLimit>().ok())
        .shared_rate_limits(quotas.clone())
        .build();
    let mint = || async {
        let key = ApiKey::generate(KeyMode::Live).unwrap();
        let record = KeyRecord::builder(&key, "acct").build();
        keys.insert(record, InsertRule::Unconditional)
            .await
            .unwrap();
        key
    };
    let check = |key: &ApiKey| {
        let request = http::Request::get("/")
            .header("authorization", format!("Bearer {}", key.expose_secret()))
            .body(())
            .unwrap();
        let auth = auth.clone();
        async move { auth.authenticate(&request.into_parts().0).await }
    };

    server.signal("-STOP");
    let key = mint().await;
    let started = Instant::now();
    assert!(
        check(&key).await.is_ok(),
        "admitted while the store is paused"
    );
    assert!(started.elapsed() < timeout + Duration::from_secs(1));
    let started = Instant::now();
    for _ in 0..4 {
        assert!(check(&key).await.is_ok());
    }
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "no wait once the store is known down: {:?}",
        started.elapsed()
    );
    let over = check(&key).await.expect_err("over the share");
    assert_eq!(over.kind(), AuthErrorKind::RateLimited);

    server.signal("-CONT");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let key = mint().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let name = format!("tower-api-key:quota:key:{}", key.prefix());
    loop {
        assert!(check(&key).await.is_ok());
        let exists: bool = ::redis::cmd("EXISTS")
            .arg(&name)
            .query_async(&mut raw(&server.url).await)
            .await
            .expect("exists");
        if exists {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not shared 5 s after the server resumed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
