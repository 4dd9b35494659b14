//! A request without a client address (axum without `ConnectInfo`, hyper without
//! `PeerAddr`) while a rule needs one: the crate says so, once per process. Its own
//! test binary, since the warning is once per process.

mod common;

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use http::{Method, StatusCode};
use tower_api_key::{
    auth::Authenticator, policy::Restrictions, store::InsertRule, ApiKey, InMemoryKeyStore,
    KeyMode, KeyRecord, KeyStore,
};

/// Everything the crate logs, collected.
#[derive(Clone, Default)]
struct Logged(Arc<Mutex<Vec<u8>>>);

impl Write for Logged {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logged {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[tokio::test]
async fn missing_client_address_was_silent() {
    let logged = Logged::default();
    let writer = logged.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let store = InMemoryKeyStore::new();
    let key = ApiKey::generate(KeyMode::Live).unwrap();
    let record = KeyRecord::builder(&key, "acct")
        .restrictions(Restrictions::default().allow_ip("203.0.113.0/24".parse().unwrap()))
        .build();
    store
        .insert(record, InsertRule::Unconditional)
        .await
        .unwrap();
    let app = common::app_with(store.clone(), Authenticator::new(store)).await;

    // No rule needs an address yet: an unrestricted request says nothing.
    assert!(logged.text().is_empty());
    // The IP-restricted key, with no address: refused, and said why.
    for _ in 0..3 {
        let reply = app.get_bearer(key.expose_secret()).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
    }
    // Failed attempts from nobody knows where: the budget needs the address too.
    for _ in 0..3 {
        let wrong = common::wrong_secret(key.expose_secret());
        let reply = app
            .send(common::request(Method::GET, "/api/account", Some(&wrong)))
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    let text = logged.text();
    assert_eq!(
        text.matches("without a client address").count(),
        1,
        "{text}"
    );
    assert!(
        text.contains("WARN") && text.contains("ConnectInfo") && text.contains("PeerAddr"),
        "{text}"
    );
    assert!(
        !text.contains(&key.expose_secret()[24..]),
        "no secret in the log"
    );
}
