//! The SQL stores: [`SqliteKeyStore`] (feature `sqlite`) and [`PostgresKeyStore`]
//! (feature `postgres`), one implementation over sqlx with runtime-checked queries
//! (building never needs a database).
//!
//! Both keep one table, `api_keys`, created by an explicit, idempotent
//! [`migrate`](SqlKeyStore::migrate): the prefix is a unique column, the hash is the
//! only trace of the key, times are integer nanoseconds since the Unix epoch, and
//! scopes, restrictions and metadata are JSON text. `migrate` also brings a table made
//! before a column existed up to date (adding `metadata`). Every call is bounded by the
//! store's timeout (default 2 s; [`with_timeout`](SqlKeyStore::with_timeout)) and
//! answers [`StoreError::Timeout`] past it. Inserts check their
//! [`InsertRule`](super::InsertRule) inside one transaction that no other insert for
//! the same owner can interleave with (SQLite:
//! `BEGIN IMMEDIATE`; PostgreSQL: a transaction-scoped advisory lock on the owner, and
//! the replaced row locked `FOR UPDATE`), so two instances can never both mint an
//! active key for one owner.

#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::{fmt, time::Duration};

use sqlx::{Database, Pool};

#[cfg(feature = "postgres")]
pub use postgres::PostgresKeyStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteKeyStore;

use super::{timeout::DEFAULT_TIMEOUT, StoreError};

/// A [`KeyStore`](super::KeyStore) in a SQL database; use it as [`SqliteKeyStore`] or
/// [`PostgresKeyStore`]. Cloning is cheap (clones share the pool).
pub struct SqlKeyStore<DB: Database> {
    pool: Pool<DB>,
    timeout: Duration,
}

impl<DB: Database> SqlKeyStore<DB> {
    /// A store over an existing pool (run [`migrate`](Self::migrate) once).
    pub fn new(pool: Pool<DB>) -> Self {
        SqlKeyStore {
            pool,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// How long one call may take before it fails with [`StoreError::Timeout`] (the
    /// layer then answers 503). Default 2 s.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The connection pool.
    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }
}

impl<DB: Database> Clone for SqlKeyStore<DB> {
    fn clone(&self) -> Self {
        SqlKeyStore {
            pool: self.pool.clone(),
            timeout: self.timeout,
        }
    }
}

impl<DB: Database> fmt::Debug for SqlKeyStore<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlKeyStore")
            .field("database", &DB::NAME)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The columns every query reads, in [`Columns`](super::codec::Columns) order (a
/// macro, so that the queries are built at compile time).
macro_rules! columns {
    () => {
        "id, prefix, hash, owner, name, scopes, created_at, expires_at, \
         revoked_at, last_used_at, restrictions, rate_limit, metadata"
    };
}

/// The queries whose text names every column.
const FIND_BY_PREFIX: &str = concat!("SELECT ", columns!(), " FROM api_keys WHERE prefix = $1");
const REVOKE: &str = concat!(
    "UPDATE api_keys SET revoked_at = CASE \
     WHEN revoked_at IS NULL OR revoked_at > $2 THEN $2 ELSE revoked_at END \
     WHERE id = $1 RETURNING ",
    columns!()
);
const LIST_BY_OWNER: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM api_keys WHERE owner = $1 ORDER BY created_at, id"
);

/// The usage table, the same in both databases: one row per key and hour (hours since
/// the Unix epoch), a counter per [`UsageOutcome`](super::UsageOutcome).
macro_rules! usage_table {
    () => {
        "CREATE TABLE IF NOT EXISTS api_key_usage (
    key_id TEXT NOT NULL,
    hour BIGINT NOT NULL,
    admitted BIGINT NOT NULL DEFAULT 0,
    revoked BIGINT NOT NULL DEFAULT 0,
    expired BIGINT NOT NULL DEFAULT 0,
    restricted BIGINT NOT NULL DEFAULT 0,
    insufficient_scope BIGINT NOT NULL DEFAULT 0,
    rate_limited BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, hour)
);
"
    };
}
pub(crate) use usage_table;

