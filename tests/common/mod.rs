//! Shared helpers: a real axum `Router` behind the layer, keys in an in-memory store,
//! and a counter that proves whether the inner handler ran.
#![allow(dead_code, unreachable_pub)]

pub mod proxy;
pub mod quickstart;

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use axum::{
    body::Body,
    routing::{get, post},
    Json, Router,
};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use tower_api_key::{
    error::Envelope,
    store::{InsertRule, KeyStore},
    ApiKey, ApiKeyLayer, Authenticator, InMemoryKeyStore, KeyMode, KeyRecord, Principal,
    RequireScopeLayer,
};

/// `GET /api/account` (answers the caller's owner) behind an `ApiKeyLayer` built
/// from `auth`: the API next to the management routes, as the quickstart wires it.
pub fn account_api(auth: Authenticator) -> Router {
    Router::new()
        .route(
            "/api/account",
            get(|p: Principal| async move { p.owner().to_owned() }),
        )
        .layer(ApiKeyLayer::new(auth))
}

/// The `Cookie` header value of a logged-in session of `user`.
pub fn session_cookie(sessions: &tower_api_key::session::CookieSessions, user: &str) -> String {
    let set = sessions.login(&tower_api_key::session::SessionUser::new(user));
    let text = set.to_str().expect("ascii cookie");
    text.split(';').next().unwrap_or(text).to_owned()
}

/// The generic 401 body: unknown prefix, wrong secret, malformed and missing.
pub const INVALID_BODY: &str = r#"{"error":{"code":"unauthorized","message":"Missing or invalid authentication credentials."}}"#;

pub struct TestApp {
    pub router: Router,
    pub store: InMemoryKeyStore,
    /// `demo`, scopes `account:read` + `signals:write`.
    pub full: ApiKey,
    /// `acme`, scope `account:read`.
    pub read_only: ApiKey,
    pub calls: Arc<AtomicUsize>,
}

/// The same key text with its last hex digit changed: right prefix, wrong secret.
pub fn wrong_secret(key: &str) -> String {
    let (head, last) = key.split_at(key.len() - 1);
    format!("{head}{}", if last == "0" { '1' } else { '0' })
}

/// A request with `Authorization: Bearer <key>` when a key is given.
pub fn request(method: Method, uri: &str, key: Option<&str>) -> Request<Body> {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    request.body(Body::empty()).expect("request")
}

/// `GET /api/account` with `key`, from the client address `from` (as axum's
/// `ConnectInfo` gives it), through `router`.
pub async fn get_account_from(router: &Router, key: &str, from: &str) -> Reply {
    let mut request = request(Method::GET, "/api/account", Some(key));
    let addr: std::net::SocketAddr = from.parse().expect("a client address");
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(addr));
    Reply::read(router.clone().oneshot(request).await.expect("infallible")).await
}

pub async fn insert(store: &InMemoryKeyStore, record: KeyRecord) {
    store
        .insert(record, InsertRule::Unconditional)
        .await
        .expect("insert");
}

pub async fn mint(store: &InMemoryKeyStore, owner: &str, scopes: &[&str]) -> ApiKey {
    let key = ApiKey::generate(KeyMode::Live).expect("mint");
    let record = KeyRecord::builder(&key, owner)
        .scopes(scopes.iter().copied())
        .build();
    insert(store, record).await;
    key
}

/// Routes: `GET /api/account` (any key), `POST /api/signals` (`signals:write`), both
/// counting their calls, behind an `ApiKeyLayer` built from `auth`.
pub fn router(auth: Authenticator, calls: Arc<AtomicUsize>) -> Router {
    let account_calls = calls.clone();
    let signal_calls = calls;
    Router::new()
        .route(
            "/api/account",
            get(move |p: Principal| async move {
                account_calls.fetch_add(1, Ordering::SeqCst);
                Json(json!({
                    "account": p.owner(),
                    "prefix": p.prefix(),
                    "key_id": p.key_id(),
                    "mode": p.mode(),
                    "scopes": p.scopes(),
                }))
            }),
        )
        .route(
            "/api/signals",
            post(move |p: Principal| async move {
                signal_calls.fetch_add(1, Ordering::SeqCst);
                (StatusCode::CREATED, p.owner().to_owned())
            })
            .layer(RequireScopeLayer::new("signals:write")),
        )
        .layer(ApiKeyLayer::new(auth))
}

