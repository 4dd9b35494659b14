//! The verifier over the durable stores, each holding 1,000,000 keys, against the
//! in-memory baseline: [`Authenticator::authenticate`] on a valid `Authorization:
//! Bearer` header, rotating among 8 keys.
//!
//! - `stores/in_memory_1m`: [`InMemoryKeyStore`] with 1,000,000 keys, the baseline
//!   (the same case as `verify/with_1m_keys`).
//! - `stores/cached_{postgres,redis,sqlite}_1m`: a [`CachedKeyStore`] (default
//!   settings) in front of each durable store, warm: the 8 keys are cached. Target:
//!   within 1.5× the baseline.
//! - `stores/{postgres,redis,sqlite}_1m_uncached`: the bare store, one round trip per
//!   verification (PostgreSQL and Redis on loopback, SQLite in a file).
//!
//! PostgreSQL and Redis are found through `TEST_POSTGRES_URL` and `TEST_REDIS_URL`
//! (`eval "$(scripts/services.sh)"`); a backend whose variable is unset is skipped.
//!
//! The keys stay between runs, apart from the tests' data: PostgreSQL schema
//! `tower_api_key_bench` (its own `api_keys` table, made by `migrate()`), Redis
//! namespace `tower-api-key-bench`, SQLite file `target/bench-keys.db`. Each holds
//! 999,992 bulk records of owner `bench-1m`, written once in large batches (SQL inside
//! one transaction, a Redis pipeline) and encoded as the stores encode them, then only
//! counted on later runs; plus the 8 keys measured, minted at every run and written
//! through the store's own `insert` (owner `bench-1m-valid`, replacing the previous
//! run's). Loading and counting happen even when a filter leaves no case to run.
//!
//! Futures that never wait (in memory, a cache hit) are polled once with a no-op
//! waker, as in the `verify` bench; the uncached stores are driven by a current-thread
//! tokio runtime, one `block_on` per verification.
//!
//! ```text
//! eval "$(scripts/services.sh)"
//! cargo bench --bench stores
//! ```

mod common;

use std::{
    hint::black_box,
    path::PathBuf,
    str::FromStr,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use common::{block_on, block_on_or_in, filled_store};

use criterion::{
    criterion_group, criterion_main, measurement::WallTime, BenchmarkGroup, Criterion,
};
use http::{header::AUTHORIZATION, request::Parts, HeaderValue};
use redis::AsyncCommands;
use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    QueryBuilder, Sqlite,
};
use tokio::runtime::Runtime;
use tower_api_key::{
    auth::Authenticator,
    key::{ApiKey, KeyMode, KeyPrefix},
    store::{
        BoxError, CachedKeyStore, InsertRule, KeyRecord, KeyStore, PostgresKeyStore, RedisKeyStore,
        SqliteKeyStore,
    },
    AuthError, Principal,
};

/// Keys in every store.
const TOTAL: usize = 1_000_000;
/// How many keys the measurement rotates among.
const ROTATION: usize = 8;
/// Keys written in bulk; the other `ROTATION` go through the store's `insert`.
const BULK: usize = TOTAL - ROTATION;
/// Owner of the bulk records: what is counted to tell whether they are loaded.
const BULK_OWNER: &str = "bench-1m";
/// Owner of the keys measured.
const VALID_OWNER: &str = "bench-1m-valid";
/// The PostgreSQL schema holding the bench's `api_keys` table.
const PG_SCHEMA: &str = "tower_api_key_bench";
/// The Redis namespace of the bench's records.
const REDIS_NAMESPACE: &str = "tower-api-key-bench";

type Result<T, E = BoxError> = std::result::Result<T, E>;

/// A request head carrying the key as `Authorization: Bearer`.
fn bearer(key: &ApiKey) -> Parts {
    let value =
        HeaderValue::from_str(&format!("Bearer {}", key.expose_secret())).expect("header value");
    let mut request = http::Request::new(());
    request.headers_mut().insert(AUTHORIZATION, value);
    request.into_parts().0
}

