//! A small axum API guarded by `tower-api-key`, on the embedded in-memory store, with
//! browser-session key management.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! It mints two demo keys and prints them (the only time a raw key is ever shown):
//! `full access` for the account `demo`, `read only` for the account `acme`. Then it
//! serves on `ADDR` (default `127.0.0.1:3000`):
//!
//! - `GET /health` — no key needed;
//! - `GET /api/account` — any valid key; names the caller's key by its prefix;
//! - `POST /api/signals` — needs the `signals:write` scope (the full-access key has it,
//!   the read-only key gets 403);
//! - `GET /` — redirects to the key dashboard;
//! - `GET /settings/api-keys` — the key dashboard (open it in a browser: it sends you
//!   to the login form first; user `demo`, password `demo`): one table of every key
//!   of the account; create a key (shown once, with a Copy button), rotate or revoke
//!   each key from its own row;
//! - `GET /login` — the login form; `POST /login` takes the form (then redirects to
//!   `next`) or JSON `{"username":"demo","password":"demo"}` (answers JSON) and sets
//!   the session cookie; `POST /logout` clears it;
//! - key management for the logged-in user (a session, never a bearer key):
//!   `GET|POST|DELETE /api/v1/partners/api-key`, `POST /api/v1/partners/api-key/rotate`,
//!   `GET /api/v1/partners/api-key/usage`, `GET|POST /api/user/keys`,
//!   `DELETE /api/user/keys/{id}`, `GET /api/user/keys/{id}/usage` (a key's requests
//!   by hour or day);
//! - `GET /openapi.json` — the management routes described in OpenAPI 3.1;
//! - with `LEAK_REPORT_KEYS` naming a public-keys document shaped like GitHub's,
//!   `POST /api/secret-scanning` — leak reports in GitHub's secret scanning format,
//!   signed by one of those keys; the keys they name are revoked at once;
//! - with `--features metrics`, `GET /metrics` — the crate's metrics in Prometheus text,
//!   to loopback clients only.
//!
//! Every create, rotate, revoke and leak report is written to the audit trail, printed on stderr as
//! one JSON line (`audit: {"actor":…,"action":"created","key_prefix":"pk_live_…",…}`):
//! who, what, which key prefix, when, from which address — never a raw key.
//!
//! `DATABASE_URL` selects the store: unset, the embedded in-memory store (keys last as
//! long as the process); `sqlite://keys.db` a SQLite file (keys survive a restart);
//! `postgres://…` or `redis://…` a server that several instances share. Durable stores
//! are migrated at start and sit behind a `CachedKeyStore`. The demo keys are minted
//! only if their accounts have none yet, so a restart creates no duplicates (and
//! cannot print keys it never kept).
//!
//! `WEBHOOK_URL` (plain http, e.g. `http://127.0.0.1:9000/keys`) turns on a lifecycle
//! hook that POSTs each new key's public view (JSON, never the raw key) there, as a
//! service that creates a webhook app behind each key would. Failures are best effort: logged with
//! the key's prefix, reported in the create answer's `hook_errors`, kept in the key's
//! metadata as `hook.webhook.error` and shown on the dashboard; the key works anyway.
//!
//! `RATE_LIMIT` (e.g. `20/s`, `100/10s`, `5/m`, `1000/h`) limits every key's request
//! rate (429 with `Retry-After` over it, and the `RateLimit` / `RateLimit-Policy`
//! headers on every answer); unset, keys are not limited. With PostgreSQL or Redis the
//! limits (and each client's failed-attempts budget) are shared: counted in that
//! store, so two instances on one store admit no more for a key than one would.
//!
//! With PostgreSQL or Redis, keys are also signed (`KeyFormat::signed_with`): a key
//! these instances did not mint is refused from its text, so a storm of random keys
//! never reaches the database. The secret is `KEY_SECRET` (64 hex digits) when set —
//! what production should do, from its secret manager — else one the first instance
//! stores in the database (`quickstart_settings` in PostgreSQL,
//! `tower-api-key:quickstart:key-secret` in Redis), so every instance and every restart
//! agrees on it. Keys an earlier, unsigned quickstart minted there are refused.
//!
//! Serving as production should: each connection's peer address reaches the
//! authenticator (IP restrictions, the failed-attempts budget per client); a client
//! has `HEADER_READ_TIMEOUT_SECS` (default 10) to send a request head, or its
//! connection is closed; on Ctrl-C or SIGTERM (what `docker stop` and Kubernetes
//! send) it stops accepting, lets requests in flight finish (10 s at most) and writes
//! the last uses still held in memory before it exits.
//!
//! Plain http on localhost: the session cookie drops `Secure` and the `__Host-` prefix
//! (browsers refuse both without TLS). Serve over https and remove
//! `insecure_for_local_http()` in production.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    extract::{ConnectInfo, Query, State},
    http::{
        header::{self, SET_COOKIE},
        HeaderMap, StatusCode,
    },
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
    Extension, Json, Router,
};
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tower::Layer;
use tower_api_key::{
    auth::Authenticator,
    key::{KeyFormat, KeySecret},
    manage::dashboard::{self, DashboardConfig},
    manage::{
        AuditEntry, AuditTrail, HookError, KeyEvent, KeyHooks, Keys, ManagementRoutes, ScannerKeys,
        SecretScanning,
    },
    policy::RateLimit,
    session::{safe_next, CookieSessions, CrossOriginProtection, SessionGuardLayer, SessionUser},
    store::{
        CachedKeyStore, InsertRule, KeyStore, PostgresKeyStore, QuotaStore, RedisKeyStore,
        SqliteKeyStore,
    },
    ApiError, ApiKey, ApiKeyLayer, InMemoryKeyStore, KeyMode, KeyRecord, Principal,
    RequireScopeLayer,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The crate logs through `tracing` (a failed hook, a store that is down; prefixes,
    // never keys): print its warnings on stderr.
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let addr: SocketAddr = std::env::var("ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3000".into())
        .parse()?;
    let header_read_timeout =
        Duration::from_secs(match std::env::var("HEADER_READ_TIMEOUT_SECS") {
            Ok(secs) => secs.parse()?,
            Err(_) => 10,
        });

    // The crate's metrics (`--features metrics`), served at `/metrics` in Prometheus text.
    #[cfg(feature = "metrics")]
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;

    let Deployment {
        store,
        quotas,
        format,
    } = open_store(std::env::var("DATABASE_URL").ok().as_deref()).await?;
    seed(
        &*store,
        &format,
        "demo",
        "full access",
        &["account:read", "signals:write"],
    )
    .await?;
    seed(&*store, &format, "acme", "read only", &["account:read"]).await?;

    // RATE_LIMIT (`20/s`, `100/10s`, `5/m`, `1000/h`) sets every key's request rate,
    // advertised in the IETF `RateLimit` / `RateLimit-Policy` headers; unset means no
    // limit.
    let rate_limit: Option<RateLimit> = match std::env::var("RATE_LIMIT") {
        Ok(text) => Some(text.parse()?),
        Err(_) => None,
    };
    let mut auth = Authenticator::builder(store.clone())
        .key_format(format.clone())
        .rate_limit(rate_limit)
        .rate_limit_headers(true);
    // A store that instances share keeps the limits too: one count for all of them.
    if let Some(quotas) = quotas {
        auth = auth.shared_rate_limits(quotas);
    }
    let auth = auth.build();
    // The audit trail: one JSON line per create, rotate and revoke (prefix only).
    let audit = AuditTrail::new(|entry: &AuditEntry| {
        if let Ok(line) = serde_json::to_string(entry) {
            eprintln!("audit: {line}");
        }
    });
    let mut keys = Keys::new(store)
        .key_format(format)
        .last_use(auth.last_use().clone())
        .default_scopes(["account:read", "signals:write"])
        .hook(audit);
    if let Ok(url) = std::env::var("WEBHOOK_URL") {
        keys = keys.hook(Webhook::new(url.parse()?));
    }
    // Plain http on localhost: browsers drop `Secure` and `__Host-` cookies without TLS.
    let sessions = CookieSessions::with_random_key()?.insecure_for_local_http();
    eprintln!(
        "note: the session cookie is `session` without `Secure` (plain http, development only)"
    );
    let guard = SessionGuardLayer::new(sessions.clone());
    // LEAK_REPORT_KEYS names a public-keys document shaped like GitHub's: leak reports
    // signed by those keys, POSTed to /api/secret-scanning, revoke the keys they name.
    let scanning = match std::env::var("LEAK_REPORT_KEYS") {
        Ok(path) => {
            let document = std::fs::read_to_string(&path)?;
            eprintln!("leak reports: POST /api/secret-scanning, keys from {path}");
            Some(SecretScanning::github(ScannerKeys::from_github_document(
                &document,
            )?))
        }
        Err(_) => None,
    };

    let listener = TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let app = app(auth.clone(), keys, sessions, guard, scanning);
    #[cfg(feature = "metrics")]
    let app = app.merge(metrics_route(metrics));
    serve(listener, app, header_read_timeout, shutdown_signal()).await;
    // Write the last uses and usage counts noted in memory since the last write.
    if let Err(error) = auth.flush().await {
        tracing::error!(%error, "the last uses and usage of keys could not be written");
    }
    Ok(())
}

/// Serves `app` until `shutdown` completes, then lets the requests in flight finish
/// (10 s at most). A manual accept loop rather than `axum::serve`, for what that
/// does not offer: a deadline for the request head, so a client that sends half a
/// request does not hold a connection forever.
async fn serve(
    listener: TcpListener,
    app: Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let connections = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(connection) => connection,
                Err(error) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // The peer address as axum's `ConnectInfo`, which the authenticator reads:
        // without it IP-restricted keys are refused and every client shares one
        // failed-attempts budget.
        let service = Extension(ConnectInfo(peer)).layer(app.clone());
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            // Clients that go away or time out are routine, not worth a warning.
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection closed with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = connections.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(10)) => {
            tracing::warn!("requests still running after 10 s were cut off");
        }
    }
}

