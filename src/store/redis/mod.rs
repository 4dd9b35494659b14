//! [`RedisKeyStore`]: key records in Redis, shared by many instances.

use std::{
    collections::HashMap,
    fmt,
    future::Future,
    sync::{Arc, PoisonError, RwLock, Weak},
    time::{Duration, SystemTime},
};

use redis::{
    aio::{ConnectionManager, ConnectionManagerConfig},
    AsyncCommands, Client, ProtocolVersion, RedisResult,
};

use self::{feed::Channel, scripts::SCRIPTS};
use super::{
    codec::{nanos, Columns},
    timeout::{bounded, DEFAULT_TIMEOUT},
    ChangeListener, InsertRule, KeyId, KeyRecord, KeyStore, Result, StoreError, UsageBatch,
    UsageBucket, Watching,
};
use crate::key::KeyPrefix;

mod feed;
mod quota;
mod scripts;
mod usage;

/// The layout version [`RedisKeyStore::migrate`] records under `<namespace>:schema`.
const LAYOUT_VERSION: &str = "1";

/// Key records in Redis, shared by every instance that connects to the same server and
/// namespace; behind the `redis` feature.
///
/// Every call is bounded by the [timeout](RedisKeyStoreBuilder::timeout): a server that
/// is down or hung makes calls fail with [`StoreError::Timeout`] or
/// [`StoreError::Backend`] — never `Ok(None)` — and the layer answers 503. The
/// connection (redis-rs' `ConnectionManager`) is made on first use and remade after it
/// drops, so an application can start while Redis is away; call
/// [`migrate`](Self::migrate) at startup to check the server instead. Cloning is
/// cheap: clones share the connection.
///
/// Writes are Lua scripts, so each [`InsertRule`] is checked atomically on the server,
/// and every insert, revocation or rotation publishes the prefixes whose records it
/// changed on `<namespace>:changes` (refused and no-op writes publish nothing; last
/// uses are not published), which [`watch`](KeyStore::watch) relays to a cache on
/// every instance. Records hold only the key's SHA-256 hash.
///
/// # Layout
///
/// With the default namespace `tower-api-key`:
///
/// | key | type | holds |
/// | --- | --- | --- |
/// | `tower-api-key:key:<prefix>` | hash | the record: `id`, `prefix`, `hash` (hex), `owner`, `name`, `scopes`, `restrictions` and `metadata` (JSON; absent in records an earlier version wrote: no metadata), `rate_limit`, and `created_at`, `expires_at`, `revoked_at`, `last_used_at` as decimal nanoseconds since the Unix epoch; unset fields are absent |
/// | `tower-api-key:id:<id>` | string | the record's prefix |
/// | `tower-api-key:owner:<owner>` | list | the owner's prefixes, in insertion order |
/// | `tower-api-key:schema` | string | the layout version, written by [`migrate`](Self::migrate) |
/// | `tower-api-key:quota:<bucket>` | string | a shared rate-limit bucket ([`QuotaStore`](super::QuotaStore)) in [`QuotaBucket`](super::QuotaBucket)'s text form, expiring once it is the same as a fresh one |
/// | `tower-api-key:usage:<id>:<hour>` | hash | a key's requests in one hour (hours since the Unix epoch), a counter per [`UsageOutcome`](super::UsageOutcome) name; expires once past the retention |
/// | `tower-api-key:usage:keep_from` | string | the first hour kept (hours since the Unix epoch; only ever raised): older hours are never read |
/// | `tower-api-key:changes` | channel | the prefix of every inserted, revoked or replaced record |
///
/// Scripts derive record keys from the id and owner entries, so this store needs a
/// single Redis server (or a primary with replicas), not Redis Cluster. Its change
/// feed uses RESP3 and so needs Redis 6 or later.
///
/// # Example
///
/// ```no_run
/// use std::time::Duration;
///
/// use tower_api_key::{store::RedisKeyStore, ApiKeyLayer, Authenticator};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisKeyStore::builder("redis://127.0.0.1:6379")
///     .namespace("my-app:api-keys")
///     .timeout(Duration::from_millis(500))
///     .build()
///     .await?;
/// store.migrate().await?; // checks the server; idempotent
///
/// let layer = ApiKeyLayer::new(Authenticator::new(store.clone()));
/// // …and `store` itself goes to key management.
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisKeyStore {
    /// Replaced after a timeout: a connection that went silent (a half-open TCP
    /// connection) would otherwise time out every call until the kernel gives up.
    conn: Arc<RwLock<ConnectionManager>>,
    shared: Arc<Shared>,
}