/// Checks once that every header verifies, then measures `verify` cycling through them.
fn case(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    headers: &[Parts],
    mut verify: impl FnMut(&Parts) -> Result<Principal, AuthError>,
) {
    for h in headers {
        let outcome = verify(h).map(drop).map_err(|e| e.kind());
        assert_eq!(outcome, Ok(()), "{name}");
    }
    let mut i = 0;
    group.bench_function(name, |b| {
        b.iter(|| {
            i = (i + 1) % headers.len();
            verify(black_box(&headers[i]))
        })
    });
}

/// A bulk record as the durable stores write it (`src/store/codec.rs`): times in
/// nanoseconds since the Unix epoch, scopes and restrictions as JSON text, the hash as
/// its 32 bytes; the optional columns (expiry, revocation, last use, rate limit) unset.
struct Row {
    id: String,
    prefix: String,
    hash: Vec<u8>,
    owner: String,
    name: String,
    scopes: String,
    created_at: i64,
    restrictions: String,
}

impl Row {
    fn of(record: &KeyRecord) -> Row {
        assert!(
            record.expires_at.is_none()
                && record.revoked_at.is_none()
                && record.last_used_at.is_none()
                && record.rate_limit.is_none(),
            "bulk records leave the optional columns unset"
        );
        let since_epoch = record
            .created_at
            .duration_since(UNIX_EPOCH)
            .expect("created after 1970");
        Row {
            id: record.id.as_str().to_owned(),
            prefix: record.prefix.as_str().to_owned(),
            hash: record.hash.as_bytes().to_vec(),
            owner: record.owner.clone(),
            name: record.name.clone(),
            scopes: serde_json::to_string(&record.scopes).expect("scopes as JSON"),
            created_at: i64::try_from(since_epoch.as_nanos()).expect("created before 2262"),
            restrictions: serde_json::to_string(&record.restrictions)
                .expect("restrictions as JSON"),
        }
    }
}

/// `n` bulk records of freshly minted keys, shaped like `filled_store`'s.
fn bulk_rows(n: usize) -> Vec<Row> {
    (0..n)
        .map(|_| {
            let key = ApiKey::generate(KeyMode::Live).expect("OS random source");
            Row::of(
                &KeyRecord::builder(&key, BULK_OWNER)
                    .scope("account:read")
                    .build(),
            )
        })
        .collect()
}

/// The `BULK` records in batches of `batch`, minted on a blocking thread while the
/// previous batch is written.
fn bulk_batches(batch: usize) -> tokio::sync::mpsc::Receiver<Vec<Row>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(2);
    tokio::task::spawn_blocking(move || {
        let mut left = BULK;
        while left > 0 {
            let n = batch.min(left);
            if sender.blocking_send(bulk_rows(n)).is_err() {
                return;
            }
            left -= n;
        }
    });
    receiver
}

/// Checks that a bulk record reads back through the store, as written.
async fn check_bulk(store: &impl KeyStore, prefix: &str) -> Result<()> {
    let prefix = KeyPrefix::from_str(prefix).map_err(|_| "unreadable bulk prefix")?;
    let record = store
        .find_by_prefix(&prefix)
        .await?
        .ok_or("bulk record not found")?;
    assert_eq!(record.owner, BULK_OWNER);
    assert_eq!(record.scopes, ["account:read"]);
    assert!(record.works_at(SystemTime::now()));
    Ok(())
}

/// Mints the `ROTATION` keys to measure and inserts them through the store itself.
async fn insert_valid(store: &impl KeyStore) -> Vec<ApiKey> {
    let mut keys = Vec::with_capacity(ROTATION);
    for _ in 0..ROTATION {
        let key = ApiKey::generate(KeyMode::Live).expect("OS random source");
        let record = KeyRecord::builder(&key, VALID_OWNER)
            .scope("account:read")
            .build();
        store
            .insert(record, InsertRule::Unconditional)
            .await
            .expect("insert a key to measure");
        keys.push(key);
    }
    keys
}

/// How a load went, for the log.
fn report(backend: &str, loaded: bool, started: Instant) {
    let took = started.elapsed();
    if loaded {
        eprintln!("stores: {backend}: loaded {BULK} bulk keys in {took:.1?}");
    } else {
        eprintln!("stores: {backend}: {BULK} bulk keys already there (checked in {took:.1?})");
    }
}

// ---------------------------------------------------------------------------------
// PostgreSQL