/// Completes on Ctrl-C, or on SIGTERM (what `docker stop` and Kubernetes send).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// Where the key dashboard lives.
const DASHBOARD: &str = "/settings/api-keys";

/// The whole service: public health check and login, key-guarded API, and key
/// management (JSON endpoints and the dashboard page) behind the browser session.
fn app(
    auth: Authenticator,
    keys: Keys,
    sessions: CookieSessions,
    guard: SessionGuardLayer,
    scanning: Option<SecretScanning>,
) -> Router {
    let api = Router::new()
        .route("/api/account", get(account))
        .route(
            "/api/signals",
            post(create_signal).layer(RequireScopeLayer::new("signals:write")),
        )
        .layer(ApiKeyLayer::new(auth.clone()));
    let login = Router::new()
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        // No page elsewhere may log a visitor into an account of its choosing, or out
        // of theirs: cross-origin POSTs get 403, as on the management routes.
        .route_layer(CrossOriginProtection::new())
        .with_state(sessions);
    let mut management = ManagementRoutes::new(keys, guard, auth).dashboard(
        DashboardConfig::new(DASHBOARD)
            .login_url("/login")
            .logout_url("/logout"),
    );
    if let Some(scanning) = scanning {
        management = management.secret_scanning(scanning);
    }
    // The management routes as OpenAPI 3.1 (feature `openapi`), served as they are.
    let openapi = management.openapi().to_json().unwrap_or_default();
    let management = management.into_router();
    Router::new()
        .route("/", get(|| async { Redirect::to(DASHBOARD) }))
        .route("/health", get(|| async { "ok" }))
        .route(
            "/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], openapi) }),
        )
        .merge(api)
        .merge(login)
        .merge(management)
}

