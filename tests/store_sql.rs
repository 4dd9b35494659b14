//! The SQL stores against the conformance suite and a real server: SQLite in a
//! temporary file, PostgreSQL from `TEST_POSTGRES_URL` (`scripts/services.sh`).
#![cfg(any(feature = "sqlite", feature = "postgres"))]

mod common;

#[cfg(feature = "sqlite")]
mod sqlite {
    use tower_api_key::store::SqliteKeyStore;

    /// A migrated store in a fresh file under the system's temporary directory.
    pub async fn store() -> SqliteKeyStore {
        let (store, _file) = unmigrated(&rand_name()).await;
        store.migrate().await.expect("migrate");
        store
    }

    /// A store over a new, empty file named after `what` and this process, not
    /// migrated; the file, to remove afterwards.
    pub async fn unmigrated(what: &str) -> (SqliteKeyStore, std::path::PathBuf) {
        let dir = std::env::temp_dir().join("tower-api-key-tests");
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join(format!("{what}-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&file);
        let store = SqliteKeyStore::connect(&format!("sqlite://{}", file.display()))
            .await
            .expect("open sqlite");
        (store, file)
    }

    fn rand_name() -> String {
        let key = tower_api_key::ApiKey::generate(tower_api_key::KeyMode::Live).unwrap();
        key.prefix().as_str()[8..].to_owned()
    }

    tower_api_key::key_store_conformance!(conformance, store());
}

#[cfg(feature = "postgres")]
mod postgres {
    use tower_api_key::store::PostgresKeyStore;

    /// A migrated store over the test database, or `None` to skip.
    pub async fn store() -> Option<PostgresKeyStore> {
        let url = super::common::server_url("TEST_POSTGRES_URL")?;
        let store = PostgresKeyStore::connect(&url).await.expect("connect");
        store.migrate().await.expect("migrate");
        Some(store)
    }

    tower_api_key::key_store_conformance!(conformance, store());

    /// The same store on connections whose default isolation is REPEATABLE READ:
    /// the insert rules must stay atomic whatever the database's default.
    pub async fn repeatable_read_store() -> Option<PostgresKeyStore> {
        use std::str::FromStr;
        let url = super::common::server_url("TEST_POSTGRES_URL")?;
        let options = sqlx::postgres::PgConnectOptions::from_str(&url)
            .unwrap()
            // The space escaped, as `options` requires.
            .options([("default_transaction_isolation", r"repeatable\ read")]);
        let pool = sqlx::PgPool::connect_with(options).await.expect("connect");
        let store = PostgresKeyStore::new(pool);
        store.migrate().await.expect("migrate");
        Some(store)
    }

    tower_api_key::key_store_conformance!(conformance_repeatable_read, repeatable_read_store());

    /// Two pools on one database, as two instances: usage adds from both all land.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn usage_adds_from_two_pools_all_land() {
        let (Some(a), Some(b)) = (store().await, repeatable_read_store().await) else {
            return;
        };
        tower_api_key::store::conformance::usage_adds_from_two_handles_all_land(a, b).await;
    }
    tower_api_key::quota_store_conformance!(quotas, store());
    tower_api_key::quota_store_conformance!(quotas_repeatable_read, repeatable_read_store());
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_migrate_is_idempotent() {
    let store = sqlite::store().await;
    store.migrate().await.expect("a second migrate");
    // From a spawned task too: its future is `Send`.
    let again = store.clone();
    tokio::spawn(async move { again.migrate().await })
        .await
        .unwrap()
        .expect("a third migrate");
}

#[cfg(feature = "postgres")]
mod postgres_feed {
    use std::{
        sync::{
            atomic::{AtomicUsize, Ordering::SeqCst},
            Arc, Mutex,
        },
        time::{Duration, Instant, SystemTime},
    };

    use tower_api_key::{
        key::KeyPrefix,
        store::{Change, ChangeListener, InsertRule, KeyStore, Watching},
        ApiKey, KeyMode, KeyRecord,
    };

    #[derive(Default)]
    struct Heard {
        resets: AtomicUsize,
        keys: Mutex<Vec<KeyPrefix>>,
    }

    impl ChangeListener for Heard {
        fn changed(&self, change: Change) {
            match change {
                Change::Key(prefix) => self.keys.lock().unwrap().push(prefix),
                _ => {
                    self.resets.fetch_add(1, SeqCst);
                }
            }
        }
    }

    async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
        let started = Instant::now();
        while !done() {
            assert!(started.elapsed() < Duration::from_secs(5), "{what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Several instances migrating at once, on a live database, all succeed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn migrate_is_idempotent_and_safe_concurrently() {
        let Some(store) = super::postgres::store().await else {
            return;
        };
        let runs: Vec<_> = (0..4)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.migrate().await })
            })
            .collect();
        for run in runs {
            run.await.unwrap().expect("concurrent migrate");
        }
    }

    /// The trigger announces inserts and revocations (made through the store or by
    /// hand in SQL), not last uses or metadata; a dropped feed connection comes back and reports
    /// `Change::All`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_change_feed_hears_writes_and_resets_after_a_dropped_connection() {
        let Some(store) = super::postgres::store().await else {
            return;
        };
        let heard = Arc::new(Heard::default());
        let listener: Arc<dyn ChangeListener> = heard.clone();
        assert_eq!(store.watch(Arc::downgrade(&listener)), Watching::Started);
        eventually("subscribed", || heard.resets.load(SeqCst) >= 1).await;

        let key = ApiKey::generate(KeyMode::Live).unwrap();
        let record = KeyRecord::builder(&key, "feed-test").build();
        store
            .insert(record.clone(), InsertRule::Unconditional)
            .await
            .unwrap();
        eventually("insert heard", || {
            heard.keys.lock().unwrap().contains(&record.prefix)
        })
        .await;
        heard.keys.lock().unwrap().clear();
        store
            .record_last_use(&record.id, SystemTime::now())
            .await
            .unwrap();
        store
            .set_metadata(&record.id, "note", Some("quiet"))
            .await
            .unwrap();
        // A revocation typed into psql counts too.
        sqlx::query("UPDATE api_keys SET revoked_at = 1 WHERE id = $1")
            .bind(record.id.as_str())
            .execute(store.pool())
            .await
            .unwrap();
        eventually("manual revoke heard", || {
            heard.keys.lock().unwrap().contains(&record.prefix)
        })
        .await;
        assert_eq!(
            heard.keys.lock().unwrap().len(),
            1,
            "the last use and the metadata were not announced"
        );

        // Cut the feed's connection from the server side.
        let resets = heard.resets.load(SeqCst);
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE query LIKE 'LISTEN%' AND datname = current_database()",
        )
        .execute(store.pool())
        .await
        .unwrap();
        eventually("reset after reconnecting", || {
            heard.resets.load(SeqCst) > resets
        })
        .await;
        drop(listener);
    }
}

