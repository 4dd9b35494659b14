//! The session guard through real axum routers, as a user would wire it: the
//! cross-origin rules (after Go 1.25's `CrossOriginProtection`), signed-cookie
//! sessions, failing session backends, `SessionGuardLayer::admit`, the tower-sessions
//! adapter, the management routes behind the guard, and what `Debug` shows.

mod common;

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use axum::{body::Body, routing::any, Router};
use common::Reply;
use http::{request::Parts, HeaderValue, Method, Request, StatusCode};
use tower::{Layer, ServiceExt};
use tower_api_key::{
    manage::{self, Keys},
    session::{
        CookieSessions, CrossOriginProtection, SessionError, SessionGuardLayer, SessionResolver,
        SessionUser,
    },
    store::KeyStore,
    Authenticator, ErrorCode, InMemoryKeyStore,
};

const SIGNING_KEY: [u8; 64] = [7u8; 64];
const HOST: &str = "127.0.0.1:3000";
const ACTIVE: &str = "/api/v1/partners/api-key";
const NAMED: &str = "/api/user/keys";
const UNSAFE: [Method; 4] = [Method::POST, Method::PUT, Method::PATCH, Method::DELETE];
const SAFE: [Method; 3] = [Method::GET, Method::HEAD, Method::OPTIONS];

/// Request headers of a test case.
type Headers<'a> = &'a [(&'a str, &'a str)];

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

fn sessions() -> CookieSessions {
    CookieSessions::new(&SIGNING_KEY).expect("a 64-byte key")
}

/// `name=value` of a `Set-Cookie` value: what a browser sends back in `Cookie`.
fn cookie_pair(set_cookie: &HeaderValue) -> String {
    set_cookie
        .to_str()
        .expect("ascii Set-Cookie")
        .split(';')
        .next()
        .expect("a name=value pair")
        .trim()
        .to_owned()
}

/// The `Cookie` of a browser logged in as `user` with [`sessions`].
fn session_cookie(user: &str) -> String {
    cookie_pair(&sessions().login(&SessionUser::new(user)))
}

/// A request with `Host: 127.0.0.1:3000` and these headers.
fn request(method: Method, uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    request_with_body(method, uri, headers, Body::empty())
}

fn request_with_body(
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: Body,
) -> Request<Body> {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", HOST);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(body).expect("request")
}

/// The head of a request, as `SessionGuardLayer::admit` sees it.
fn parts(method: Method, headers: &[(&str, &str)]) -> Parts {
    let (parts, ()) = request_with_body(method, "/settings", headers, Body::empty())
        .map(|_| ())
        .into_parts();
    parts
}

async fn send(router: &Router, request: Request<Body>) -> Reply {
    let response = router.clone().oneshot(request).await.expect("infallible");
    Reply::read(response).await
}

/// A refusal in the crate's envelope, never cached.
#[track_caller]
fn assert_refused(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{reply:?}");
    let json = reply.json();
    let error = json["error"].as_object().expect("an error object");
    assert_eq!(json.as_object().map(|o| o.len()), Some(1), "{json}");
    assert_eq!(error.len(), 2, "{json}");
    assert_eq!(error["code"], code, "{json}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{json}"
    );
    assert_eq!(reply.header("content-type"), "application/json");
    assert_eq!(reply.header("cache-control"), "no-store");
}

/// The same refusal answered to `HEAD`: axum sends the head only, no body.
#[track_caller]
fn assert_refused_to(method: &Method, reply: &Reply, status: StatusCode, code: &str) {
    if *method == Method::HEAD {
        assert_eq!(reply.status, status, "{reply:?}");
        assert!(reply.body.is_empty(), "{reply:?}");
        assert_eq!(reply.header("content-type"), "application/json");
        assert_eq!(reply.header("cache-control"), "no-store");
    } else {
        assert_refused(reply, status, code);
    }
}

#[track_caller]
fn assert_forbidden(reply: &Reply) {
    assert_refused(reply, StatusCode::FORBIDDEN, "forbidden");
}

