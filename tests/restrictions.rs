//! Key restrictions through a real axum Router: client address (IPv4, IPv6, behind
//! trusted proxies, spoofing without them), browser origin, method and path.

mod common;

use std::net::SocketAddr;

use axum::{
    body::Body,
    extract::ConnectInfo,
    routing::{get, post},
    Router,
};
use common::{Reply, TestStore};
use http::{Method, Request, StatusCode};
use tower::ServiceExt;
use tower_api_key::{
    auth::Authenticator,
    error::AuthErrorKind,
    policy::{ForwardedHeader, PeerAddr, Restrictions},
    store::{InsertRule, KeyStore},
    ApiKey, ApiKeyLayer, InMemoryKeyStore, KeyMode, KeyRecord, Principal,
};

struct App {
    router: Router,
    key: String,
}

async fn app_with(inner: InMemoryKeyStore, auth: Authenticator, restrictions: Restrictions) -> App {
    let key = ApiKey::generate(KeyMode::Live).unwrap();
    let record = KeyRecord::builder(&key, "acct")
        .restrictions(restrictions)
        .build();
    inner
        .insert(record, InsertRule::Unconditional)
        .await
        .unwrap();
    let router = Router::new()
        .route(
            "/api/leads/{id}",
            get(|p: Principal| async move { p.owner().to_owned() }),
        )
        .route("/api/signals", post(|| async { "created" }))
        .layer(ApiKeyLayer::new(auth));
    App {
        router,
        key: key.expose_secret().to_owned(),
    }
}

async fn app(restrictions: Restrictions) -> App {
    let store = InMemoryKeyStore::new();
    app_with(store.clone(), Authenticator::new(store), restrictions).await
}

fn ip(text: &str) -> ipnet::IpNet {
    text.parse().unwrap()
}

impl App {
    /// A request with the key, from `peer` (as axum's `ConnectInfo`), with headers.
    async fn send(
        &self,
        method: Method,
        path: &str,
        peer: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.key));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut request = request.body(Body::empty()).unwrap();
        if let Some(peer) = peer {
            let addr: SocketAddr = peer.parse().unwrap();
            request.extensions_mut().insert(ConnectInfo(addr));
        }
        Reply::read(self.router.clone().oneshot(request).await.unwrap()).await
    }

    async fn from(&self, peer: &str) -> StatusCode {
        self.send(Method::GET, "/api/leads/1", Some(peer), &[])
            .await
            .status
    }
}

#[track_caller]
fn assert_forbidden(reply: &Reply, says: &str) {
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
    let envelope = reply.envelope();
    assert_eq!(envelope.error.code, tower_api_key::ErrorCode::Forbidden);
    assert!(
        envelope.error.message.contains(says),
        "{}",
        envelope.error.message
    );
    assert_eq!(
        reply.header("www-authenticate"),
        r#"Bearer realm="api", error="insufficient_scope""#
    );
}

