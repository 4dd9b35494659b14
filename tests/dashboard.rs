//! The key dashboard page and the lifecycle hooks, through a real axum router: the page
//! needs a session and carries its security headers, never a raw key; hooks see who
//! did what to which key (never the raw key), a failing hook never fails a mint, and a
//! revoke hook runs once the store has the revocation.

mod common;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::SystemTime,
};

use axum::{body::Body, extract::ConnectInfo, routing::get, Router};
use common::Reply;
use http::{header, Method, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;
use tower_api_key::{
    auth::Authenticator,
    manage::dashboard::{DashboardConfig, CONTENT_SECURITY_POLICY},
    manage::{
        Actor, AuditTrail, HookError, KeyAction, KeyEvent, KeyHooks, Keys, ManagementRoutes,
        MemoryAuditSink,
    },
    session::{CookieSessions, SessionGuardLayer, SessionUser},
    store::KeyStore,
    ApiKeyLayer, InMemoryKeyStore, Principal,
};

const PAGE: &str = "/settings/api-keys";
const ONE: &str = "/api/v1/partners/api-key";
const NAMED: &str = "/api/user/keys";
const CLIENT: &str = "198.51.100.23:40000";

/// Every hook call, with the store's view of the key at that moment.
#[derive(Clone, Default)]
struct Recorder {
    events: Arc<Mutex<Vec<KeyEvent>>>,
    /// For each revoke event: was the key revoked in the store when the hook ran?
    revoked_in_store: Arc<Mutex<Vec<bool>>>,
    store: Option<InMemoryKeyStore>,
}

#[async_trait::async_trait]
impl KeyHooks for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }

    async fn after_create(&self, event: &KeyEvent) -> Result<(), HookError> {
        self.events.lock().unwrap().push(event.clone());
        Ok(())
    }

    async fn after_rotate(&self, event: &KeyEvent) -> Result<(), HookError> {
        self.events.lock().unwrap().push(event.clone());
        Ok(())
    }

    async fn after_revoke(&self, event: &KeyEvent) -> Result<(), HookError> {
        self.events.lock().unwrap().push(event.clone());
        if let Some(store) = &self.store {
            let record = store
                .find_by_prefix(&event.key.prefix)
                .await
                .unwrap()
                .expect("the key is still stored");
            let revoked = record.is_revoked_at(SystemTime::now());
            self.revoked_in_store.lock().unwrap().push(revoked);
        }
        Ok(())
    }
}

/// A webhook service that is down.
struct FailingWebhook;

#[async_trait::async_trait]
impl KeyHooks for FailingWebhook {
    fn name(&self) -> &str {
        "webhook"
    }

    async fn after_create(&self, _: &KeyEvent) -> Result<(), HookError> {
        Err(HookError::new("The webhook app could not be created.")
            .with_source(std::io::Error::other("connect 10.1.2.3:8080 refused")))
    }
}

struct Fixture {
    router: Router,
    sessions: CookieSessions,
    store: InMemoryKeyStore,
    recorder: Recorder,
    audit: MemoryAuditSink,
}

/// The API and the management routes with the dashboard, as the quickstart wires them,
/// with a recording hook, an audit trail and `extra` hooks.
fn fixture_with(
    configure: impl FnOnce(ManagementRoutes) -> ManagementRoutes,
    extra: Option<FailingWebhook>,
) -> Fixture {
    let store = InMemoryKeyStore::new();
    let auth = Authenticator::new(store.clone());
    let recorder = Recorder {
        store: Some(store.clone()),
        ..Recorder::default()
    };
    let audit = MemoryAuditSink::new(100);
    let mut keys = Keys::new(store.clone())
        .default_scopes(["account:read"])
        .grantable_scopes(["signals:write"])
        .hook(recorder.clone())
        .hook(AuditTrail::new(audit.clone()));
    if let Some(hook) = extra {
        keys = keys.hook(hook);
    }
    let sessions = CookieSessions::new(&[5u8; 64]).unwrap();
    let guard = SessionGuardLayer::new(sessions.clone());
    let api = Router::new()
        .route(
            "/api/account",
            get(|p: Principal| async move { p.owner().to_owned() }),
        )
        .layer(ApiKeyLayer::new(auth.clone()));
    let routes = configure(
        ManagementRoutes::new(keys, guard, auth)
            .dashboard(DashboardConfig::new(PAGE).login_url("/login")),
    );
    Fixture {
        router: api.merge(routes.into_router()),
        sessions,
        store,
        recorder,
        audit,
    }
}