#[track_caller]
fn assert_unauthorized(reply: &Reply) {
    assert_refused(reply, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[track_caller]
fn assert_unavailable(reply: &Reply) {
    assert_refused(reply, StatusCode::SERVICE_UNAVAILABLE, "internal_error");
    assert_eq!(reply.header("retry-after"), "1");
}

/// `/settings` behind a guard, answering any method with the session user's id and
/// counting how often it ran.
struct Guarded {
    router: Router,
    calls: Arc<AtomicUsize>,
}

impl Guarded {
    fn new(guard: SessionGuardLayer) -> Self {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let router = Router::new()
            .route(
                "/settings",
                any(move |user: SessionUser| {
                    let counter = counter.clone();
                    async move {
                        counter.fetch_add(1, Ordering::SeqCst);
                        user.id().to_owned()
                    }
                }),
            )
            .layer(guard);
        Guarded { router, calls }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    async fn send(&self, method: Method, headers: &[(&str, &str)]) -> Reply {
        send(&self.router, request(method, "/settings", headers)).await
    }
}

fn cookie_guard() -> Guarded {
    Guarded::new(SessionGuardLayer::new(sessions()))
}

/// The management routes over a fresh store, behind `guard`.
struct Management {
    router: Router,
    store: InMemoryKeyStore,
    auth: Authenticator,
}

impl Management {
    fn new(guard: SessionGuardLayer) -> Self {
        let store = InMemoryKeyStore::new();
        let auth = Authenticator::new(store.clone());
        let keys = Keys::new(store.clone()).last_use(auth.last_use().clone());
        let router = manage::router(keys, guard, auth.clone());
        Management {
            router,
            store,
            auth,
        }
    }

    fn with_cookies() -> Self {
        Self::new(SessionGuardLayer::new(sessions()))
    }

    async fn send(&self, method: Method, uri: &str, headers: &[(&str, &str)]) -> Reply {
        send(&self.router, request(method, uri, headers)).await
    }

    async fn stored(&self, owner: &str) -> usize {
        self.store.list_by_owner(owner).await.expect("store").len()
    }
}

/// A resolver whose backend is down, counting how often it was asked.
#[derive(Clone, Default)]
struct Broken(Arc<AtomicUsize>);

#[async_trait::async_trait]
impl SessionResolver for Broken {
    async fn resolve(&self, _: &Parts) -> Result<Option<SessionUser>, SessionError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(SessionError(
            std::io::Error::other("session database secret-host:5432 is down").into(),
        ))
    }
}

// ---------------------------------------------------------------------------------
// 1. Cross-origin rules
// ---------------------------------------------------------------------------------

/// Runs each case with a valid session cookie, so only the cross-origin rule decides:
/// every unsafe method passes or is refused (403, handler not run) as the case says,
/// and every safe method always passes.
async fn check_rules(app: &Guarded, host: &str, cases: &[(Headers<'_>, bool)]) {
    let cookie = session_cookie("demo");
    for (headers, passes) in cases {
        let mut all = vec![("cookie", cookie.as_str())];
        all.extend_from_slice(headers);
        for method in UNSAFE.iter().chain(SAFE.iter()) {
            let mut request = request(method.clone(), "/settings", &all);
            request
                .headers_mut()
                .insert("host", HeaderValue::from_str(host).expect("host"));
            let before = app.calls();
            let reply = send(&app.router, request).await;
            let safe = SAFE.contains(method);
            if *passes || safe {
                assert_eq!(
                    reply.status,
                    StatusCode::OK,
                    "{method} {headers:?}: {reply:?}"
                );
                assert_eq!(app.calls(), before + 1, "{method} {headers:?}");
                if *method != Method::HEAD {
                    assert_eq!(reply.body, "demo", "{method} {headers:?}");
                }
            } else {
                assert_refused_to(method, &reply, StatusCode::FORBIDDEN, "forbidden");
                assert_eq!(app.calls(), before, "{method} {headers:?} ran the handler");
            }
        }
    }
}

#[tokio::test]
async fn go_cross_origin_rules_with_a_valid_session() {
    let app = cookie_guard();
    let cases: &[(Headers, bool)] = &[
        // Sec-Fetch-Site decides when present.
        (&[("sec-fetch-site", "cross-site")], false),
        (&[("sec-fetch-site", "same-site")], false),
        (&[("sec-fetch-site", "same-origin")], true),
        (&[("sec-fetch-site", "none")], true),
        (&[("sec-fetch-site", "something-new")], false),
        (
            &[
                ("sec-fetch-site", "cross-site"),
                ("origin", "http://127.0.0.1:3000"),
            ],
            false,
        ),
        (
            &[
                ("sec-fetch-site", "same-origin"),
                ("origin", "http://127.0.0.1:3000"),
            ],
            true,
        ),
        // Without it, Origin must be this server (Host), or absent.
        (&[("origin", "http://127.0.0.1:3000")], true),
        (&[("origin", "https://127.0.0.1:3000")], true),
        (&[("origin", "null")], false),
        (
            &[("origin", "http://127.0.0.1:3000.attacker.example")],
            false,
        ),
        (&[("origin", "http://127.0.0.1:3001")], false),
        (&[("origin", "http://127.0.0.1")], false),
        (&[("origin", "http://attacker.example")], false),
        (&[("origin", "ftp://127.0.0.1:3000")], false),
        (&[], true),
    ];
    check_rules(&app, HOST, cases).await;
}

#[tokio::test]
async fn repeated_headers_are_refused() {
    let app = cookie_guard();
    let cookie = session_cookie("demo");
    for (name, value) in [
        ("origin", "http://127.0.0.1:3000"),
        ("sec-fetch-site", "same-origin"),
    ] {
        let mut request = request(Method::POST, "/settings", &[("cookie", &cookie)]);
        let value = HeaderValue::from_static(value);
        request.headers_mut().append(name, value.clone());
        request.headers_mut().append(name, value);
        assert_forbidden(&send(&app.router, request).await);
    }
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn a_trusted_origin_passes_even_cross_site() {
    let app = Guarded::new(
        SessionGuardLayer::new(sessions())
            .cross_origin(CrossOriginProtection::new().trusted_origin("https://dashboard.example")),
    );
    let cases: &[(Headers, bool)] = &[
        (
            &[
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://dashboard.example"),
            ],
            true,
        ),
        (
            &[
                ("sec-fetch-site", "same-site"),
                ("origin", "https://dashboard.example"),
            ],
            true,
        ),
        (&[("origin", "https://dashboard.example")], true),
        // Exact match only.
        (
            &[
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://dashboard.example.evil"),
            ],
            false,
        ),
        (
            &[
                ("sec-fetch-site", "cross-site"),
                ("origin", "http://dashboard.example"),
            ],
            false,
        ),
        (&[("origin", "https://dashboard.example:8443")], false),
        // Cross-site without an Origin cannot be matched against the trusted list.
        (&[("sec-fetch-site", "cross-site")], false),
        // The default rules still hold for everyone else.
        (&[("origin", "http://127.0.0.1:3000")], true),
        (&[("origin", "http://attacker.example")], false),
        (&[], true),
    ];
    check_rules(&app, HOST, cases).await;
}

#[tokio::test]
async fn a_configured_server_origin_is_compared_exactly() {
    let app = Guarded::new(
        SessionGuardLayer::new(sessions())
            .cross_origin(CrossOriginProtection::new().server_origin("https://app.example")),
    );
    let cases: &[(Headers, bool)] = &[
        (&[("origin", "https://app.example")], true),
        (&[("origin", "http://app.example")], false),
        (&[("origin", "https://app.example:443")], false),
        (&[("origin", "https://app.example/")], false),
        (&[("origin", "https://app.example.attacker.example")], false),
        (&[("sec-fetch-site", "same-origin")], true),
        (&[("sec-fetch-site", "cross-site")], false),
        (&[], true),
    ];
    check_rules(&app, "app.example", cases).await;
    // Behind a proxy that rewrites Host, the configured origin still matches…
    check_rules(
        &app,
        "internal:8080",
        &[(&[("origin", "https://app.example")], true)],
    )
    .await;
    // …and an Origin equal to the (rewritten) Host no longer does.
    check_rules(
        &app,
        "internal:8080",
        &[
            (&[("origin", "http://internal:8080")], false),
            (&[("origin", "https://internal:8080")], false),
        ],
    )
    .await;
}

#[tokio::test]
async fn without_host_an_origin_cannot_be_this_server() {
    let app = cookie_guard();
    let cookie = session_cookie("demo");
    let mut request = request(
        Method::POST,
        "/settings",
        &[("cookie", &cookie), ("origin", "http://127.0.0.1:3000")],
    );
    request.headers_mut().remove("host");
    assert_forbidden(&send(&app.router, request).await);
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn the_cross_origin_check_comes_before_the_session() {
    // No cookie at all: still 403, not 401.
    let app = cookie_guard();
    let reply = app
        .send(Method::POST, &[("sec-fetch-site", "cross-site")])
        .await;
    assert_forbidden(&reply);
    // A broken backend is not even asked about a cross-origin request.
    let broken = Broken::default();
    let app = Guarded::new(SessionGuardLayer::new(broken.clone()));
    let reply = app
        .send(Method::DELETE, &[("origin", "http://attacker.example")])
        .await;
    assert_forbidden(&reply);
    assert_eq!(broken.0.load(Ordering::SeqCst), 0);
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn a_refused_cross_origin_mint_mints_nothing() {
    let app = Management::with_cookies();
    let cookie = session_cookie("fresh");
    let attacks: [&[(&str, &str)]; 4] = [
        &[("sec-fetch-site", "cross-site")],
        &[("sec-fetch-site", "same-site")],
        &[("origin", "null")],
        &[("origin", "http://127.0.0.1:3000.attacker.example")],
    ];
    for attack in attacks {
        let mut headers = vec![("cookie", cookie.as_str())];
        headers.extend_from_slice(attack);
        for (method, uri) in [
            (Method::POST, ACTIVE),
            (Method::POST, NAMED),
            (Method::POST, "/api/v1/partners/api-key/rotate"),
        ] {
            assert_forbidden(&app.send(method, uri, &headers).await);
        }
    }
    assert_eq!(app.stored("fresh").await, 0);
    // The owner's own views, read cross-site (GET is never blocked): nothing there.
    let headers = [
        ("cookie", cookie.as_str()),
        ("sec-fetch-site", "cross-site"),
    ];
    let view = app.send(Method::GET, ACTIVE, &headers).await;
    assert_refused(&view, StatusCode::NOT_FOUND, "not_found");
    let list = app.send(Method::GET, NAMED, &headers).await;
    assert_eq!(list.status, StatusCode::OK, "{list:?}");
    assert_eq!(list.json(), serde_json::json!({ "keys": [] }));
    assert_eq!(list.header("cache-control"), "no-store");
}

#[tokio::test]
async fn cross_origin_revokes_and_rotations_change_nothing() {
    let app = Management::with_cookies();
    let cookie = session_cookie("owner");
    let same_origin = [
        ("cookie", cookie.as_str()),
        ("sec-fetch-site", "same-origin"),
    ];
    let created = app.send(Method::POST, ACTIVE, &same_origin).await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    assert_eq!(created.header("cache-control"), "no-store");
    let created = created.json();
    let raw = created["api_key"].as_str().expect("api_key").to_owned();
    assert!(raw.starts_with("pk_live_"), "{raw}");
    // Named keys under another owner: both shapes share one owner namespace.
    let other = session_cookie("other");
    let other_same_origin = [
        ("cookie", other.as_str()),
        ("sec-fetch-site", "same-origin"),
    ];
    let named = send(
        &app.router,
        request_with_body(
            Method::POST,
            NAMED,
            &other_same_origin,
            Body::from(r#"{"name":"ci"}"#),
        ),
    )
    .await;
    assert_eq!(named.status, StatusCode::CREATED, "{named:?}");
    let named_id = named.json()["id"].as_str().expect("id").to_owned();

    let cross = [
        ("cookie", cookie.as_str()),
        ("sec-fetch-site", "cross-site"),
    ];
    let other_cross = [("cookie", other.as_str()), ("sec-fetch-site", "cross-site")];
    let named_path = format!("{NAMED}/{named_id}");
    let named_rotate = format!("{NAMED}/{named_id}/rotate");
    for (method, uri, headers) in [
        (Method::DELETE, ACTIVE, &cross),
        (Method::POST, "/api/v1/partners/api-key/rotate", &cross),
        (Method::DELETE, named_path.as_str(), &other_cross),
        (Method::POST, named_rotate.as_str(), &other_cross),
    ] {
        assert_forbidden(&app.send(method, uri, headers).await);
    }
    assert_eq!(app.stored("owner").await, 1);
    assert_eq!(app.stored("other").await, 1);
    let list = app.send(Method::GET, NAMED, &other_same_origin).await;
    let list = list.json();
    assert_eq!(list["keys"][0]["id"], named_id.as_str(), "{list}");
    assert_eq!(list["keys"][0]["status"], "active", "{list}");
    let view = app.send(Method::GET, ACTIVE, &same_origin).await;
    assert_eq!(view.status, StatusCode::OK, "{view:?}");
    let view = view.json();
    assert_eq!(view["id"], created["id"]);
    assert_eq!(view["status"], "active");
    assert_eq!(view["retiring"], serde_json::json!([]));
    // The minted key still works.
    let (headers, ()) = http::Request::get("/")
        .header("authorization", format!("Bearer {raw}"))
        .body(())
        .expect("request")
        .into_parts();
    assert!(app.auth.authenticate(&headers).await.is_ok());
}

// ---------------------------------------------------------------------------------
// 2. Sessions
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn no_cookie_is_unauthorized() {
    let app = cookie_guard();
    for method in UNSAFE.iter().chain(SAFE.iter()) {
        let reply = app.send(method.clone(), &[]).await;
        assert_refused_to(method, &reply, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    // Other cookies are not a session.
    let reply = app
        .send(Method::GET, &[("cookie", "theme=dark; session=1.demo")])
        .await;
    assert_unauthorized(&reply);
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn a_valid_api_key_alone_is_not_a_session() {
    let app = Management::with_cookies();
    let key = common::mint(&app.store, "demo", &["account:read"]).await;
    let bearer = format!("Bearer {}", key.expose_secret());
    let (headers, ()) = http::Request::get("/")
        .header("authorization", &bearer)
        .body(())
        .expect("request")
        .into_parts();
    let principal = app.auth.authenticate(&headers).await.expect("a valid key");
    assert_eq!(principal.owner(), "demo");

    let auth = [("authorization", bearer.as_str())];
    for (method, uri) in [
        (Method::POST, ACTIVE),
        (Method::GET, ACTIVE),
        (Method::POST, "/api/v1/partners/api-key/rotate"),
        (Method::POST, NAMED),
        (Method::GET, NAMED),
    ] {
        assert_unauthorized(&app.send(method, uri, &auth).await);
    }
    // Nothing minted, nothing rotated: the one key is still the only one, and works.
    assert_eq!(app.stored("demo").await, 1);
    assert!(app.auth.authenticate(&headers).await.is_ok());
}

#[tokio::test]
async fn a_valid_cookie_admits_the_right_user() {
    let app = cookie_guard();
    for user in ["demo", "acct_42", "user.with.dots", "a;b c=d,\"e\""] {
        let cookie = session_cookie(user);
        let reply = app.send(Method::POST, &[("cookie", &cookie)]).await;
        assert_eq!(reply.status, StatusCode::OK, "{user}: {reply:?}");
        assert_eq!(reply.body, user);
    }
    // Among other cookies, and in a second Cookie header (as HTTP/2 sends them).
    let cookie = session_cookie("demo");
    let among = format!("theme=dark; {cookie}; lang=en");
    let reply = app.send(Method::PUT, &[("cookie", &among)]).await;
    assert_eq!(reply.body, "demo", "{reply:?}");
    let reply = app
        .send(
            Method::PATCH,
            &[("cookie", "theme=dark"), ("cookie", &cookie)],
        )
        .await;
    assert_eq!(reply.body, "demo", "{reply:?}");
    assert_eq!(app.calls(), 6);
}

#[tokio::test]
async fn a_valid_cookie_manages_its_own_keys_only() {
    let app = Management::with_cookies();
    let alice = session_cookie("alice");
    let created = app.send(Method::POST, ACTIVE, &[("cookie", &alice)]).await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    assert_eq!(app.stored("alice").await, 1);
    let bob = session_cookie("bob");
    let view = app.send(Method::GET, ACTIVE, &[("cookie", &bob)]).await;
    assert_refused(&view, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn two_session_cookies_are_refused() {
    let app = cookie_guard();
    let demo = session_cookie("demo");
    let root = session_cookie("root");
    let both = format!("{demo}; {root}");
    assert_unauthorized(&app.send(Method::GET, &[("cookie", &both)]).await);
    let reply = app
        .send(Method::GET, &[("cookie", &demo), ("cookie", &demo)])
        .await;
    assert_unauthorized(&reply);
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn a_tampered_cookie_is_unauthorized() {
    let app = cookie_guard();
    let good = session_cookie("demo");
    let (name, value) = good.split_once('=').expect("name=value");
    // Flip each character of the value in turn.
    for at in 0..value.len() {
        let mut bytes = value.as_bytes().to_vec();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let tampered = format!("{name}={}", String::from_utf8(bytes).expect("ascii"));
        let reply = app.send(Method::GET, &[("cookie", &tampered)]).await;
        assert_unauthorized(&reply);
    }
    // Another user's id, or a later expiry, spliced into a signed value.
    for forged in [
        good.replace(".demo", ".root"),
        good.replace(".demo", ".demo2"),
        format!("{name}=9999999999.demo"),
        format!("{name}="),
        format!("{name}={}", &value[..value.len() - 1]),
    ] {
        assert_ne!(forged, good);
        assert_unauthorized(&app.send(Method::GET, &[("cookie", &forged)]).await);
    }
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn a_cookie_signed_with_another_key_is_unauthorized() {
    let app = cookie_guard();
    let other = CookieSessions::new(&[8u8; 64]).expect("key");
    let foreign = cookie_pair(&other.login(&SessionUser::new("demo")));
    assert!(foreign.starts_with("__Host-session="));
    assert_unauthorized(&app.send(Method::GET, &[("cookie", &foreign)]).await);
    // Every session ends when the key changes.
    let random = CookieSessions::with_random_key().expect("random key");
    let foreign = cookie_pair(&random.login(&SessionUser::new("demo")));
    assert_unauthorized(&app.send(Method::POST, &[("cookie", &foreign)]).await);
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn an_expired_cookie_is_unauthorized() {
    let app = cookie_guard();
    let short = sessions().ttl(Duration::ZERO);
    let set_cookie = short.login(&SessionUser::new("demo"));
    assert!(set_cookie.to_str().expect("ascii").contains("Max-Age=0"));
    let expired = cookie_pair(&set_cookie);
    assert_unauthorized(&app.send(Method::GET, &[("cookie", &expired)]).await);
    // A short but live session works, with the same key.
    let live = cookie_pair(
        &sessions()
            .ttl(Duration::from_secs(60))
            .login(&SessionUser::new("demo")),
    );
    let reply = app.send(Method::GET, &[("cookie", &live)]).await;
    assert_eq!(reply.body, "demo", "{reply:?}");
    assert_eq!(app.calls(), 1);
}

#[tokio::test]
async fn local_http_cookies_work_over_oneshot() {
    let local = sessions().insecure_for_local_http();
    assert_eq!(local.cookie_name(), "session");
    let set_cookie = local.login(&SessionUser::new("demo"));
    let text = set_cookie.to_str().expect("ascii");
    assert!(text.starts_with("session="), "{text}");
    assert!(
        !text.contains("Secure") && !text.contains("__Host-"),
        "{text}"
    );
    assert!(
        text.contains("HttpOnly") && text.contains("SameSite=Lax"),
        "{text}"
    );

    let app = Guarded::new(SessionGuardLayer::new(local.clone()));
    let cookie = cookie_pair(&set_cookie);
    let reply = app
        .send(
            Method::POST,
            &[("cookie", &cookie), ("origin", "http://127.0.0.1:3000")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.body, "demo");
    // The secure `__Host-` cookie is not this guard's cookie…
    let secure = session_cookie("demo");
    assert_unauthorized(&app.send(Method::GET, &[("cookie", &secure)]).await);
    // …and the local cookie is not the secure guard's.
    let strict = cookie_guard();
    assert_unauthorized(&strict.send(Method::GET, &[("cookie", &cookie)]).await);
    assert_eq!(strict.calls(), 0);
    // Cross-origin rules are the same over plain http.
    let reply = app
        .send(
            Method::POST,
            &[("cookie", &cookie), ("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_forbidden(&reply);
    assert_eq!(app.calls(), 1);
}

/// The attributes of a `Set-Cookie` value after its `name=value`.
fn attributes(set_cookie: &HeaderValue) -> Vec<String> {
    set_cookie
        .to_str()
        .expect("ascii")
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_owned())
        .collect()
}

#[test]
fn login_sets_a_host_prefixed_secure_cookie() {
    let set_cookie = sessions().login(&SessionUser::new("demo"));
    let pair = cookie_pair(&set_cookie);
    assert!(pair.starts_with("__Host-session="), "{pair}");
    let attributes = attributes(&set_cookie);
    for expected in [
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=28800",
    ] {
        assert!(
            attributes.iter().any(|a| a == expected),
            "{expected} missing in {attributes:?}"
        );
    }
    // `__Host-` cookies carry no Domain.
    assert!(
        !attributes
            .iter()
            .any(|a| a.to_ascii_lowercase().starts_with("domain")),
        "{attributes:?}"
    );

    let strict = sessions()
        .same_site_strict()
        .login(&SessionUser::new("demo"));
    let attributes = self::attributes(&strict);
    assert!(
        attributes.iter().any(|a| a == "SameSite=Strict"),
        "{attributes:?}"
    );
    assert!(
        !attributes.iter().any(|a| a == "SameSite=Lax"),
        "{attributes:?}"
    );
    assert!(cookie_pair(&strict).starts_with("__Host-session="));

    let logout = sessions().logout();
    assert_eq!(cookie_pair(&logout), "__Host-session=");
    let attributes = self::attributes(&logout);
    for expected in ["Secure", "HttpOnly", "Path=/", "Max-Age=0"] {
        assert!(attributes.iter().any(|a| a == expected), "{attributes:?}");
    }
    assert!(CookieSessions::new(&[7u8; 63]).is_err());
}

#[tokio::test]
async fn a_logout_cookie_is_no_session() {
    let app = cookie_guard();
    let logout = cookie_pair(&sessions().logout());
    assert_unauthorized(&app.send(Method::GET, &[("cookie", &logout)]).await);
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn the_extractor_without_a_guard_is_unauthorized() {
    let router: Router = Router::new().route(
        "/me",
        any(|user: SessionUser| async move { user.id().to_owned() }),
    );
    let cookie = session_cookie("demo");
    let reply = send(&router, request(Method::GET, "/me", &[("cookie", &cookie)])).await;
    assert_unauthorized(&reply);
}

// ---------------------------------------------------------------------------------
// 3. A failing session backend
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_failing_resolver_is_503_never_a_pass() {
    let broken = Broken::default();
    let app = Guarded::new(SessionGuardLayer::new(broken.clone()));
    let cookie = session_cookie("demo");
    for method in UNSAFE.iter().chain(SAFE.iter()) {
        let reply = app.send(method.clone(), &[("cookie", &cookie)]).await;
        assert_refused_to(
            method,
            &reply,
            StatusCode::SERVICE_UNAVAILABLE,
            "internal_error",
        );
        assert_eq!(reply.header("retry-after"), "1");
        assert!(!reply.body.contains("secret-host"), "{}", reply.body);
    }
    assert_eq!(app.calls(), 0);
    assert_eq!(broken.0.load(Ordering::SeqCst), UNSAFE.len() + SAFE.len());

    let management = Management::new(SessionGuardLayer::new(broken));
    for (method, uri) in [
        (Method::POST, ACTIVE),
        (Method::GET, ACTIVE),
        (Method::DELETE, ACTIVE),
        (Method::POST, NAMED),
    ] {
        assert_unavailable(&management.send(method, uri, &[("cookie", &cookie)]).await);
    }
    assert_eq!(management.stored("demo").await, 0);
}

// ---------------------------------------------------------------------------------
// 4. `admit`
// ---------------------------------------------------------------------------------

/// `admit`'s answer as (status, code), 200 and no code when it admits.
async fn admitted(guard: &SessionGuardLayer, parts: &Parts) -> (StatusCode, Option<ErrorCode>) {
    match guard.admit(parts).await {
        Ok(_) => (StatusCode::OK, None),
        Err(error) => (error.status(), Some(error.code())),
    }
}

#[tokio::test]
async fn admit_answers_like_the_layer() {
    let cookie = session_cookie("demo");
    let cookie = cookie.as_str();
    let cases: &[(Method, Headers, StatusCode)] = &[
        (Method::POST, &[("cookie", cookie)], StatusCode::OK),
        (Method::POST, &[], StatusCode::UNAUTHORIZED),
        (
            Method::POST,
            &[("cookie", "__Host-session=x")],
            StatusCode::UNAUTHORIZED,
        ),
        (
            Method::POST,
            &[("sec-fetch-site", "cross-site")],
            StatusCode::FORBIDDEN,
        ),
        (
            Method::DELETE,
            &[("cookie", cookie), ("origin", "null")],
            StatusCode::FORBIDDEN,
        ),
        (
            Method::GET,
            &[("cookie", cookie), ("sec-fetch-site", "cross-site")],
            StatusCode::OK,
        ),
        (
            Method::GET,
            &[("sec-fetch-site", "cross-site")],
            StatusCode::UNAUTHORIZED,
        ),
    ];
    let guard = SessionGuardLayer::new(sessions());
    let app = Guarded::new(guard.clone());
    for (method, headers, status) in cases {
        let (admit_status, admit_code) = admitted(&guard, &parts(method.clone(), headers)).await;
        assert_eq!(admit_status, *status, "{method} {headers:?}");
        let reply = app.send(method.clone(), headers).await;
        assert_eq!(reply.status, admit_status, "{method} {headers:?}");
        match admit_code {
            Some(code) => assert_eq!(reply.envelope().error.code, code),
            None => assert_eq!(reply.body, "demo"),
        }
    }

    let user = guard
        .admit(&parts(Method::PATCH, &[("cookie", cookie)]))
        .await
        .expect("admitted");
    assert_eq!(user, SessionUser::new("demo"));
    assert_eq!(user.id(), "demo");

    // 403 before 401, and before asking a broken backend.
    let broken = Broken::default();
    let guard = SessionGuardLayer::new(broken.clone());
    let cross = parts(Method::POST, &[("sec-fetch-site", "cross-site")]);
    assert_eq!(
        admitted(&guard, &cross).await,
        (StatusCode::FORBIDDEN, Some(ErrorCode::Forbidden))
    );
    assert_eq!(broken.0.load(Ordering::SeqCst), 0);
    let error = guard
        .admit(&parts(Method::POST, &[("cookie", cookie)]))
        .await
        .expect_err("never a pass");
    assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error.code(), ErrorCode::InternalError);
    let response: http::Response<bytes::Bytes> = error.into_response();
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(broken.0.load(Ordering::SeqCst), 1);
}

// ---------------------------------------------------------------------------------
// 5. tower-sessions
// ---------------------------------------------------------------------------------

#[cfg(feature = "tower-sessions")]
mod tower_sessions_adapter {
    use std::{
        collections::HashMap,
        sync::{
            atomic::{AtomicBool, AtomicUsize, Ordering},
            Arc, Mutex,
        },
    };

    use axum::{routing::post, Extension, Router};
    use http::{header::SET_COOKIE, Method, StatusCode};
    use tower_api_key::session::{SessionGuardLayer, TowerSessions};
    use tower_sessions::{
        session::{Id, Record},
        session_store, Session, SessionManagerLayer, SessionStore,
    };

    use super::{assert_forbidden, assert_unauthorized, assert_unavailable, cookie_pair, send};

    /// A session store in memory (`tower_sessions::MemoryStore` needs the
    /// `memory-store` feature, which this crate leaves off); `failing` makes every
    /// load fail, as a database that went down.
    #[derive(Clone, Debug, Default)]
    struct Store {
        records: Arc<Mutex<HashMap<Id, Record>>>,
        failing: Arc<AtomicBool>,
    }

    #[async_trait::async_trait]
    impl SessionStore for Store {
        async fn create(&self, record: &mut Record) -> session_store::Result<()> {
            let mut records = self.records.lock().expect("lock");
            while records.contains_key(&record.id) {
                record.id = Id::default();
            }
            records.insert(record.id, record.clone());
            Ok(())
        }

        async fn save(&self, record: &Record) -> session_store::Result<()> {
            self.records
                .lock()
                .expect("lock")
                .insert(record.id, record.clone());
            Ok(())
        }

        async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
            if self.failing.load(Ordering::SeqCst) {
                return Err(session_store::Error::Backend("down".into()));
            }
            Ok(self.records.lock().expect("lock").get(id).cloned())
        }

        async fn delete(&self, id: &Id) -> session_store::Result<()> {
            self.records.lock().expect("lock").remove(id);
            Ok(())
        }
    }

    struct App {
        router: Router,
        store: Store,
        calls: Arc<AtomicUsize>,
    }

    /// `POST /login` stores `value` under `key`; `POST /settings` is behind the guard
    /// with `resolver`; `SessionManagerLayer` is outside both.
    fn app(key: &'static str, value: &'static str, resolver: TowerSessions) -> App {
        let store = Store::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let guarded = Router::new()
            .route(
                "/settings",
                post(move |user: tower_api_key::session::SessionUser| {
                    let counter = counter.clone();
                    async move {
                        counter.fetch_add(1, Ordering::SeqCst);
                        user.id().to_owned()
                    }
                }),
            )
            .layer(SessionGuardLayer::new(resolver));
        let router = Router::new()
            .route(
                "/login",
                post(move |Extension(session): Extension<Session>| async move {
                    session.insert(key, value).await.expect("insert");
                    StatusCode::NO_CONTENT
                }),
            )
            .merge(guarded)
            .layer(SessionManagerLayer::new(store.clone()).with_secure(false));
        App {
            router,
            store,
            calls,
        }
    }

    impl App {
        /// Logs in and returns the session cookie.
        async fn login(&self) -> String {
            let reply = send(&self.router, super::request(Method::POST, "/login", &[])).await;
            assert_eq!(reply.status, StatusCode::NO_CONTENT, "{reply:?}");
            cookie_pair(reply.headers.get(SET_COOKIE).expect("a session cookie"))
        }

        async fn settings(&self, headers: &[(&str, &str)]) -> super::Reply {
            send(
                &self.router,
                super::request(Method::POST, "/settings", headers),
            )
            .await
        }

        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    #[tokio::test]
    async fn a_logged_in_session_is_admitted() {
        let app = app("user_id", "demo", TowerSessions::new());
        assert_unauthorized(&app.settings(&[]).await);
        assert_eq!(app.calls(), 0);
        let cookie = app.login().await;
        let reply = app.settings(&[("cookie", &cookie)]).await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(reply.body, "demo");
        assert_eq!(app.calls(), 1);
        // Cross-origin rules apply to tower-sessions sessions too.
        let reply = app
            .settings(&[("cookie", &cookie), ("sec-fetch-site", "cross-site")])
            .await;
        assert_forbidden(&reply);
        // An unknown session id is no session.
        let unknown = format!("id={}", Id::default());
        assert_unauthorized(&app.settings(&[("cookie", &unknown)]).await);
        assert_eq!(app.calls(), 1);
    }

    #[tokio::test]
    async fn another_user_id_key() {
        let app = app(
            "account",
            "demo",
            TowerSessions::new().user_id_key("account"),
        );
        let cookie = app.login().await;
        let reply = app.settings(&[("cookie", &cookie)]).await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(reply.body, "demo");
        // The default key reads "user_id", which this login did not set.
        let default = app_sharing(&app, TowerSessions::new());
        let reply = send(
            &default,
            super::request(Method::POST, "/settings", &[("cookie", &cookie)]),
        )
        .await;
        assert_unauthorized(&reply);
        assert_eq!(app.calls(), 1);
    }

    /// A guard with `resolver` over the same session store as `app`.
    fn app_sharing(app: &App, resolver: TowerSessions) -> Router {
        Router::new()
            .route("/settings", post(|| async { "ran" }))
            .layer(SessionGuardLayer::new(resolver))
            .layer(SessionManagerLayer::new(app.store.clone()).with_secure(false))
    }

    #[tokio::test]
    async fn an_empty_user_id_is_no_session() {
        let app = app("user_id", "", TowerSessions::new());
        let cookie = app.login().await;
        assert_unauthorized(&app.settings(&[("cookie", &cookie)]).await);
        assert_eq!(app.calls(), 0);
    }

    #[tokio::test]
    async fn without_the_session_manager_there_is_no_session() {
        let router: Router = Router::new()
            .route("/settings", post(|| async { "ran" }))
            .layer(SessionGuardLayer::new(TowerSessions::default()));
        let reply = send(
            &router,
            super::request(Method::POST, "/settings", &[("cookie", "id=whatever")]),
        )
        .await;
        assert_unauthorized(&reply);
    }

    #[tokio::test]
    async fn a_failing_session_store_is_503() {
        let app = app("user_id", "demo", TowerSessions::new());
        let cookie = app.login().await;
        app.store.failing.store(true, Ordering::SeqCst);
        assert_unavailable(&app.settings(&[("cookie", &cookie)]).await);
        assert_eq!(app.calls(), 0);
    }

    #[test]
    fn debug_names_the_key_only() {
        let debug = format!("{:?}", TowerSessions::new().user_id_key("account"));
        assert_eq!(debug, r#"TowerSessions { user_id_key: "account" }"#);
    }
}

// ---------------------------------------------------------------------------------
// 6. Debug output
// ---------------------------------------------------------------------------------

#[test]
fn debug_output_shows_no_key_material() {
    let sessions = sessions();
    let cookie = session_cookie("demo");
    let (_, signed_value) = cookie.split_once('=').expect("name=value");
    let guard = SessionGuardLayer::new(sessions.clone()).cross_origin(
        CrossOriginProtection::new()
            .server_origin("https://app.example")
            .trusted_origin("https://dashboard.example"),
    );
    let service = guard.layer(());
    for debug in [
        format!("{sessions:?}"),
        format!("{sessions:#?}"),
        format!("{:?}", sessions.clone().insecure_for_local_http()),
        format!("{guard:?}"),
        format!("{guard:#?}"),
        format!("{service:?}"),
    ] {
        assert!(!debug.contains("7, 7"), "{debug}");
        assert!(!debug.contains("[7"), "{debug}");
        assert!(!debug.contains("0707"), "{debug}");
        assert!(!debug.contains("Key"), "{debug}");
        assert!(!debug.contains(signed_value), "{debug}");
        assert!(!debug.contains(&signed_value[..16]), "{debug}");
    }
    let debug = format!("{sessions:?}");
    assert!(debug.starts_with("CookieSessions"), "{debug}");
    assert!(debug.contains("__Host-session"), "{debug}");
    let debug = format!("{guard:?}");
    assert!(debug.starts_with("SessionGuardLayer"), "{debug}");
    assert!(debug.contains("https://app.example"), "{debug}");

    let user = SessionUser::new("demo");
    assert_eq!(format!("{user:?}"), r#"SessionUser { id: "demo" }"#);
}