/// A store over the bench's schema (its own `api_keys` table), on the current runtime.
async fn open_postgres(url: &str) -> Result<PostgresKeyStore> {
    let options = PgConnectOptions::from_str(url)?.options([("search_path", PG_SCHEMA)]);
    let pool = PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await?;
    let store = PostgresKeyStore::new(pool);
    store.migrate().await?;
    Ok(store)
}

/// Makes sure the bench's schema holds the bulk records, and drops the previous run's
/// measured keys.
async fn load_postgres(url: &str) -> Result<()> {
    let started = Instant::now();
    let admin = PgPoolOptions::new().max_connections(1).connect(url).await?;
    sqlx::raw_sql(&format!("CREATE SCHEMA IF NOT EXISTS {PG_SCHEMA}"))
        .execute(&admin)
        .await?;
    admin.close().await;

    let store = open_postgres(url).await?;
    let pool = store.pool();
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM api_keys WHERE owner = $1")
        .bind(BULK_OWNER)
        .fetch_one(pool)
        .await?;
    let load = count != BULK as i64;
    if load {
        let mut tx = pool.begin().await?;
        // The change trigger would send one notification per row, to nobody who cares:
        // the table is the bench's own and bulk records are never verified. The
        // ALTER is transactional, so no other session sees the trigger off.
        sqlx::query("ALTER TABLE api_keys DISABLE TRIGGER api_keys_notify_change")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM api_keys WHERE owner = $1")
            .bind(BULK_OWNER)
            .execute(&mut *tx)
            .await?;
        let mut batches = bulk_batches(50_000);
        while let Some(rows) = batches.recv().await {
            let column = |f: fn(&Row) -> String| rows.iter().map(f).collect::<Vec<_>>();
            sqlx::query(
                "INSERT INTO api_keys (id, prefix, hash, owner, name, scopes, created_at, \
                 restrictions) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::bytea[], $4::text[], \
                 $5::text[], $6::text[], $7::bigint[], $8::text[])",
            )
            .bind(column(|r| r.id.clone()))
            .bind(column(|r| r.prefix.clone()))
            .bind(rows.iter().map(|r| r.hash.clone()).collect::<Vec<_>>())
            .bind(column(|r| r.owner.clone()))
            .bind(column(|r| r.name.clone()))
            .bind(column(|r| r.scopes.clone()))
            .bind(rows.iter().map(|r| r.created_at).collect::<Vec<_>>())
            .bind(column(|r| r.restrictions.clone()))
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("ALTER TABLE api_keys ENABLE TRIGGER api_keys_notify_change")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        // Now rather than by autovacuum in the middle of a measurement.
        sqlx::raw_sql("VACUUM (ANALYZE) api_keys")
            .execute(pool)
            .await?;
    }
    sqlx::query("DELETE FROM api_keys WHERE owner = $1")
        .bind(VALID_OWNER)
        .execute(pool)
        .await?;
    let sample: String = sqlx::query_scalar("SELECT prefix FROM api_keys WHERE owner = $1 LIMIT 1")
        .bind(BULK_OWNER)
        .fetch_one(pool)
        .await?;
    check_bulk(&store, &sample).await?;
    pool.close().await;
    report("postgres", load, started);
    Ok(())
}

// ---------------------------------------------------------------------------------
// Redis

fn redis_name(kind: &str, name: &str) -> String {
    format!("{REDIS_NAMESPACE}:{kind}:{name}")
}

async fn open_redis(url: &str) -> Result<RedisKeyStore> {
    let store = RedisKeyStore::builder(url)
        .namespace(REDIS_NAMESPACE)
        .build()
        .await?;
    store.migrate().await?;
    Ok(store)
}

/// Makes sure the bench's namespace holds the bulk records (written as
/// `src/store/redis.rs` lays them out: the record's hash, the id's string, the owner's
/// list), and drops the previous run's measured keys.
async fn load_redis(url: &str) -> Result<()> {
    let started = Instant::now();
    let mut conn = redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await?;
    let bulk_list = redis_name("owner", BULK_OWNER);
    // The owner's list is written last in each batch: its length counts complete records.
    let count: usize = conn.llen(&bulk_list).await?;
    let load = count != BULK;
    if load {
        // A partial load: start over.
        let mut cursor = 0_u64;
        loop {
            let (next, names): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{REDIS_NAMESPACE}:*"))
                .arg("COUNT")
                .arg(10_000)
                .query_async(&mut conn)
                .await?;
            if !names.is_empty() {
                let _: usize = conn.unlink(names).await?;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let mut batches = bulk_batches(10_000);
        while let Some(rows) = batches.recv().await {
            let mut pipe = redis::pipe();
            for row in &rows {
                // The fields the insert script writes, in its order; unset ones absent.
                pipe.cmd("HSET")
                    .arg(redis_name("key", &row.prefix))
                    .arg("id")
                    .arg(&row.id)
                    .arg("prefix")
                    .arg(&row.prefix)
                    .arg("hash")
                    .arg(base16ct::lower::encode_string(&row.hash))
                    .arg("owner")
                    .arg(&row.owner)
                    .arg("name")
                    .arg(&row.name)
                    .arg("scopes")
                    .arg(&row.scopes)
                    .arg("created_at")
                    .arg(row.created_at.to_string())
                    .arg("restrictions")
                    .arg(&row.restrictions)
                    .ignore();
                pipe.cmd("SET")
                    .arg(redis_name("id", &row.id))
                    .arg(&row.prefix)
                    .ignore();
            }
            pipe.cmd("RPUSH")
                .arg(&bulk_list)
                .arg(rows.iter().map(|r| r.prefix.as_str()).collect::<Vec<_>>())
                .ignore();
            pipe.query_async::<()>(&mut conn).await?;
        }
    }
    let valid_list = redis_name("owner", VALID_OWNER);
    let old: Vec<String> = conn.lrange(&valid_list, 0, -1).await?;
    for prefix in old {
        let record = redis_name("key", &prefix);
        let id: Option<String> = conn.hget(&record, "id").await?;
        let mut doomed = vec![record];
        doomed.extend(id.map(|id| redis_name("id", &id)));
        let _: usize = conn.del(doomed).await?;
    }
    let _: usize = conn.del(&valid_list).await?;
    let sample: String = conn.lindex(&bulk_list, 0).await?;
    check_bulk(&open_redis(url).await?, &sample).await?;
    report("redis", load, started);
    Ok(())
}

// ---------------------------------------------------------------------------------
// SQLite

fn sqlite_url() -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&dir).expect("target directory");
    format!("sqlite://{}", dir.join("bench-keys.db").display())
}

async fn open_sqlite() -> Result<SqliteKeyStore> {
    let store = SqliteKeyStore::connect(&sqlite_url()).await?;
    store.migrate().await?;
    Ok(store)
}

/// Makes sure the bench's file holds the bulk records, and drops the previous run's
/// measured keys.
async fn load_sqlite() -> Result<()> {
    let started = Instant::now();
    let store = open_sqlite().await?;
    let pool = store.pool();
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM api_keys WHERE owner = $1")
        .bind(BULK_OWNER)
        .fetch_one(pool)
        .await?;
    let load = count != BULK as i64;
    if load {
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        // Room for the indexes' pages until the commit (this connection only).
        sqlx::query("PRAGMA cache_size = -1000000")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM api_keys WHERE owner = $1")
            .bind(BULK_OWNER)
            .execute(&mut *tx)
            .await?;
        let mut batches = bulk_batches(50_000);
        while let Some(rows) = batches.recv().await {
            // 8 parameters a row, under SQLite's limit of 32,766 a statement.
            for chunk in rows.chunks(4_000) {
                let mut insert = QueryBuilder::<Sqlite>::new(
                    "INSERT INTO api_keys (id, prefix, hash, owner, name, scopes, created_at, \
                     restrictions) ",
                );
                insert.push_values(chunk, |mut values, row| {
                    values
                        .push_bind(&row.id)
                        .push_bind(&row.prefix)
                        .push_bind(&row.hash)
                        .push_bind(&row.owner)
                        .push_bind(&row.name)
                        .push_bind(&row.scopes)
                        .push_bind(row.created_at)
                        .push_bind(&row.restrictions);
                });
                insert.build().execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(pool)
            .await?;
    }
    sqlx::query("DELETE FROM api_keys WHERE owner = $1")
        .bind(VALID_OWNER)
        .execute(pool)
        .await?;
    let sample: String = sqlx::query_scalar("SELECT prefix FROM api_keys WHERE owner = $1 LIMIT 1")
        .bind(BULK_OWNER)
        .fetch_one(pool)
        .await?;
    check_bulk(&store, &sample).await?;
    pool.close().await;
    report("sqlite", load, started);
    Ok(())
}

// ---------------------------------------------------------------------------------
// The cases

fn server_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!(
                "stores: {var} is not set, skipping that backend \
                 (`eval \"$(scripts/services.sh)\"` starts the servers)"
            );
            None
        }
    }
}

