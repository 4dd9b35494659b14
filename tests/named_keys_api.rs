//! The documented named-keys contract (`NamedKeysApi::Compact`), served verbatim, and
//! keys that manage keys (`ManagementRoutes::bearer_scope`): each rule through the
//! ready router, as a client of the contract sends it.

mod common;

use std::{net::SocketAddr, time::Duration};

use axum::{body::Body, extract::ConnectInfo, Router};
use common::Reply;
use http::{header, Method, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;
use tower_api_key::{
    auth::Authenticator,
    manage::{
        Actor, AuditTrail, Caller, KeyView, Keys, ManagementRoutes, MemoryAuditSink, NamedKeysApi,
        NewKey,
    },
    policy::{RateLimit, Restrictions},
    session::{CookieSessions, SessionGuardLayer},
    store::{InsertRule, KeyStore},
    ApiKey, InMemoryKeyStore, KeyMode, KeyRecord,
};

type Builder = tower_api_key::store::KeyRecordBuilder;

const KEYS: &str = "/api/user/keys";
const MANAGE: &str = "keys:manage";
/// Where the test requests come from (axum's `ConnectInfo`).
const CLIENT: &str = "203.0.113.9:40000";

struct Fixture {
    router: Router,
    store: InMemoryKeyStore,
    keys: Keys,
    sessions: CookieSessions,
    audit: MemoryAuditSink,
}

/// The API and the named routes in the compact format, open to keys with `keys:manage`.
fn fixture() -> Fixture {
    fixture_of(Authenticator::new, |routes| {
        routes.named_api(NamedKeysApi::Compact).bearer_scope(MANAGE)
    })
}

fn fixture_of(
    auth: impl FnOnce(InMemoryKeyStore) -> Authenticator,
    routes: impl FnOnce(ManagementRoutes) -> ManagementRoutes,
) -> Fixture {
    let store = InMemoryKeyStore::new();
    let auth = auth(store.clone());
    let audit = MemoryAuditSink::new(100);
    let keys = Keys::new(store.clone())
        .last_use(auth.last_use().clone())
        .default_scopes(["account:read"])
        .grantable_scopes([MANAGE, "signals:write"])
        .hook(AuditTrail::new(audit.clone()));
    let sessions = CookieSessions::new(&[7u8; 64]).unwrap();
    let guard = SessionGuardLayer::new(sessions.clone());
    let managed = ManagementRoutes::new(keys.clone(), guard, auth.clone()).one_active_path(None);
    let router = common::account_api(auth).merge(routes(managed).into_router());
    Fixture {
        router,
        store,
        keys,
        sessions,
        audit,
    }
}

/// How a request authenticates.
enum As<'a> {
    Key(&'a str),
    User(&'a str),
}

impl Fixture {
    /// A managing key of `owner`: `keys:manage` and `account:read`.
    async fn admin(&self, owner: &str) -> String {
        self.minted(
            owner,
            NewKey::named("Admin").scope(MANAGE).scope("account:read"),
        )
        .await
    }

    /// The owner's keys, as `Keys` lists them.
    async fn listed(&self, owner: &str) -> Vec<KeyView> {
        self.keys.named().list(owner).await.unwrap()
    }

    /// A key minted by the system (no scope check), its raw text.
    async fn minted(&self, owner: &str, new: NewKey) -> String {
        let minted = self
            .keys
            .named()
            .create(&Caller::system(), owner, new)
            .await
            .unwrap();
        minted.api_key().expose_secret().to_owned()
    }

    /// A key of `owner` with these scopes and bounds, put in the store directly.
    async fn inserted(
        &self,
        owner: &str,
        scopes: &[&str],
        bound: impl FnOnce(Builder) -> Builder,
    ) -> String {
        self.inserted_in(KeyMode::Live, owner, scopes, bound).await
    }

    /// [`inserted`](Self::inserted), in `mode`.
    async fn inserted_in(
        &self,
        mode: KeyMode,
        owner: &str,
        scopes: &[&str],
        bound: impl FnOnce(Builder) -> Builder,
    ) -> String {
        let key = ApiKey::generate(mode).unwrap();
        let record = bound(
            KeyRecord::builder(&key, owner)
                .name("bounded")
                .scopes(scopes.to_vec()),
        )
        .build();
        self.store
            .insert(record, InsertRule::Unconditional)
            .await
            .unwrap();
        key.expose_secret().to_owned()
    }

    async fn send(&self, method: Method, path: &str, who: As<'_>, body: Option<&str>) -> Reply {
        self.send_from(method, path, who, body, CLIENT, &[]).await
    }

    /// A request from `from`, with `headers` besides the credentials and body's.
    async fn send_from(
        &self,
        method: Method,
        path: &str,
        who: As<'_>,
        body: Option<&str>,
        from: &str,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request = match who {
            As::Key(key) => request.header(header::AUTHORIZATION, format!("Bearer {key}")),
            As::User(user) => {
                request.header(header::COOKIE, common::session_cookie(&self.sessions, user))
            }
        };
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let mut request = request
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
            .unwrap();
        let peer: SocketAddr = from.parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(peer));
        Reply::read(self.router.clone().oneshot(request).await.unwrap()).await
    }

    /// `GET /api/account` with `key`: the API the keys are for.
    async fn api(&self, key: &str) -> StatusCode {
        self.send(Method::GET, "/api/account", As::Key(key), None)
            .await
            .status
    }
}

/// Every answer of the contract: JSON, never cached.
#[track_caller]
fn assert_json_no_store(reply: &Reply) {
    assert_eq!(
        reply.header("content-type"),
        "application/json",
        "{reply:?}"
    );
    assert_eq!(reply.header("cache-control"), "no-store", "{reply:?}");
}

/// `2024-01-15T12:00:00Z`: RFC 3339, UTC, whole seconds.
#[track_caller]
fn assert_timestamp(value: &Value) {
    let text = value.as_str().expect("a timestamp string");
    let shape = text.len() == 20
        && text.ends_with('Z')
        && text.char_indices().all(|(i, c)| match i {
            4 | 7 => c == '-',
            10 => c == 'T',
            13 | 16 => c == ':',
            19 => c == 'Z',
            _ => c.is_ascii_digit(),
        });
    assert!(shape, "not an RFC 3339 UTC timestamp: {text}");
}

/// The names of the keys a compact list shows, in order.
fn names_in(listed: &Value) -> Vec<&str> {
    listed["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["name"].as_str().expect("a name"))
        .collect()
}

/// `pk_live_` and 64 lowercase hex digits.
#[track_caller]
fn assert_raw_key(value: &Value) -> String {
    let key = value.as_str().expect("a key string");
    assert!(key.starts_with("pk_live_") && key.len() == 72, "{key}");
    assert!(key[8..]
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    key.to_owned()
}

/// `POST /api/user/keys` with `{"name":…}` and the documented answer, compared whole:
/// the raw key and the id and time it carries.
async fn create(fx: &Fixture, who: As<'_>, name: &str) -> (String, String, String) {
    let reply = fx
        .send(
            Method::POST,
            KEYS,
            who,
            Some(&json!({ "name": name }).to_string()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    assert_json_no_store(&reply);
    let body = reply.json();
    let minted = &body["key"];
    let id = minted["id"].as_str().expect("an id").to_owned();
    let key = assert_raw_key(&minted["key"]);
    assert_timestamp(&minted["createdAt"]);
    let created = minted["createdAt"].as_str().unwrap().to_owned();
    // Byte for byte, in the contract's field order.
    assert_eq!(
        reply.body,
        format!(
            r#"{{"key":{{"id":"{id}","name":"{name}","key":"{key}","createdAt":"{created}"}}}}"#
        )
    );
    (id, key, created)
}

#[tokio::test]
async fn the_documented_requests_get_the_documented_answers() {
    let fx = fixture();
    let admin = fx.admin("acct_42").await;

    // POST /api/user/keys {"name":"New API Key"}
    // → {"key":{"id":"…","name":"New API Key","key":"pk_…","createdAt":"…"}}
    let (new_id, new_key, new_created) = create(&fx, As::Key(&admin), "New API Key").await;
    let (prod_id, prod_key, prod_created) = create(&fx, As::Key(&admin), "Production Server").await;
    assert_eq!(fx.api(&prod_key).await, StatusCode::OK);

    // GET /api/user/keys → {"keys":[{"id","name","prefix","createdAt","lastUsed"}]}
    let reply = fx.send(Method::GET, KEYS, As::Key(&admin), None).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_json_no_store(&reply);
    let body = reply.json();
    let listed = body["keys"].as_array().expect("keys");
    assert_eq!(listed.len(), 3, "{body}");
    let admin_item = &listed[0];
    assert_timestamp(&admin_item["createdAt"]);
    assert_timestamp(&admin_item["lastUsed"]);
    let prod_used = listed[2]["lastUsed"].clone();
    assert_timestamp(&prod_used);
    assert_eq!(
        body,
        json!({ "keys": [
            {
                "id": admin_item["id"], "name": "Admin", "prefix": &admin[..24],
                "createdAt": admin_item["createdAt"], "lastUsed": admin_item["lastUsed"],
            },
            {
                "id": new_id, "name": "New API Key", "prefix": &new_key[..24],
                "createdAt": new_created, "lastUsed": null,
            },
            {
                "id": prod_id, "name": "Production Server", "prefix": &prod_key[..24],
                "createdAt": prod_created, "lastUsed": prod_used,
            },
        ] })
    );
    let item = |k: &Value| {
        let last = match k["lastUsed"].as_str() {
            Some(at) => format!(r#""{at}""#),
            None => "null".to_owned(),
        };
        format!(
            r#"{{"id":"{}","name":"{}","prefix":"{}","createdAt":"{}","lastUsed":{last}}}"#,
            k["id"].as_str().unwrap(),
            k["name"].as_str().unwrap(),
            k["prefix"].as_str().unwrap(),
            k["createdAt"].as_str().unwrap(),
        )
    };
    let items: Vec<String> = listed.iter().map(item).collect();
    assert_eq!(reply.body, format!(r#"{{"keys":[{}]}}"#, items.join(",")));
    assert!(!reply.body.contains(&new_key[24..]), "no secret in a list");

    // DELETE /api/user/keys {"id":"…"}
    let reply = fx
        .send(
            Method::DELETE,
            KEYS,
            As::Key(&admin),
            Some(&json!({ "id": prod_id }).to_string()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_json_no_store(&reply);
    assert_eq!(reply.body, r#"{"success":true}"#);
    assert_eq!(fx.api(&prod_key).await, StatusCode::UNAUTHORIZED);
    let listed = fx
        .send(Method::GET, KEYS, As::Key(&admin), None)
        .await
        .json();
    let names = names_in(&listed);
    assert_eq!(
        names,
        ["Admin", "New API Key"],
        "a revoked key is not listed"
    );
}

#[tokio::test]
async fn the_owners_browser_session_speaks_the_same_contract() {
    let fx = fixture();
    let (id, key, _) = create(&fx, As::User("acct_42"), "New API Key").await;
    assert_eq!(fx.api(&key).await, StatusCode::OK);
    let listed = fx.send(Method::GET, KEYS, As::User("acct_42"), None).await;
    assert_eq!(listed.json()["keys"][0]["id"], json!(id));
    let deleted = fx
        .send(
            Method::DELETE,
            KEYS,
            As::User("acct_42"),
            Some(&json!({ "id": id }).to_string()),
        )
        .await;
    assert_eq!(deleted.json(), json!({ "success": true }));
    assert_eq!(fx.api(&key).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn delete_by_body_needs_a_key_named_and_finds_only_the_owners() {
    let fx = fixture();
    let admin = fx.admin("acct_42").await;
    let theirs = fx.minted("acct_7", NewKey::named("theirs")).await;
    let their_id = fx.listed("acct_7").await[0].id.clone();

    let reply = fx.send(Method::DELETE, KEYS, As::Key(&admin), None).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{reply:?}");
    assert_eq!(reply.json()["error"]["code"], "unprocessable_content");

    let body = json!({ "id": their_id }).to_string();
    let reply = fx
        .send(Method::DELETE, KEYS, As::Key(&admin), Some(&body))
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{reply:?}");
    assert_eq!(
        fx.api(&theirs).await,
        StatusCode::OK,
        "another owner's key untouched"
    );

    let reply = fx
        .send(Method::DELETE, KEYS, As::Key(&admin), Some("[\"x\"]"))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{reply:?}");
    assert_json_no_store(&reply);
}

#[tokio::test]
async fn the_detailed_format_takes_delete_by_body_too() {
    let fx = fixture_of(Authenticator::new, |routes| routes);
    let key = fx.minted("acct_42", NewKey::named("ci")).await;
    let id = fx.listed("acct_42").await[0].id.clone();
    let reply = fx
        .send(
            Method::DELETE,
            KEYS,
            As::User("acct_42"),
            Some(&json!({ "prefix": &key[..24] }).to_string()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let view = reply.json();
    assert_eq!(view["id"], json!(id.as_str()));
    assert_eq!(view["status"], "revoked");
    assert_eq!(fx.api(&key).await, StatusCode::UNAUTHORIZED);
}

/// Finding (issue 18's closing note): with `NamedKeysApi::Compact` the dashboard's
/// table stayed empty, since the page reads the detailed format. A request that asks
/// for it (`NamedKeysApi::DETAILED_MEDIA_TYPE`, as the dashboard now does) gets the
/// detailed answers from compact routes; any other request keeps the contract.
#[tokio::test]
async fn compact_routes_answer_the_detailed_format_to_whoever_asks_for_it() {
    let fx = fixture();
    let detailed = [("accept", NamedKeysApi::DETAILED_MEDIA_TYPE)];
    let ask = |method: Method, body: Option<String>| {
        let fx = &fx;
        async move {
            fx.send_from(
                method,
                KEYS,
                As::User("acct_42"),
                body.as_deref(),
                CLIENT,
                &detailed,
            )
            .await
        }
    };
    let created = ask(Method::POST, Some(json!({ "name": "ci" }).to_string())).await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    assert_json_no_store(&created);
    let view = created.json();
    assert_eq!(view["name"], "ci");
    assert_eq!(view["status"], "active");
    let key = assert_raw_key(&view["api_key"]);
    let id = view["id"].as_str().unwrap().to_owned();

    let listed = ask(Method::GET, None).await;
    assert_eq!(listed.json()["keys"][0]["status"], "active", "{listed:?}");
    assert!(listed.json()["keys"][0].get("createdAt").is_none());
    let compact = fx.send(Method::GET, KEYS, As::User("acct_42"), None).await;
    assert_eq!(
        compact.json()["keys"][0]["createdAt"],
        listed.json()["keys"][0]["created_at"],
        "the same key, in the contract's format, to a request that does not ask"
    );

    let revoked = ask(Method::DELETE, Some(json!({ "id": id }).to_string())).await;
    assert_eq!(revoked.json()["status"], "revoked", "{revoked:?}");
    assert_eq!(fx.api(&key).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bearer_management_is_off_unless_the_routes_name_a_scope() {
    let fx = fixture_of(Authenticator::new, |routes| {
        routes.named_api(NamedKeysApi::Compact)
    });
    let admin = fx.admin("acct_42").await;
    for (method, body) in [(Method::GET, None), (Method::POST, Some(r#"{"name":"x"}"#))] {
        let reply = fx.send(method, KEYS, As::Key(&admin), body).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
        assert!(reply.envelope().error.message.contains("browser session"));
    }
    assert!(fx.listed("acct_42").await.len() == 1);
}

#[tokio::test]
async fn a_key_without_the_management_scope_gets_insufficient_scope() {
    let fx = fixture();
    let plain = fx.minted("acct_42", NewKey::named("plain")).await;
    let reply = fx.send(Method::GET, KEYS, As::Key(&plain), None).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
    assert_eq!(reply.json()["error"]["code"], "forbidden");
    let challenge = reply.header("www-authenticate");
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(challenge.contains(r#"scope="keys:manage""#), "{challenge}");

    let created = fx
        .send(Method::POST, KEYS, As::Key(&plain), Some(r#"{"name":"x"}"#))
        .await;
    assert_eq!(created.status, StatusCode::FORBIDDEN);
    assert_eq!(fx.listed("acct_42").await.len(), 1);

    let wrong = common::wrong_secret(&fx.admin("acct_42").await);
    let reply = fx.send(Method::GET, KEYS, As::Key(&wrong), None).await;
    reply.assert_invalid_token();
}

#[tokio::test]
async fn a_managing_key_acts_only_for_its_own_owner() {
    let fx = fixture();
    let admin = fx.admin("acct_42").await;
    let theirs = fx.minted("acct_7", NewKey::named("theirs")).await;
    let their_id = fx.listed("acct_7").await[0].id.clone();

    let listed = fx
        .send(Method::GET, KEYS, As::Key(&admin), None)
        .await
        .json();
    assert_eq!(listed["keys"].as_array().unwrap().len(), 1, "{listed}");
    for (method, path) in [
        (Method::DELETE, format!("{KEYS}/{their_id}")),
        (Method::POST, format!("{KEYS}/{their_id}/rotate")),
        (Method::GET, format!("{KEYS}/{their_id}/usage")),
    ] {
        let reply = fx.send(method, &path, As::Key(&admin), None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}: {reply:?}");
    }
    assert_eq!(fx.api(&theirs).await, StatusCode::OK);
    let (id, _, _) = create(&fx, As::Key(&admin), "mine").await;
    let owned = fx.listed("acct_42").await;
    assert!(
        owned.iter().any(|k| k.id.as_str() == id),
        "minted for its owner"
    );
    assert_eq!(fx.listed("acct_7").await.len(), 1);
}

#[tokio::test]
async fn a_managing_key_cannot_grant_a_scope_it_does_not_hold() {
    let fx = fixture();
    let admin = fx.admin("acct_42").await;

    // A grantable scope the key lacks.
    let body = r#"{"name":"writer","scopes":["signals:write"]}"#;
    let reply = fx
        .send(Method::POST, KEYS, As::Key(&admin), Some(body))
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
    assert!(reply
        .envelope()
        .error
        .message
        .contains("only scopes it holds"));
    // Scopes it holds, the management scope included.
    let body = r#"{"name":"deputy","scopes":["keys:manage","account:read"]}"#;
    let reply = fx
        .send(Method::POST, KEYS, As::Key(&admin), Some(body))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");

    // The default scopes count as granted: a key without them cannot hand them out.
    let narrow = fx.inserted("acct_42", &[MANAGE], |b| b).await;
    let reply = fx
        .send(
            Method::POST,
            KEYS,
            As::Key(&narrow),
            Some(r#"{"name":"x"}"#),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");

    // Rotating a key mints one with the old key's scopes.
    fx.minted("acct_42", NewKey::named("writer").scope("signals:write"))
        .await;
    let writer = fx.listed("acct_42").await;
    let writer = writer
        .iter()
        .find(|k| k.name == "writer")
        .unwrap()
        .id
        .clone();
    let rotate = format!("{KEYS}/{writer}/rotate");
    let reply = fx.send(Method::POST, &rotate, As::Key(&admin), None).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
    let reply = fx
        .send(Method::POST, &rotate, As::User("acct_42"), None)
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "the owner's session may");
    let names: Vec<String> = fx
        .listed("acct_42")
        .await
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(
        names.iter().filter(|n| *n == "writer").count(),
        2,
        "{names:?}"
    );
}

#[tokio::test]
async fn the_failed_attempts_budget_applies_to_key_management() {
    let fx = fixture_of(
        |store| {
            Authenticator::builder(store)
                .failed_attempts_limit(RateLimit::new(2, Duration::from_secs(60)))
                .build()
        },
        |routes| routes.named_api(NamedKeysApi::Compact).bearer_scope(MANAGE),
    );
    let admin = fx.admin("acct_42").await;
    let wrong = common::wrong_secret(&admin);
    let statuses: Vec<StatusCode> = {
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(
                fx.send(Method::GET, KEYS, As::Key(&wrong), None)
                    .await
                    .status,
            );
        }
        seen
    };
    assert_eq!(
        statuses,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    let other = "198.51.100.4:1000";
    let reply = fx
        .send_from(Method::GET, KEYS, As::Key(&wrong), None, other, &[])
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "another client's budget"
    );
}

#[tokio::test]
async fn restrictions_and_rate_limits_apply_to_managing_keys() {
    let fx = fixture();
    let inside = Restrictions::default().allow_ip("10.0.0.0/8".parse().unwrap());
    let fenced = fx
        .inserted("acct_42", &[MANAGE], |b| b.restrictions(inside))
        .await;
    let reply = fx.send(Method::GET, KEYS, As::Key(&fenced), None).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
    let reply = fx
        .send_from(
            Method::GET,
            KEYS,
            As::Key(&fenced),
            None,
            "10.1.2.3:5000",
            &[],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");

    let once = RateLimit::new(1, Duration::from_secs(60));
    let limited = fx
        .inserted("acct_42", &[MANAGE], |b| b.rate_limit(once))
        .await;
    let first = fx.send(Method::GET, KEYS, As::Key(&limited), None).await;
    assert_eq!(first.status, StatusCode::OK);
    let second = fx.send(Method::GET, KEYS, As::Key(&limited), None).await;
    assert_eq!(second.status, StatusCode::TOO_MANY_REQUESTS, "{second:?}");
    assert!(second.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn the_audit_trail_names_the_managing_key_as_the_actor() {
    let fx = fixture();
    let admin = fx.admin("acct_42").await;
    let (id, _, _) = create(&fx, As::Key(&admin), "ci").await;
    let body = json!({ "id": id }).to_string();
    let reply = fx
        .send(Method::DELETE, KEYS, As::Key(&admin), Some(&body))
        .await;
    assert_eq!(reply.status, StatusCode::OK);

    let entries = fx.audit.entries();
    let by_key: Vec<_> = entries.iter().filter(|e| e.key_id.as_str() == id).collect();
    assert_eq!(by_key.len(), 2, "created and revoked: {entries:?}");
    let admin_prefix = admin[..24].parse().unwrap();
    for entry in by_key {
        assert_eq!(
            entry.actor,
            Actor::Key {
                prefix: admin_prefix
            }
        );
        assert_eq!(entry.client_addr, Some("203.0.113.9".parse().unwrap()));
    }
}

#[tokio::test]
async fn a_revoked_or_rotated_out_key_manages_nothing() {
    let fx = fixture();
    let admin = fx.admin("acct_42").await;
    let admin_id = fx.listed("acct_42").await[0].id.clone();

    // Rotated out, in its grace period: it still calls the API, it manages nothing.
    let body = r#"{"grace_seconds":3600}"#;
    let rotate = format!("{KEYS}/{admin_id}/rotate");
    let reply = fx
        .send(Method::POST, &rotate, As::User("acct_42"), Some(body))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    let successor = reply.json()["key"]["key"].as_str().unwrap().to_owned();
    assert_eq!(fx.api(&admin).await, StatusCode::OK, "grace period");
    for (method, body) in [(Method::GET, None), (Method::POST, Some(r#"{"name":"x"}"#))] {
        let reply = fx.send(method, KEYS, As::Key(&admin), body).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
        assert!(reply.envelope().error.message.contains("rotated out"));
    }

    // The successor keeps the management scope; revoked, it manages nothing either.
    let reply = fx.send(Method::GET, KEYS, As::Key(&successor), None).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let successor_id = reply.json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["prefix"] == json!(&successor[..24]))
        .unwrap()["id"]
        .clone();
    let body = json!({ "id": successor_id }).to_string();
    let reply = fx
        .send(Method::DELETE, KEYS, As::Key(&successor), Some(&body))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "a key may revoke itself");
    let reply = fx.send(Method::GET, KEYS, As::Key(&successor), None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
    assert!(reply.envelope().error.message.contains("revoked"));
}

/// Review finding (issue 18): a test-mode managing key that expires within the hour
/// and may be used only from 10.0.0.0/8 at 10/s minted a live, never-expiring,
/// unrestricted, unlimited key, which then worked from anywhere. A key it mints now
/// gets its mode, an expiry no later than its own, and its restrictions and rate limit.
#[tokio::test]
async fn a_managing_key_cannot_mint_a_key_beyond_its_own_bounds() {
    let fx = fixture();
    let soon = std::time::SystemTime::now() + Duration::from_secs(3600);
    let inside = "10.1.2.3:5000";
    let manager = fx
        .inserted_in(KeyMode::Test, "acct_42", &[MANAGE, "account:read"], |b| {
            b.expires_at(soon)
                .restrictions(Restrictions::default().allow_ip("10.0.0.0/8".parse().unwrap()))
                .rate_limit("100/s".parse::<RateLimit>().ok())
        })
        .await;
    let post = |body: &'static str| {
        let fx = &fx;
        let manager = manager.clone();
        async move {
            fx.send_from(
                Method::POST,
                KEYS,
                As::Key(&manager),
                Some(body),
                inside,
                &[],
            )
            .await
        }
    };
    for (body, why) in [
        (r#"{"name":"escape","mode":"live"}"#, "own mode"),
        (
            r#"{"name":"escape","expiresAt":"2099-01-01T00:00:00Z"}"#,
            "later",
        ),
    ] {
        let reply = post(body).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{why}: {reply:?}");
    }
    let reply = post(r#"{"name":"inherits"}"#).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    let minted = reply.json()["key"]["key"].as_str().unwrap().to_owned();
    assert!(minted.starts_with("pk_test_"), "its own mode: {minted}");
    let view = fx.listed("acct_42").await;
    let view = view.iter().find(|k| k.name == "inherits").unwrap();
    assert_eq!(view.expires_at.map(|at| at <= soon), Some(true), "{view:?}");
    assert_eq!(view.restrictions.ips, vec!["10.0.0.0/8".parse().unwrap()]);
    assert_eq!(view.rate_limit, "100/s".parse::<RateLimit>().ok());
    let outside = fx
        .send_from(
            Method::GET,
            "/api/account",
            As::Key(&minted),
            None,
            CLIENT,
            &[],
        )
        .await;
    assert_eq!(
        outside.status,
        StatusCode::FORBIDDEN,
        "bounded as its maker"
    );

    // Rotating a looser key would hand the manager a successor with its bounds.
    let loose = fx
        .inserted_in(KeyMode::Test, "acct_42", &["account:read"], |b| b)
        .await;
    let loose_id = fx
        .listed("acct_42")
        .await
        .into_iter()
        .find(|k| k.prefix.as_str() == &loose[..24])
        .unwrap()
        .id;
    let rotate = format!("{KEYS}/{loose_id}/rotate");
    let reply = fx
        .send_from(Method::POST, &rotate, As::Key(&manager), None, inside, &[])
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
}

/// Review finding (issue 18): a key reported leaked and left working (`Flag`) still
/// minted keys with the management scope, which outlive the leaked key's rotation.
#[tokio::test]
async fn a_key_reported_leaked_manages_nothing() {
    use tower_api_key::manage::{LeakAction, LeakReport};
    let fx = fixture();
    let admin = fx.admin("acct_42").await;
    let report = LeakReport::new("github").url("https://example.com/leak");
    fx.keys
        .report_leak(&admin, &report, LeakAction::Flag)
        .await
        .unwrap();
    assert_eq!(
        fx.api(&admin).await,
        StatusCode::OK,
        "flagged, still working"
    );
    let reply = fx
        .send(Method::POST, KEYS, As::Key(&admin), Some(r#"{"name":"x"}"#))
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
    assert!(reply.envelope().error.message.contains("leaked"));
}

/// Review finding (issue 18): `Keys` held only the scope rule, so code of the user's
/// own passing `Caller::acting_key` could act for another owner. `Keys` now holds
/// every rule, whoever calls it.
#[tokio::test]
async fn keys_holds_an_acting_key_to_its_own_owner() {
    let fx = fixture();
    let admin = fx.admin("acct_42").await;
    let auth = Authenticator::new(fx.store.clone());
    let request = common::request(Method::GET, "/", Some(&admin));
    let (parts, _) = request.into_parts();
    let principal = auth.authenticate(&parts).await.unwrap();
    let caller = Caller::acting_key(&principal).unwrap();
    let refused = fx
        .keys
        .named()
        .create(&caller, "acct_7", NewKey::named("theirs"))
        .await;
    assert!(
        matches!(refused, Err(tower_api_key::manage::ManageError::NotFound)),
        "{refused:?}"
    );
    assert!(fx.listed("acct_7").await.is_empty());
}

/// Review finding (issue 18): any `Authorization` header took the key path, so a
/// browser sending cached Basic credentials with its session got 401.
#[tokio::test]
async fn basic_credentials_beside_a_session_leave_it_to_the_session() {
    let fx = fixture();
    let mut request = Request::get(KEYS)
        .header(
            header::COOKIE,
            common::session_cookie(&fx.sessions, "acct_42"),
        )
        .header(header::AUTHORIZATION, "Basic c3RhZ2luZzpzdGFnaW5n")
        .body(Body::empty())
        .unwrap();
    let peer: SocketAddr = CLIENT.parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    let reply = Reply::read(fx.router.clone().oneshot(request).await.unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
}

#[cfg(feature = "openapi")]
#[tokio::test]
async fn the_openapi_document_describes_the_compact_format_and_bearer_keys() {
    let store = InMemoryKeyStore::new();
    let auth = Authenticator::new(store.clone());
    let guard = SessionGuardLayer::new(CookieSessions::new(&[7u8; 64]).unwrap());
    let doc = ManagementRoutes::new(Keys::new(store), guard, auth)
        .named_api(NamedKeysApi::Compact)
        .bearer_scope(MANAGE)
        .openapi();
    let doc: Value = serde_json::from_str(&doc.to_json().unwrap()).unwrap();
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["CompactKey"]["required"],
        json!(["id", "name", "prefix", "createdAt", "lastUsed"])
    );
    let list = &doc["paths"][KEYS]["get"];
    assert_eq!(
        list["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["keys"]
            ["items"]["$ref"],
        "#/components/schemas/CompactKey"
    );
    assert!(list["security"].to_string().contains("api_key"), "{list}");
    assert!(
        doc["paths"][KEYS]["delete"].is_object(),
        "DELETE with a body"
    );
}

/// `examples/named_keys_api.rs` as a real process, with a real HTTP client.
#[tokio::test]
async fn the_example_serves_the_contract_over_http() {
    let server = common::quickstart::start_example("named_keys_api", &[]).await;
    let admin = server.full.clone();
    assert!(
        admin.starts_with("pk_live_"),
        "the managing key on a line of its own"
    );
    let bearer = format!("Bearer {admin}");
    let auth = [
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
    ];

    let reply = server
        .send_with(Method::POST, KEYS, &auth, r#"{"name":"New API Key"}"#)
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    let body = reply.json();
    let (id, key) = (
        body["key"]["id"].clone(),
        assert_raw_key(&body["key"]["key"]),
    );
    assert_eq!(
        body,
        json!({ "key": { "id": id, "name": "New API Key", "key": key,
                         "createdAt": body["key"]["createdAt"] } })
    );
    let hello = server
        .send(Method::GET, "/api/account", Some(&format!("Bearer {key}")))
        .await;
    assert_eq!(
        (hello.status, hello.body.as_str()),
        (StatusCode::OK, "hello, demo\n")
    );

    let listed = server.send_with(Method::GET, KEYS, &auth, "").await.json();
    let names = names_in(&listed);
    assert_eq!(names, ["Admin", "New API Key"]);

    let body = json!({ "id": id }).to_string();
    let reply = server.send_with(Method::DELETE, KEYS, &auth, &body).await;
    assert_eq!(reply.json(), json!({ "success": true }));
    let refused = server
        .send(Method::GET, "/api/account", Some(&format!("Bearer {key}")))
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
}
