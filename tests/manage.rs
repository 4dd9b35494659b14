//! Key management through the ready router, the way a browser and an API client use
//! it: log in (a session cookie), mint, view, rotate, revoke, then call the API.

mod common;

use std::{
    sync::{atomic::Ordering, Arc},
    time::{Duration, SystemTime},
};

use axum::{body::Body, Router};
use common::{Reply, TestStore, INVALID_BODY};
use http::{header, Method, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;
use tower_api_key::{
    auth::Authenticator,
    manage::{self, Caller, Keys, ManageError, NewKey},
    policy::RateLimit,
    session::{CookieSessions, SessionGuardLayer},
    store::KeyStore,
    InMemoryKeyStore,
};

const ONE: &str = "/api/v1/partners/api-key";
const NAMED: &str = "/api/user/keys";

struct Fixture {
    router: Router,
    keys: Keys,
    sessions: CookieSessions,
}

/// The API (`GET /api/account` behind the key layer) and the management routes, over
/// one store, as the quickstart wires them.
fn fixture_with(store: impl KeyStore + Clone) -> Fixture {
    fixture_of(store, |keys| keys)
}

/// [`fixture_with`], with `configure` applied to the key management.
fn fixture_of(store: impl KeyStore + Clone, configure: impl FnOnce(Keys) -> Keys) -> Fixture {
    let auth = Authenticator::new(store.clone());
    let keys = configure(Keys::new(store).last_use(auth.last_use().clone()));
    let sessions = CookieSessions::new(&[3u8; 64]).unwrap();
    let guard = SessionGuardLayer::new(sessions.clone());
    let api = common::account_api(auth.clone());
    let router = api.merge(manage::router(keys.clone(), guard, auth));
    Fixture {
        router,
        keys,
        sessions,
    }
}

fn fixture() -> Fixture {
    fixture_with(InMemoryKeyStore::new())
}

impl Fixture {
    fn cookie(&self, user: &str) -> String {
        common::session_cookie(&self.sessions, user)
    }

    async fn manage(
        &self,
        method: Method,
        path: &str,
        user: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(user) = user {
            request = request.header(header::COOKIE, self.cookie(user));
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        self.send(request.body(body).unwrap()).await
    }

    async fn send(&self, request: Request<Body>) -> Reply {
        Reply::read(self.router.clone().oneshot(request).await.unwrap()).await
    }

    /// `GET /api/account` with this key; the status.
    async fn use_key(&self, key: &str) -> StatusCode {
        self.send(common::request(Method::GET, "/api/account", Some(key)))
            .await
            .status
    }

    /// `POST` one-active create for `user`; the raw key.
    async fn create_one(&self, user: &str) -> String {
        let reply = self.manage(Method::POST, ONE, Some(user), None).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
        reply.json()["api_key"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn one_active_lifecycle() {
    let f = fixture();
    // Nothing yet.
    let reply = f.manage(Method::GET, ONE, Some("demo"), None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(
        reply.envelope().error.code,
        tower_api_key::ErrorCode::NotFound
    );

    // Create: the raw key once, with no-store and the save-it-now message.
    let reply = f.manage(Method::POST, ONE, Some("demo"), None).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.header("cache-control"), "no-store");
    let body = reply.json();
    let key = body["api_key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("pk_live_") && key.len() == 72);
    assert_eq!(body["prefix"], key[..24]);
    assert!(body["message"].as_str().unwrap().contains("only once"));
    assert_eq!(f.use_key(&key).await, StatusCode::OK);

    // Later views show the prefix only, and the use at once.
    let reply = f.manage(Method::GET, ONE, Some("demo"), None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(!reply.body.contains(&key[24..]));
    let view = reply.json();
    assert_eq!(view["prefix"], key[..24]);
    assert_eq!(view["status"], "active");
    assert!(view["last_used_at"].is_string());
    assert!(view["created_at"].as_str().unwrap().ends_with('Z'));

    // A second create: 409 with a message saying to revoke first.
    let reply = f.manage(Method::POST, ONE, Some("demo"), None).await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert!(reply.envelope().error.message.contains("Revoke it first"));

    // Revoke: refused at once; a new key can then be created and used.
    let reply = f.manage(Method::DELETE, ONE, Some("demo"), None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["revoked"][0]["status"], "revoked");
    assert_eq!(f.use_key(&key).await, StatusCode::UNAUTHORIZED);
    let reply = f.manage(Method::DELETE, ONE, Some("demo"), None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let fresh = f.create_one("demo").await;
    assert_eq!(f.use_key(&fresh).await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_yield_exactly_one_key() {
    for round in 0..5 {
        let f = Arc::new(fixture());
        let owner = format!("racer-{round}");
        let mut tasks = Vec::new();
        for _ in 0..32 {
            let f = f.clone();
            let owner = owner.clone();
            tasks.push(tokio::spawn(async move {
                f.manage(Method::POST, ONE, Some(&owner), None).await.status
            }));
        }
        let mut created = 0;
        let mut conflicts = 0;
        for task in tasks {
            match task.await.unwrap() {
                StatusCode::CREATED => created += 1,
                StatusCode::CONFLICT => conflicts += 1,
                other => panic!("unexpected {other}"),
            }
        }
        assert_eq!((created, conflicts), (1, 31), "round {round}");
        let listed = f.keys.named().list(&owner).await.unwrap();
        assert_eq!(listed.len(), 1);
    }
}

#[tokio::test]
async fn owners_never_see_or_touch_each_others_keys() {
    let f = fixture();
    let reply = f
        .manage(
            Method::POST,
            NAMED,
            Some("demo"),
            Some(json!({"name": "ci"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let id = reply.json()["id"].as_str().unwrap().to_owned();
    let key = reply.json()["api_key"].as_str().unwrap().to_owned();

    let listed = f.manage(Method::GET, NAMED, Some("acme"), None).await;
    assert_eq!(listed.json()["keys"], json!([]));
    for (method, path) in [
        (Method::DELETE, format!("{NAMED}/{id}")),
        (Method::POST, format!("{NAMED}/{id}/rotate")),
    ] {
        let reply = f.manage(method, &path, Some("acme"), None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(f.use_key(&key).await, StatusCode::OK, "still working");
    let mine = f.manage(Method::GET, NAMED, Some("demo"), None).await;
    assert_eq!(mine.json()["keys"][0]["name"], "ci");
    let reply = f
        .manage(Method::DELETE, &format!("{NAMED}/{id}"), Some("demo"), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(f.use_key(&key).await, StatusCode::UNAUTHORIZED);
    // A revoked key stays listed, marked so, across reloads (for 7 days).
    let mine = f.manage(Method::GET, NAMED, Some("demo"), None).await;
    assert_eq!(mine.json()["keys"][0]["status"], "revoked", "still listed");
    assert_eq!(mine.json()["keys"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn rotation_keeps_the_old_key_for_the_grace_period_only() {
    let f = fixture();
    let old = f.create_one("demo").await;
    let reply = f
        .manage(
            Method::POST,
            &format!("{ONE}/rotate"),
            Some("demo"),
            Some(json!({"grace_seconds": 1})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    let new = reply.json()["api_key"].as_str().unwrap().to_owned();

    // Both work inside the window, and both show in the view.
    assert_eq!(f.use_key(&old).await, StatusCode::OK);
    assert_eq!(f.use_key(&new).await, StatusCode::OK);
    let view = f.manage(Method::GET, ONE, Some("demo"), None).await.json();
    assert_eq!(view["prefix"], new[..24]);
    assert_eq!(view["retiring"][0]["prefix"], old[..24]);
    assert_eq!(view["retiring"][0]["status"], "retiring");
    // The one-active rule holds during the window.
    let reply = f.manage(Method::POST, ONE, Some("demo"), None).await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    // Rotating the same old key again is a conflict, not a second successor.
    let old_record = f.keys.named().list("demo").await.unwrap()[0].id.clone();
    let again = f
        .keys
        .named()
        .rotate(&Caller::system(), "demo", &old_record, Duration::ZERO)
        .await;
    assert!(matches!(again, Err(ManageError::AlreadyRevoked)));

    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(f.use_key(&old).await, StatusCode::UNAUTHORIZED);
    assert_eq!(f.use_key(&new).await, StatusCode::OK);
    let view = f.manage(Method::GET, ONE, Some("demo"), None).await.json();
    assert_eq!(view["retiring"], json!([]));
}

#[tokio::test]
async fn zero_grace_switches_at_once() {
    let f = fixture();
    let old = f.create_one("demo").await;
    let minted = f
        .keys
        .one_active()
        .rotate(&Caller::system(), "demo", Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(f.use_key(&old).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        f.use_key(minted.api_key().expose_secret()).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn expiry_is_enforced_and_validated() {
    let f = fixture();
    let soon = SystemTime::now() + Duration::from_millis(400);
    let minted = f
        .keys
        .named()
        .create(
            &Caller::system(),
            "demo",
            NewKey::named("short").expires_at(soon),
        )
        .await
        .unwrap();
    let key = minted.api_key().expose_secret().to_owned();
    assert_eq!(f.use_key(&key).await, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(450)).await;
    let reply = f
        .send(common::request(Method::GET, "/api/account", Some(&key)))
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.envelope().error.message, "This API key has expired.");
    let listed = f
        .manage(Method::GET, NAMED, Some("demo"), None)
        .await
        .json();
    assert_eq!(listed["keys"][0]["status"], "expired");

    // Through the router: RFC 3339 in, and a past expiry is refused with 422.
    let reply = f
        .manage(
            Method::POST,
            NAMED,
            Some("demo"),
            Some(json!({"name": "old", "expires_at": "2001-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        reply.envelope().error.code,
        tower_api_key::ErrorCode::UnprocessableContent
    );
    let reply = f
        .manage(
            Method::POST,
            NAMED,
            Some("demo"),
            Some(json!({"name": "y", "expires_at": "2099-01-01T00:00:00Z", "mode": "test"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.json()["expires_at"], "2099-01-01T00:00:00Z");
    assert!(reply.json()["api_key"]
        .as_str()
        .unwrap()
        .starts_with("pk_test_"));
}

#[tokio::test]
async fn bad_bodies_get_the_envelope_and_change_nothing() {
    let f = fixture();
    for (body, status) in [
        ("{not json", StatusCode::BAD_REQUEST),
        (r#"{"name": 5}"#, StatusCode::BAD_REQUEST),
        (r#"{"name": "x", "admin": true}"#, StatusCode::BAD_REQUEST),
        (
            r#"{"name": "x", "expires_at": "tomorrow"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (r#"{"name": "a\u0007b"}"#, StatusCode::UNPROCESSABLE_ENTITY),
        (
            r#"{"name": "x", "scopes": ["has space"]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let request = Request::post(NAMED)
            .header(header::COOKIE, f.cookie("demo"))
            .body(Body::from(body))
            .unwrap();
        let reply = f.send(request).await;
        assert_eq!(reply.status, status, "{body}");
        assert_eq!(reply.header("content-type"), "application/json");
    }
    let long = "n".repeat(101);
    let reply = f
        .manage(
            Method::POST,
            NAMED,
            Some("demo"),
            Some(json!({ "name": long })),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(f.keys.named().list("demo").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_key_can_revoke_itself_but_never_manage() {
    let f = fixture();
    let key = f.create_one("demo").await;
    // A bearer key opens no session route.
    for method in [Method::GET, Method::POST] {
        let reply = f
            .send(common::request(method.clone(), ONE, Some(&key)))
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{method}");
    }
    let reply = f
        .send(common::request(Method::GET, NAMED, Some(&key)))
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    // A wrong key cannot revoke anything: the key layer's own 401.
    let wrong = common::wrong_secret(&key);
    let reply = f
        .send(common::request(Method::DELETE, ONE, Some(&wrong)))
        .await;
    reply.assert_invalid_token();
    assert_eq!(f.use_key(&key).await, StatusCode::OK);
    // The key itself can.
    let reply = f
        .send(common::request(Method::DELETE, ONE, Some(&key)))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["revoked"][0]["prefix"], key[..24]);
    assert_eq!(f.use_key(&key).await, StatusCode::UNAUTHORIZED);
    let reply = f
        .send(common::request(Method::DELETE, ONE, Some(&key)))
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.body,
        r#"{"error":{"code":"unauthorized","message":"This API key has been revoked."}}"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_request_succeeds_once_revoke_returns() {
    let f = Arc::new(fixture());
    let key = f.create_one("demo").await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Requests racing with the revoke, each noting when it started.
    let mut racers = Vec::new();
    for _ in 0..4 {
        let (f, key, stop) = (f.clone(), key.clone(), stop.clone());
        racers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let started = std::time::Instant::now();
                let status = f.use_key(&key).await;
                seen.push((started, status));
                // The in-memory store never waits: yield so timers and the revoke run.
                tokio::task::yield_now().await;
            }
            seen
        }));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    f.keys
        .one_active()
        .revoke(&Caller::system(), "demo")
        .await
        .unwrap();
    let revoked = std::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop.store(true, Ordering::SeqCst);
    let mut after = 0;
    for racer in racers {
        for (started, status) in racer.await.unwrap() {
            if started > revoked {
                after += 1;
                assert_eq!(status, StatusCode::UNAUTHORIZED);
            }
        }
    }
    assert!(after > 0, "some requests ran after the revoke");
}

#[tokio::test]
async fn last_use_is_coalesced_yet_shown_at_once() {
    let store = TestStore::default();
    let f = fixture_with(store.clone());
    let a = f.create_one("a").await;
    let b = f.create_one("b").await;
    for i in 0..10_000 {
        let key = if i % 2 == 0 { &a } else { &b };
        assert_eq!(f.use_key(key).await, StatusCode::OK);
    }
    assert_eq!(
        store.writes.load(Ordering::SeqCst),
        2,
        "one write per key per interval"
    );
    // The view merges the latest use noted in memory.
    let before = SystemTime::now() - Duration::from_secs(1);
    let view = f.keys.one_active().view("a").await.unwrap();
    assert!(view.key.last_used_at.unwrap() >= before);
}

#[tokio::test]
async fn no_secret_in_debug_errors_or_later_views() {
    let f = fixture();
    let minted = f
        .keys
        .named()
        .create(&Caller::system(), "demo", NewKey::named("x"))
        .await
        .unwrap();
    let secret = &minted.api_key().expose_secret()[24..];
    for text in [
        format!("{minted:?}"),
        format!("{:?}", minted.view()),
        format!("{:?}", f.keys),
        format!("{:?}", f.sessions),
        serde_json::to_string(minted.view()).unwrap(),
        f.manage(Method::GET, NAMED, Some("demo"), None).await.body,
        ManageError::ActiveKeyExists.to_string(),
    ] {
        assert!(!text.contains(secret), "{text}");
    }
    // Without a session: the generic envelope, nothing about keys.
    let reply = f.manage(Method::GET, NAMED, None, None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_ne!(reply.body, INVALID_BODY);
}

#[tokio::test]
async fn owners_cannot_grant_themselves_scopes_or_absurd_times() {
    let f = fixture();
    let cases = [
        (json!({"name": "x", "scopes": ["admin"]}), "scope"),
        (
            json!({"name": "x", "expires_at": "2999-01-01T00:00:00Z"}),
            "100 years",
        ),
        (json!({}), "needs a name"),
        (json!({"name": "   "}), "needs a name"),
    ];
    for (body, says) in cases {
        let reply = f
            .manage(Method::POST, NAMED, Some("demo"), Some(body.clone()))
            .await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(reply.envelope().error.message.contains(says), "{reply:?}");
    }
    assert!(f.keys.named().list("demo").await.unwrap().is_empty());
    // A grantable scope is fine.
    let keys = f.keys.clone().grantable_scopes(["leads:read"]);
    let minted = keys
        .named()
        .create(
            &Caller::system(),
            "demo",
            NewKey::named("ok").scope("leads:read"),
        )
        .await
        .unwrap();
    assert_eq!(minted.view().scopes, ["leads:read"]);

    // Rotation: a grace beyond 30 days is refused, however large (no overflow).
    f.create_one("rot").await;
    for grace in [31 * 24 * 3600, u64::MAX] {
        let reply = f
            .manage(
                Method::POST,
                &format!("{ONE}/rotate"),
                Some("rot"),
                Some(json!({ "grace_seconds": grace })),
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{grace}");
    }
    assert_eq!(
        f.manage(Method::GET, ONE, Some("rot"), None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn rotation_keeps_scopes_and_expiry_and_refuses_dead_keys() {
    let f = fixture();
    let expiry = SystemTime::now() + Duration::from_secs(3600);
    let keys = f.keys.clone().grantable_scopes(["leads:read"]);
    let old = keys
        .named()
        .create(
            &Caller::system(),
            "demo",
            NewKey::named("ci").scope("leads:read").expires_at(expiry),
        )
        .await
        .unwrap();
    let new = keys
        .named()
        .rotate(
            &Caller::system(),
            "demo",
            &old.view().id,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(new.view().name, "ci");
    assert_eq!(new.view().scopes, ["leads:read"]);
    assert_eq!(new.view().expires_at, Some(expiry));

    let soon = SystemTime::now() + Duration::from_millis(100);
    let short = keys
        .named()
        .create(
            &Caller::system(),
            "demo",
            NewKey::named("short").expires_at(soon),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let dead = keys
        .named()
        .rotate(&Caller::system(), "demo", &short.view().id, Duration::ZERO)
        .await;
    assert!(matches!(dead, Err(ManageError::AlreadyRevoked)));
}

/// Keys minted through the routes could never get a rate limit or restrictions: the
/// mint-time policy sets them per owner, and a rotation keeps them.
#[tokio::test]
async fn on_mint_bounds_keys_minted_through_the_routes() {
    let trial: RateLimit = "1/m".parse().unwrap();
    let f = fixture_of(InMemoryKeyStore::new(), |keys| {
        keys.on_mint(move |owner, record| {
            if owner.starts_with("trial_") {
                record.rate_limit(trial).metadata("plan", "trial")
            } else {
                record
            }
        })
    });
    let key = f.create_one("trial_1").await;
    assert_eq!(f.use_key(&key).await, StatusCode::OK);
    assert_eq!(f.use_key(&key).await, StatusCode::TOO_MANY_REQUESTS);
    let view = f
        .manage(Method::GET, ONE, Some("trial_1"), None)
        .await
        .json();
    assert_eq!(view["rate_limit"], "1/60s");
    assert_eq!(view["metadata"]["plan"], "trial");
    let rotated = f
        .manage(
            Method::POST,
            &format!("{ONE}/rotate"),
            Some("trial_1"),
            None,
        )
        .await;
    assert_eq!(rotated.json()["rate_limit"], "1/60s", "{rotated:?}");
    // Other owners are untouched.
    let paid = f.create_one("acct_2").await;
    for _ in 0..3 {
        assert_eq!(f.use_key(&paid).await, StatusCode::OK);
    }
    let minted = f
        .keys
        .named()
        .create(&Caller::system(), "trial_2", NewKey::named("ci"))
        .await
        .unwrap();
    assert_eq!(minted.view().rate_limit, Some(trial));
}

/// The usage routes: an owner reads their keys' requests (pending counts included),
/// by hour or day; other owners' keys are 404, bad queries 400, all as the envelope.
#[tokio::test]
async fn usage_routes_show_an_owners_own_keys_requests() {
    let f = fixture();
    let made = f
        .manage(
            Method::POST,
            NAMED,
            Some("demo"),
            Some(json!({"name": "ci"})),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED);
    let (id, key) = (
        made.json()["id"].as_str().unwrap().to_owned(),
        made.json()["api_key"].as_str().unwrap().to_owned(),
    );
    for _ in 0..3 {
        assert_eq!(f.use_key(&key).await, StatusCode::OK);
    }
    let usage = f
        .manage(
            Method::GET,
            &format!("{NAMED}/{id}/usage"),
            Some("demo"),
            None,
        )
        .await;
    assert_eq!(usage.status, StatusCode::OK, "{}", usage.body);
    assert_eq!(usage.header("cache-control"), "no-store");
    let body = usage.json();
    assert_eq!(body["key_id"], id.as_str());
    assert_eq!(body["step"], "hour");
    assert_eq!(body["buckets"].as_array().unwrap().len(), 24);
    assert_eq!(body["total"]["admitted"], 3);
    assert_eq!(body["buckets"][23]["admitted"], 3, "this hour");

    let daily = f
        .manage(
            Method::GET,
            &format!("{NAMED}/{id}/usage?step=day"),
            Some("demo"),
            None,
        )
        .await;
    assert_eq!(daily.json()["buckets"].as_array().unwrap().len(), 30);
    let ranged = f
        .manage(
            Method::GET,
            &format!("{NAMED}/{id}/usage?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z"),
            Some("demo"),
            None,
        )
        .await;
    assert_eq!(ranged.json()["buckets"].as_array().unwrap().len(), 24);
    assert_eq!(ranged.json()["from"], "2026-01-01T00:00:00Z");
    assert_eq!(ranged.json()["total"]["admitted"], 0);

    // The one-active shape: the active key's, or one named by `id`.
    let one = f.create_one("solo").await;
    assert_eq!(f.use_key(&one).await, StatusCode::OK);
    let active = f
        .manage(Method::GET, &format!("{ONE}/usage"), Some("solo"), None)
        .await;
    assert_eq!(active.status, StatusCode::OK, "{}", active.body);
    assert_eq!(active.json()["total"]["admitted"], 1);
    let none = f
        .manage(Method::GET, &format!("{ONE}/usage"), Some("nobody"), None)
        .await;
    assert_eq!(none.status, StatusCode::NOT_FOUND, "no active key");

    // Another owner's key, by path or by `id`: 404, the same as an unknown one.
    for path in [
        format!("{NAMED}/{id}/usage"),
        format!("{ONE}/usage?id={id}"),
        format!("{NAMED}/key_unknown/usage"),
    ] {
        let other = f.manage(Method::GET, &path, Some("solo"), None).await;
        assert_eq!(other.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(other.json()["error"]["code"], "not_found");
    }
    // Bad queries: 400 for their shape, 422 for a range that cannot be answered; the
    // envelope either way.
    for (query, status, code) in [
        ("step=week", StatusCode::BAD_REQUEST, "invalid_request"),
        ("from=yesterday", StatusCode::BAD_REQUEST, "invalid_request"),
        ("stpe=day", StatusCode::BAD_REQUEST, "invalid_request"),
        ("id=x", StatusCode::BAD_REQUEST, "invalid_request"),
        (
            "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable_content",
        ),
        (
            "step=hour&from=2020-01-01T00:00:00Z",
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable_content",
        ),
    ] {
        let bad = f
            .manage(
                Method::GET,
                &format!("{NAMED}/{id}/usage?{query}"),
                Some("demo"),
                None,
            )
            .await;
        assert_eq!(bad.status, status, "{query}: {}", bad.body);
        assert_eq!(bad.json()["error"]["code"], code);
        assert_eq!(bad.header("cache-control"), "no-store");
    }
    // A session is needed, and the route reads only.
    let anonymous = f
        .manage(Method::GET, &format!("{NAMED}/{id}/usage"), None, None)
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let posted = f
        .manage(
            Method::POST,
            &format!("{NAMED}/{id}/usage"),
            Some("demo"),
            None,
        )
        .await;
    assert_eq!(posted.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(posted.header("allow"), "GET,HEAD");
    assert_eq!(posted.json()["error"]["code"], "invalid_request");
    assert_eq!(posted.header("cache-control"), "no-store");
    let with_key = f
        .send(
            Request::get(format!("{NAMED}/{id}/usage"))
                .header(header::AUTHORIZATION, format!("Bearer {key}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_ne!(
        with_key.status,
        StatusCode::OK,
        "a bearer key reads no usage"
    );
}