struct Shared {
    names: Names,
    timeout: Duration,
    check_durability: bool,
    /// Makes the calls' connection (again).
    client: Client,
    config: ConnectionManagerConfig,
    /// Opens the change feed's connections (RESP3, for pushes).
    feed: Client,
}

impl RedisKeyStore {
    /// A store at `url` (`redis://[user:password@]host[:port][/db]`) with the default
    /// namespace and timeout; see [`builder`](Self::builder).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the URL does not parse. An unreachable server is
    /// not an error here: calls fail until it answers.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::builder(url).build().await
    }

    /// Starts a store at `url` with settings of your own.
    pub fn builder(url: impl Into<String>) -> RedisKeyStoreBuilder {
        RedisKeyStoreBuilder {
            url: url.into(),
            namespace: "tower-api-key".into(),
            timeout: DEFAULT_TIMEOUT,
            check_durability: true,
        }
    }

    /// Prepares the server, idempotently: records the layout version under
    /// `<namespace>:schema` and loads the Lua scripts. Call it at startup (every
    /// instance may): it checks that the server answers and that the namespace holds
    /// a layout this version reads. The store works without it — scripts load on
    /// first use, nothing else needs creating.
    ///
    /// It also checks that the server keeps what it acknowledged (see
    /// [`check_durability`](RedisKeyStoreBuilder::check_durability)): a revocation a
    /// restarted server forgot would bring the key back.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the server fails, could lose writes, or the
    /// namespace holds another layout version; [`StoreError::Timeout`] when it does
    /// not answer in time.
    pub async fn migrate(&self) -> Result<()> {
        if self.shared.check_durability {
            self.check_durability().await?;
        }
        let schema = self.shared.names.schema();
        let mut conn = self.connection();
        let version = self
            .run(async {
                let _: bool = conn.set_nx(&schema, LAYOUT_VERSION).await?;
                for script in SCRIPTS.all() {
                    script.prepare_invoke().load_async(&mut conn).await?;
                }
                conn.get::<_, Option<String>>(&schema).await
            })
            .await?;
        match version.as_deref() {
            Some(LAYOUT_VERSION) => Ok(()),
            other => Err(StoreError::backend(format!(
                "Redis namespace `{}` holds key layout version {}; this version reads {LAYOUT_VERSION}",
                self.shared.names.namespace,
                other.unwrap_or("(none)"),
            ))),
        }
    }

    /// Refuses a server without the append-only file or with an `allkeys-*` eviction
    /// policy.
    async fn check_durability(&self) -> Result<()> {
        let mut conn = self.connection();
        let settings: HashMap<String, String> = self
            .run(async {
                redis::cmd("CONFIG")
                    .arg("GET")
                    .arg("appendonly")
                    .arg("maxmemory-policy")
                    .query_async(&mut conn)
                    .await
            })
            .await
            .map_err(|e| {
                StoreError::backend(format!(
                    "cannot read the Redis server's persistence settings ({e}); {SETTINGS_UNREADABLE}"
                ))
            })?;
        if let Some(problem) = durability_problem(&settings) {
            return Err(StoreError::backend(problem));
        }
        Ok(())
    }

    /// One Redis call, bounded by the timeout; its errors are backend errors. After a
    /// timeout the connection is replaced: the next call connects afresh.
    async fn run<T>(&self, call: impl Future<Output = RedisResult<T>>) -> Result<T> {
        let outcome = bounded(self.shared.timeout, async {
            call.await.map_err(StoreError::backend)
        })
        .await;
        if matches!(outcome, Err(StoreError::Timeout)) {
            self.reconnect();
        }
        outcome
    }

    fn connection(&self) -> ConnectionManager {
        self.conn
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn reconnect(&self) {
        let fresh = ConnectionManager::new_lazy_with_config(
            self.shared.client.clone(),
            self.shared.config.clone(),
        );
        if let Ok(fresh) = fresh {
            *self.conn.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        }
    }
}

impl fmt::Debug for RedisKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the URL: it may carry a password.
        f.debug_struct("RedisKeyStore")
            .field("namespace", &self.shared.names.namespace)
            .field("timeout", &self.shared.timeout)
            .finish_non_exhaustive()
    }
}

