//! Regression tests for the findings of the outside review (issue 14), each named
//! after its finding: rotation keeps a key's bounds, every verification of a request
//! goes through one pipeline, rotate and revoke act on the key the owner saw, and
//! every answer of the management routes is the envelope.

mod common;

use std::net::SocketAddr;

use axum::{body::Body, Router};
use common::Reply;
use http::{header, Method, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;
use tower_api_key::{
    auth::Authenticator,
    manage::{self, Caller, Keys, NewKey},
    policy::{PeerAddr, RateLimit, Restrictions},
    session::{CookieSessions, SessionGuardLayer},
    store::{InsertRule, KeyStore},
    ApiKey, InMemoryKeyStore, KeyMode, KeyRecord,
};

const ONE: &str = "/api/v1/partners/api-key";
const NAMED: &str = "/api/user/keys";
/// Inside the CIDR the restricted keys below allow.
const OFFICE: &str = "203.0.113.7:40000";
/// Outside it.
const ELSEWHERE: &str = "198.51.100.9:40000";

struct Fixture {
    router: Router,
    store: InMemoryKeyStore,
    keys: Keys,
    sessions: CookieSessions,
}

/// `GET /api/account` behind the key layer and the management routes, over one store;
/// a failed-attempts budget of 3 a minute and at most 3 keys per owner, so the
/// budget and the cap are reached in a few requests.
fn fixture() -> Fixture {
    let store = InMemoryKeyStore::new();
    let auth = Authenticator::builder(store.clone())
        .failed_attempts_limit("3/m".parse::<RateLimit>().unwrap())
        .build();
    let keys = Keys::new(store.clone())
        .default_scopes(["read"])
        .grantable_scopes(["write"])
        .max_keys_per_owner(3);
    let sessions = CookieSessions::new(&[5u8; 64]).unwrap();
    let guard = SessionGuardLayer::new(sessions.clone());
    let api = common::account_api(auth.clone());
    Fixture {
        router: api.merge(manage::router(keys.clone(), guard, auth)),
        store,
        keys,
        sessions,
    }
}

impl Fixture {
    fn cookie(&self, user: &str) -> String {
        common::session_cookie(&self.sessions, user)
    }

    /// A request from `peer`, with the session of `user` and the bearer `key` if given.
    async fn send(
        &self,
        method: Method,
        path: &str,
        user: Option<&str>,
        key: Option<&str>,
        body: Option<&str>,
        peer: &str,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(user) = user {
            request = request.header(header::COOKIE, self.cookie(user));
        }
        if let Some(key) = key {
            request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_owned()));
        let mut request = request.body(body).unwrap();
        let peer: SocketAddr = peer.parse().unwrap();
        request.extensions_mut().insert(PeerAddr(peer));
        Reply::read(self.router.clone().oneshot(request).await.unwrap()).await
    }

    async fn manage(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let body = body.map(|b| b.to_string());
        self.send(method, path, Some("demo"), None, body.as_deref(), OFFICE)
            .await
    }

    async fn use_key(&self, key: &str, peer: &str) -> StatusCode {
        self.send(Method::GET, "/api/account", None, Some(key), None, peer)
            .await
            .status
    }

    /// A key of `demo` held to the office network and 2 requests a minute.
    async fn bounded_key(&self, name: &str) -> ApiKey {
        let key = ApiKey::generate(KeyMode::Live).unwrap();
        let record = KeyRecord::builder(&key, "demo")
            .name(name)
            .scope("read")
            .restrictions(Restrictions::default().allow_ip("203.0.113.0/24".parse().unwrap()))
            .rate_limit("2/m".parse::<RateLimit>().unwrap())
            .build();
        self.store
            .insert(record, InsertRule::Unconditional)
            .await
            .unwrap();
        key
    }
}

#[track_caller]
fn assert_envelope(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(
        reply.header("content-type"),
        "application/json",
        "{reply:?}"
    );
    assert_eq!(reply.header("cache-control"), "no-store", "{reply:?}");
    assert_eq!(reply.json()["error"]["code"], code, "{reply:?}");
    assert!(reply.json()["error"]["message"].is_string(), "{reply:?}");
}

/// The successor of a rotation, from a 201 answer: its raw key.
fn successor(reply: &Reply) -> String {
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    reply.json()["api_key"].as_str().unwrap().to_owned()
}

