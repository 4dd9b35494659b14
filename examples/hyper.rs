//! The same layer on a bare hyper server, without axum.
//!
//! ```text
//! cargo run --example hyper
//! ```
//!
//! Serves `GET /` on `ADDR` (default `127.0.0.1:3001`) to callers with a valid key.
//! Each request carries its connection's peer address (`PeerAddr`), which the layer
//! needs for IP-restricted keys and the failed-attempts budget per client.

use std::{convert::Infallible, net::SocketAddr};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::{rt::TokioIo, service::TowerToHyperService};
use tower::ServiceBuilder;
use tower_api_key::{
    policy::PeerAddr,
    store::{InsertRule, KeyStore},
    ApiKey, ApiKeyLayer, InMemoryKeyStore, KeyMode, KeyRecord, Principal,
};

async fn hello(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // The layer only calls us with a verified key, so the principal is always there.
    let owner = request
        .extensions()
        .get::<Principal>()
        .map_or("nobody", |p| p.owner());
    Ok(Response::new(Full::from(format!("hello, {owner}\n"))))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::var("ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3001".into())
        .parse()?;

    let store = InMemoryKeyStore::new();
    let key = ApiKey::generate(KeyMode::Live)?;
    store
        .insert(
            KeyRecord::builder(&key, "demo").build(),
            InsertRule::Unconditional,
        )
        .await?;
    println!("demo key: {}", key.expose_secret());

    let service = ServiceBuilder::new()
        .layer(ApiKeyLayer::new(store))
        .service_fn(hello);

    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, peer) = listener.accept().await?;
        // Without the peer address every client shares one failed-attempts budget and
        // IP-restricted keys are always refused.
        let service = ServiceBuilder::new()
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(PeerAddr(peer));
                request
            })
            .service(service.clone());
        let service = TowerToHyperService::new(service);
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
