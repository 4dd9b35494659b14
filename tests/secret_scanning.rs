//! Leak reports in GitHub's secret scanning partner format (feature
//! `secret-scanning`): signed reports through the ready router, forged ones refused,
//! and the quickstart's receiver over real HTTP.
#![cfg(feature = "secret-scanning")]

mod common;

use std::sync::{Arc, Mutex};

use axum::{body::Body, Router};
use base64ct::{Base64, Encoding};
use common::Reply;
use http::{Method, Request, StatusCode};
use p256::{
    ecdsa::{signature::Signer, Signature, SigningKey},
    pkcs8::{EncodePublicKey, LineEnding},
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tower::ServiceExt;
use tower_api_key::{
    auth::Authenticator,
    manage::{
        Actor, AuditTrail, Caller, HookError, KeyAction, KeyEvent, KeyHooks, Keys, LeakAction,
        ManagementRoutes, MemoryAuditSink, NewKey, ScannerKeys, SecretScanning,
    },
    session::{CookieSessions, SessionGuardLayer},
    InMemoryKeyStore,
};

const REPORTS: &str = "/api/secret-scanning";
const KEY_ID: &str = "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a";

/// The scanner's signing key (a fixed one: the tests make their own pair).
fn scanner() -> SigningKey {
    SigningKey::from_slice(&[0x5c; 32]).expect("a P-256 scalar")
}

/// The public-keys document, shaped like GitHub's, listing `key` as `id`.
fn document(id: &str, key: &SigningKey) -> String {
    let pem = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("PEM");
    json!({ "public_keys": [{ "key_identifier": id, "key": pem, "is_current": true }] }).to_string()
}

/// Base64 of the DER signature of `body` by `key`.
fn sign(key: &SigningKey, body: &str) -> String {
    let signature: Signature = key.sign(body.as_bytes());
    Base64::encode_string(signature.to_der().as_bytes())
}

fn sha256_hex(text: &str) -> String {
    base16ct::lower::encode_string(&Sha256::digest(text.as_bytes()))
}

#[derive(Clone, Default)]
struct LeakHook(Arc<Mutex<Vec<KeyEvent>>>);

#[tower_api_key::async_trait]
impl KeyHooks for LeakHook {
    fn name(&self) -> &str {
        "notify"
    }

    async fn after_leak(&self, event: &KeyEvent) -> Result<(), HookError> {
        self.0.lock().unwrap().push(event.clone());
        Ok(())
    }
}

struct Fixture {
    router: Router,
    keys: Keys,
    audit: MemoryAuditSink,
    leaks: LeakHook,
}

fn fixture(action: LeakAction) -> Fixture {
    let store = InMemoryKeyStore::new();
    let auth = Authenticator::new(store.clone());
    let audit = MemoryAuditSink::new(100);
    let leaks = LeakHook::default();
    let keys = Keys::new(store)
        .last_use(auth.last_use().clone())
        .hook(AuditTrail::new(audit.clone()))
        .hook(leaks.clone());
    let scanner_keys = ScannerKeys::from_github_document(&document(KEY_ID, &scanner())).unwrap();
    let guard = SessionGuardLayer::new(CookieSessions::new(&[4u8; 64]).unwrap());
    let routes = ManagementRoutes::new(keys.clone(), guard, auth.clone())
        .secret_scanning(SecretScanning::github(scanner_keys).on_true_positive(action));
    Fixture {
        router: common::account_api(auth).merge(routes.into_router()),
        keys,
        audit,
        leaks,
    }
}

impl Fixture {
    async fn mint(&self) -> String {
        let minted = self
            .keys
            .named()
            .create(&Caller::system(), "acct_42", NewKey::named("ci"))
            .await
            .unwrap();
        minted.api_key().expose_secret().to_owned()
    }

    async fn report(&self, body: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(REPORTS)
            .header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Body::from(body.to_owned())).unwrap();
        Reply::read(self.router.clone().oneshot(request).await.unwrap()).await
    }

    /// `body`, signed by the configured scanner key.
    async fn signed_report(&self, body: &str) -> Reply {
        let signature = sign(&scanner(), body);
        self.report(
            body,
            &[
                ("github-public-key-identifier", KEY_ID),
                ("github-public-key-signature", &signature),
            ],
        )
        .await
    }

    async fn api(&self, key: &str) -> StatusCode {
        let request = common::request(Method::GET, "/api/account", Some(key));
        Reply::read(self.router.clone().oneshot(request).await.unwrap())
            .await
            .status
    }
}

fn report_of(tokens: &[&str]) -> String {
    let items: Vec<Value> = tokens
        .iter()
        .map(|token| {
            json!({
                "token": token,
                "type": "tower_api_key",
                "url": "https://github.com/octo/app/blob/main/.env",
                "source": "content",
            })
        })
        .collect();
    Value::Array(items).to_string()
}

