//! The SQL stores: [`SqliteKeyStore`] (feature `sqlite`) and [`PostgresKeyStore`]
//! (feature `postgres`), one implementation over sqlx with runtime-checked queries
//! (building never needs a database).
//!
//! Both keep one table, `api_keys`, created by an explicit, idempotent
//! [`migrate`](SqlKeyStore::migrate): the prefix is a unique column, the hash is the
//! only trace of the key, times are integer nanoseconds since the Unix epoch, and
//! scopes and restrictions are JSON text. Every call is bounded by the store's timeout
//! (default 2 s; [`with_timeout`](SqlKeyStore::with_timeout)) and answers
//! [`StoreError::Timeout`] past it. Inserts check their [`InsertRule`](super::InsertRule) inside one
//! transaction that no other insert for the same owner can interleave with (SQLite:
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
         revoked_at, last_used_at, restrictions, rate_limit"
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

/// The same, one by one: an existing `api_keys` table must have all of them.
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

/// Whether an existing table with `present` columns is this crate's: `Ok(false)` when
/// there is no table yet, an error when it is someone else's.
fn ours(present: &[String]) -> Result<bool, StoreError> {
    if present.is_empty() {
        return Ok(false);
    }
    let missing: Vec<&str> = COLUMN_NAMES
        .iter()
        .copied()
        .filter(|name| !present.iter().any(|p| p == name))
        .collect();
    if missing.is_empty() {
        Ok(true)
    } else {
        Err(StoreError::backend(format!(
            "a table `api_keys` exists but is not tower-api-key's (it lacks {}); \
             give the key store a database or schema of its own",
            missing.join(", ")
        )))
    }
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

/// Implements `KeyStore` for `SqlKeyStore<$db>`: the same queries (`$n` parameters
/// work in both dialects), with the dialect's way to serialise an owner's inserts.
macro_rules! sql_key_store {
    (
        $db:ty,
        $row:ty,
        begin: |$pool:ident, $owner:ident| $begin:expr,
        lock_old: $lock_old:expr,
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
                     expires_at, revoked_at, last_used_at, restrictions, rate_limit) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
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
                let row = $crate::store::timeout::bounded(self.timeout, async {
                    sqlx::query(REVOKE)
                        .bind(id.as_str())
                        .bind($crate::store::codec::nanos(at))
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(database_error)
                })
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
                $crate::store::timeout::bounded(self.timeout, async {
                    sqlx::query(
                        "UPDATE api_keys SET last_used_at = $2 \
                         WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)",
                    )
                    .bind(id.as_str())
                    .bind($crate::store::codec::nanos(at))
                    .execute(&self.pool)
                    .await
                    .map(drop)
                    .map_err(database_error)
                })
                .await
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
            }
            .into_record()
        }
    };
}
pub(crate) use sql_key_store;