/// `migrate` never alters a table `api_keys` that is not the key store's.
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_migrate_refuses_a_foreign_api_keys_table() {
    let (store, file) = sqlite::unmigrated("foreign").await;
    sqlx::query("CREATE TABLE api_keys (id INTEGER PRIMARY KEY, token TEXT)")
        .execute(store.pool())
        .await
        .unwrap();
    let refused = store.migrate().await.unwrap_err();
    assert!(refused.to_string().contains("store failed"), "{refused}");
    let source = std::error::Error::source(&refused).unwrap().to_string();
    assert!(source.contains("not tower-api-key's"), "{source}");
    let _ = std::fs::remove_file(&file);
}

/// A table made by a version before key metadata, holding a key, brought up to date by
/// `migrate`: the key reads back whole, with no metadata, and takes some.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod upgrade {
    use tower_api_key::{store::KeyStore, ApiKey, KeyMode, KeyRecord};

    /// The first version's table, in either dialect (`BLOB` or `BYTEA` for the hash).
    pub fn first_version_table(hash_type: &str) -> String {
        format!(
            "CREATE TABLE api_keys (id TEXT PRIMARY KEY NOT NULL, prefix TEXT NOT NULL UNIQUE, \
             hash {hash_type} NOT NULL, owner TEXT NOT NULL, name TEXT NOT NULL, \
             scopes TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT, \
             revoked_at BIGINT, last_used_at BIGINT, restrictions TEXT NOT NULL, \
             rate_limit TEXT)"
        )
    }

    /// A record to write as the first version did.
    pub fn old_record() -> KeyRecord {
        let key = ApiKey::generate(KeyMode::Live).unwrap();
        KeyRecord::builder(&key, "upgraded-owner")
            .name("from v0.1")
            .scope("leads:read")
            .created_at(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000))
            .build()
    }

    /// Writes `record` into the first version's table with `pool` (either dialect).
    macro_rules! insert_as_first_version {
        ($pool:expr, $record:expr) => {{
            let record = &$record;
            let nanos = |at: std::time::SystemTime| {
                at.duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64
            };
            sqlx::query(
                "INSERT INTO api_keys (id, prefix, hash, owner, name, scopes, created_at, \
                 restrictions) VALUES ($1, $2, $3, $4, $5, $6, $7, '{}')",
            )
            .bind(record.id.as_str())
            .bind(record.prefix.as_str())
            .bind(record.hash.as_bytes().to_vec())
            .bind(&record.owner)
            .bind(&record.name)
            .bind(serde_json::to_string(&record.scopes).unwrap())
            .bind(nanos(record.created_at))
            .execute($pool)
            .await
            .expect("insert as the first version did");
        }};
    }
    pub(crate) use insert_as_first_version;

    /// After `migrate`: the old key reads back as written, takes metadata, and a
    /// second `migrate` changes nothing.
    pub async fn check_upgraded(
        store: &impl KeyStore,
        record: &KeyRecord,
        migrate_again: impl std::future::Future<Output = Result<(), tower_api_key::store::StoreError>>,
    ) {
        let found = store
            .find_by_prefix(&record.prefix)
            .await
            .unwrap()
            .expect("the old key");
        assert_eq!(*found, *record, "read back whole, with no metadata");
        store
            .set_metadata(&record.id, "hook.webhook.error", Some("down"))
            .await
            .expect("metadata on an upgraded table");
        migrate_again.await.expect("migrate again");
        let listed = store.list_by_owner(&record.owner).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].metadata["hook.webhook.error"], "down");
    }
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_migrate_upgrades_a_first_version_table() {
    let (store, file) = sqlite::unmigrated("upgrade").await;
    sqlx::query(&upgrade::first_version_table("BLOB"))
        .execute(store.pool())
        .await
        .unwrap();
    let record = upgrade::old_record();
    upgrade::insert_as_first_version!(store.pool(), record);
    store.migrate().await.expect("migrate adds the new column");
    let indexes: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'api_keys_owner'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(indexes, 1, "and the owner index it lacked");
    upgrade::check_upgraded(&store, &record, store.migrate()).await;
    let _ = std::fs::remove_file(&file);
}

