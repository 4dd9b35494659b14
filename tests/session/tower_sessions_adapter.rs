//! The `tower-sessions` adapter behind the guard.

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

use crate::setup::{assert_forbidden, assert_unauthorized, assert_unavailable, cookie_pair, send};

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
        let reply = send(
            &self.router,
            crate::setup::request(Method::POST, "/login", &[]),
        )
        .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{reply:?}");
        cookie_pair(reply.headers.get(SET_COOKIE).expect("a session cookie"))
    }

    async fn settings(&self, headers: &[(&str, &str)]) -> crate::common::Reply {
        send(
            &self.router,
            crate::setup::request(Method::POST, "/settings", headers),
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
        crate::setup::request(Method::POST, "/settings", &[("cookie", &cookie)]),
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
        crate::setup::request(Method::POST, "/settings", &[("cookie", "id=whatever")]),
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