pub async fn app() -> TestApp {
    let store = InMemoryKeyStore::new();
    app_with(store.clone(), Authenticator::new(store)).await
}

pub async fn app_with(store: InMemoryKeyStore, auth: Authenticator) -> TestApp {
    let full = mint(&store, "demo", &["account:read", "signals:write"]).await;
    let read_only = mint(&store, "acme", &["account:read"]).await;
    let calls = Arc::new(AtomicUsize::new(0));
    TestApp {
        router: router(auth, calls.clone()),
        store,
        full,
        read_only,
        calls,
    }
}

impl TestApp {
    /// The stored record of one of this app's keys.
    pub async fn record(&self, key: &ApiKey) -> Arc<KeyRecord> {
        self.store
            .find_by_prefix(&key.prefix())
            .await
            .expect("store")
            .expect("record")
    }

    /// The status of `GET /api/account` with this key.
    pub async fn status(&self, key: &ApiKey) -> StatusCode {
        self.get_bearer(key.expose_secret()).await.status
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// `GET /api/account` with exactly these raw header values.
    pub async fn get_with(&self, headers: &[(&str, &[u8])]) -> Reply {
        let mut request = Request::get("/api/account");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request.body(Body::empty()).expect("request"))
            .await
    }

    /// `GET /api/account` with `Authorization: Bearer <key text>`.
    pub async fn get_bearer(&self, key: &str) -> Reply {
        let value = format!("Bearer {key}");
        self.get_with(&[("authorization", value.as_bytes())]).await
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        Reply::read(response).await
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub async fn read<B>(response: Response<B>) -> Self
    where
        B: http_body::Body,
        B::Error: std::fmt::Debug,
    {
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.expect("body").to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8(bytes.to_vec()).expect("utf-8 body"),
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("json body")
    }

    pub fn envelope(&self) -> Envelope {
        serde_json::from_str(&self.body).expect("envelope body")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .expect("ascii header")
    }

    /// A 401 `unauthorized` envelope with the envelope's fixed headers.
    #[track_caller]
    pub fn assert_unauthorized(&self, challenge: &str) {
        assert_eq!(self.status, StatusCode::UNAUTHORIZED, "{self:?}");
        assert_eq!(
            self.envelope().error.code,
            tower_api_key::ErrorCode::Unauthorized
        );
        assert_eq!(self.header("www-authenticate"), challenge);
        assert_eq!(self.header("content-type"), "application/json");
        assert_eq!(self.header("cache-control"), "no-store");
    }

    /// 401 with `error="invalid_token"` and the generic body.
    #[track_caller]
    pub fn assert_invalid_token(&self) {
        self.assert_unauthorized(r#"Bearer realm="api", error="invalid_token""#);
        assert_eq!(self.body, INVALID_BODY);
    }
}

/// The in-memory store with the behaviours of a remote one switched on as needed:
/// lookups that make the layer wait, slow or failing last-use writes, and counts of
/// lookups and of those writes.
#[derive(Clone, Default)]
pub struct TestStore {
    pub inner: InMemoryKeyStore,
    /// Answer lookups only asynchronously, after yielding once, as a database would
    /// (the in-memory store answers at once).
    pub async_lookups: bool,
    /// Last-use writes take this long.
    pub write_delay: std::time::Duration,
    /// Last-use writes fail.
    pub fail_writes: bool,
    /// Last-use writes attempted.
    pub writes: Arc<AtomicUsize>,
    /// Lookups by prefix asked for (at once or awaited).
    pub lookups: Arc<AtomicUsize>,
    /// Usage batches fail.
    pub fail_usage: bool,
    /// Usage batches attempted.
    pub usage_writes: Arc<AtomicUsize>,
}

impl TestStore {
    pub fn async_lookups() -> Self {
        TestStore {
            async_lookups: true,
            ..TestStore::default()
        }
    }

    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }

    pub fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }

    pub fn usage_writes(&self) -> usize {
        self.usage_writes.load(Ordering::SeqCst)
    }
}

type StoreResult<T> = Result<T, tower_api_key::store::StoreError>;