#[tokio::test]
async fn ip_ranges_v4_and_v6() {
    let app = app(Restrictions::default()
        .allow_ip(ip("203.0.113.0/24"))
        .allow_ip(ip("2001:db8::/32"))
        .allow_ip(ip("198.51.100.7/32")))
    .await;
    assert_eq!(app.from("203.0.113.9:5000").await, StatusCode::OK);
    assert_eq!(app.from("198.51.100.7:1").await, StatusCode::OK);
    assert_eq!(app.from("[2001:db8:1::5]:443").await, StatusCode::OK);
    // A v4 client on a dual-stack socket appears as ::ffff:a.b.c.d.
    assert_eq!(app.from("[::ffff:203.0.113.4]:80").await, StatusCode::OK);
    let reply = app
        .send(Method::GET, "/api/leads/1", Some("192.0.2.1:80"), &[])
        .await;
    assert_forbidden(&reply, "network address");
    assert!(
        !reply.body.contains("203.0.113"),
        "no values in the message"
    );
    assert_eq!(app.from("[2001:db9::1]:80").await, StatusCode::FORBIDDEN);
    // No peer address known at all: refused, never assumed.
    let reply = app.send(Method::GET, "/api/leads/1", None, &[]).await;
    assert_forbidden(&reply, "network address");
    // A hyper server can report the peer with `PeerAddr` instead of `ConnectInfo`.
    let mut request = Request::get("/api/leads/1")
        .header("authorization", format!("Bearer {}", app.key))
        .body(Body::empty())
        .unwrap();
    request
        .extensions_mut()
        .insert(PeerAddr("203.0.113.1:9".parse().unwrap()));
    let reply = Reply::read(app.router.clone().oneshot(request).await.unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn forwarding_headers_are_ignored_without_trusted_proxies() {
    let app = app(Restrictions::default().allow_ip(ip("203.0.113.0/24"))).await;
    for (name, value) in [
        ("x-forwarded-for", "203.0.113.9"),
        ("x-forwarded-for", "10.0.0.1, 203.0.113.9"),
        ("forwarded", "for=203.0.113.9"),
        ("x-real-ip", "203.0.113.9"),
    ] {
        let reply = app
            .send(
                Method::GET,
                "/api/leads/1",
                Some("192.0.2.1:80"),
                &[(name, value)],
            )
            .await;
        assert_forbidden(&reply, "network address");
    }
}

#[tokio::test]
async fn behind_trusted_proxies_the_rightmost_untrusted_hop_counts() {
    let store = InMemoryKeyStore::new();
    let auth = Authenticator::builder(store.clone())
        .trusted_proxies([ip("10.0.0.0/8")], ForwardedHeader::XForwardedFor)
        .build();
    let app = app_with(
        store,
        auth,
        Restrictions::default().allow_ip(ip("203.0.113.0/24")),
    )
    .await;
    let proxy = Some("10.1.2.3:443");
    let ok = [("x-forwarded-for", "203.0.113.9, 10.0.0.7")];
    assert_eq!(
        app.send(Method::GET, "/api/leads/1", proxy, &ok)
            .await
            .status,
        StatusCode::OK
    );
    // The client prepends a spoofed address: the rightmost untrusted one still wins.
    let spoofed = [("x-forwarded-for", "203.0.113.9, 192.0.2.1, 10.0.0.7")];
    let reply = app.send(Method::GET, "/api/leads/1", proxy, &spoofed).await;
    assert_forbidden(&reply, "network address");
    // A `Forwarded` header the proxies do not write is never read: a client cannot
    // smuggle an address in through it.
    let smuggled = [
        ("forwarded", "for=203.0.113.9"),
        ("x-forwarded-for", "192.0.2.66, 10.0.0.7"),
    ];
    let reply = app
        .send(Method::GET, "/api/leads/1", proxy, &smuggled)
        .await;
    assert_forbidden(&reply, "network address");
    // A trusted proxy that forwarded no address: the client is unknown, refused.
    let reply = app.send(Method::GET, "/api/leads/1", proxy, &[]).await;
    assert_forbidden(&reply, "network address");
    // The same headers from a peer that is not a trusted proxy: ignored.
    let reply = app
        .send(Method::GET, "/api/leads/1", Some("192.0.2.50:1"), &ok)
        .await;
    assert_forbidden(&reply, "network address");
}

#[tokio::test]
async fn browser_origins_exact_and_wildcard() {
    let app = app(Restrictions::default()
        .allow_origin("https://app.example.com".parse().unwrap())
        .allow_origin("https://*.partners.example".parse().unwrap()))
    .await;
    let app = &app;
    let send = move |origin: &'static str| async move {
        app.send(Method::GET, "/api/leads/1", None, &[("origin", origin)])
            .await
    };
    assert_eq!(send("https://app.example.com").await.status, StatusCode::OK);
    assert_eq!(
        send("https://acme.partners.example").await.status,
        StatusCode::OK
    );
    for refused in [
        "https://evil.example",
        "http://app.example.com",
        "https://partners.example",
        "https://app.example.com.evil.example",
        "null",
    ] {
        assert_forbidden(&send(refused).await, "origin");
    }
    // No Origin: the Referer's origin, else refused.
    let referer = [("referer", "https://app.example.com/settings?tab=keys")];
    assert_eq!(
        app.send(Method::GET, "/api/leads/1", None, &referer)
            .await
            .status,
        StatusCode::OK
    );
    assert_forbidden(
        &app.send(Method::GET, "/api/leads/1", None, &[]).await,
        "origin",
    );
}

#[tokio::test]
async fn routes_by_method_and_path() {
    let app = app(Restrictions::default().allow_route("GET /api/leads/*".parse().unwrap())).await;
    assert_eq!(
        app.send(Method::GET, "/api/leads/7", None, &[])
            .await
            .status,
        StatusCode::OK
    );
    let reply = app.send(Method::POST, "/api/signals", None, &[]).await;
    assert_forbidden(&reply, "method and path");
}

#[tokio::test]
async fn the_waiting_path_checks_the_same_restrictions() {
    let store = TestStore::async_lookups();
    let auth = Authenticator::new(store.clone());
    let app = app_with(
        store.inner.clone(),
        auth,
        Restrictions::default().allow_ip(ip("203.0.113.0/24")),
    )
    .await;
    assert_eq!(app.from("203.0.113.9:5000").await, StatusCode::OK);
    assert_forbidden(
        &app.send(Method::GET, "/api/leads/1", Some("192.0.2.1:80"), &[])
            .await,
        "network address",
    );
}

#[tokio::test]
async fn unrestricted_keys_and_header_only_checks() {
    let app = app(Restrictions::default()).await;
    assert_eq!(
        app.send(Method::POST, "/api/signals", None, &[])
            .await
            .status,
        StatusCode::OK
    );

    // Without the request, restrictions cannot be checked: the key is refused.
    let store = InMemoryKeyStore::new();
    let key = ApiKey::generate(KeyMode::Live).unwrap();
    let record = KeyRecord::builder(&key, "o")
        .restrictions(Restrictions::default().allow_route("GET /a".parse().unwrap()))
        .build();
    store
        .insert(record, InsertRule::Unconditional)
        .await
        .unwrap();
    let auth = Authenticator::new(store);
    let err = auth
        .authenticate_outside_http(key.expose_secret())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), AuthErrorKind::RouteNotAllowed);
    let (parts, ()) = Request::get("/a")
        .header("authorization", format!("Bearer {}", key.expose_secret()))
        .body(())
        .unwrap()
        .into_parts();
    assert!(auth.authenticate(&parts).await.is_ok());
}
