//! The spans the crate opens (issue 17 §2): one `verify_api_key` per verification with
//! its key prefix and outcome, one `manage_api_key` per key-management action; no key
//! text in any of them. (The metrics are checked against the quickstart's `/metrics`
//! in tests/quickstart.rs.)

mod common;

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use http::{Method, StatusCode};
use tower::ServiceExt;
use tower_api_key::{
    manage::{Caller, Keys, NewKey},
    ApiKey, Authenticator, InMemoryKeyStore, KeyMode, KeyRecord,
};
use tracing_subscriber::fmt::{format::FmtSpan, MakeWriter};

/// Everything the subscriber wrote.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn spans_carry_the_prefix_and_outcome_never_the_key() {
    let captured = Captured::default();
    let _guard = captured.subscribe();

    let store = InMemoryKeyStore::new();
    let auth = Authenticator::new(store.clone());
    let keys = Keys::new(store).last_use(auth.last_use().clone());
    let minted = keys
        .named()
        .create(&Caller::system(), "acct_spans", NewKey::named("ci"))
        .await
        .unwrap();
    let key = minted.api_key().expose_secret().to_owned();
    let router = common::account_api(auth.clone());
    let ok = router
        .clone()
        .oneshot(common::request(Method::GET, "/api/account", Some(&key)))
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let wrong = common::wrong_secret(&key);
    let refused = router
        .oneshot(common::request(Method::GET, "/api/account", Some(&wrong)))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    keys.named()
        .revoke(&Caller::system(), "acct_spans", &minted.view().id)
        .await
        .unwrap();

    let text = captured.text();
    let prefix = &key[..24];
    let line = |needles: &[&str]| captured.has_line(needles);
    let quoted = format!("key_prefix=\"{prefix}\"");
    assert!(
        line(&["verify_api_key", &quoted, "outcome=\"admitted\""]),
        "{text}"
    );
    assert!(
        line(&["verify_api_key", &quoted, "outcome=\"invalid_credentials\""]),
        "{text}"
    );
    assert!(
        line(&["manage_api_key", "create", "acct_spans", prefix]),
        "{text}"
    );
    assert!(line(&["manage_api_key", "revoke", prefix]), "{text}");
    assert!(!text.contains(&key), "the key in a span:\n{text}");
    assert!(!text.contains(&wrong), "a presented key in a span:\n{text}");
}

/// A verification that waits for its store (the store answers only asynchronously)
/// runs in its span, which gets the outcome once the store has answered.
#[tokio::test]
async fn a_verification_that_waits_for_its_store_reports_in_its_span() {
    let captured = Captured::default();
    let _guard = captured.subscribe();
    let store = common::TestStore::async_lookups();
    let key = ApiKey::generate(KeyMode::Live).unwrap();
    common::insert(&store.inner, KeyRecord::builder(&key, "acct_waits").build()).await;
    let key = key.expose_secret().to_owned();
    let router = common::account_api(Authenticator::new(store.clone()));
    for (presented, status) in [
        (key.clone(), StatusCode::OK),
        (common::wrong_secret(&key), StatusCode::UNAUTHORIZED),
    ] {
        let response = router
            .clone()
            .oneshot(common::request(
                Method::GET,
                "/api/account",
                Some(&presented),
            ))
            .await
            .unwrap();
        assert_eq!(response.status(), status);
    }
    // The admitted key's first last-use write looks it up once more (was it revoked
    // meanwhile?).
    assert_eq!(store.lookups(), 3, "every lookup waited for the store");

    let quoted = format!("key_prefix=\"{}\"", &key[..24]);
    for outcome in ["outcome=\"admitted\"", "outcome=\"invalid_credentials\""] {
        assert!(
            captured.has_line(&["verify_api_key", &quoted, outcome]),
            "{}",
            captured.text()
        );
    }
}

impl Captured {
    /// A subscriber that writes every span's close, at `DEBUG`, here; set as the
    /// default until the guard drops.
    fn subscribe(&self) -> tracing::subscriber::DefaultGuard {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_span_events(FmtSpan::CLOSE)
            .with_ansi(false)
            .with_writer(self.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    /// Whether a line written holds all of `needles`.
    fn has_line(&self, needles: &[&str]) -> bool {
        self.text()
            .lines()
            .any(|line| needles.iter().all(|n| line.contains(n)))
    }
}