/// `{backend}_1m_uncached` over the bare store, then `cached_{backend}_1m` over a warm
/// cache in front of it. `store` lives on `io`, which drives every round trip.
fn durable_cases<S: KeyStore + Clone>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    io: &Runtime,
    backend: &str,
    store: S,
) {
    let keys = io.block_on(insert_valid(&store));
    let headers: Vec<_> = keys.iter().map(bearer).collect();

    let auth = Authenticator::new(store.clone());
    case(group, &format!("{backend}_1m_uncached"), &headers, |h| {
        io.block_on(auth.authenticate(h))
    });

    {
        // Entered for the whole case: a first poll that misses the cache (the cold
        // check below; later a TTL expiry or a last-use write) starts its I/O here and
        // is finished on `io`. A hit never looks at the runtime.
        let _entered = io.enter();
        let cache = CachedKeyStore::new(store);
        let auth = Authenticator::new(cache.clone());
        let name = format!("cached_{backend}_1m");
        // Warm it. The change feed (PostgreSQL, Redis) clears the whole cache once it
        // has subscribed, which it does while `io` runs the first lookups: warm again
        // until every key measured stays cached.
        for round in 0.. {
            for h in &headers {
                let outcome = block_on_or_in(io, auth.authenticate(h));
                assert_eq!(outcome.map(drop).map_err(|e| e.kind()), Ok(()), "{name}");
            }
            let cached = keys
                .iter()
                .all(|key| cache.lookup_now(&key.prefix()).is_some());
            if cached {
                break;
            }
            assert!(round < 50, "{name}: the keys measured do not stay cached");
            io.block_on(async { tokio::time::sleep(Duration::from_millis(100)).await });
        }
        case(group, &name, &headers, |h| {
            block_on_or_in(io, auth.authenticate(h))
        });
    }
    // Lets the cache's change-feed task notice the cache is gone (it checks every
    // second) and end, rather than wake during the next backend's measurement.
    io.block_on(async { tokio::time::sleep(Duration::from_millis(1_100)).await });
}