/// Settings for a [`RedisKeyStore`]; see [`RedisKeyStore::builder`].
#[must_use]
pub struct RedisKeyStoreBuilder {
    url: String,
    namespace: String,
    timeout: Duration,
    check_durability: bool,
}

impl RedisKeyStoreBuilder {
    /// The prefix of every Redis key and channel the store uses (default
    /// `tower-api-key`): stores with different namespaces share a server without
    /// seeing each other's records.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// How long one call may wait for Redis, connecting included (default 2 s); past
    /// it the call fails with [`StoreError::Timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Whether [`migrate`](RedisKeyStore::migrate) refuses a server that could lose
    /// revocations (default `true`): one without the append-only file
    /// (`appendonly yes`), which forgets the writes since its last snapshot when it
    /// restarts, or with an `allkeys-*` eviction policy, which may drop records and
    /// indexes under memory pressure. Turn it off only for a throwaway server, or
    /// when the server's `CONFIG` command is disabled and you have checked both
    /// settings yourself.
    pub fn check_durability(mut self, check: bool) -> Self {
        self.check_durability = check;
        self
    }

    /// The store. It connects on first use, so this does not wait for the server;
    /// must be awaited within a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the URL does not parse.
    pub async fn build(self) -> Result<RedisKeyStore> {
        let client = Client::open(self.url.as_str()).map_err(StoreError::backend)?;
        let info = client.get_connection_info().clone();
        let resp3 = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let feed = Client::open(info.set_redis_settings(resp3)).map_err(StoreError::backend)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            // Calls are bounded by `bounded`, which answers `StoreError::Timeout`.
            .set_response_timeout(None);
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
            .map_err(StoreError::backend)?;
        Ok(RedisKeyStore {
            conn: Arc::new(RwLock::new(conn)),
            shared: Arc::new(Shared {
                names: Names {
                    namespace: self.namespace,
                },
                timeout: self.timeout,
                check_durability: self.check_durability,
                client,
                config,
                feed,
            }),
        })
    }
}

