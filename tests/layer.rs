//! The layer around real axum routers and plain tower services: principal, scopes,
//! lifecycle, store failures, configuration and tower's readiness contract.

mod common;

use std::{
    convert::Infallible,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::{Duration, SystemTime},
};

use axum::{body::Body, routing::get, Router};
use bytes::Bytes;
use common::{app, app_with, insert, request, wrong_secret, Reply, TestStore, INVALID_BODY};
use http::{HeaderName, Method, Request, Response, StatusCode};
use http_body_util::Full;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_api_key::{
    error::AuthErrorKind,
    key::{KeyFormat, KeyPrefix},
    store::{InsertRule, KeyId, KeyStore, StoreError},
    ApiKey, ApiKeyLayer, Authenticator, InMemoryKeyStore, KeyMode, KeyRecord, Principal,
    RequireScopeLayer,
};

fn post_signal(key: Option<&str>) -> Request<Body> {
    request(Method::POST, "/api/signals", key)
}

#[tokio::test]
async fn scope_required_by_route_layer() {
    let app = app().await;
    let reply = app.send(post_signal(Some(app.full.expose_secret()))).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.body, "demo");

    let reply = app
        .send(post_signal(Some(app.read_only.expose_secret())))
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.envelope().error.code,
        tower_api_key::ErrorCode::Forbidden
    );
    assert_eq!(
        reply.header("www-authenticate"),
        r#"Bearer realm="api", error="insufficient_scope", scope="signals:write""#
    );
    assert_eq!(reply.header("cache-control"), "no-store");
    assert_eq!(
        app.calls(),
        1,
        "the read-only call never reached the handler"
    );
}

