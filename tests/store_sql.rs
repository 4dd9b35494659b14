//! The SQL stores against the conformance suite and a real server: SQLite in a
//! temporary file, PostgreSQL from `TEST_POSTGRES_URL` (`scripts/services.sh`).
#![cfg(any(feature = "sqlite", feature = "postgres"))]

mod common;

#[cfg(feature = "sqlite")]
mod sqlite {
    use tower_api_key::store::SqliteKeyStore;

    /// A migrated store in a fresh file under the system's temporary directory.
    pub async fn store() -> SqliteKeyStore {
        let dir = std::env::temp_dir().join("tower-api-key-tests");
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join(format!("{}.db", rand_name()));
        let store = SqliteKeyStore::connect(&format!("sqlite://{}", file.display()))
            .await
            .expect("open sqlite");
        store.migrate().await.expect("migrate");
        store
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
    /// hand in SQL), not last uses; a dropped feed connection comes back and reports
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
            "the last use was not announced"
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
    let file = std::env::temp_dir().join(format!(
        "tower-api-key-tests/foreign-{}.db",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&file);
    let store =
        tower_api_key::store::SqliteKeyStore::connect(&format!("sqlite://{}", file.display()))
            .await
            .unwrap();
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