/// Adds one key-hour's counts (in [`UsageOutcome::ALL`](super::UsageOutcome::ALL)
/// order) to what is there.
const ADD_USAGE: &str = "INSERT INTO api_key_usage (key_id, hour, admitted, revoked, expired, \
     restricted, insufficient_scope, rate_limited) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
     ON CONFLICT (key_id, hour) DO UPDATE SET \
     admitted = api_key_usage.admitted + excluded.admitted, \
     revoked = api_key_usage.revoked + excluded.revoked, \
     expired = api_key_usage.expired + excluded.expired, \
     restricted = api_key_usage.restricted + excluded.restricted, \
     insufficient_scope = api_key_usage.insufficient_scope + excluded.insufficient_scope, \
     rate_limited = api_key_usage.rate_limited + excluded.rate_limited";

/// A key's hours in `$2..$3`.
const READ_USAGE: &str = "SELECT hour, admitted, revoked, expired, restricted, \
     insufficient_scope, rate_limited FROM api_key_usage \
     WHERE key_id = $1 AND hour >= $2 AND hour < $3 ORDER BY hour";

/// The columns of the first version, one by one: an existing `api_keys` table without
/// all of them is not this crate's.
const COLUMN_NAMES: [&str; 12] = [
    "id",
    "prefix",
    "hash",
    "owner",
    "name",
    "scopes",
    "created_at",
    "expires_at",
    "revoked_at",
    "last_used_at",
    "restrictions",
    "rate_limit",
];

/// Columns later versions added, with their definition: `migrate` adds them to an
/// older table (the default fills existing rows).
const ADDED_COLUMNS: [(&str, &str); 1] = [("metadata", "TEXT NOT NULL DEFAULT '{}'")];

/// What `migrate` finds in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Schema {
    /// No `api_keys` table.
    Absent,
    /// This crate's table, made by an earlier version: lacks these added columns.
    Outdated,
    /// This crate's table, complete.
    Current,
}

impl Schema {
    /// The `ALTER TABLE` statements that bring a table with `present` columns up to
    /// date; none without a table (creating it makes it whole).
    fn additions(present: &[String]) -> impl Iterator<Item = String> + '_ {
        ADDED_COLUMNS
            .iter()
            .filter(move |(name, _)| !present.is_empty() && !present.iter().any(|p| p == name))
            .map(|(name, definition)| {
                format!("ALTER TABLE api_keys ADD COLUMN {name} {definition}")
            })
    }
}

/// The statements a migration runs inside its transaction, given the `present`
/// columns read under its lock: the columns an older table lacks, then `schema`, which
/// creates whatever else is missing (idempotent). An error for someone else's table.
fn migration(present: &[String], schema: &str) -> Result<String, StoreError> {
    ours(present)?;
    let mut script: String = Schema::additions(present)
        .map(|addition| addition + ";\n")
        .collect();
    script.push_str(schema);
    Ok(script)
}

/// What an existing table with `present` columns is; an error when it is someone
/// else's.
fn ours(present: &[String]) -> Result<Schema, StoreError> {
    if present.is_empty() {
        return Ok(Schema::Absent);
    }
    let missing: Vec<&str> = COLUMN_NAMES
        .iter()
        .copied()
        .filter(|name| !present.iter().any(|p| p == name))
        .collect();
    if !missing.is_empty() {
        return Err(StoreError::backend(format!(
            "a table `api_keys` exists but is not tower-api-key's (it lacks {}); \
             give the key store a database or schema of its own",
            missing.join(", ")
        )));
    }
    Ok(match Schema::additions(present).next() {
        Some(_) => Schema::Outdated,
        None => Schema::Current,
    })
}

/// A database error, as the store reports it: a taken id or prefix is `Duplicate`,
/// anything else a backend failure.
fn database_error(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Duplicate,
        sqlx::Error::PoolTimedOut => StoreError::Timeout,
        _ => StoreError::backend(error),
    }
}