/// The same in a PostgreSQL schema of its own, several instances migrating at once.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_migrate_upgrades_a_first_version_table() {
    use std::str::FromStr;
    let Some(url) = common::server_url("TEST_POSTGRES_URL") else {
        return;
    };
    let schema = format!("upgrade_{}", std::process::id());
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    for statement in [
        format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
        format!("CREATE SCHEMA {schema}"),
    ] {
        sqlx::query(&statement).execute(&admin).await.unwrap();
    }
    let options = sqlx::postgres::PgConnectOptions::from_str(&url)
        .unwrap()
        .options([("search_path", schema.as_str())]);
    let pool = sqlx::PgPool::connect_with(options).await.unwrap();
    sqlx::query(&upgrade::first_version_table("BYTEA"))
        .execute(&pool)
        .await
        .unwrap();
    let record = upgrade::old_record();
    upgrade::insert_as_first_version!(&pool, record);
    let store = tower_api_key::store::PostgresKeyStore::new(pool);
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.migrate().await })
        })
        .collect();
    for run in runs {
        run.await
            .unwrap()
            .expect("concurrent migrate adds the new column");
    }
    upgrade::check_upgraded(&store, &record, store.migrate()).await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin)
        .await
        .unwrap();
}

/// Quota buckets exist only while in use: a row that has become the same as a fresh
/// bucket is deleted by a later lease's clean-up (every 1,024th lease of a process).
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_idle_quota_buckets_are_deleted() {
    use std::time::Duration;
    use tower_api_key::store::{LeaseRequest, QuotaStore};

    let Some(store) = postgres::store().await else {
        return;
    };
    let key = tower_api_key::ApiKey::generate(tower_api_key::KeyMode::Test).unwrap();
    let idle = format!("key:{}", key.prefix());
    let busy = format!("{idle}:busy");
    let rate = "10/s".parse().unwrap();
    let short = LeaseRequest::new(&idle, rate, 1).lease_for(Duration::from_millis(100));
    store.lease(&short).await.expect("lease");
    let rows = |bucket: String| {
        let pool = store.pool().clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM api_key_quotas WHERE bucket = $1")
                .bind(bucket)
                .fetch_one(&pool)
                .await
                .expect("count")
        }
    };
    assert_eq!(rows(idle.clone()).await, 1);
    // Full again 100 ms after the grant, the lease over after 100 ms.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let big = "1000000/s".parse().unwrap();
    for _ in 0..1024 {
        store
            .lease(&LeaseRequest::new(&busy, big, 2))
            .await
            .expect("lease");
    }
    assert_eq!(rows(idle).await, 0, "the idle bucket was deleted");
    assert_eq!(rows(busy).await, 1, "the bucket in use was kept");
}