/// `GET /metrics`: the crate's counters and histograms in Prometheus text format, to
/// loopback clients only (a scraper on the same machine); 404 to anyone else. In
/// production serve it on an internal port instead.
#[cfg(feature = "metrics")]
fn metrics_route(metrics: metrics_exporter_prometheus::PrometheusHandle) -> Router {
    Router::new().route(
        "/metrics",
        get(
            move |ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                if peer.ip().is_loopback() {
                    (StatusCode::OK, metrics.render()).into_response()
                } else {
                    StatusCode::NOT_FOUND.into_response()
                }
            },
        ),
    )
}

async fn account(caller: Principal) -> Json<Value> {
    Json(json!({
        "account": caller.owner(),
        "key": {
            "id": caller.key_id(),
            "prefix": caller.prefix(),
            "name": caller.name(),
            "mode": caller.mode(),
            "scopes": caller.scopes(),
        }
    }))
}

async fn create_signal(caller: Principal) -> (StatusCode, Json<Value>) {
    (
        StatusCode::CREATED,
        Json(json!({ "accepted": true, "account": caller.owner() })),
    )
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

/// A stand-in for your real login check: one demo user, password `demo`.
fn check(username: &str, password: &str) -> bool {
    username == "demo" && password == "demo"
}

/// The login form: no script, styled by the dashboard's public style sheet.
const LOGIN_PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log in</title>
<link rel="stylesheet" href="/settings/api-keys/dashboard.css">
</head>
<body>
<header class="top"><h1>Log in</h1></header>
<main>
  <section>
    <p id="login-error" role="alert"{ERROR_HIDDEN}>{ERROR}</p>
    <form id="login-form" method="post" action="/login">
      <input type="hidden" name="next" value="{NEXT}">
      <p><label for="username">Username</label>
        <input id="username" name="username" autocomplete="username" required></p>
      <p><label for="password">Password</label>
        <input id="password" name="password" type="password" autocomplete="current-password" required></p>
      <p><button id="login-submit" type="submit">Log in</button></p>
    </form>
    <p class="hint">Demo: user <code>demo</code>, password <code>demo</code>.</p>
  </section>
</main>
</body>
</html>
"#;

/// `GET /login?next=…&error=1`: the form, with a message after a wrong password.
async fn login_form(Query(query): Query<std::collections::HashMap<String, String>>) -> Response {
    let next = local_path(query.get("next").map(String::as_str));
    let failed = query.get("error").is_some_and(|e| e == "1");
    let html = LOGIN_PAGE
        .replace("{NEXT}", &escape_html(next))
        .replace("{ERROR_HIDDEN}", if failed { "" } else { " hidden" })
        .replace(
            "{ERROR}",
            if failed {
                "Wrong username or password."
            } else {
                ""
            },
        );
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    // The dashboard's own headers: no caching, a strict CSP, never framed.
    dashboard::security_headers(response.headers_mut());
    response
}

/// `POST /login`: the form (a 303 to `next`, or back to the form after a wrong
/// password) or JSON (answers JSON). Cross-origin requests never get here
/// (`CrossOriginProtection`).
async fn login(
    State(sessions): State<CookieSessions>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        let field = |name: &str| {
            url::form_urlencoded::parse(&body)
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.into_owned())
        };
        let username = field("username").unwrap_or_default();
        let password = field("password").unwrap_or_default();
        let next = local_path(field("next").as_deref()).to_owned();
        if !check(&username, &password) {
            let next: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
            return Ok(Redirect::to(&format!("/login?error=1&next={next}")).into_response());
        }
        let cookie = sessions.login(&SessionUser::new(username));
        return Ok(([(SET_COOKIE, cookie)], Redirect::to(&next)).into_response());
    }
    let credentials: Credentials = serde_json::from_slice(&body).map_err(|_| {
        ApiError::invalid_request(r#"Send {"username":"…","password":"…"} as JSON."#)
    })?;
    if !check(&credentials.username, &credentials.password) {
        return Err(ApiError::unauthorized("Wrong username or password."));
    }
    let cookie = sessions.login(&SessionUser::new(credentials.username));
    Ok(([(SET_COOKIE, cookie)], Json(json!({ "user": "demo" }))).into_response())
}

