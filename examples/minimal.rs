//! The smallest complete service: one route behind the layer, one key minted at start.
//!
//! ```text
//! cargo run --example minimal
//! curl -H "Authorization: Bearer <the key it printed>" localhost:3000/api/account
//! ```
//!
//! `examples/quickstart.rs` adds key management behind a login, the key dashboard,
//! durable stores and a server loop for production.

use std::net::SocketAddr;

use axum::{routing::get, Router};
use tower_api_key::{
    store::InsertRule, ApiKey, ApiKeyLayer, Authenticator, InMemoryKeyStore, KeyMode, KeyRecord,
    KeyStore, Principal,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::var("ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3000".into())
        .parse()?;
    let store = InMemoryKeyStore::new();
    let key = ApiKey::generate(KeyMode::Live)?;
    let record = KeyRecord::builder(&key, "acct_42").name("demo").build();
    store.insert(record, InsertRule::Unconditional).await?;
    println!("key (shown once): {}", key.expose_secret());

    let app = Router::new()
        .route(
            "/api/account",
            get(|caller: Principal| async move { format!("hello, {}\n", caller.owner()) }),
        )
        .layer(ApiKeyLayer::new(Authenticator::new(store)));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    // Each connection's address: IP restrictions and the failed-attempts budget need it.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
