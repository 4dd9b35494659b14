use std::{str::FromStr, time::Duration};

use sqlx::{
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow},
    Sqlite,
};

use super::{
    database_error, migration, ours, sql_key_store, usage_table, Schema, SqlKeyStore, ADD_USAGE,
    FIND_BY_PREFIX, LIST_BY_OWNER, READ_USAGE, REVOKE,
};
use crate::store::{timeout::bounded, Result, StoreError};

/// Keys in a SQLite database file (feature `sqlite`): the embedded durable store, for
/// one process whose keys must survive a restart.
///
/// SQLite has no change feed, so a `CachedKeyStore` in front of it
/// relies on its TTL for changes made by *other* processes sharing the file; changes
/// through the cache itself apply at once.
///
/// ```no_run
/// use tower_api_key::{store::SqliteKeyStore, ApiKeyLayer};
///
/// # async fn run() -> Result<(), tower_api_key::store::StoreError> {
/// let store = SqliteKeyStore::connect("sqlite://keys.db").await?;
/// store.migrate().await?;
/// let layer = ApiKeyLayer::new(store);
/// # Ok(()) }
/// ```
pub type SqliteKeyStore = SqlKeyStore<Sqlite>;

const SCHEMA: &str = concat!(
    "
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY NOT NULL,
    prefix TEXT NOT NULL UNIQUE,
    hash BLOB NOT NULL,
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER,
    last_used_at INTEGER,
    restrictions TEXT NOT NULL,
    rate_limit TEXT,
    metadata TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS api_keys_owner ON api_keys (owner, created_at);
",
    usage_table!(),
    "CREATE INDEX IF NOT EXISTS api_key_usage_hour ON api_key_usage (hour);
"
);

impl SqlKeyStore<Sqlite> {
    /// Opens (creating it if missing) the database at `url` (`sqlite://keys.db`,
    /// `sqlite:///var/lib/app/keys.db`), in WAL mode so lookups never wait for a
    /// write. Run [`migrate`](Self::migrate) before first use.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(StoreError::backend)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(database_error)?;
        Ok(Self::new(pool))
    }

    /// Creates the `api_keys` table and its index if they do not exist, and adds the
    /// columns later versions introduced to a table an earlier version made (existing
    /// keys keep working). Idempotent: run it at every start. A table `api_keys` that
    /// is not this crate's is refused, never altered.
    pub async fn migrate(&self) -> Result<()> {
        bounded(self.timeout, self.create_schema()).await
    }

    async fn create_schema(&self) -> Result<()> {
        let present: Vec<String> =
            sqlx::query_scalar("SELECT name FROM pragma_table_info('api_keys')")
                .fetch_all(&self.pool)
                .await
                .map_err(database_error)?;
        let usage_kept: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'index' \
             AND name = 'api_key_usage_hour')",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(database_error)?;
        if ours(&present)? == Schema::Current && usage_kept {
            return Ok(());
        }
        // One write transaction: another process migrating at the same time waits,
        // then finds the columns there.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(database_error)?;
        let present: Vec<String> =
            sqlx::query_scalar("SELECT name FROM pragma_table_info('api_keys')")
                .fetch_all(&mut *tx)
                .await
                .map_err(database_error)?;
        // Creates what is missing: the table, or an older table's columns and index.
        sqlx::Executor::execute(&mut *tx, migration(&present, SCHEMA)?.as_str())
            .await
            .map_err(database_error)?;
        tx.commit().await.map_err(database_error)
    }
}

sql_key_store!(
    Sqlite,
    SqliteRow,
    begin: |pool, _owner| pool.begin_with("BEGIN IMMEDIATE").await,
    begin_usage: |pool| pool.begin_with("BEGIN IMMEDIATE").await,
    lock_old: "",
    // A merge patch: a null value removes the entry.
    set_metadata: "UPDATE api_keys SET metadata = json_patch(metadata, json_object($2, $3)) \
                   WHERE id = $1",
    more: {}
);