fn fixture() -> Fixture {
    fixture_with(|routes| routes, None)
}

impl Fixture {
    fn cookie(&self, user: &str) -> String {
        let set = self.sessions.login(&SessionUser::new(user));
        set.to_str().unwrap().split(';').next().unwrap().to_owned()
    }

    /// `method path` as the page's `fetch` sends it: the session cookie, same-origin
    /// fetch metadata, the connection's address.
    async fn call(&self, method: Method, path: &str, user: &str, body: Option<Value>) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "app.example")
            .header(header::COOKIE, self.cookie(user))
            .header("sec-fetch-site", "same-origin")
            .header(header::ACCEPT, "application/json");
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let mut request = request.body(body).unwrap();
        request
            .extensions_mut()
            .insert(ConnectInfo(CLIENT.parse::<SocketAddr>().unwrap()));
        self.send(request).await
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = Request::get(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request.body(Body::empty()).unwrap()).await
    }

    async fn send(&self, request: Request<Body>) -> Reply {
        Reply::read(self.router.clone().oneshot(request).await.unwrap()).await
    }

    async fn use_key(&self, key: &str) -> StatusCode {
        self.send(common::request(Method::GET, "/api/account", Some(key)))
            .await
            .status
    }

    fn events(&self) -> Vec<KeyEvent> {
        self.recorder.events.lock().unwrap().clone()
    }
}