/// How often [`retried`] runs a write refused for a concurrent update: enough for a
/// few dozen writers of one row, each round letting one through.
const WRITE_ATTEMPTS: u32 = 32;

/// Runs a one-statement write again when PostgreSQL refuses it for a concurrent update
/// of the same row (SQLSTATE 40001, which a database defaulting to REPEATABLE READ or
/// SERIALIZABLE gives): a fresh statement sees the other write and applies on top of
/// it. Waits a little longer before each attempt (about 0.5 ms more each time, spread
/// so that racing writers do not retry in step), and gives up after
/// [`WRITE_ATTEMPTS`] with the database's error; the caller bounds the whole in time.
async fn retried<T, F, W>(mut write: W) -> Result<T, StoreError>
where
    W: FnMut() -> F,
    F: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    let mut attempt = 1;
    loop {
        match write().await {
            Err(sqlx::Error::Database(db))
                if db.code().as_deref() == Some("40001") && attempt < WRITE_ATTEMPTS =>
            {
                // The clock's low bits as jitter: no need for a random source here.
                let spread = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |t| t.subsec_nanos() % 500_000);
                let wait = Duration::from_micros(500 * u64::from(attempt))
                    + Duration::from_nanos(u64::from(spread));
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            done => return done.map_err(database_error),
        }
    }
}