#[tokio::test]
async fn a_signed_report_of_a_real_key_revokes_it_and_answers_true_positive() {
    let fx = fixture(LeakAction::Revoke);
    let key = fx.mint().await;
    assert_eq!(fx.api(&key).await, StatusCode::OK);
    let made_up = format!("pk_live_{}", "0123456789abcdef".repeat(4));

    let reply = fx.signed_report(&report_of(&[&key, &made_up])).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.header("cache-control"), "no-store");
    assert_eq!(
        reply.body,
        format!(
            concat!(
                r#"[{{"token_hash":"{}","token_type":"tower_api_key","label":"true_positive"}},"#,
                r#"{{"token_hash":"{}","token_type":"tower_api_key","label":"false_positive"}}]"#,
            ),
            sha256_hex(&key),
            sha256_hex(&made_up),
        )
    );
    assert!(
        !reply.body.contains(&key),
        "the answer never echoes a token"
    );
    assert_eq!(
        fx.api(&key).await,
        StatusCode::UNAUTHORIZED,
        "revoked at once"
    );

    let view = &fx.keys.named().list("acct_42").await.unwrap()[0];
    assert_eq!(
        view.metadata["leak.url"],
        "https://github.com/octo/app/blob/main/.env"
    );
    assert!(view.metadata.contains_key("leak.reported_at"));

    let scanner = Actor::SecretScanner {
        name: "github".into(),
    };
    let trail: Vec<(KeyAction, Actor)> = fx
        .audit
        .entries()
        .into_iter()
        .filter(|e| e.action != KeyAction::Created)
        .map(|e| (e.action, e.actor))
        .collect();
    assert_eq!(
        trail,
        [
            (KeyAction::Revoked, scanner.clone()),
            (KeyAction::Leaked, scanner)
        ]
    );
    let leaks = fx.leaks.0.lock().unwrap().clone();
    assert_eq!(leaks.len(), 1, "one leak event, for the real key only");
    let leak = leaks[0].leak.as_ref().expect("the report");
    assert_eq!(leak.source.as_deref(), Some("content"));
    assert!(
        leaks[0].key.revoked_at.is_some(),
        "the hook sees it revoked"
    );
}

#[tokio::test]
async fn a_forged_or_unsigned_report_changes_nothing() {
    let fx = fixture(LeakAction::Revoke);
    let key = fx.mint().await;
    let body = report_of(&[&key]);
    let other = SigningKey::from_slice(&[0x33; 32]).unwrap();
    let good = sign(&scanner(), &body);
    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("unsigned", vec![]),
        (
            "no identifier",
            vec![("github-public-key-signature", good.clone())],
        ),
        (
            "unknown identifier",
            vec![
                ("github-public-key-identifier", "not-ours".into()),
                ("github-public-key-signature", good.clone()),
            ],
        ),
        (
            "another key's signature",
            vec![
                ("github-public-key-identifier", KEY_ID.into()),
                ("github-public-key-signature", sign(&other, &body)),
            ],
        ),
        (
            "a signature of another body",
            vec![
                ("github-public-key-identifier", KEY_ID.into()),
                ("github-public-key-signature", sign(&scanner(), "[]")),
            ],
        ),
        (
            "not base64",
            vec![
                ("github-public-key-identifier", KEY_ID.into()),
                ("github-public-key-signature", "%%%".into()),
            ],
        ),
    ];
    for (case, headers) in cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let reply = fx.report(&body, &headers).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{case}: {reply:?}");
        assert_eq!(reply.json()["error"]["code"], "unauthorized", "{case}");
    }
    assert_eq!(fx.api(&key).await, StatusCode::OK, "the key still works");
    assert_eq!(fx.audit.entries().len(), 1, "only its creation");
    assert!(fx.leaks.0.lock().unwrap().is_empty());
    let view = &fx.keys.named().list("acct_42").await.unwrap()[0];
    assert!(!view.metadata.contains_key("leak.reported_at"));
}

#[tokio::test]
async fn flag_leaves_the_key_working_and_notes_the_report() {
    let fx = fixture(LeakAction::Flag);
    let key = fx.mint().await;
    let reply = fx.signed_report(&report_of(&[&key])).await;
    assert_eq!(reply.json()[0]["label"], "true_positive");
    assert_eq!(fx.api(&key).await, StatusCode::OK, "flagged, still working");
    let view = &fx.keys.named().list("acct_42").await.unwrap()[0];
    assert!(view.metadata.contains_key("leak.reported_at"));
    assert_eq!(fx.leaks.0.lock().unwrap().len(), 1, "the owner is notified");
}