fn stores(c: &mut Criterion) {
    let postgres = server_url("TEST_POSTGRES_URL");
    let redis = server_url("TEST_REDIS_URL");

    {
        let setup = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        if let Some(url) = &postgres {
            setup.block_on(load_postgres(url)).expect("load PostgreSQL");
        }
        if let Some(url) = &redis {
            setup.block_on(load_redis(url)).expect("load Redis");
        }
        setup.block_on(load_sqlite()).expect("load SQLite");
    }

    let mut group = c.benchmark_group("stores");

    {
        let (store, keys) = filled_store(TOTAL, ROTATION);
        let auth = Authenticator::new(store);
        let headers: Vec<_> = keys.iter().map(bearer).collect();
        case(&mut group, "in_memory_1m", &headers, |h| {
            block_on(auth.authenticate(h))
        });
    }

    // Stores are opened on this runtime, so their I/O is driven by the thread that
    // waits for it.
    let io = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Some(url) = &postgres {
        let store = io.block_on(open_postgres(url)).expect("open PostgreSQL");
        durable_cases(&mut group, &io, "postgres", store);
    }
    if let Some(url) = &redis {
        let store = io.block_on(open_redis(url)).expect("open Redis");
        durable_cases(&mut group, &io, "redis", store);
    }
    let store = io.block_on(open_sqlite()).expect("open SQLite");
    durable_cases(&mut group, &io, "sqlite", store);

    group.finish();
}

criterion_group!(benches, stores);
criterion_main!(benches);
