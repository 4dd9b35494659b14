//! The quickstart's `GET /api/account` *without* `ApiKeyLayer`: the baseline that
//! `scripts/load.sh` compares the guarded service against. It answers a JSON body of
//! the same shape and size to anyone; never deploy it.
//!
//! ```text
//! ADDR=127.0.0.1:3100 cargo run --release --example no_auth
//! ```

use std::net::SocketAddr;

use axum::{routing::get, Json, Router};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::var("ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3100".into())
        .parse()?;
    let app = Router::new().route("/api/account", get(account));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}

/// What the quickstart answers for its demo key, built per request as it is there.
async fn account() -> Json<Value> {
    Json(json!({
        "account": "demo",
        "key": {
            "id": "key_000000000000000000000000",
            "prefix": "pk_live_0000000000000000",
            "name": "full access",
            "mode": "live",
            "scopes": ["account:read", "signals:write"],
        }
    }))
}
