//! A small axum API guarded by `tower-api-key`, on the embedded in-memory store.
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
//!   the read-only key gets 403).
//!
//! ```text
//! curl -H "Authorization: Bearer $KEY" http://127.0.0.1:3000/api/account
//! ```

use std::net::SocketAddr;

use axum::{
    http::StatusCode,
    routing::{get, post},
    Json, Router,
};
use serde_json::{json, Value};
use tower_api_key::{
    store::{InsertRule, KeyStore},
    ApiKey, ApiKeyLayer, InMemoryKeyStore, KeyMode, KeyRecord, Principal, RequireScopeLayer,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::var("ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3000".into())
        .parse()?;

    let store = InMemoryKeyStore::new();
    let full = mint(
        &store,
        "demo",
        "full access",
        &["account:read", "signals:write"],
    )
    .await?;
    let read_only = mint(&store, "acme", "read only", &["account:read"]).await?;
    // Shown once, as a dashboard would right after minting. Servers log prefixes only.
    println!("full access: {}", full.expose_secret());
    println!("read only: {}", read_only.expose_secret());

    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(store))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

/// The whole service: public health check, key-guarded API.
fn app(store: InMemoryKeyStore) -> Router {
    let api = Router::new()
        .route("/api/account", get(account))
        .route(
            "/api/signals",
            post(create_signal).layer(RequireScopeLayer::new("signals:write")),
        )
        .layer(ApiKeyLayer::new(store));
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .merge(api)
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

async fn mint(
    store: &InMemoryKeyStore,
    owner: &str,
    name: &str,
    scopes: &[&str],
) -> Result<ApiKey, Box<dyn std::error::Error>> {
    let key = ApiKey::generate(KeyMode::Live)?;
    let record = KeyRecord::builder(&key, owner)
        .name(name)
        .scopes(scopes.iter().copied())
        .build();
    store.insert(record, InsertRule::Unconditional).await?;
    eprintln!("minted {} ({name}) for account {owner}", key.prefix());
    Ok(key)
}
