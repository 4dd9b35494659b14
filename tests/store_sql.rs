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
}