#[track_caller]
fn assert_page_headers(reply: &Reply) {
    assert_eq!(reply.header("cache-control"), "no-store");
    assert_eq!(
        reply.header("content-security-policy"),
        CONTENT_SECURITY_POLICY
    );
    assert_eq!(
        CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
         img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    assert_eq!(reply.header("x-frame-options"), "DENY");
    assert_eq!(reply.header("x-content-type-options"), "nosniff");
    assert_eq!(reply.header("referrer-policy"), "no-referrer");
}

const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

#[tokio::test]
async fn the_page_needs_a_session() {
    let f = fixture();
    // A browser without a session goes to the login page, told where to come back.
    let reply = f.get(PAGE, &[("accept", BROWSER_ACCEPT)]).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.header("location"), "/login?next=/settings/api-keys");
    assert_page_headers(&reply);
    assert!(reply.body.is_empty());
    // Any other client gets the 401 envelope.
    for accept in [None, Some("application/json"), Some("*/*")] {
        let headers: Vec<_> = accept.map(|a| ("accept", a)).into_iter().collect();
        let reply = f.get(PAGE, &headers).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{accept:?}");
        assert_eq!(reply.header("content-type"), "application/json");
        assert_eq!(
            reply.envelope().error.code,
            tower_api_key::ErrorCode::Unauthorized
        );
        assert_page_headers(&reply);
    }
    // A tampered cookie is no session.
    let forged = format!("{}x", f.cookie("demo"));
    let reply = f
        .get(PAGE, &[("accept", BROWSER_ACCEPT), ("cookie", &forged)])
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    // A bearer key is never a session.
    let minted = f.call(Method::POST, ONE, "demo", None).await;
    let key = minted.json()["api_key"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {key}");
    let reply = f.get(PAGE, &[("authorization", &bearer)]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    // The JSON routes keep the guard's answer: 401, even for a browser.
    let reply = f.get(ONE, &[("accept", BROWSER_ACCEPT)]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn without_a_login_url_browsers_get_the_envelope() {
    let store = InMemoryKeyStore::new();
    let auth = Authenticator::new(store.clone());
    let guard = SessionGuardLayer::new(CookieSessions::new(&[5u8; 64]).unwrap());
    let router: Router = ManagementRoutes::new(Keys::new(store), guard, auth)
        .dashboard(DashboardConfig::new("/keys"))
        .into_router();
    let reply = Reply::read(
        router
            .oneshot(
                Request::get("/keys")
                    .header("accept", BROWSER_ACCEPT)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_page_headers(&reply);
}

#[tokio::test]
async fn the_page_follows_the_dom_contract_and_its_headers() {
    let f = fixture();
    let cookie = f.cookie("demo");
    let reply = f
        .get(PAGE, &[("accept", BROWSER_ACCEPT), ("cookie", &cookie)])
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), "text/html; charset=utf-8");
    assert_page_headers(&reply);
    let html = &reply.body;
    assert!(html.contains(r#"data-one-active="/api/v1/partners/api-key""#));
    assert!(html.contains(r#"data-named="/api/user/keys""#));
    // Both shapes: the page reads the named list, so it has no status read of its own.
    assert!(html.contains(r#"data-active-key="""#));
    assert!(html.contains(r#"<script src="/settings/api-keys/dashboard.js" defer></script>"#));
    assert!(html.contains(r#"<link rel="stylesheet" href="/settings/api-keys/dashboard.css">"#));
    assert!(html.contains(
        r#"<link rel="icon" href="/settings/api-keys/favicon.svg" type="image/svg+xml">"#
    ));
    for id in [
        "one-active",
        "key-status",
        "generate",
        "generate-message",
        "new-key",
        "new-key-value",
        "copy",
        "copy-status",
        "revoke",
        "confirm-dialog",
        "confirm-text",
        "confirm-yes",
        "confirm-no",
        "confirm-grace",
        "grace",
        "rotate",
        "named",
        "create-named",
        "named-name",
        "named-scopes",
        "named-expires",
        "named-mode",
        "named-create",
        "keys-table",
        "error",
    ] {
        assert!(html.contains(&format!(r#"id="{id}""#)), "#{id} missing");
    }
    assert!(html.contains(r#"<div id="error" role="alert" hidden></div>"#));
    assert!(html.contains("Save it now: it is shown only once"));
    for grace in ["0", "3600", "86400", "604800"] {
        assert!(
            html.contains(&format!(r#"<option value="{grace}""#)),
            "{grace}"
        );
    }
    for column in [
        "Name",
        "Prefix",
        "Created",
        "Last used",
        "Expires",
        "Mode",
        "Scopes",
        "Limits",
        "Status",
        "Actions",
    ] {
        assert!(
            html.contains(&format!(r#"<th scope="col">{column}</th>"#)),
            "{column}"
        );
    }
    // Every form control has a label.
    for id in [
        "new-key-value",
        "grace",
        "named-name",
        "named-scopes",
        "named-expires",
        "named-mode",
        "confirm-grace",
    ] {
        assert!(html.contains(&format!(r#"<label for="{id}""#)), "{id}");
    }
    // No inline script or style, no third-party origin.
    assert!(!html.contains("<script>") && !html.contains("<style") && !html.contains("style="));
    assert!(!html.contains("http://") && !html.contains("https://"));
    // The 409 message the page shows next to the disabled Generate button.
    assert!(html.contains("data-conflict=\"An API key is already active."));
}

#[tokio::test]
async fn assets_are_public_with_their_types_and_headers() {
    let f = fixture();
    for (path, content_type, needle) in [
        (
            "/settings/api-keys/dashboard.js",
            "text/javascript; charset=utf-8",
            "data-one-active",
        ),
        (
            "/settings/api-keys/dashboard.css",
            "text/css; charset=utf-8",
            "[hidden]",
        ),
        ("/settings/api-keys/favicon.svg", "image/svg+xml", "<svg"),
    ] {
        let reply = f.get(path, &[]).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(reply.header("content-type"), content_type);
        assert_page_headers(&reply);
        assert!(reply.body.contains(needle), "{path}");
    }
    // Below the page but no route: the envelope, never cached, not the app's 404.
    let reply = f.get("/settings/api-keys/other.js", &[]).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.header("content-type"), "application/json");
    assert_eq!(reply.header("cache-control"), "no-store");
    assert_eq!(reply.json()["error"]["code"], "not_found");
}

#[tokio::test]
async fn the_page_names_the_shapes_mounted_and_escapes_what_it_fills_in() {
    let f = fixture_with(|routes| routes.named_path(None), None);
    let user = r#"<img src=x onerror="alert(1)">"#;
    let cookie = f.cookie(user);
    let reply = f.get(PAGE, &[("cookie", &cookie)]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body.contains(r#"data-named="""#));
    assert!(reply
        .body
        .contains(r#"data-one-active="/api/v1/partners/api-key""#));
    assert!(reply
        .body
        .contains(r#"data-active-key="/settings/api-keys/active-key""#));
    assert!(!reply.body.contains("<img"), "unescaped user id");
    assert!(reply
        .body
        .contains("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"));
}

/// Finding (issue 14 §6): every load of the page with no active key logged a red
/// "404 (Not Found)": its status read was the one-active `GET`, which answers 404 when
/// there is no key. With the one-active shape alone, the page reads its own endpoint,
/// which answers 200 `{"key":null}`; with the named shape, it reads the named list.
#[tokio::test]
async fn a_load_with_no_key_gets_200_from_the_pages_status_read() {
    let f = fixture_with(|routes| routes.named_path(None), None);
    let status = format!("{PAGE}/active-key");
    let reply = f.call(Method::GET, &status, "demo", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.header("content-type"), "application/json");
    assert_page_headers(&reply);
    assert_eq!(reply.json(), json!({ "key": null }));

    // With a key: its view and the retiring ones, as the one-active `GET` shows them.
    let minted = f.call(Method::POST, ONE, "demo", None).await.json();
    let reply = f.call(Method::GET, &status, "demo", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let shown = reply.json();
    assert_eq!(shown["key"]["id"], minted["id"]);
    assert_eq!(shown["key"]["prefix"], minted["prefix"]);
    assert_eq!(shown["key"]["retiring"], json!([]));
    assert_eq!(
        shown["key"]["restrictions"],
        json!({"ips": [], "origins": [], "routes": []})
    );
    assert_eq!(shown["key"]["rate_limit"], Value::Null);
    assert!(!reply.body.contains("api_key"), "never a raw key");
    assert_eq!(
        f.call(Method::GET, &status, "other", None).await.json(),
        json!({ "key": null }),
        "another owner's key is not this owner's"
    );

    // Behind the session guard: without a session, the 401 envelope.
    let reply = f.get(&status, &[("accept", "application/json")]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.envelope().error.code,
        tower_api_key::ErrorCode::Unauthorized
    );
    assert_page_headers(&reply);

    // With the named shape mounted the page reads the named list (200 with a list),
    // and this read is not served.
    let both = fixture();
    let reply = both.call(Method::GET, NAMED, "demo", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), json!({ "keys": [] }));
    let reply = both.call(Method::GET, &status, "demo", None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn no_raw_key_ever_reaches_the_page() {
    let f = fixture();
    let cookie = f.cookie("demo");
    let one = f.call(Method::POST, ONE, "demo", None).await;
    assert_eq!(one.status, StatusCode::CREATED);
    let named = f
        .call(Method::POST, NAMED, "demo", Some(json!({"name": "ci"})))
        .await;
    assert_eq!(named.status, StatusCode::CREATED);
    let page = f.get(PAGE, &[("cookie", &cookie)]).await;
    for reply in [&one, &named] {
        let key = reply.json()["api_key"].as_str().unwrap().to_owned();
        assert!(!page.body.contains(&key[24..]), "a secret in the page");
        assert!(
            !page.body.contains(&key[..24]),
            "the page loads keys by script"
        );
    }
}

/// The page's calls pass the guard's cross-origin rules (a browser's `fetch` sends
/// `Sec-Fetch-Site: same-origin`), and everything the named form sends is accepted.
#[tokio::test]
async fn the_pages_calls_pass_the_csrf_rules_and_the_named_form_is_understood() {
    let f = fixture();
    let reply = f
        .call(
            Method::POST,
            NAMED,
            "demo",
            Some(json!({
                "name": "zapier",
                "scopes": ["account:read", "signals:write"],
                "expires_at": "2099-12-31T22:59:59Z",
                "mode": "test",
            })),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    let body = reply.json();
    assert!(body.get("hook_errors").is_none(), "no failure, no list");
    assert_eq!(body["mode"], "test");
    assert_eq!(body["scopes"], json!(["account:read", "signals:write"]));
    assert_eq!(body["expires_at"], "2099-12-31T22:59:59Z");
    assert!(body["api_key"].as_str().unwrap().starts_with("pk_test_"));
    let id = body["id"].as_str().unwrap().to_owned();
    // The table's data: everything the columns show.
    let list = f.call(Method::GET, NAMED, "demo", None).await.json();
    let row = &list["keys"][0];
    for field in [
        "id",
        "name",
        "prefix",
        "created_at",
        "last_used_at",
        "expires_at",
        "mode",
        "scopes",
        "status",
    ] {
        assert!(row.get(field).is_some(), "{field}");
    }
    // The same calls from another site change nothing.
    let mut forged = Request::delete(format!("{NAMED}/{id}"))
        .header(header::COOKIE, f.cookie("demo"))
        .header("sec-fetch-site", "cross-site")
        .body(Body::empty())
        .unwrap();
    forged
        .extensions_mut()
        .insert(ConnectInfo(CLIENT.parse::<SocketAddr>().unwrap()));
    assert_eq!(f.send(forged).await.status, StatusCode::FORBIDDEN);
    let revoked = f
        .call(Method::DELETE, &format!("{NAMED}/{id}"), "demo", None)
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert_eq!(revoked.json()["status"], "revoked");
}

#[tokio::test]
async fn hooks_see_who_did_what_to_which_key_and_never_the_raw_key() {
    let f = fixture();
    let client = CLIENT.parse::<SocketAddr>().unwrap().ip();

    let created = f.call(Method::POST, ONE, "demo", None).await.json();
    let first = created["api_key"].as_str().unwrap().to_owned();
    let rotated = f
        .call(
            Method::POST,
            &format!("{ONE}/rotate"),
            "demo",
            Some(json!({"grace_seconds": 3600})),
        )
        .await
        .json();
    let second = rotated["api_key"].as_str().unwrap().to_owned();
    let revoked = f.call(Method::DELETE, ONE, "demo", None).await;
    assert_eq!(revoked.status, StatusCode::OK);

    let events = f.events();
    let summary: Vec<_> = events
        .iter()
        .map(|e| (e.action, e.key.prefix.to_string()))
        .collect();
    assert_eq!(summary[0], (KeyAction::Created, first[..24].to_owned()));
    assert_eq!(summary[1], (KeyAction::Rotated, second[..24].to_owned()));
    assert_eq!(
        events[1].replaced.as_ref().unwrap().prefix.to_string(),
        first[..24]
    );
    assert!(events[1].replaced.as_ref().unwrap().revoked_at.is_some());
    // Revoking the one active key revokes every key that works: the successor and the
    // retiring one, each an event.
    assert!(summary[2..]
        .iter()
        .all(|(action, _)| *action == KeyAction::Revoked));
    let mut revoked: Vec<_> = summary[2..].iter().map(|(_, p)| p.clone()).collect();
    revoked.sort();
    let mut expected = vec![first[..24].to_owned(), second[..24].to_owned()];
    expected.sort();
    assert_eq!(revoked, expected);
    for event in &events {
        assert_eq!(event.actor, Actor::user("demo"));
        assert_eq!(event.owner, "demo");
        assert_eq!(event.client_addr, Some(client));
        let seen = format!("{event:?} {}", serde_json::to_string(event).unwrap());
        for key in [&first, &second] {
            assert!(
                !seen.contains(&key[24..]),
                "a secret reached a hook: {seen}"
            );
        }
    }
    // Revoke hooks ran once the store had the revocation.
    assert_eq!(*f.recorder.revoked_in_store.lock().unwrap(), [true, true]);
    assert_eq!(f.use_key(&second).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn revoking_a_revoked_key_is_no_event() {
    let f = fixture();
    let created = f
        .call(Method::POST, NAMED, "demo", Some(json!({"name": "ci"})))
        .await
        .json();
    let path = format!("{NAMED}/{}", created["id"].as_str().unwrap());
    for _ in 0..2 {
        assert_eq!(
            f.call(Method::DELETE, &path, "demo", None).await.status,
            StatusCode::OK
        );
    }
    let actions: Vec<_> = f.events().iter().map(|e| e.action).collect();
    assert_eq!(actions, [KeyAction::Created, KeyAction::Revoked]);
}

#[tokio::test]
async fn a_key_revoking_itself_is_the_actor() {
    let f = fixture();
    let created = f.call(Method::POST, ONE, "demo", None).await.json();
    let key = created["api_key"].as_str().unwrap().to_owned();
    let mut request = common::request(Method::DELETE, ONE, Some(&key));
    request
        .extensions_mut()
        .insert(ConnectInfo(CLIENT.parse::<SocketAddr>().unwrap()));
    assert_eq!(f.send(request).await.status, StatusCode::OK);
    let events = f.events();
    let last = events.last().unwrap();
    assert_eq!(last.action, KeyAction::Revoked);
    assert_eq!(last.key.prefix.to_string(), key[..24]);
    assert_eq!(
        serde_json::to_value(&last.actor).unwrap(),
        json!({"type": "key", "prefix": &key[..24]})
    );
    assert_eq!(*f.recorder.revoked_in_store.lock().unwrap(), [true]);
}

#[tokio::test]
async fn a_failing_create_hook_never_fails_the_mint_and_is_reported() {
    let f = fixture_with(|routes| routes, Some(FailingWebhook));
    let reply = f
        .call(Method::POST, NAMED, "demo", Some(json!({"name": "zapier"})))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    let body = reply.json();
    assert_eq!(
        body["hook_errors"],
        json!([{"hook": "webhook", "error": "The webhook app could not be created."}])
    );
    assert!(
        !reply.body.contains("10.1.2.3"),
        "the hook's source stays in the log"
    );
    let key = body["api_key"].as_str().unwrap();
    assert_eq!(f.use_key(key).await, StatusCode::OK, "the key works");
    // The hooks registered before it ran; the key is stored.
    assert_eq!(f.events().len(), 1);
    assert_eq!(f.audit.entries().len(), 1);
    let stored = f.store.list_by_owner("demo").await.unwrap();
    assert_eq!(stored.len(), 1);
    // Kept in the key's metadata: the answer's view, and every later view, show it.
    let kept = json!({"hook.webhook.error": "The webhook app could not be created."});
    assert_eq!(body["metadata"], kept);
    assert_eq!(
        stored[0].metadata["hook.webhook.error"],
        kept["hook.webhook.error"]
    );
    let listed = f.call(Method::GET, NAMED, "demo", None).await.json();
    assert_eq!(listed["keys"][0]["metadata"], kept, "{listed}");
    // A rotation has no after_rotate failure here: no list; the successor keeps the
    // metadata, with the create's failure, still unresolved.
    let rotated = f
        .call(
            Method::POST,
            &format!("{NAMED}/{}/rotate", body["id"].as_str().unwrap()),
            "demo",
            None,
        )
        .await;
    assert_eq!(rotated.status, StatusCode::CREATED);
    let rotated = rotated.json();
    assert!(rotated.get("hook_errors").is_none());
    assert_eq!(rotated["metadata"], kept);
}

#[tokio::test]
async fn the_audit_trail_says_who_what_which_prefix_when_and_from_where() {
    let f = fixture();
    let before = SystemTime::now();
    let created = f
        .call(Method::POST, NAMED, "demo", Some(json!({"name": "ci"})))
        .await
        .json();
    let id = created["id"].as_str().unwrap().to_owned();
    let rotated = f
        .call(
            Method::POST,
            &format!("{NAMED}/{id}/rotate"),
            "demo",
            Some(json!({"grace_seconds": 0})),
        )
        .await
        .json();
    let new_id = rotated["id"].as_str().unwrap().to_owned();
    f.call(Method::DELETE, &format!("{NAMED}/{new_id}"), "demo", None)
        .await;

    let entries = f.audit.entries();
    let json: Vec<Value> = entries
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    let actions: Vec<_> = json.iter().map(|e| e["action"].clone()).collect();
    assert_eq!(
        actions,
        [json!("created"), json!("rotated"), json!("revoked")]
    );
    assert_eq!(json[0]["key_prefix"], created["prefix"]);
    assert_eq!(json[0]["key_id"], created["id"]);
    assert_eq!(json[1]["key_prefix"], rotated["prefix"]);
    assert_eq!(json[1]["replaced_prefix"], created["prefix"]);
    assert_eq!(json[2]["key_prefix"], rotated["prefix"]);
    for (entry, line) in entries.iter().zip(&json) {
        assert_eq!(line["actor"], json!({"type": "user", "id": "demo"}));
        assert_eq!(line["owner"], "demo");
        assert_eq!(line["key_name"], "ci");
        assert_eq!(line["client_addr"], "198.51.100.23");
        assert!(entry.at >= before && entry.at <= SystemTime::now());
        assert!(line["at"].as_str().unwrap().ends_with('Z'));
        for minted in [&created, &rotated] {
            let key = minted["api_key"].as_str().unwrap();
            assert!(!line.to_string().contains(&key[24..]));
        }
    }
}

/// The quickstart as a browser meets it: `/` leads to the dashboard, the login form
/// logs in and comes back, the dashboard loads, and the audit trail on stderr names
/// keys by prefix only.
#[tokio::test]
async fn quickstart_login_form_and_dashboard() {
    let qs = common::quickstart::start().await;
    let form = [("content-type", "application/x-www-form-urlencoded")];

    let root = qs.send(Method::GET, "/", None).await;
    assert_eq!(root.status, StatusCode::SEE_OTHER);
    assert_eq!(root.header("location"), PAGE);
    let page = qs
        .send_with(Method::GET, PAGE, &[("accept", BROWSER_ACCEPT)], "")
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.header("location"), "/login?next=/settings/api-keys");

    let login = qs
        .send_with(Method::GET, "/login?next=/settings/api-keys", &[], "")
        .await;
    assert_eq!(login.status, StatusCode::OK);
    assert_eq!(login.header("content-type"), "text/html; charset=utf-8");
    assert!(login
        .header("content-security-policy")
        .contains("frame-ancestors 'none'"));
    for needle in [
        r#"<form id="login-form" method="post" action="/login">"#,
        r#"<input id="username" name="username""#,
        r#"<input id="password" name="password" type="password""#,
        r#"<button id="login-submit" type="submit">"#,
        r#"<input type="hidden" name="next" value="/settings/api-keys">"#,
        r#"<p id="login-error" role="alert" hidden></p>"#,
    ] {
        assert!(login.body.contains(needle), "{needle}");
    }
    assert!(!login.body.contains("<script"));
    // `next` is escaped into the form, and only local paths are kept.
    let odd = qs
        .send_with(Method::GET, "/login?next=/%22%3E%3Cb%3E", &[], "")
        .await;
    assert!(odd.body.contains(r#"value="/&quot;&gt;&lt;b&gt;""#));

    let wrong = qs
        .send_with(
            Method::POST,
            "/login",
            &form,
            "username=demo&password=nope&next=%2Fsettings%2Fapi-keys",
        )
        .await;
    assert_eq!(wrong.status, StatusCode::SEE_OTHER);
    assert_eq!(
        wrong.header("location"),
        "/login?error=1&next=%2Fsettings%2Fapi-keys"
    );
    assert!(wrong.headers.get("set-cookie").is_none());
    let shown = qs
        .send_with(Method::GET, wrong.header("location"), &[], "")
        .await;
    assert!(shown
        .body
        .contains(r#"<p id="login-error" role="alert">Wrong username or password.</p>"#));

    for (next, location) in [
        ("%2Fsettings%2Fapi-keys", PAGE),
        ("%2F%2Fevil.example", PAGE),
        ("https%3A%2F%2Fevil.example", PAGE),
        ("%2F%5Cevil.example", PAGE),
        ("%2Fhealth", "/health"),
    ] {
        let reply = qs
            .send_with(
                Method::POST,
                "/login",
                &form,
                &format!("username=demo&password=demo&next={next}"),
            )
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{next}");
        assert_eq!(reply.header("location"), location, "{next}");
        assert!(reply.header("set-cookie").starts_with("session="));
    }
    // Another site cannot log a visitor in.
    let forged = qs
        .send_with(
            Method::POST,
            "/login",
            &[form[0], ("sec-fetch-site", "cross-site")],
            "username=demo&password=demo",
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.headers.get("set-cookie").is_none());

    let cookie = qs.login().await;
    let page = qs
        .send_with(
            Method::GET,
            PAGE,
            &[("accept", BROWSER_ACCEPT), ("cookie", &cookie)],
            "",
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(r#"data-logout="/logout""#));
    let (_, key) = qs.mint_named(&cookie, "audited").await;
    let logout = qs
        .send_with(Method::POST, "/logout", &[form[0], ("cookie", &cookie)], "")
        .await;
    assert_eq!(logout.status, StatusCode::SEE_OTHER);
    assert_eq!(logout.header("location"), "/login");

    // The audit line for the new key: prefix, user and address; never the secret.
    let since = std::time::Instant::now();
    let line = loop {
        let logs = qs.logs.lock().unwrap().clone();
        if let Some(line) = logs
            .iter()
            .find(|l| l.starts_with("audit: ") && l.contains(&key[..24]))
        {
            break line.clone();
        }
        assert!(since.elapsed().as_secs() < 10, "no audit line: {logs:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let entry: Value = serde_json::from_str(line.trim_start_matches("audit: ")).unwrap();
    assert_eq!(entry["action"], "created");
    assert_eq!(entry["actor"], json!({"type": "user", "id": "demo"}));
    assert_eq!(entry["client_addr"], "127.0.0.1");
    let logs = qs.logs.lock().unwrap().join("\n");
    assert!(!logs.contains(&key[24..]), "a secret in the logs");
}

#[tokio::test]
async fn the_audit_trail_names_the_client_as_the_authenticator_does_behind_proxies() {
    let store = InMemoryKeyStore::new();
    let auth = Authenticator::builder(store.clone())
        .trusted_proxies(
            ["10.0.0.0/8".parse().unwrap()],
            tower_api_key::policy::ForwardedHeader::XForwardedFor,
        )
        .build();
    let audit = MemoryAuditSink::new(10);
    let keys = Keys::new(store).hook(AuditTrail::new(audit.clone()));
    let sessions = CookieSessions::new(&[6u8; 64]).unwrap();
    let router: Router =
        ManagementRoutes::new(keys, SessionGuardLayer::new(sessions.clone()), auth).into_router();
    let cookie = sessions.login(&SessionUser::new("demo"));
    let cookie = cookie
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    // Through a trusted proxy, and straight from a client that forges the header.
    for (peer, expected) in [
        ("10.1.2.3:5000", "203.0.113.7"),
        ("198.51.100.9:5000", "198.51.100.9"),
    ] {
        let mut request = Request::post(NAMED)
            .header(header::COOKIE, &cookie)
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-forwarded-for", "192.0.2.1, 203.0.113.7")
            .body(Body::from(r#"{"name":"ci"}"#))
            .unwrap();
        request
            .extensions_mut()
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        let reply = Reply::read(router.clone().oneshot(request).await.unwrap()).await;
        assert_eq!(reply.status, StatusCode::CREATED);
        let newest = audit.entries().pop().unwrap();
        assert_eq!(
            newest.client_addr,
            Some(expected.parse().unwrap()),
            "via {peer}"
        );
    }
}