#[async_trait::async_trait]
impl KeyStore for TestStore {
    async fn find_by_prefix(
        &self,
        prefix: &tower_api_key::key::KeyPrefix,
    ) -> StoreResult<Option<Arc<KeyRecord>>> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        if self.async_lookups {
            tokio::task::yield_now().await;
        }
        self.inner.find_by_prefix(prefix).await
    }

    fn lookup_now(
        &self,
        prefix: &tower_api_key::key::KeyPrefix,
    ) -> Option<StoreResult<tower_api_key::store::Lookup>> {
        if self.async_lookups {
            None
        } else {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            self.inner.lookup_now(prefix)
        }
    }

    async fn insert(&self, record: KeyRecord, rule: InsertRule) -> StoreResult<()> {
        self.inner.insert(record, rule).await
    }

    async fn revoke(
        &self,
        id: &tower_api_key::store::KeyId,
        at: std::time::SystemTime,
    ) -> StoreResult<Option<KeyRecord>> {
        self.inner.revoke(id, at).await
    }

    async fn list_by_owner(&self, owner: &str) -> StoreResult<Vec<KeyRecord>> {
        self.inner.list_by_owner(owner).await
    }

    async fn record_last_use(
        &self,
        id: &tower_api_key::store::KeyId,
        at: std::time::SystemTime,
    ) -> StoreResult<()> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        if !self.write_delay.is_zero() {
            tokio::time::sleep(self.write_delay).await;
        }
        if self.fail_writes {
            return Err(tower_api_key::store::StoreError::backend(
                "read-only replica",
            ));
        }
        self.inner.record_last_use(id, at).await
    }

    async fn set_metadata(
        &self,
        id: &tower_api_key::store::KeyId,
        name: &str,
        value: Option<&str>,
    ) -> StoreResult<()> {
        self.inner.set_metadata(id, name, value).await
    }

    fn keeps_usage(&self) -> bool {
        true
    }

    async fn add_usage(&self, batch: &tower_api_key::store::UsageBatch) -> StoreResult<()> {
        self.usage_writes.fetch_add(1, Ordering::SeqCst);
        if self.fail_usage {
            return Err(tower_api_key::store::StoreError::Timeout);
        }
        self.inner.add_usage(batch).await
    }

    async fn usage(
        &self,
        id: &tower_api_key::store::KeyId,
        from: std::time::SystemTime,
        to: std::time::SystemTime,
    ) -> StoreResult<Vec<tower_api_key::store::UsageBucket>> {
        self.inner.usage(id, from, to).await
    }
}

/// The URL of a backend server the tests need, from the environment variable `var`
/// (`scripts/services.sh` starts the servers and prints them); `None` (after a
/// [`skip`] notice) when it is not set.
pub fn server_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            skip(&format!("{var} is not set"), SERVICES);
            None
        }
    }
}

/// The command that starts PostgreSQL and Redis and sets the variables the tests read.
pub const SERVICES: &str = r#"eval "$(bash scripts/services.sh)""#;

/// The command that installs Chromium and chromedriver for the browser tests.
pub const BROWSER: &str = "bash scripts/browser.sh";

/// The one way a test skips for want of a server or tool: in CI (`CI=true`) it fails
/// instead (nothing may go silently untested there); elsewhere the caller returns
/// early and the test counts as passed, so this says so where people look.
///
/// The notice is written to the stderr handle itself: libtest captures what the
/// `print!`/`eprint!` macros write, not writes to `std::io::stderr()`, so it shows in
/// the normal output of `cargo test`. Per test binary and missing thing, one line
/// names the command that provides it; per test, one line names the test.
pub fn skip(missing: &str, command: &str) {
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("{missing} in CI: run `{command}` first");
    }
    static SAID: std::sync::Mutex<std::collections::BTreeSet<String>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let first = SAID
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(missing.to_owned());
    let binary = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|stem| {
            stem.rsplit_once('-')
                .map_or(stem.clone(), |(name, _)| name.to_owned())
        })
        .unwrap_or_default();
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let mut notice = String::new();
    if first {
        notice.push_str(&format!(
            "note: {binary}: {missing}, so the tests that need it are SKIPPED (they show \
             as `ok`); run them with `{command}` first\n"
        ));
    }
    notice.push_str(&format!("  skipped: {binary} {test}\n"));
    // One write, so lines from parallel tests do not interleave.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), notice.as_bytes());
}
