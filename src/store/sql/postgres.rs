use std::{
    sync::{
        atomic::{AtomicU32, Ordering::Relaxed},
        Weak,
    },
    time::{Duration, SystemTime},
};

use sqlx::{
    postgres::{PgListener, PgPoolOptions, PgRow},
    PgPool, Postgres,
};

use super::{
    database_error, migration, ours, sql_key_store, usage_table, Schema, SqlKeyStore, ADD_USAGE,
    FIND_BY_PREFIX, LIST_BY_OWNER, READ_USAGE, REVOKE,
};
use crate::store::{
    feed::{self, ChangeChannel, Heard, Subscription},
    quota::epoch_ms,
    timeout::bounded,
    ChangeListener, Lease, LeaseRequest, QuotaBucket, QuotaStore, Result, StoreError, Watching,
};

/// Keys in PostgreSQL (feature `postgres`): one store shared by many instances of a
/// service.
///
/// [`migrate`](Self::migrate) also installs a trigger that announces every change to
/// a key (insert, revocation, rotation — by this crate or by hand in `psql`) on the
/// `tower_api_key_changes` channel, which [`watch`](crate::store::KeyStore::watch)
/// listens to: a [`CachedKeyStore`](crate::store) on every instance drops a revoked key
/// as soon as the notification arrives.
///
/// ```no_run
/// use tower_api_key::{store::PostgresKeyStore, ApiKeyLayer};
///
/// # async fn run() -> Result<(), tower_api_key::store::StoreError> {
/// let store = PostgresKeyStore::connect("postgres://app@localhost/app").await?;
/// store.migrate().await?;
/// let layer = ApiKeyLayer::new(store);
/// # Ok(()) }
/// ```
pub type PostgresKeyStore = SqlKeyStore<Postgres>;

/// The channel the trigger notifies, with the key's prefix as payload.
const CHANNEL: &str = "tower_api_key_changes";

/// The columns of `api_keys` in the current schema (none without the table).
const COLUMNS: &str = "SELECT column_name::text FROM information_schema.columns \
                       WHERE table_schema = current_schema() AND table_name = 'api_keys'";

/// Taken by `migrate`, so that instances starting together do not race on `CREATE`.
const MIGRATE_LOCK: i64 = 0x746f_7765_725f_6170;

// Each object is created only when missing, so that a migration on a live database
// takes no lock on the table (and cannot deadlock with requests); only adding a column
// to an older table does, briefly (see `migrate`).
const SCHEMA: &str = concat!(
    "
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    prefix TEXT NOT NULL UNIQUE,
    hash BYTEA NOT NULL,
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    last_used_at BIGINT,
    restrictions TEXT NOT NULL,
    rate_limit TEXT,
    metadata TEXT NOT NULL DEFAULT '{}'
);
DO $$
BEGIN
    IF to_regclass('api_keys_owner') IS NULL THEN
        CREATE INDEX api_keys_owner ON api_keys (owner, created_at);
    END IF;
END
$$;
CREATE OR REPLACE FUNCTION api_keys_notify_change() RETURNS trigger AS $$
BEGIN
    -- Last-use and metadata writes change nothing a cache cares about: stay quiet.
    IF TG_OP = 'UPDATE'
       AND (OLD.prefix, OLD.hash, OLD.owner, OLD.name, OLD.scopes, OLD.expires_at,
            OLD.revoked_at, OLD.restrictions, OLD.rate_limit)
           IS NOT DISTINCT FROM
           (NEW.prefix, NEW.hash, NEW.owner, NEW.name, NEW.scopes, NEW.expires_at,
            NEW.revoked_at, NEW.restrictions, NEW.rate_limit) THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM pg_notify('tower_api_key_changes', OLD.prefix);
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.prefix <> OLD.prefix) THEN
        PERFORM pg_notify('tower_api_key_changes', NEW.prefix);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                   WHERE tgname = 'api_keys_notify_change'
                     AND tgrelid = 'api_keys'::regclass) THEN
        CREATE TRIGGER api_keys_notify_change AFTER INSERT OR UPDATE OR DELETE ON api_keys
            FOR EACH ROW EXECUTE FUNCTION api_keys_notify_change();
    END IF;