/// Checks the successor is held exactly as the old key was: refused from outside
/// its network, 2 requests a minute from inside, and shown so in its view.
async fn assert_bounded(f: &Fixture, reply: &Reply) {
    let view = reply.json();
    assert_eq!(view["restrictions"]["ips"], json!(["203.0.113.0/24"]));
    assert_eq!(view["rate_limit"], "2/60s");
    let new = successor(reply);
    assert_eq!(f.use_key(&new, ELSEWHERE).await, StatusCode::FORBIDDEN);
    assert_eq!(f.use_key(&new, OFFICE).await, StatusCode::OK);
    assert_eq!(f.use_key(&new, OFFICE).await, StatusCode::OK);
    assert_eq!(f.use_key(&new, OFFICE).await, StatusCode::TOO_MANY_REQUESTS);
}

// 1. Rotation must not loosen a key --------------------------------------------------

#[tokio::test]
async fn rotation_loosened_restrictions_and_rate_limit_named_route() {
    let f = fixture();
    let old = f.bounded_key("ci").await;
    let id = f.store.list_by_owner("demo").await.unwrap()[0].id.clone();
    let path = format!("{NAMED}/{id}/rotate");
    let reply = f.manage(Method::POST, &path, None).await;
    assert_bounded(&f, &reply).await;
    assert_eq!(
        f.use_key(old.expose_secret(), ELSEWHERE).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn rotation_loosened_restrictions_and_rate_limit_one_active_route() {
    let f = fixture();
    f.bounded_key("").await;
    let reply = f.manage(Method::POST, &format!("{ONE}/rotate"), None).await;
    assert_bounded(&f, &reply).await;
}

#[tokio::test]
async fn rotation_loosened_restrictions_and_rate_limit_through_keys() {
    let f = fixture();
    f.bounded_key("").await;
    let minted = f
        .keys
        .one_active()
        .rotate(&Caller::system(), "demo", std::time::Duration::ZERO)
        .await
        .unwrap();
    let view = minted.view();
    assert_eq!(view.rate_limit, Some("2/m".parse().unwrap()));
    assert_eq!(view.restrictions.ips, ["203.0.113.0/24".parse().unwrap()]);
    let stored = f
        .store
        .find_by_prefix(&minted.api_key().prefix())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.restrictions, view.restrictions);
    assert_eq!(stored.rate_limit, view.rate_limit);
}

#[tokio::test]
async fn key_views_show_restrictions_and_rate_limit() {
    let f = fixture();
    f.bounded_key("ci").await;
    let listed = f.manage(Method::GET, NAMED, None).await.json();
    assert_eq!(
        listed["keys"][0]["restrictions"]["ips"],
        json!(["203.0.113.0/24"])
    );
    assert_eq!(listed["keys"][0]["restrictions"]["origins"], json!([]));
    assert_eq!(listed["keys"][0]["rate_limit"], "2/60s");
    let one = f.manage(Method::GET, ONE, None).await.json();
    assert_eq!(one["rate_limit"], "2/60s");
    // An unbounded key says so.
    let created = f
        .manage(Method::POST, NAMED, Some(json!({"name": "free"})))
        .await
        .json();
    assert_eq!(created["rate_limit"], Value::Null);
    assert_eq!(
        created["restrictions"],
        json!({"ips": [], "origins": [], "routes": []})
    );
}

// 2. One verification path --------------------------------------------------------

#[tokio::test]
async fn self_revoking_delete_skipped_the_failed_attempts_budget() {
    let f = fixture();
    let key = f.bounded_key("ci").await;
    let wrong = common::wrong_secret(key.expose_secret());
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let reply = f
            .send(Method::DELETE, ONE, None, Some(&wrong), None, OFFICE)
            .await;
        statuses.push(reply.status);
    }
    assert_eq!(
        statuses,
        [401, 401, 401, 429, 429].map(|s| StatusCode::from_u16(s).unwrap())
    );
    // One budget per client, whichever route spent it.
    let reply = f
        .send(
            Method::GET,
            "/api/account",
            None,
            Some(&wrong),
            None,
            OFFICE,
        )
        .await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    // The valid key still works, from the same client.
    assert_eq!(f.use_key(key.expose_secret(), OFFICE).await, StatusCode::OK);
}