#[tokio::test]
async fn the_report_must_be_a_bounded_json_array() {
    let fx = fixture(LeakAction::Revoke);
    let reply = fx.signed_report(r#"{"token":"x"}"#).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{reply:?}");
    assert_eq!(reply.json()["error"]["code"], "invalid_request");

    let many = report_of(&vec!["pk_live_x"; 1001]);
    let reply = fx.signed_report(&many).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{reply:?}");

    let huge = format!(r#"[{{"token":"{}","type":"t"}}]"#, "a".repeat(300 * 1024));
    let reply = fx.signed_report(&huge).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{reply:?}");
    assert_eq!(reply.header("cache-control"), "no-store");

    let reply = fx.report("[]", &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let get = Request::get(REPORTS).body(Body::empty()).unwrap();
    let reply = Reply::read(fx.router.clone().oneshot(get).await.unwrap()).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.json()["error"]["code"], "invalid_request");
}

/// Review finding (issue 18): a rotation's successor kept the old key's `leak.*`
/// notes, so the dashboard told the owner the fresh key had leaked.
#[tokio::test]
async fn a_rotated_successor_does_not_carry_the_leak_note() {
    let fx = fixture(LeakAction::Flag);
    let key = fx.mint().await;
    fx.signed_report(&report_of(&[&key])).await;
    let old = fx.keys.named().list("acct_42").await.unwrap()[0].clone();
    assert!(old.metadata.contains_key("leak.url"));
    let next = fx
        .keys
        .named()
        .rotate(
            &Caller::system(),
            "acct_42",
            &old.id,
            std::time::Duration::ZERO,
        )
        .await
        .unwrap();
    assert!(
        !next
            .view()
            .metadata
            .keys()
            .any(|name| name.starts_with("leak.")),
        "{:?}",
        next.view().metadata
    );
}

/// Review finding (issue 18): scanners retry; the same report ran the hooks and the
/// audit trail again each time. Now it is acted on and announced once.
#[tokio::test]
async fn a_repeated_report_is_announced_once() {
    let fx = fixture(LeakAction::Revoke);
    let key = fx.mint().await;
    let body = report_of(&[&key, &key]);
    for _ in 0..2 {
        let reply = fx.signed_report(&body).await;
        assert_eq!(reply.json()[1]["label"], "true_positive");
    }
    assert_eq!(fx.leaks.0.lock().unwrap().len(), 1);
    let leaked = fx
        .audit
        .entries()
        .into_iter()
        .filter(|e| e.action == KeyAction::Leaked)
        .count();
    assert_eq!(leaked, 1);
}

/// The quickstart with `LEAK_REPORT_KEYS`, as the README shows it.
#[tokio::test]
async fn the_quickstart_revokes_a_key_a_signed_report_names() {
    let dir = std::env::temp_dir().join(format!("leak-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("keys.json");
    std::fs::write(&file, document(KEY_ID, &scanner())).unwrap();
    let server =
        common::quickstart::start_with(&[("LEAK_REPORT_KEYS", file.to_str().unwrap())]).await;
    let key = server.full.clone();
    let bearer = format!("Bearer {key}");
    let before = server
        .send(Method::GET, "/api/account", Some(&bearer))
        .await;
    assert_eq!(before.status, StatusCode::OK);

    let body = report_of(&[&key]);
    let signature = sign(&scanner(), &body);
    let headers = [
        ("content-type", "application/json"),
        ("github-public-key-identifier", KEY_ID),
        ("github-public-key-signature", signature.as_str()),
    ];
    let reply = server
        .send_with(Method::POST, REPORTS, &headers, &body)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(
        reply.json(),
        json!([{ "token_hash": sha256_hex(&key), "token_type": "tower_api_key", "label": "true_positive" }])
    );
    let after = server
        .send(Method::GET, "/api/account", Some(&bearer))
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "openapi")]
#[test]
fn the_openapi_document_lists_the_leak_report_route() {
    let store = InMemoryKeyStore::new();
    let auth = Authenticator::new(store.clone());
    let guard = SessionGuardLayer::new(CookieSessions::new(&[4u8; 64]).unwrap());
    let scanner_keys = ScannerKeys::from_github_document(&document(KEY_ID, &scanner())).unwrap();
    let doc = ManagementRoutes::new(Keys::new(store), guard, auth)
        .secret_scanning(SecretScanning::github(scanner_keys))
        .openapi();
    let doc: Value = serde_json::from_str(&doc.to_json().unwrap()).unwrap();
    let post = &doc["paths"][REPORTS]["post"];
    let headers: Vec<&str> = post["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        headers,
        [
            "Github-Public-Key-Identifier",
            "Github-Public-Key-Signature"
        ]
    );
    assert!(post["responses"]["401"].is_object(), "{post}");
}