#[tokio::test]
async fn authentication_comes_before_authorization() {
    let app = app().await;
    let reply = app.send(post_signal(None)).await;
    reply.assert_unauthorized(r#"Bearer realm="api""#);
    let reply = app
        .send(post_signal(Some(&format!("pk_live_{}", "0".repeat(64)))))
        .await;
    reply.assert_invalid_token();
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn scope_layer_without_api_key_layer_refuses_with_401() {
    let router: Router = Router::new()
        .route("/x", get(|| async { "secret" }))
        .route_layer(RequireScopeLayer::new("admin"));
    let reply = Reply::read(
        router
            .oneshot(request(Method::GET, "/x", None))
            .await
            .unwrap(),
    )
    .await;
    reply.assert_unauthorized(r#"Bearer realm="api""#);
}

#[tokio::test]
#[should_panic(expected = "not a valid RFC 6749 scope")]
async fn invalid_scope_is_a_configuration_error() {
    let _ = RequireScopeLayer::new("bad \"scope\"");
}

#[tokio::test]
async fn handler_can_require_a_scope_itself() {
    let store = InMemoryKeyStore::new();
    let key = common::mint(&store, "acme", &["leads:read"]).await;
    let router: Router = Router::new()
        .route(
            "/leads",
            get(|p: Principal| async move {
                p.require_scope("leads:write")?;
                Ok::<_, tower_api_key::AuthError>("written")
            }),
        )
        .layer(ApiKeyLayer::new(
            Authenticator::builder(store).realm("leads").build(),
        ));
    let request = request(Method::GET, "/leads", Some(key.expose_secret()));
    let reply = Reply::read(router.oneshot(request).await.unwrap()).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.header("www-authenticate"),
        r#"Bearer realm="leads", error="insufficient_scope", scope="leads:write""#
    );
}

#[tokio::test]
async fn revoked_keys_are_refused_at_once() {
    let app = app().await;
    assert_eq!(app.status(&app.full).await, StatusCode::OK);
    let record = app.record(&app.full).await;
    app.store
        .revoke(&record.id, SystemTime::now())
        .await
        .unwrap();

    let reply = app.get_bearer(app.full.expose_secret()).await;
    reply.assert_unauthorized(r#"Bearer realm="api", error="invalid_token""#);
    assert_eq!(
        reply.envelope().error.message,
        "This API key has been revoked."
    );
    assert_eq!(app.calls(), 1);
    // Only the key's holder learns it was revoked: a wrong secret under its prefix
    // still gets the generic answer.
    let key = app.full.expose_secret();
    let wrong = wrong_secret(key);
    app.get_bearer(&wrong).await.assert_invalid_token();
    // Other keys are unaffected.
    assert_eq!(app.status(&app.read_only).await, StatusCode::OK);
}

#[tokio::test]
async fn scheduled_revocation_takes_effect_at_its_time() {
    let app = app().await;
    let record = app.record(&app.full).await;
    let at = SystemTime::now() + Duration::from_millis(300);
    app.store.revoke(&record.id, at).await.unwrap();
    assert_eq!(app.status(&app.full).await, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(app.status(&app.full).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn expired_keys_are_refused() {
    let app = app().await;
    let key = ApiKey::generate(KeyMode::Live).unwrap();
    let past = SystemTime::now() - Duration::from_secs(1);
    insert(
        &app.store,
        KeyRecord::builder(&key, "x").expires_at(past).build(),
    )
    .await;
    let reply = app.get_bearer(key.expose_secret()).await;
    reply.assert_unauthorized(r#"Bearer realm="api", error="invalid_token""#);
    assert_eq!(reply.envelope().error.message, "This API key has expired.");
    assert_eq!(app.calls(), 0);

    let future = SystemTime::now() + Duration::from_secs(3600);
    let key = ApiKey::generate(KeyMode::Live).unwrap();
    insert(
        &app.store,
        KeyRecord::builder(&key, "x").expires_at(future).build(),
    )
    .await;
    assert_eq!(app.status(&key).await, StatusCode::OK);
}

#[tokio::test]
async fn test_mode_keys_carry_their_mode() {
    let app = app().await;
    let key = ApiKey::generate(KeyMode::Test).unwrap();
    insert(&app.store, KeyRecord::builder(&key, "sandbox").build()).await;
    let reply = app.get_bearer(key.expose_secret()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["mode"], "test");
}

#[tokio::test]
async fn last_use_is_recorded_and_coalesced() {
    let app = app().await;
    let before = SystemTime::now();
    app.get_bearer(app.full.expose_secret()).await;
    let first = app.record(&app.full).await;
    let seen = first.last_used_at.expect("last use noted");
    assert!(seen >= before);
    // Within the interval (60 s by default) no further write happens.
    app.get_bearer(app.full.expose_secret()).await;
    let second = app.record(&app.full).await;
    assert_eq!(second.last_used_at, Some(seen));
}

/// A store that is down.
struct DownStore;

#[async_trait::async_trait]
impl KeyStore for DownStore {
    async fn find_by_prefix(&self, _: &KeyPrefix) -> Result<Option<Arc<KeyRecord>>, StoreError> {
        Err(StoreError::backend("connection refused"))
    }
    async fn insert(&self, _: KeyRecord, _: InsertRule) -> Result<(), StoreError> {
        Err(StoreError::Timeout)
    }
    async fn revoke(&self, _: &KeyId, _: SystemTime) -> Result<Option<KeyRecord>, StoreError> {
        Err(StoreError::Timeout)
    }
    async fn list_by_owner(&self, _: &str) -> Result<Vec<KeyRecord>, StoreError> {
        Err(StoreError::Timeout)
    }
    async fn record_last_use(&self, _: &KeyId, _: SystemTime) -> Result<(), StoreError> {
        Err(StoreError::Timeout)
    }
    async fn set_metadata(&self, _: &KeyId, _: &str, _: Option<&str>) -> Result<(), StoreError> {
        Err(StoreError::Timeout)
    }
}

#[tokio::test]
async fn failing_store_fails_closed_with_503() {
    let calls = Arc::new(AtomicUsize::new(0));
    let auth = Authenticator::builder(DownStore)
        .retry_after(Duration::from_secs(5))
        .build();
    let router = common::router(auth.clone(), calls.clone());
    let key = ApiKey::generate(KeyMode::Live).unwrap();
    let request = request(Method::GET, "/api/account", Some(key.expose_secret()));
    let reply = Reply::read(router.oneshot(request).await.unwrap()).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        reply.envelope().error.code,
        tower_api_key::ErrorCode::InternalError
    );
    assert_eq!(reply.header("retry-after"), "5");
    assert_eq!(reply.header("cache-control"), "no-store");
    assert!(reply.headers.get("www-authenticate").is_none());
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    // The cause is there for the operator's logs, and holds nothing secret.
    let err = auth
        .authenticate_outside_http(key.expose_secret())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), AuthErrorKind::StoreUnavailable);
    let cause = std::error::Error::source(&err)
        .expect("store error kept")
        .to_string();
    assert_eq!(cause, "the key store failed");
    assert!(!format!("{err:?}").contains(&key.expose_secret()[24..]));
}

#[tokio::test]
async fn customised_realm_messages_header_and_namespace() {
    let store = InMemoryKeyStore::new();
    let format = KeyFormat::new("acme").unwrap();
    let key = ApiKey::generate_in(&format, KeyMode::Live).unwrap();
    insert(&store, KeyRecord::builder(&key, "o").build()).await;
    let auth = Authenticator::builder(store.clone())
        .realm("acme api")
        .key_format(format)
        .also_accept_header(HeaderName::from_static("x-api-key"))
        .message(AuthErrorKind::MissingCredentials, "Send your key.")
        .build();
    let app = app_with(store, auth).await;

    let reply = app.get_with(&[]).await;
    reply.assert_unauthorized(r#"Bearer realm="acme api""#);
    assert_eq!(
        reply.body,
        r#"{"error":{"code":"unauthorized","message":"Send your key."}}"#
    );

    let reply = app
        .get_with(&[("x-api-key", key.expose_secret().as_bytes())])
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["prefix"].as_str().unwrap().len(), 26);
    assert_eq!(app.status(&key).await, StatusCode::OK);
    // Both headers at once is ambiguous: refused, whichever is right.
    let both = format!("Bearer {}", key.expose_secret());
    let reply = app
        .get_with(&[
            ("x-api-key", key.expose_secret().as_bytes()),
            ("authorization", both.as_bytes()),
        ])
        .await;
    reply.assert_unauthorized(r#"Bearer realm="acme api", error="invalid_token""#);
    // `pk_` keys are not this service's format.
    let reply = app.get_bearer(app.full.expose_secret()).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn extra_header_is_off_by_default() {
    let app = app().await;
    let reply = app
        .get_with(&[("x-api-key", app.full.expose_secret().as_bytes())])
        .await;
    reply.assert_unauthorized(r#"Bearer realm="api""#);
    assert_eq!(reply.body, INVALID_BODY);
}

#[tokio::test]
async fn route_layer_guards_only_matched_routes() {
    let store = InMemoryKeyStore::new();
    let key = common::mint(&store, "o", &[]).await;
    let router: Router = Router::new()
        .route("/api/thing", get(|| async { "thing" }))
        .route_layer(ApiKeyLayer::new(store))
        .route("/health", get(|| async { "ok" }));
    let get = |uri: &str, key: Option<&str>| request(Method::GET, uri, key);
    let status = |r: Response<Body>| r.status();
    assert_eq!(
        status(router.clone().oneshot(get("/health", None)).await.unwrap()),
        200
    );
    assert_eq!(
        status(router.clone().oneshot(get("/nope", None)).await.unwrap()),
        404
    );
    assert_eq!(
        status(
            router
                .clone()
                .oneshot(get("/api/thing", None))
                .await
                .unwrap()
        ),
        401
    );
    let ok = router
        .oneshot(get("/api/thing", Some(key.expose_secret())))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn plain_tower_service_fn_without_axum() {
    let store = InMemoryKeyStore::new();
    let key = common::mint(&store, "hyper-user", &[]).await;
    let service = ServiceBuilder::new()
        .layer(ApiKeyLayer::new(store))
        .service_fn(|req: Request<Full<Bytes>>| async move {
            let owner = req
                .extensions()
                .get::<Principal>()
                .unwrap()
                .owner()
                .to_owned();
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(owner))))
        });
    let request = Request::get("/")
        .header("authorization", format!("Bearer {}", key.expose_secret()))
        .body(Full::default())
        .unwrap();
    let reply = Reply::read(service.clone().oneshot(request).await.unwrap()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "hyper-user");
    let reply = Reply::read(
        service
            .oneshot(Request::new(Full::default()))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body, INVALID_BODY);
}

/// An inner service whose readiness belongs to each instance, like a buffer slot or a
/// connection: a clone starts unready, and calling an instance that was not driven to
/// readiness is a bug the test detects.
#[derive(Default)]
struct Picky {
    ready: bool,
    misuse: Arc<AtomicBool>,
}

impl Clone for Picky {
    fn clone(&self) -> Self {
        Picky {
            ready: false,
            misuse: self.misuse.clone(),
        }
    }
}

impl Service<Request<Body>> for Picky {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.ready = true;
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<Body>) -> Self::Future {
        if !std::mem::take(&mut self.ready) {
            self.misuse.store(true, Ordering::SeqCst);
        }
        std::future::ready(Ok(Response::new(Body::from("ok"))))
    }
}

#[tokio::test]
async fn the_service_made_ready_is_the_one_called() {
    // A store that makes the layer wait, so the inner service is called later, from
    // the response future.
    let store = TestStore::async_lookups();
    let key = common::mint(&store.inner, "o", &[]).await;
    let picky = Picky::default();
    let misuse = picky.misuse.clone();
    let mut service = tower::Layer::layer(&ApiKeyLayer::new(store), picky);
    for _ in 0..3 {
        let request = request(Method::GET, "/", Some(key.expose_secret()));
        let response = service.ready().await.unwrap().call(request).await.unwrap();
        assert_eq!(response.status(), 200);
    }
    assert!(
        !misuse.load(Ordering::SeqCst),
        "an instance that was never ready got called"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_each_get_their_own_principal() {
    let store = InMemoryKeyStore::new();
    let mut keys = Vec::new();
    for i in 0..50 {
        keys.push((
            format!("owner-{i}"),
            common::mint(&store, &format!("owner-{i}"), &[]).await,
        ));
    }
    let router: Router = Router::new()
        .route(
            "/me",
            get(|p: Principal| async move { p.owner().to_owned() }),
        )
        .layer(ApiKeyLayer::new(store));
    let mut tasks = Vec::new();
    for round in 0..4 {
        for (owner, key) in &keys {
            let router = router.clone();
            let owner = owner.clone();
            let secret = key.expose_secret().to_owned();
            tasks.push(tokio::spawn(async move {
                let request = request(Method::GET, "/me", Some(&secret));
                let reply = Reply::read(router.oneshot(request).await.unwrap()).await;
                assert_eq!(reply.status, 200, "round {round}");
                assert_eq!(reply.body, owner);
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test]
async fn debug_output_never_holds_a_secret() {
    let app = app().await;
    let secret = &app.full.expose_secret()[24..];
    let record = app.record(&app.full).await;
    let auth = Authenticator::new(app.store.clone());
    let principal = auth
        .authenticate_outside_http(app.full.expose_secret())
        .await
        .unwrap();
    for text in [
        format!("{:?}", app.full),
        format!("{record:?}"),
        format!("{principal:?}"),
        format!("{auth:?}"),
        format!("{:?}", app.store),
    ] {
        assert!(!text.contains(secret), "{text}");
    }
    assert_eq!(principal.owner(), "demo");
    assert_eq!(principal.key_id(), &record.id);
}

#[tokio::test]
async fn wraps_a_whole_router_as_a_tower_service() {
    let store = InMemoryKeyStore::new();
    let key = common::mint(&store, "o", &[]).await;
    let router: Router = Router::new().route("/a", get(|| async { "a" }));
    let service = ServiceBuilder::new()
        .layer(ApiKeyLayer::new(store))
        .service(router);
    // Unmatched routes are guarded too: the layer sits outside the router.
    let anonymous = request(Method::GET, "/nope", None);
    assert_eq!(
        service.clone().oneshot(anonymous).await.unwrap().status(),
        401
    );
    let request = request(Method::GET, "/a", Some(key.expose_secret()));
    let reply = Reply::read(service.oneshot(request).await.unwrap()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "a");
}

#[tokio::test]
async fn optional_principal_outside_the_layer() {
    let router: Router = Router::new().route(
        "/maybe",
        get(|p: Option<Principal>| async move {
            p.map_or("anonymous".to_owned(), |p| p.owner().to_owned())
        }),
    );
    let reply = Reply::read(
        router
            .oneshot(request(Method::GET, "/maybe", None))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.body, "anonymous");
}

#[tokio::test]
async fn a_store_that_makes_the_layer_wait_gives_the_same_answers() {
    let store = TestStore::async_lookups();
    let app = app_with(store.inner.clone(), Authenticator::new(store)).await;
    let reply = app.get_bearer(app.full.expose_secret()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["account"], "demo");
    assert!(app.record(&app.full).await.last_used_at.is_some());

    let key = app.full.expose_secret();
    let wrong = wrong_secret(key);
    app.get_bearer(&wrong).await.assert_invalid_token();
    app.get_bearer(&format!("pk_live_{}", "0".repeat(64)))
        .await
        .assert_invalid_token();

    let reply = app
        .send(post_signal(Some(app.read_only.expose_secret())))
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);

    let id = app.record(&app.full).await.id.clone();
    app.store.revoke(&id, SystemTime::now()).await.unwrap();
    let reply = app.get_bearer(app.full.expose_secret()).await;
    assert_eq!(
        reply.envelope().error.message,
        "This API key has been revoked."
    );
    assert_eq!(app.calls(), 1);
}

#[tokio::test]
async fn failing_last_use_writes_neither_refuse_nor_repeat() {
    let store = TestStore {
        fail_writes: true,
        ..TestStore::default()
    };
    let writes = store.writes.clone();
    let app = app_with(store.inner.clone(), Authenticator::new(store)).await;
    for _ in 0..20 {
        let reply = app.get_bearer(app.full.expose_secret()).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    assert_eq!(
        writes.load(Ordering::SeqCst),
        1,
        "one attempt per key per interval"
    );
    app.get_bearer(app.read_only.expose_secret()).await;
    assert_eq!(writes.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_request_racing_a_revoke_is_refused_once_the_revoke_returned() {
    // Last-use writes take a while, as over a network.
    let store = TestStore {
        write_delay: Duration::from_millis(200),
        ..TestStore::default()
    };
    let app = app_with(store.inner.clone(), Authenticator::new(store)).await;
    let key = app.full.expose_secret().to_owned();
    let id = app.record(&app.full).await.id.clone();
    // The first request of the interval writes its last use (slowly)...
    let request = app.get_bearer(&key);
    let revoke = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        app.store.revoke(&id, SystemTime::now()).await.unwrap();
    };
    // ...and the key is revoked while that write is under way.
    let (reply, ()) = tokio::join!(request, revoke);
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.envelope().error.message,
        "This API key has been revoked."
    );
    assert_eq!(app.calls(), 0, "the handler never ran");
}

#[tokio::test]
async fn a_deployment_can_accept_one_mode_only() {
    for (only, other) in [
        (KeyMode::Live, KeyMode::Test),
        (KeyMode::Test, KeyMode::Live),
    ] {
        let store = InMemoryKeyStore::new();
        let auth = Authenticator::builder(store.clone())
            .only_mode(only)
            .build();
        let app = app_with(store, auth).await;
        let accepted = ApiKey::generate(only).unwrap();
        let refused = ApiKey::generate(other).unwrap();
        insert(&app.store, KeyRecord::builder(&accepted, "o").build()).await;
        insert(&app.store, KeyRecord::builder(&refused, "o").build()).await;

        let reply = app.get_bearer(accepted.expose_secret()).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.json()["mode"], only.as_str());

        let reply = app.get_bearer(refused.expose_secret()).await;
        reply.assert_unauthorized(r#"Bearer realm="api", error="invalid_token""#);
        let message = reply.envelope().error.message;
        assert_eq!(
            message,
            format!("This endpoint accepts {only} keys (pk_{only}_…) only.")
        );
        assert!(!reply.body.contains(&refused.expose_secret()[24..]));
        // Known or not, a key of the other mode gets the same answer, before any lookup.
        let unknown = ApiKey::generate(other).unwrap();
        let again = app.get_bearer(unknown.expose_secret()).await;
        assert_eq!(again.body, reply.body);
    }
    // A custom message stays.
    let store = InMemoryKeyStore::new();
    let auth = Authenticator::builder(store.clone())
        .only_mode(KeyMode::Live)
        .message(AuthErrorKind::WrongMode, "Use your live key here.")
        .build();
    let app = app_with(store, auth).await;
    let test_key = ApiKey::generate(KeyMode::Test).unwrap();
    let reply = app.get_bearer(test_key.expose_secret()).await;
    assert_eq!(reply.envelope().error.message, "Use your live key here.");
}