/// Implements `KeyStore` for `SqlKeyStore<$db>`: the same queries (`$n` parameters
/// work in both dialects), with the dialect's way to serialise an owner's inserts.
macro_rules! sql_key_store {
    (
        $db:ty,
        $row:ty,
        begin: |$pool:ident, $owner:ident| $begin:expr,
        begin_usage: |$usage_pool:ident| $begin_usage:expr,
        lock_old: $lock_old:expr,
        set_metadata: $set_metadata:expr,
        more: { $($more:tt)* }
    ) => {
        impl $crate::store::sql::SqlKeyStore<$db> {
            async fn insert_checked(
                &self,
                record: &$crate::store::KeyRecord,
                rule: &$crate::store::InsertRule,
            ) -> $crate::store::Result<()> {
                use $crate::store::{codec::Columns, InsertRule, StoreError};
                let columns = Columns::of(record)?;
                let $pool = &self.pool;
                let $owner = columns.owner.as_str();
                let mut tx = $begin.map_err(database_error)?;
                match rule {
                    InsertRule::Unconditional => {}
                    InsertRule::NoOtherActiveKey => {
                        let active: Option<i32> = sqlx::query_scalar(
                            "SELECT 1 FROM api_keys WHERE owner = $1 AND revoked_at IS NULL \
                             AND (expires_at IS NULL OR expires_at > $2) LIMIT 1",
                        )
                        .bind(&columns.owner)
                        .bind(columns.created_at)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(database_error)?;
                        if active.is_some() {
                            return Err(StoreError::ActiveKeyExists);
                        }
                    }
                    InsertRule::Replace { old, revoke_at } => {
                        let current: Option<(String, Option<i64>)> = sqlx::query_as(concat!(
                            "SELECT owner, revoked_at FROM api_keys WHERE id = $1",
                            $lock_old
                        ))
                        .bind(old.as_str())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(database_error)?;
                        match current {
                            Some((owner, _)) if owner != columns.owner => {
                                return Err(StoreError::NotFound)
                            }
                            None => return Err(StoreError::NotFound),
                            Some((_, Some(_))) => return Err(StoreError::AlreadyRevoked),
                            Some((_, None)) => {}
                        }
                        sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1")
                            .bind(old.as_str())
                            .bind($crate::store::codec::nanos(*revoke_at))
                            .execute(&mut *tx)
                            .await
                            .map_err(database_error)?;
                    }
                }
                sqlx::query(
                    "INSERT INTO api_keys (id, prefix, hash, owner, name, scopes, created_at, \
                     expires_at, revoked_at, last_used_at, restrictions, rate_limit, metadata) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                )
                .bind(&columns.id)
                .bind(&columns.prefix)
                .bind(&columns.hash)
                .bind(&columns.owner)
                .bind(&columns.name)
                .bind(&columns.scopes)
                .bind(columns.created_at)
                .bind(columns.expires_at)
                .bind(columns.revoked_at)
                .bind(columns.last_used_at)
                .bind(&columns.restrictions)
                .bind(&columns.rate_limit)
                .bind(&columns.metadata)
                .execute(&mut *tx)
                .await
                .map_err(database_error)?;
                tx.commit().await.map_err(database_error)
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::KeyStore for $crate::store::sql::SqlKeyStore<$db> {
            async fn find_by_prefix(
                &self,
                prefix: &$crate::key::KeyPrefix,
            ) -> $crate::store::Result<Option<std::sync::Arc<$crate::store::KeyRecord>>> {
                let row = $crate::store::timeout::bounded(self.timeout, async {
                    sqlx::query(FIND_BY_PREFIX)
                        .bind(prefix.as_str())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(database_error)
                })
                .await?;
                row.map(|row: $row| read_row(&row).map(std::sync::Arc::new))
                    .transpose()
            }

            async fn insert(
                &self,
                record: $crate::store::KeyRecord,
                rule: $crate::store::InsertRule,
            ) -> $crate::store::Result<()> {
                $crate::store::timeout::bounded(self.timeout, self.insert_checked(&record, &rule))
                    .await
            }

            async fn revoke(
                &self,
                id: &$crate::store::KeyId,
                at: std::time::SystemTime,
            ) -> $crate::store::Result<Option<$crate::store::KeyRecord>> {
                let at = $crate::store::codec::nanos(at);
                let row = $crate::store::timeout::bounded(
                    self.timeout,
                    $crate::store::sql::retried(|| {
                        sqlx::query(REVOKE)
                            .bind(id.as_str())
                            .bind(at)
                            .fetch_optional(&self.pool)
                    }),
                )
                .await?;
                row.map(|row: $row| read_row(&row)).transpose()
            }

            async fn list_by_owner(
                &self,
                owner: &str,
            ) -> $crate::store::Result<Vec<$crate::store::KeyRecord>> {
                let rows = $crate::store::timeout::bounded(self.timeout, async {
                    sqlx::query(LIST_BY_OWNER)
                        .bind(owner)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(database_error)
                })
                .await?;
                rows.iter().map(|row: &$row| read_row(row)).collect()
            }

            async fn record_last_use(
                &self,
                id: &$crate::store::KeyId,
                at: std::time::SystemTime,
            ) -> $crate::store::Result<()> {
                let at = $crate::store::codec::nanos(at);
                $crate::store::timeout::bounded(
                    self.timeout,
                    $crate::store::sql::retried(|| {
                        sqlx::query(
                            "UPDATE api_keys SET last_used_at = $2 \
                             WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)",
                        )
                        .bind(id.as_str())
                        .bind(at)
                        .execute(&self.pool)
                    }),
                )
                .await
                .map(drop)
            }

            async fn set_metadata(
                &self,
                id: &$crate::store::KeyId,
                name: &str,
                value: Option<&str>,
            ) -> $crate::store::Result<()> {
                let done = $crate::store::timeout::bounded(
                    self.timeout,
                    $crate::store::sql::retried(|| {
                        sqlx::query($set_metadata)
                            .bind(id.as_str())
                            .bind(name)
                            .bind(value)
                            .execute(&self.pool)
                    }),
                )
                .await?;
                if done.rows_affected() == 0 {
                    return Err($crate::store::StoreError::NotFound);
                }
                Ok(())
            }

            fn keeps_usage(&self) -> bool {
                true
            }

            async fn add_usage(
                &self,
                batch: &$crate::store::UsageBatch,
            ) -> $crate::store::Result<()> {
                // In one transaction (a batch lands whole or not at all, so a retry
                // never counts twice), in key and hour order (two instances' batches
                // lock their common rows in the same order: no deadlock).
                let mut deltas: Vec<&$crate::store::UsageDelta> = batch.deltas.iter().collect();
                deltas.sort_by(|a, b| (a.key.as_str(), a.hour).cmp(&(b.key.as_str(), b.hour)));
                let keep_from = i64::try_from(batch.keep_from).unwrap_or(i64::MAX);
                $crate::store::timeout::bounded(self.timeout, async {
                    let $usage_pool = &self.pool;
                    let mut tx = $begin_usage.map_err(database_error)?;
                    for delta in deltas.iter().filter(|d| d.hour >= batch.keep_from) {
                        let mut query = sqlx::query(ADD_USAGE)
                            .bind(delta.key.as_str())
                            .bind(i64::try_from(delta.hour).unwrap_or(i64::MAX));
                        for outcome in $crate::store::UsageOutcome::ALL {
                            let n = delta.counts.get(outcome);
                            query = query.bind(i64::try_from(n).unwrap_or(i64::MAX));
                        }
                        query.execute(&mut *tx).await.map_err(database_error)?;
                    }
                    sqlx::query("DELETE FROM api_key_usage WHERE hour < $1")
                        .bind(keep_from)
                        .execute(&mut *tx)
                        .await
                        .map_err(database_error)?;
                    tx.commit().await.map_err(database_error)
                })
                .await
            }

            async fn usage(
                &self,
                id: &$crate::store::KeyId,
                from: std::time::SystemTime,
                to: std::time::SystemTime,
            ) -> $crate::store::Result<Vec<$crate::store::UsageBucket>> {
                use sqlx::Row;
                let hour = |at| i64::try_from($crate::store::usage_hour_after(at)).unwrap_or(i64::MAX);
                let rows = $crate::store::timeout::bounded(self.timeout, async {
                    sqlx::query(READ_USAGE)
                        .bind(id.as_str())
                        .bind(hour(from))
                        .bind(hour(to))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(database_error)
                })
                .await?;
                rows.iter()
                    .map(|row: &$row| {
                        let get = |e: sqlx::Error| $crate::store::StoreError::backend(e);
                        let hour: i64 = row.try_get("hour").map_err(get)?;
                        let mut counts = $crate::store::UsageCounts::default();
                        for outcome in $crate::store::UsageOutcome::ALL {
                            let n: i64 = row.try_get(outcome.name()).map_err(get)?;
                            counts.add(outcome, u64::try_from(n).unwrap_or(0));
                        }
                        Ok($crate::store::UsageBucket {
                            start: $crate::store::usage_hour_start(u64::try_from(hour).unwrap_or(0)),
                            counts,
                        })
                    })
                    .collect()
            }

            $($more)*
        }

        /// A row as a record; a column of the wrong type is a backend error.
        fn read_row(row: &$row) -> $crate::store::Result<$crate::store::KeyRecord> {
            use sqlx::Row;
            let get = |e: sqlx::Error| $crate::store::StoreError::backend(e);
            $crate::store::codec::Columns {
                id: row.try_get("id").map_err(get)?,
                prefix: row.try_get("prefix").map_err(get)?,
                hash: row.try_get("hash").map_err(get)?,
                owner: row.try_get("owner").map_err(get)?,
                name: row.try_get("name").map_err(get)?,
                scopes: row.try_get("scopes").map_err(get)?,
                created_at: row.try_get("created_at").map_err(get)?,
                expires_at: row.try_get("expires_at").map_err(get)?,
                revoked_at: row.try_get("revoked_at").map_err(get)?,
                last_used_at: row.try_get("last_used_at").map_err(get)?,
                restrictions: row.try_get("restrictions").map_err(get)?,
                rate_limit: row.try_get("rate_limit").map_err(get)?,
                metadata: row.try_get("metadata").map_err(get)?,
            }
            .into_record()
        }
    };
}
pub(crate) use sql_key_store;