END
$$;
CREATE TABLE IF NOT EXISTS api_key_quotas (
    bucket TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    idle_at BIGINT NOT NULL
);
",
    usage_table!(),
    "DO $$
BEGIN
    IF to_regclass('api_key_usage_hour') IS NULL THEN
        CREATE INDEX api_key_usage_hour ON api_key_usage (hour);
    END IF;
END
$$;
"
);

/// Locks a bucket's row (making it, fresh, when missing) and reads it with the
/// database's clock, in milliseconds since the epoch.
const LOCK_BUCKET: &str = "INSERT INTO api_key_quotas (bucket, state, idle_at) VALUES ($1, '', 0) \
                           ON CONFLICT (bucket) DO UPDATE SET bucket = excluded.bucket \
                           RETURNING state, \
                           (extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/// Every this many leases (per process), buckets that are the same as fresh ones are
/// deleted: the table holds the keys and clients counted lately.
const DROP_IDLE_EVERY: u32 = 1024;

impl SqlKeyStore<Postgres> {
    /// Connects to the database at `url` (`postgres://user:password@host/db`). Run
    /// [`migrate`](Self::migrate) before first use.
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(database_error)?;
        Ok(Self::new(pool))
    }

    /// Creates the `api_keys` table (in the connection's current schema), its index,
    /// the change trigger and the `api_key_quotas` table (shared rate limits,
    /// [`QuotaStore`]) if missing, and adds the columns a table made before
    /// them lacks (existing keys keep working; the trigger stays quiet for metadata,
    /// as for last-use writes). Idempotent, and safe when several instances start at
    /// once; when everything is in place it only reads the catalog, so a role without
    /// `CREATE` privileges can run it at every start. Adding a column locks the table
    /// briefly: `migrate` waits at most the store's timeout for that lock (then fails,
    /// and requests go on), never queueing requests behind it for longer. A table
    /// `api_keys` that is not this crate's is refused, never altered.
    pub async fn migrate(&self) -> Result<()> {
        bounded(self.timeout, self.create_schema()).await
    }

    async fn create_schema(&self) -> Result<()> {
        // Already in place (the common case at every start): no DDL, so no lock on the
        // table and no privilege beyond reading the catalog.
        let present: Vec<String> = sqlx::query_scalar(COLUMNS)
            .fetch_all(&self.pool)
            .await
            .map_err(database_error)?;
        let triggered: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
             WHERE t.tgname = 'api_keys_notify_change' AND c.relname = 'api_keys' \
             AND c.relnamespace = current_schema()::regnamespace) \
             AND to_regclass(quote_ident(current_schema()) || '.api_key_quotas') IS NOT NULL \
             AND to_regclass(quote_ident(current_schema()) || '.api_key_usage_hour') IS NOT NULL",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(database_error)?;
        if ours(&present)? == Schema::Current && triggered {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(database_error)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATE_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(database_error)?;
        // An `ALTER TABLE` waiting for its lock would hold up every request queued
        // behind it: give up on the lock instead (SET takes no parameters).
        let wait = self.timeout.as_millis().clamp(1, i32::MAX as u128);
        sqlx::query(&format!("SET LOCAL lock_timeout = {wait}"))
            .execute(&mut *tx)
            .await
            .map_err(database_error)?;
        // Read again under the lock: another instance may have migrated meanwhile.
        let present: Vec<String> = sqlx::query_scalar(COLUMNS)
            .fetch_all(&mut *tx)
            .await
            .map_err(database_error)?;
        // Several statements: the simple-query protocol (no parameters).
        sqlx::Executor::execute(&mut *tx, migration(&present, SCHEMA)?.as_str())
            .await
            .map_err(database_error)?;
        tx.commit().await.map_err(database_error)
    }
}

