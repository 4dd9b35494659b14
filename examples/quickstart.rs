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
//! - `POST /login` with `{"username":"demo","password":"demo"}` — sets the session
//!   cookie; `POST /logout` clears it;
//! - key management for the logged-in user (a session, never a bearer key):
//!   `GET|POST|DELETE /api/v1/partners/api-key`, `POST /api/v1/partners/api-key/rotate`,
//!   `GET|POST /api/user/keys`, `DELETE /api/user/keys/{id}`.
//!
//! `DATABASE_URL` selects the store: unset, the embedded in-memory store (keys last as
//! long as the process); `sqlite://keys.db` a SQLite file (keys survive a restart);
//! `postgres://…` or `redis://…` a server that several instances share. Durable stores
//! are migrated at start and sit behind a `CachedKeyStore`. The demo keys are minted
//! only if their accounts have none yet, so a restart creates no duplicates (and
//! cannot print keys it never kept).
//!
//! `RATE_LIMIT` (e.g. `20/s`, `100/10s`, `5/m`, `1000/h`) limits every key's request
//! rate (429 with `Retry-After` over it, and the `RateLimit` / `RateLimit-Policy`
//! headers on every answer); unset, keys are not limited.
//!
//! Plain http on localhost: the session cookie drops `Secure` and the `__Host-` prefix
//! (browsers refuse both without TLS). Serve over https and remove
//! `insecure_for_local_http()` in production.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    http::{header::SET_COOKIE, StatusCode},
    response::IntoResponse,
    routing::{get, post},
    Json, Router,
};
use serde::Deserialize;
use serde_json::{json, Value};
use tower_api_key::{
    auth::Authenticator,
    manage::{self, Keys},
    policy::RateLimit,
    session::{CookieSessions, SessionGuardLayer, SessionUser},
    store::{
        CachedKeyStore, InsertRule, KeyStore, PostgresKeyStore, RedisKeyStore, SqliteKeyStore,
    },
    ApiError, ApiKey, ApiKeyLayer, ErrorCode, InMemoryKeyStore, KeyMode, KeyRecord, Principal,
    RequireScopeLayer,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::var("ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3000".into())
        .parse()?;

    let store = open_store(std::env::var("DATABASE_URL").ok().as_deref()).await?;
    seed(
        &*store,
        "demo",
        "full access",
        &["account:read", "signals:write"],
    )
    .await?;
    seed(&*store, "acme", "read only", &["account:read"]).await?;

    // RATE_LIMIT (`20/s`, `100/10s`, `5/m`, `1000/h`) sets every key's request rate,
    // advertised in the IETF `RateLimit` / `RateLimit-Policy` headers; unset means no
    // limit.
    let rate_limit: Option<RateLimit> = match std::env::var("RATE_LIMIT") {
        Ok(text) => Some(text.parse()?),
        Err(_) => None,
    };
    let auth = Authenticator::builder(store.clone())
        .rate_limit(rate_limit)
        .rate_limit_headers(true)
        .build();
    let keys = Keys::new(store)
        .last_use(auth.last_use().clone())
        .default_scopes(["account:read", "signals:write"]);
    // Plain http on localhost: browsers drop `Secure` and `__Host-` cookies without TLS.
    let sessions = CookieSessions::with_random_key()?.insecure_for_local_http();
    eprintln!(
        "note: the session cookie is `session` without `Secure` (plain http, development only)"
    );
    let guard = SessionGuardLayer::new(sessions.clone());

    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    // With the connection's address, so IP restrictions and the failed-attempts
    // budget know the client.
    let service = app(auth.clone(), keys, sessions, guard)
        .into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    // Write the last uses noted in memory since the last write.
    auth.flush_last_use().await?;
    Ok(())
}

/// The whole service: public health check and login, key-guarded API, and key
/// management behind the browser session.
fn app(
    auth: Authenticator,
    keys: Keys,
    sessions: CookieSessions,
    guard: SessionGuardLayer,
) -> Router {
    let api = Router::new()
        .route("/api/account", get(account))
        .route(
            "/api/signals",
            post(create_signal).layer(RequireScopeLayer::new("signals:write")),
        )
        .layer(ApiKeyLayer::new(auth.clone()));
    let login = Router::new()
        .route("/login", post(login))
        .route("/logout", post(logout))
        .with_state(sessions);
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .merge(api)
        .merge(login)
        .merge(manage::router(keys, guard, auth))
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

/// A stand-in for your real login: one demo user, password `demo`.
async fn login(
    axum::extract::State(sessions): axum::extract::State<CookieSessions>,
    body: axum::body::Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let credentials: Credentials = serde_json::from_slice(&body).map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            r#"Send {"username":"…","password":"…"} as JSON."#,
        )
    })?;
    if credentials.username != "demo" || credentials.password != "demo" {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "Wrong username or password.",
        ));
    }
    let cookie = sessions.login(&SessionUser::new(credentials.username));
    Ok(([(SET_COOKIE, cookie)], Json(json!({ "user": "demo" }))))
}

async fn logout(
    axum::extract::State(sessions): axum::extract::State<CookieSessions>,
) -> impl IntoResponse {
    ([(SET_COOKIE, sessions.logout())], StatusCode::NO_CONTENT)
}

/// The store `DATABASE_URL` names: unset, in memory; otherwise SQLite, PostgreSQL or
/// Redis, migrated, behind a cache (which hears revocations made by other instances
/// through the store's change feed).
async fn open_store(url: Option<&str>) -> Result<Arc<dyn KeyStore>, Box<dyn std::error::Error>> {
    let Some(url) = url.filter(|url| !url.is_empty()) else {
        return Ok(Arc::new(InMemoryKeyStore::new()));
    };
    let scheme = url.split(':').next().unwrap_or_default();
    let store: Arc<dyn KeyStore> = match scheme {
        "sqlite" => {
            let store = SqliteKeyStore::connect(url).await?;
            store.migrate().await?;
            Arc::new(CachedKeyStore::new(store))
        }
        "postgres" | "postgresql" => {
            let store = PostgresKeyStore::connect(url).await?;
            store.migrate().await?;
            Arc::new(CachedKeyStore::new(store))
        }
        "redis" => {
            let store = RedisKeyStore::connect(url).await?;
            store.migrate().await?;
            Arc::new(CachedKeyStore::new(store))
        }
        _ => return Err(format!("DATABASE_URL: unsupported scheme `{scheme}:`").into()),
    };
    eprintln!("store: {scheme}, cached");
    Ok(store)
}

/// Mints the demo key `name` for `owner` unless the owner already has it, and prints
/// the raw key: the only time it is ever shown. Servers log prefixes only.
async fn seed(
    store: &dyn KeyStore,
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
    let key = ApiKey::generate(KeyMode::Live)?;
    let record = KeyRecord::builder(&key, owner)
        .name(name)
        .scopes(scopes.iter().copied())
        .build();
    store.insert(record, InsertRule::Unconditional).await?;
    eprintln!("minted {} ({name}) for account {owner}", key.prefix());
    println!("{name}: {}", key.expose_secret());
    Ok(())
}