#[tokio::test]
async fn ip_restricted_key_could_not_revoke_itself() {
    let f = fixture();
    let key = f.bounded_key("ci").await;
    // From outside its network: the restriction holds on this route too.
    let reply = f
        .send(
            Method::DELETE,
            ONE,
            None,
            Some(key.expose_secret()),
            None,
            ELSEWHERE,
        )
        .await;
    assert_envelope(&reply, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(f.use_key(key.expose_secret(), OFFICE).await, StatusCode::OK);
    // From inside it, the key revokes itself.
    let reply = f
        .send(
            Method::DELETE,
            ONE,
            None,
            Some(key.expose_secret()),
            None,
            OFFICE,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(
        f.use_key(key.expose_secret(), OFFICE).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn self_revoking_key_cannot_name_another_key() {
    let f = fixture();
    let key = f.bounded_key("ci").await;
    let other = f
        .manage(Method::POST, NAMED, Some(json!({"name": "other"})))
        .await
        .json();
    let body = json!({"id": other["id"]}).to_string();
    let reply = f
        .send(
            Method::DELETE,
            ONE,
            None,
            Some(key.expose_secret()),
            Some(&body),
            OFFICE,
        )
        .await;
    assert_envelope(&reply, StatusCode::FORBIDDEN, "forbidden");
    let listed = f.manage(Method::GET, NAMED, None).await.json();
    assert!(listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["status"] == "active"));
}

// 3. Rotate exactly the key the owner sees ----------------------------------------

#[tokio::test]
async fn rotate_replaced_a_key_other_than_the_one_shown() {
    let f = fixture();
    let older = f
        .manage(Method::POST, NAMED, Some(json!({"name": "older"})))
        .await;
    let older_key = successor(&older);
    // Created in a later nanosecond: the newer active key.
    let newer = f
        .manage(Method::POST, NAMED, Some(json!({"name": "newer"})))
        .await
        .json();
    let shown = f.manage(Method::GET, ONE, None).await.json();
    assert_eq!(shown["id"], newer["id"], "the newest active key is shown");
    let reply = f
        .manage(
            Method::POST,
            &format!("{ONE}/rotate"),
            Some(json!({"grace_seconds": 0})),
        )
        .await;
    assert_eq!(
        reply.json()["name"],
        "newer",
        "the key shown is the one replaced"
    );
    assert_eq!(f.use_key(&older_key, OFFICE).await, StatusCode::OK);
}

#[tokio::test]
async fn stale_page_rotate_or_revoke_acts_on_no_other_key() {
    let f = fixture();
    let first = f.manage(Method::POST, ONE, None).await;
    let first_id = first.json()["id"].clone();
    let first_prefix = first.json()["prefix"].clone();
    // Another tab rotates it.
    let rotated = f
        .manage(
            Method::POST,
            &format!("{ONE}/rotate"),
            Some(json!({"grace_seconds": 3600, "id": first_id})),
        )
        .await;
    let current = successor(&rotated);
    // The stale page asks to rotate the key it saw: 409, nothing replaced.
    for named in [json!({"id": first_id}), json!({"prefix": first_prefix})] {
        let mut body = named.clone();
        body["grace_seconds"] = json!(0);
        let reply = f
            .manage(Method::POST, &format!("{ONE}/rotate"), Some(body))
            .await;
        assert_envelope(&reply, StatusCode::CONFLICT, "conflict");
    }
    assert_eq!(f.use_key(&current, OFFICE).await, StatusCode::OK);
    // Revoking the key it saw revokes exactly that one (still in its grace period).
    let reply = f
        .manage(Method::DELETE, ONE, Some(json!({"prefix": first_prefix})))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.json()["revoked"].as_array().unwrap().len(), 1);
    assert_eq!(reply.json()["revoked"][0]["id"], first_id);
    assert_eq!(f.use_key(&current, OFFICE).await, StatusCode::OK);
    // Again: it no longer works.
    let reply = f
        .manage(Method::DELETE, ONE, Some(json!({"id": first_id})))
        .await;
    assert_envelope(&reply, StatusCode::CONFLICT, "conflict");
    // Another owner's key is not found.
    let theirs = f
        .send(Method::POST, ONE, Some("acme"), None, None, OFFICE)
        .await
        .json();
    let reply = f
        .manage(Method::DELETE, ONE, Some(json!({"id": theirs["id"]})))
        .await;
    assert_envelope(&reply, StatusCode::NOT_FOUND, "not_found");
}

// 4. The envelope on every answer -------------------------------------------------

#[tokio::test]
async fn plain_text_rejections_of_management_routes() {
    let f = fixture();
    // A body over the limit.
    let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(17 * 1024));
    let reply = f
        .send(Method::POST, NAMED, Some("demo"), None, Some(&big), OFFICE)
        .await;
    assert_envelope(&reply, StatusCode::PAYLOAD_TOO_LARGE, "invalid_request");
    // An undecodable path id.
    let reply = f
        .send(
            Method::DELETE,
            &format!("{NAMED}/%FF"),
            Some("demo"),
            None,
            None,
            OFFICE,
        )
        .await;
    assert_envelope(&reply, StatusCode::BAD_REQUEST, "invalid_request");
    // A wrong method: 405 keeps its Allow header.
    for path in [ONE.to_owned(), format!("{ONE}/rotate"), NAMED.to_owned()] {
        let reply = f
            .send(Method::PUT, &path, Some("demo"), None, None, OFFICE)
            .await;
        assert_envelope(&reply, StatusCode::METHOD_NOT_ALLOWED, "invalid_request");
        assert!(!reply.header("allow").is_empty(), "{path}");
    }
    // A path below ours that no route serves.
    for path in [format!("{ONE}/nope"), format!("{NAMED}/key_1/nope/deeper")] {
        let reply = f
            .send(Method::GET, &path, Some("demo"), None, None, OFFICE)
            .await;
        assert_envelope(&reply, StatusCode::NOT_FOUND, "not_found");
    }
    // Successful answers are never cached either.
    let reply = f.manage(Method::GET, NAMED, None).await;
    assert_eq!(reply.header("cache-control"), "no-store");
}

#[tokio::test]
async fn array_and_scalar_bodies_were_read_by_position() {
    let f = fixture();
    let first = successor(&f.manage(Method::POST, ONE, None).await);
    for body in ["[]", "[0]", "null", "0", "\"x\"", "true"] {
        let reply = f
            .send(
                Method::POST,
                &format!("{ONE}/rotate"),
                Some("demo"),
                None,
                Some(body),
                OFFICE,
            )
            .await;
        assert_envelope(&reply, StatusCode::BAD_REQUEST, "invalid_request");
        assert!(reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("JSON object"));
        let reply = f
            .send(
                Method::POST,
                NAMED,
                Some("demo"),
                None,
                Some(&body.replace('0', "\"x\"")),
                OFFICE,
            )
            .await;
        assert_envelope(&reply, StatusCode::BAD_REQUEST, "invalid_request");
    }
    // Nothing changed: the first key still works and is the only one.
    assert_eq!(f.use_key(&first, OFFICE).await, StatusCode::OK);
    assert_eq!(f.store.list_by_owner("demo").await.unwrap().len(), 1);
}

#[tokio::test]
async fn unbounded_scopes_and_keys_per_owner() {
    let f = fixture();
    // Repeated scopes are kept once.
    let scopes: Vec<&str> = std::iter::repeat_n("read", 60).chain(["write"]).collect();
    let reply = f
        .manage(
            Method::POST,
            NAMED,
            Some(json!({"name": "a", "scopes": scopes})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    assert_eq!(reply.json()["scopes"], json!(["read", "write"]));
    // Too many, or too long.
    let many = vec!["read"; 65];
    let reply = f
        .manage(
            Method::POST,
            NAMED,
            Some(json!({"name": "b", "scopes": many})),
        )
        .await;
    assert_envelope(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable_content",
    );
    let long = "r".repeat(129);
    let reply = f
        .manage(
            Method::POST,
            NAMED,
            Some(json!({"name": "b", "scopes": [long]})),
        )
        .await;
    assert_envelope(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable_content",
    );
    // The cap on keys per owner (3 here): the fourth is refused with the reason.
    for name in ["b", "c"] {
        let reply = f
            .manage(Method::POST, NAMED, Some(json!({"name": name})))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    }
    let reply = f
        .manage(Method::POST, NAMED, Some(json!({"name": "d"})))
        .await;
    assert_envelope(&reply, StatusCode::CONFLICT, "conflict");
    assert!(reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("most API keys allowed (3)"));
    // A rotation replaces a key, so it is not refused by the cap.
    let listed = f.manage(Method::GET, NAMED, None).await.json();
    let id = listed["keys"][0]["id"].as_str().unwrap().to_owned();
    let reply = f
        .manage(Method::POST, &format!("{NAMED}/{id}/rotate"), None)
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    // Revoking one makes room.
    let other = listed["keys"][1]["id"].as_str().unwrap().to_owned();
    let reply = f
        .manage(Method::DELETE, &format!("{NAMED}/{other}"), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let minted = f
        .keys
        .named()
        .create(&Caller::system(), "demo", NewKey::named("e"))
        .await;
    assert!(minted.is_ok(), "{minted:?}");
}
