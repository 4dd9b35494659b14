//! Signed keys (`KeyFormat::signed_with`): keys minted by key management carry a MAC
//! under the deployment's secret; the layer refuses any other key from its text, before
//! the store is asked, through a real axum Router. Checksummed keys
//! (`KeyFormat::checksum`) the same way, with a public CRC-32.

mod common;

use std::net::SocketAddr;

use axum::{body::Body, extract::ConnectInfo, routing::get, Router};
use common::{wrong_secret, Reply, TestStore};
use http::{Request, StatusCode};
use tower::ServiceExt;
use tower_api_key::{
    auth::Authenticator,
    key::{has_valid_checksum, Checksum, KeyFormat, KeySecret},
    manage::{Caller, Keys, NewKey},
    ApiKey, ApiKeyLayer, KeyMode,
};

struct App {
    router: Router,
    keys: Keys,
    store: TestStore,
}

fn app(format: KeyFormat) -> App {
    let store = TestStore::default();
    let auth = Authenticator::builder(store.clone())
        .key_format(format.clone())
        .failed_attempts_limit("5/m".parse::<tower_api_key::policy::RateLimit>().ok())
        .build();
    let router = Router::new()
        .route("/api/account", get(|| async { "ok" }))
        .layer(ApiKeyLayer::new(auth));
    let keys = Keys::new(store.clone()).key_format(format);
    App {
        router,
        keys,
        store,
    }
}

impl App {
    async fn mint(&self) -> String {
        let minted = self
            .keys
            .named()
            .create(&Caller::system(), "acct_signed", NewKey::named("ci"))
            .await
            .expect("mint");
        minted.api_key().expose_secret().to_owned()
    }

    async fn call(&self, key: &str) -> StatusCode {
        let mut request = Request::get("/api/account")
            .header("authorization", format!("Bearer {key}"))
            .body(Body::empty())
            .unwrap();
        let peer: SocketAddr = "192.0.2.30:1000".parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(peer));
        Reply::read(self.router.clone().oneshot(request).await.unwrap())
            .await
            .status
    }
}

fn signed() -> KeyFormat {
    KeyFormat::default().signed_with(KeySecret::generate().unwrap())
}

#[tokio::test]
async fn minted_keys_work_and_guesses_never_reach_the_store() {
    let app = app(signed());
    let key = app.mint().await;
    assert_eq!(app.call(&key).await, StatusCode::OK);
    let looked_up = app.store.lookups();
    assert!(looked_up >= 1, "a signed key is looked up");

    // A random key, a real prefix with another secret, an unsigned key of the right
    // shape: all refused, none looked up.
    let random = ApiKey::generate(KeyMode::Live).unwrap();
    let guesses = [
        random.expose_secret().to_owned(),
        wrong_secret(&key),
        format!("{}{}", &key[..24], "0".repeat(48)),
    ];
    for guess in &guesses {
        assert_eq!(
            app.call(guess).await,
            StatusCode::UNAUTHORIZED,
            "{}",
            &guess[..24]
        );
    }
    assert_eq!(app.store.lookups(), looked_up, "no guess reached the store");
    // They still count against the client's failed-attempts budget (5/m).
    for _ in 0..3 {
        app.call(&guesses[0]).await;
    }
    assert_eq!(app.call(&guesses[0]).await, StatusCode::TOO_MANY_REQUESTS);
    // The valid key is untouched by the budget.
    assert_eq!(app.call(&key).await, StatusCode::OK);
}

#[tokio::test]
async fn a_rotated_secret_keeps_old_keys_and_signs_new_ones() {
    let old = KeySecret::generate().unwrap();
    let before = app(KeyFormat::default().signed_with(old.clone()));
    let old_key = before.mint().await;

    let new = KeySecret::generate().unwrap();
    let rotated = KeyFormat::default()
        .signed_with(new.clone())
        .also_accepting(old.clone());
    // The same records, behind a layer with the rotated format.
    let after = App {
        router: Router::new()
            .route("/api/account", get(|| async { "ok" }))
            .layer(ApiKeyLayer::new(
                Authenticator::builder(before.store.clone())
                    .key_format(rotated.clone())
                    .build(),
            )),
        keys: Keys::new(before.store.clone()).key_format(rotated),
        store: before.store.clone(),
    };
    assert_eq!(after.call(&old_key).await, StatusCode::OK, "old keys work");
    let new_key = after.mint().await;
    assert_eq!(after.call(&new_key).await, StatusCode::OK);
    // New keys are signed with the new secret: a layer that knows only it takes them.
    let only_new = KeyFormat::default().signed_with(new);
    assert!(ApiKey::parse(&new_key, &only_new).is_ok());
    assert!(ApiKey::parse(&old_key, &only_new).is_err());
}

#[tokio::test]
async fn keys_minted_unsigned_are_refused_once_signing_is_on() {
    let unsigned = app(KeyFormat::default());
    let key = unsigned.mint().await;
    assert_eq!(unsigned.call(&key).await, StatusCode::OK);
    let signed_layer = Router::new()
        .route("/api/account", get(|| async { "ok" }))
        .layer(ApiKeyLayer::new(
            Authenticator::builder(unsigned.store.clone())
                .key_format(signed())
                .build(),
        ));
    let request = Request::get("/api/account")
        .header("authorization", format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap();
    let status = signed_layer.oneshot(request).await.unwrap().status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn checksummed_keys_work_and_mistyped_ones_never_reach_the_store() {
    let app = app(KeyFormat::default().checksum(Checksum::Required));
    let key = app.mint().await;
    assert!(has_valid_checksum(&key));
    assert_eq!(app.call(&key).await, StatusCode::OK);
    let looked_up = app.store.lookups();

    // A typo in the secret part, a made-up key, a key minted before checksums.
    let random = ApiKey::generate(KeyMode::Live).unwrap();
    for guess in [wrong_secret(&key), random.expose_secret().to_owned()] {
        assert_eq!(app.call(&guess).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(app.store.lookups(), looked_up, "no guess reached the store");
}

#[tokio::test]
async fn an_optional_checksum_keeps_keys_minted_before_it() {
    let before = app(KeyFormat::default());
    let old_key = before.mint().await;
    let optional = KeyFormat::default().checksum(Checksum::Optional);
    let after = App {
        router: Router::new()
            .route("/api/account", get(|| async { "ok" }))
            .layer(ApiKeyLayer::new(
                Authenticator::builder(before.store.clone())
                    .key_format(optional.clone())
                    .build(),
            )),
        keys: Keys::new(before.store.clone()).key_format(optional),
        store: before.store.clone(),
    };
    assert_eq!(after.call(&old_key).await, StatusCode::OK, "old keys work");
    let new_key = after.mint().await;
    assert!(has_valid_checksum(&new_key));
    assert_eq!(after.call(&new_key).await, StatusCode::OK);
}