/// `next` if it is a path on this site (`safe_next`: no other host, no scheme), else
/// the dashboard.
fn local_path(next: Option<&str>) -> &str {
    next.and_then(safe_next).unwrap_or(DASHBOARD)
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// `POST /logout`: clears the cookie; a form post (the dashboard's button) goes back
/// to the login form. Cross-origin requests never get here (`CrossOriginProtection`).
async fn logout(State(sessions): State<CookieSessions>, headers: HeaderMap) -> Response {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let cookie = [(SET_COOKIE, sessions.logout())];
    if is_form {
        (cookie, Redirect::to("/login")).into_response()
    } else {
        (cookie, StatusCode::NO_CONTENT).into_response()
    }
}

/// What `DATABASE_URL` sets up: the keys, the rate-limit quotas every instance
/// shares (PostgreSQL, Redis), and the keys' format (signed with the secret the
/// instances share, with PostgreSQL or Redis).
struct Deployment {
    store: Arc<dyn KeyStore>,
    quotas: Option<Arc<dyn QuotaStore>>,
    format: KeyFormat,
}

/// The store `DATABASE_URL` names: unset, in memory; otherwise SQLite, PostgreSQL or
/// Redis, migrated, behind a cache (which hears revocations made by other instances
/// through the store's change feed). PostgreSQL and Redis also keep the rate-limit
/// quotas and the key-signing secret every instance shares.
async fn open_store(url: Option<&str>) -> Result<Deployment, Box<dyn std::error::Error>> {
    let Some(url) = url.filter(|url| !url.is_empty()) else {
        return Ok(Deployment {
            store: Arc::new(InMemoryKeyStore::new()),
            quotas: None,
            format: KeyFormat::default(),
        });
    };
    let scheme = url.split(':').next().unwrap_or_default();
    let deployment = match scheme {
        "sqlite" => {
            let store = SqliteKeyStore::connect(url).await?;
            store.migrate().await?;
            Deployment {
                store: Arc::new(CachedKeyStore::new(store)),
                quotas: None,
                format: KeyFormat::default(),
            }
        }
        "postgres" | "postgresql" => {
            let store = PostgresKeyStore::connect(url).await?;
            store.migrate().await?;
            let secret = shared_secret(Settings::Postgres(store.pool())).await?;
            Deployment {
                store: Arc::new(CachedKeyStore::new(store.clone())),
                quotas: Some(Arc::new(store)),
                format: KeyFormat::default().signed_with(secret),
            }
        }
        "redis" => {
            let store = RedisKeyStore::connect(url).await?;
            store.migrate().await?;
            let secret = shared_secret(Settings::Redis(url)).await?;
            Deployment {
                store: Arc::new(CachedKeyStore::new(store.clone())),
                quotas: Some(Arc::new(store)),
                format: KeyFormat::default().signed_with(secret),
            }
        }
        _ => return Err(format!("DATABASE_URL: unsupported scheme `{scheme}:`").into()),
    };
    let shared = if deployment.quotas.is_some() {
        ", shared rate limits, signed keys"
    } else {
        ""
    };
    eprintln!("store: {scheme}, cached{shared}");
    Ok(deployment)
}

/// Where the instances keep what they must agree on.
enum Settings<'a> {
    Postgres(&'a sqlx::PgPool),
    Redis(&'a str),
}

/// The key-signing secret: `KEY_SECRET` when set; else the one in the database, made
/// by whichever instance gets there first (the others, and restarts, read it).
async fn shared_secret(at: Settings<'_>) -> Result<KeySecret, Box<dyn std::error::Error>> {
    if let Ok(hex) = std::env::var("KEY_SECRET") {
        return Ok(KeySecret::from_hex(&hex)?);
    }
    let fresh = KeySecret::generate()?.to_hex();
    let stored: String = match at {
        Settings::Postgres(pool) => {
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS quickstart_settings \
                 (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
            )
            .execute(pool)
            .await?;
            sqlx::query(
                "INSERT INTO quickstart_settings (name, value) VALUES ('key_secret', $1) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(fresh.as_str())
            .execute(pool)
            .await?;
            sqlx::query_scalar("SELECT value FROM quickstart_settings WHERE name = 'key_secret'")
                .fetch_one(pool)
                .await?
        }
        Settings::Redis(url) => {
            let mut conn = redis::Client::open(url)?
                .get_multiplexed_async_connection()
                .await?;
            let name = "tower-api-key:quickstart:key-secret";
            redis::cmd("SET")
                .arg(name)
                .arg(fresh.as_str())
                .arg("NX")
                .query_async::<()>(&mut conn)
                .await?;
            redis::cmd("GET").arg(name).query_async(&mut conn).await?
        }
    };
    Ok(KeySecret::from_hex(&stored)?)
}

/// Mints the demo key `name` for `owner` unless the owner already has it, and prints
/// the raw key: the only time it is ever shown. Servers log prefixes only.
async fn seed(
    store: &dyn KeyStore,
    format: &KeyFormat,
    owner: &str,
    name: &str,
    scopes: &[&str],
) -> Result<(), Box<dyn std::error::Error>> {
    let existing = store.list_by_owner(owner).await?;
    if let Some(record) = existing
        .iter()
        .find(|r| r.name == name && r.revoked_at.is_none())
    {
        println!(
            "{name}: {} already exists; its raw key was printed when it was first created",
            record.prefix
        );
        return Ok(());
    }
    let key = ApiKey::generate_in(format, KeyMode::Live)?;
    let record = KeyRecord::builder(&key, owner)
        .name(name)
        .scopes(scopes.iter().copied())
        .build();
    store.insert(record, InsertRule::Unconditional).await?;
    eprintln!("minted {} ({name}) for account {owner}", key.prefix());
    println!("{name}: {}", key.expose_secret());
    Ok(())
}

/// Tells a webhook service about each new key (`WEBHOOK_URL`): a POST of the key's
/// public view. Best effort, as every create hook: a failure never fails the mint.
struct Webhook {
    url: axum::http::Uri,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Webhook {
    fn new(url: axum::http::Uri) -> Self {
        let client = Client::builder(TokioExecutor::new()).build_http();
        Webhook { url, client }
    }
}

#[tower_api_key::async_trait]
impl KeyHooks for Webhook {
    fn name(&self) -> &str {
        "webhook"
    }

    async fn after_create(&self, event: &KeyEvent) -> Result<(), HookError> {
        let failed = || HookError::new("The webhook app could not be created.");
        let body = serde_json::to_vec(event).map_err(|e| failed().with_source(e))?;
        let request = axum::http::Request::post(&self.url)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::from(body))
            .map_err(|e| failed().with_source(e))?;
        // The hook runs inside the request: bound it.
        let answer = tokio::time::timeout(Duration::from_secs(2), self.client.request(request))
            .await
            .map_err(|elapsed| failed().with_source(elapsed))?
            .map_err(|e| failed().with_source(e))?;
        if answer.status().is_success() {
            Ok(())
        } else {
            Err(failed().with_source(format!("the webhook service answered {}", answer.status())))
        }
    }
}