sql_key_store!(
    Postgres,
    PgRow,
    begin: |pool, owner| async {
        // READ COMMITTED whatever the database's default: under REPEATABLE READ the
        // snapshot would predate the lock, and the rule's check miss a racing insert.
        let mut tx = pool.begin_with("BEGIN ISOLATION LEVEL READ COMMITTED").await?;
        // Serialises the owner's inserts: the rule's check and the write are atomic.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(owner)
            .execute(&mut *tx)
            .await?;
        Ok::<_, sqlx::Error>(tx)
    }
    .await,
    // READ COMMITTED: an upsert then adds to a row another batch just committed,
    // rather than failing to serialise.
    begin_usage: |pool| pool.begin_with("BEGIN ISOLATION LEVEL READ COMMITTED").await,
    lock_old: " FOR UPDATE",
    set_metadata: "UPDATE api_keys SET metadata = (CASE WHEN $3::text IS NULL \
                   THEN metadata::jsonb - $2::text \
                   ELSE metadata::jsonb || jsonb_build_object($2::text, $3::text) END)::text \
                   WHERE id = $1",
    more: {
        /// Listens on the change channel from a task on the current tokio runtime;
        /// outside one there is nothing to run it on: `Unsupported`.
        fn watch(&self, listener: Weak<dyn ChangeListener>) -> Watching {
            feed::watch(self.pool.clone(), self.timeout, listener)
        }
    }
);

/// Each bucket is a row of `api_key_quotas` (made by [`migrate`](SqlKeyStore::migrate))
/// holding [`QuotaBucket`]'s text form: a lease locks the row in a READ COMMITTED
/// transaction, leases at the database's clock and writes it back (four round trips,
/// made by a slice's first request only). Rows the same as fresh buckets are deleted
/// now and then.
#[async_trait::async_trait]
impl QuotaStore for SqlKeyStore<Postgres> {
    async fn lease(&self, request: &LeaseRequest<'_>) -> Result<Lease> {
        let lease = bounded(self.timeout, self.lease_in_transaction(request)).await?;
        static LEASES: AtomicU32 = AtomicU32::new(0);
        if LEASES.fetch_add(1, Relaxed).is_multiple_of(DROP_IDLE_EVERY) {
            let drop_idle = sqlx::query(
                "DELETE FROM api_key_quotas \
                 WHERE idle_at < (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
            )
            .execute(&self.pool);
            // The lease stands whatever happens to the clean-up.
            if let Err(error) = bounded(self.timeout, async {
                drop_idle.await.map_err(database_error)
            })
            .await
            {
                tracing::warn!(%error, "could not delete idle rate-limit buckets");
            }
        }
        Ok(lease)
    }
}

impl SqlKeyStore<Postgres> {
    async fn lease_in_transaction(&self, request: &LeaseRequest<'_>) -> Result<Lease> {
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
            .await
            .map_err(database_error)?;
        let (state, now): (String, i64) = sqlx::query_as(LOCK_BUCKET)
            .bind(request.bucket())
            .fetch_one(&mut *tx)
            .await
            .map_err(database_error)?;
        let mut bucket = if state.is_empty() {
            QuotaBucket::default()
        } else {
            QuotaBucket::parse(&state).ok_or_else(|| {
                StoreError::backend(format!(
                    "api_key_quotas holds an unreadable bucket for {}",
                    request.bucket()
                ))
            })?
        };
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(now).unwrap_or(0));
        let lease = bucket.lease(now, request);
        let idle_at = epoch_ms(bucket.idle_at(request.rate()));
        sqlx::query("UPDATE api_key_quotas SET state = $2, idle_at = $3 WHERE bucket = $1")
            .bind(request.bucket())
            .bind(bucket.to_string())
            .bind(i64::try_from(idle_at).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await
            .map_err(database_error)?;
        tx.commit().await.map_err(database_error)?;
        Ok(lease)
    }
}

impl ChangeChannel for PgPool {
    type Subscription = PgListener;

    async fn subscribe(&self) -> Result<PgListener> {
        let mut listener = PgListener::connect_with(self)
            .await
            .map_err(database_error)?;
        // A lost connection is reported (and re-made by the relay), not silently
        // re-made inside.
        listener.eager_reconnect(false);
        listener.listen(CHANNEL).await.map_err(database_error)?;
        Ok(listener)
    }
}

impl Subscription for PgListener {
    async fn next(&mut self) -> Heard {
        match self.try_recv().await {
            Ok(Some(notification)) => notification
                .payload()
                .parse()
                .map_or(Heard::Other, Heard::Key),
            // Lost (with `eager_reconnect` off, `try_recv` says so at once).
            Ok(None) | Err(_) => Heard::Lost,
        }
    }

    async fn ping(&mut self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&mut *self)
            .await
            .map_err(database_error)?;
        Ok(())
    }
}
