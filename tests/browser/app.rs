//! A small app in the test process, for dashboard states the quickstart cannot set up:
//! the one-active shape mounted alone, keys seeded through the store (restricted,
//! rate-limited), hooks of the test's choosing. It serves on a free loopback port:
//! `POST /login` logs the browser in as `demo` (any body), `GET /api/account` needs a
//! key, and the management routes carry the dashboard at `/settings/api-keys`.

use std::net::SocketAddr;

use axum::{
    routing::{get, post},
    Router,
};
use bytes::Bytes;
use http::{header::SET_COOKIE, Request, StatusCode};
use http_body_util::Full;
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};
use tower_api_key::{
    manage::dashboard::DashboardConfig,
    manage::{Keys, ManagementRoutes},
    session::{CookieSessions, SessionGuardLayer, SessionUser},
    store::{InsertRule, KeyStore},
    ApiKey, ApiKeyLayer, Authenticator, InMemoryKeyStore, KeyRecord, Principal,
};

pub struct App {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub store: InMemoryKeyStore,
    client: Client<HttpConnector, Full<Bytes>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for App {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl App {
    /// Serves the app over `store`, with `keys` (made from `store`) and the
    /// management routes as `configure` leaves them.
    pub async fn start(
        store: InMemoryKeyStore,
        keys: Keys,
        configure: impl FnOnce(ManagementRoutes) -> ManagementRoutes,
    ) -> App {
        let auth = Authenticator::new(store.clone());
        let sessions = CookieSessions::with_random_key()
            .expect("session key")
            .insecure_for_local_http();
        let login = sessions.clone();
        let routes = configure(
            ManagementRoutes::new(keys, SessionGuardLayer::new(sessions), auth.clone())
                .dashboard(DashboardConfig::new("/settings/api-keys")),
        );
        let app = Router::new()
            .route("/health", get(|| async { "ok" }))
            .route(
                "/login",
                post(move || async move {
                    ([(SET_COOKIE, login.login(&SessionUser::new("demo")))], "{}")
                }),
            )
            .merge(
                Router::new()
                    .route(
                        "/api/account",
                        get(|p: Principal| async move { p.owner().to_owned() }),
                    )
                    .layer(ApiKeyLayer::new(auth)),
            )
            .merge(routes.into_router());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the app");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let task = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .expect("the app");
        });
        App {
            base,
            store,
            client: Client::builder(TokioExecutor::new()).build_http(),
            task,
        }
    }

    /// Stores `record` (made for `key`) as it is.
    pub async fn seed(&self, record: KeyRecord) {
        self.store
            .insert(record, InsertRule::Unconditional)
            .await
            .expect("insert");
    }

    /// The status of `GET /api/account` with this key.
    pub async fn status(&self, key: &ApiKey) -> StatusCode {
        self.status_of(key.expose_secret()).await
    }

    /// The status of `GET /api/account` with this key text.
    pub async fn status_of(&self, key: &str) -> StatusCode {
        let request = Request::get(format!("{}/api/account", self.base))
            .header("authorization", format!("Bearer {key}"))
            .body(Full::default())
            .expect("request");
        self.client
            .request(request)
            .await
            .expect("HTTP request")
            .status()
    }
}