impl fmt::Debug for RedisKeyStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisKeyStoreBuilder")
            .field("namespace", &self.namespace)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl KeyStore for RedisKeyStore {
    async fn find_by_prefix(&self, prefix: &KeyPrefix) -> Result<Option<Arc<KeyRecord>>> {
        let mut conn = self.connection();
        let key = self.shared.names.record(prefix.as_str());
        let fields: HashMap<String, String> = self.run(conn.hgetall(key)).await?;
        if fields.is_empty() {
            return Ok(None);
        }
        decode(fields).map(|record| Some(Arc::new(record)))
    }

    async fn insert(&self, record: KeyRecord, rule: InsertRule) -> Result<()> {
        let names = &self.shared.names;
        let columns = Columns::of(&record)?;
        let mut call = SCRIPTS.insert.prepare_invoke();
        call.key(names.record(&columns.prefix))
            .key(names.id(&columns.id))
            .key(names.owner(&columns.owner));
        // No `_` arm: `InsertRule` is non-exhaustive only outside this crate, so a new
        // rule fails to compile here until handled (the script refuses unknown names).
        let (rule, revoke_at) = match rule {
            InsertRule::Unconditional => ("unconditional", String::new()),
            InsertRule::NoOtherActiveKey => ("one-active", String::new()),
            InsertRule::Replace { old, revoke_at } => {
                call.key(names.id(old.as_str()));
                ("replace", nanos(revoke_at).to_string())
            }
        };
        call.arg(&names.namespace)
            .arg(rule)
            .arg(&columns.prefix)
            .arg(&columns.owner)
            .arg(columns.created_at)
            .arg(revoke_at);
        for (field, value) in encode(columns) {
            call.arg(field).arg(value);
        }
        let mut conn = self.connection();
        let outcome: String = self.run(call.invoke_async(&mut conn)).await?;
        match outcome.as_str() {
            "ok" => Ok(()),
            "duplicate" => Err(StoreError::Duplicate),
            "active" => Err(StoreError::ActiveKeyExists),
            "not-found" => Err(StoreError::NotFound),
            "revoked" => Err(StoreError::AlreadyRevoked),
            other => Err(StoreError::backend(format!(
                "unexpected answer from the insert script: {other}"
            ))),
        }
    }

    async fn revoke(&self, id: &KeyId, at: SystemTime) -> Result<Option<KeyRecord>> {
        let names = &self.shared.names;
        let mut call = SCRIPTS.revoke.key(names.id(id.as_str()));
        call.arg(&names.namespace).arg(nanos(at));
        let mut conn = self.connection();
        let fields: Option<HashMap<String, String>> =
            self.run(call.invoke_async(&mut conn)).await?;
        fields.map(decode).transpose()
    }

    async fn list_by_owner(&self, owner: &str) -> Result<Vec<KeyRecord>> {
        let names = &self.shared.names;
        let mut call = SCRIPTS.list.key(names.owner(owner));
        call.arg(&names.namespace);
        let mut conn = self.connection();
        let rows: Vec<HashMap<String, String>> = self.run(call.invoke_async(&mut conn)).await?;
        let mut records = rows.into_iter().map(decode).collect::<Result<Vec<_>>>()?;
        // Stable: records created at the same instant stay in insertion order.
        records.sort_by_key(|r| r.created_at);
        Ok(records)
    }

    fn keeps_usage(&self) -> bool {
        true
    }

    async fn add_usage(&self, batch: &UsageBatch) -> Result<()> {
        self.add_usage_batch(batch).await
    }

    async fn usage(
        &self,
        id: &KeyId,
        from: SystemTime,
        to: SystemTime,
    ) -> Result<Vec<UsageBucket>> {
        self.read_usage(id, from, to).await
    }

    async fn record_last_use(&self, id: &KeyId, at: SystemTime) -> Result<()> {
        let names = &self.shared.names;
        let mut call = SCRIPTS.last_use.key(names.id(id.as_str()));
        call.arg(&names.namespace).arg(nanos(at));
        let mut conn = self.connection();
        self.run(call.invoke_async::<()>(&mut conn)).await
    }

    async fn set_metadata(&self, id: &KeyId, name: &str, value: Option<&str>) -> Result<()> {
        let names = &self.shared.names;
        let mut call = SCRIPTS.set_metadata.key(names.id(id.as_str()));
        call.arg(&names.namespace).arg(name);
        if let Some(value) = value {
            call.arg(value);
        }
        let mut conn = self.connection();
        let found: i64 = self.run(call.invoke_async(&mut conn)).await?;
        if found == 1 {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    /// Starts a tokio task that subscribes to `<namespace>:changes` on a connection of
    /// its own and relays each prefix as [`Change::Key`](crate::store::Change::Key), with [`Change::All`](crate::store::Change::All) after
    /// every (re)subscription. It reconnects after a drop (waiting 100 ms, doubling up
    /// to 2 s), pings a quiet connection every second to notice one that died
    /// silently, and ends within about a second of the listener being dropped.
    ///
    /// The task runs on the current tokio runtime; outside one there is nothing to run
    /// it on, and the answer is [`Watching::Unsupported`].
    fn watch(&self, listener: Weak<dyn ChangeListener>) -> Watching {
        let channel = Channel {
            client: self.shared.feed.clone(),
            name: self.shared.names.channel(),
            timeout: self.shared.timeout,
        };
        super::feed::watch(channel, self.shared.timeout, listener)
    }
}

/// The Redis names of one namespace; the scripts build record keys the same way
/// (`<namespace>:key:<prefix>`).
struct Names {
    namespace: String,
}

impl Names {
    fn record(&self, prefix: &str) -> String {
        format!("{}:key:{prefix}", self.namespace)
    }

    fn id(&self, id: &str) -> String {
        format!("{}:id:{id}", self.namespace)
    }

    fn owner(&self, owner: &str) -> String {
        format!("{}:owner:{owner}", self.namespace)
    }

    fn schema(&self) -> String {
        format!("{}:schema", self.namespace)
    }

    fn quota(&self, bucket: &str) -> String {
        format!("{}:quota:{bucket}", self.namespace)
    }

    fn usage(&self, id: &str, hour: u64) -> String {
        format!("{}:usage:{id}:{hour}", self.namespace)
    }

    fn usage_kept_from(&self) -> String {
        format!("{}:usage:keep_from", self.namespace)
    }

    fn channel(&self) -> String {
        format!("{}:changes", self.namespace)
    }
}

/// A record's hash fields; unset options are left out.
fn encode(columns: Columns) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("id", columns.id),
        ("prefix", columns.prefix),
        ("hash", base16ct::lower::encode_string(&columns.hash)),
        ("owner", columns.owner),
        ("name", columns.name),
        ("scopes", columns.scopes),
        ("created_at", columns.created_at.to_string()),
        ("restrictions", columns.restrictions),
        ("metadata", columns.metadata),
    ];
    let options = [
        ("expires_at", columns.expires_at.map(|t| t.to_string())),
        ("revoked_at", columns.revoked_at.map(|t| t.to_string())),
        ("last_used_at", columns.last_used_at.map(|t| t.to_string())),
        ("rate_limit", columns.rate_limit),
    ];
    fields.extend(
        options
            .into_iter()
            .filter_map(|(field, value)| Some((field, value?))),
    );
    fields
}

