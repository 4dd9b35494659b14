//! The widely copied "many named keys per user" API, served verbatim at
//! `/api/user/keys`, managed with a key that carries the management scope.
//!
//! ```text
//! cargo run --example named_keys_api
//! # it prints the managing key alone on a line, then `listening on http://127.0.0.1:3000`
//! KEY=pk_live_…
//! curl -X POST -H "Authorization: Bearer $KEY" -d '{"name":"New API Key"}' localhost:3000/api/user/keys
//! # {"key":{"id":"key_…","name":"New API Key","key":"pk_live_…","createdAt":"2026-12-02T12:00:00Z"}}
//! curl -H "Authorization: Bearer $KEY" localhost:3000/api/user/keys
//! # {"keys":[{"id":"key_…","name":"Admin","prefix":"pk_live_…","createdAt":"…","lastUsed":"…"},…]}
//! curl -X DELETE -H "Authorization: Bearer $KEY" -d '{"id":"key_…"}' localhost:3000/api/user/keys
//! # {"success":true}
//! curl -H "Authorization: Bearer <a minted key>" localhost:3000/api/account
//! ```
//!
//! A key manages keys only because it carries `keys:manage`; it manages its own
//! owner's keys and can grant only scopes it holds. The owner's browser session works
//! too (the quickstart shows a login); this example has no login page.

use std::net::SocketAddr;

use axum::{routing::get, Router};
use tower_api_key::{
    manage::{Caller, Keys, ManagementRoutes, NamedKeysApi, NewKey},
    session::{CookieSessions, SessionGuardLayer},
    ApiKeyLayer, Authenticator, InMemoryKeyStore, Principal,
};

/// The scope that lets a key manage its owner's keys.
const MANAGE: &str = "keys:manage";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::var("ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3000".into())
        .parse()?;
    let store = InMemoryKeyStore::new();
    let auth = Authenticator::new(store.clone());
    // New keys read the account unless asked for more; `keys:manage` may be granted
    // (by a key that holds it).
    let keys = Keys::new(store)
        .last_use(auth.last_use().clone())
        .default_scopes(["account:read"])
        .grantable_scopes([MANAGE]);
    let sessions = CookieSessions::with_random_key()?;
    let routes =
        ManagementRoutes::new(keys.clone(), SessionGuardLayer::new(sessions), auth.clone())
            .one_active_path(None)
            .named_api(NamedKeysApi::Compact)
            .bearer_scope(MANAGE);

    let admin = NewKey::named("Admin").scope(MANAGE).scope("account:read");
    let admin = keys
        .named()
        .create(&Caller::system(), "demo", admin)
        .await?;

    let app = Router::new()
        .route(
            "/api/account",
            get(|caller: Principal| async move { format!("hello, {}\n", caller.owner()) }),
        )
        .layer(ApiKeyLayer::new(auth.clone()))
        .merge(routes.into_router());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("managing key (keys:manage, shown once):");
    println!("{}", admin.api_key().expose_secret());
    println!("listening on http://{}", listener.local_addr()?);
    // Each connection's address: IP restrictions and the failed-attempts budget need it.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    // Last uses and usage counts still in memory go to the store before exiting.
    auth.flush().await?;
    Ok(())
}