/// The record in a hash's fields; anything missing or unreadable is a backend error.
fn decode(fields: HashMap<String, String>) -> Result<KeyRecord> {
    let mut f = Fields(fields);
    let columns = Columns {
        id: f.required("id")?,
        prefix: f.required("prefix")?,
        hash: base16ct::lower::decode_vec(f.required("hash")?).map_err(|_| corrupt("hash"))?,
        owner: f.required("owner")?,
        name: f.required("name")?,
        scopes: f.required("scopes")?,
        created_at: f.time("created_at")?.ok_or_else(|| corrupt("created_at"))?,
        expires_at: f.time("expires_at")?,
        revoked_at: f.time("revoked_at")?,
        last_used_at: f.time("last_used_at")?,
        restrictions: f.required("restrictions")?,
        rate_limit: f.optional("rate_limit"),
        metadata: f.optional("metadata").unwrap_or_else(|| "{}".to_owned()),
    };
    columns.into_record()
}

/// A stored hash, read field by field.
struct Fields(HashMap<String, String>);

impl Fields {
    fn optional(&mut self, field: &'static str) -> Option<String> {
        self.0.remove(field)
    }

    fn required(&mut self, field: &'static str) -> Result<String> {
        self.optional(field).ok_or_else(|| corrupt(field))
    }

    fn time(&mut self, field: &'static str) -> Result<Option<i64>> {
        self.optional(field)
            .map(|text| text.parse().map_err(|_| corrupt(field)))
            .transpose()
    }
}

fn corrupt(field: &'static str) -> StoreError {
    StoreError::backend(format!(
        "stored key record has a missing or unreadable `{field}`"
    ))
}

/// What to do when the server's persistence settings cannot be read.
const SETTINGS_UNREADABLE: &str = "check `appendonly yes` and the eviction policy yourself, \
     then turn `check_durability` off";

/// Why a server with these settings (`CONFIG GET appendonly maxmemory-policy`) could
/// lose an acknowledged revocation, if it could.
fn durability_problem(settings: &HashMap<String, String>) -> Option<&'static str> {
    if settings.get("appendonly").map(String::as_str) != Some("yes") {
        return Some(
            "the Redis server runs without `appendonly yes`: after a restart it \
             would forget the revocations since its last snapshot",
        );
    }
    if settings
        .get("maxmemory-policy")
        .is_some_and(|policy| policy.starts_with("allkeys-"))
    {
        return Some(
            "the Redis server's `maxmemory-policy` is `allkeys-*`: it may evict key \
             records and indexes; use `noeviction` (or a `volatile-*` policy)",
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::{durability_problem, SETTINGS_UNREADABLE};

    fn settings(appendonly: &str, policy: &str) -> HashMap<String, String> {
        HashMap::from([
            ("appendonly".to_owned(), appendonly.to_owned()),
            ("maxmemory-policy".to_owned(), policy.to_owned()),
        ])
    }

    /// Finding: three error messages had runs of spaces where a string broken across
    /// lines had lost its `\`.
    #[test]
    fn durability_messages_had_runs_of_spaces() {
        let no_aof = durability_problem(&settings("no", "noeviction"));
        let evicting = durability_problem(&settings("yes", "allkeys-lru"));
        assert_eq!(durability_problem(&settings("yes", "noeviction")), None);
        assert_eq!(durability_problem(&settings("yes", "volatile-lru")), None);
        for message in [no_aof, evicting, Some(SETTINGS_UNREADABLE)] {
            let message = message.expect("a problem");
            assert!(!message.contains("  "), "a run of spaces in {message:?}");
        }
    }
}
