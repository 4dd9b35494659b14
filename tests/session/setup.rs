//! What every session test shares: requests, assertions on the envelope, a
//! guarded route, the management routes, a failing resolver.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use axum::{body::Body, routing::any, Router};
use http::{request::Parts, HeaderValue, Method, Request, StatusCode};
use tower::ServiceExt;
use tower_api_key::{
    manage::{self, Keys},
    session::{CookieSessions, SessionError, SessionGuardLayer, SessionResolver, SessionUser},
    store::KeyStore,
    Authenticator, InMemoryKeyStore,
};

use crate::common::Reply;

pub(crate) const SIGNING_KEY: [u8; 64] = [7u8; 64];
pub(crate) const HOST: &str = "127.0.0.1:3000";
pub(crate) const ACTIVE: &str = "/api/v1/partners/api-key";
pub(crate) const NAMED: &str = "/api/user/keys";
pub(crate) const UNSAFE: [Method; 4] = [Method::POST, Method::PUT, Method::PATCH, Method::DELETE];
pub(crate) const SAFE: [Method; 3] = [Method::GET, Method::HEAD, Method::OPTIONS];

/// Request headers of a test case.
pub(crate) type Headers<'a> = &'a [(&'a str, &'a str)];

pub(crate) fn sessions() -> CookieSessions {
    CookieSessions::new(&SIGNING_KEY).expect("a 64-byte key")
}

/// `name=value` of a `Set-Cookie` value: what a browser sends back in `Cookie`.
pub(crate) fn cookie_pair(set_cookie: &HeaderValue) -> String {
    set_cookie
        .to_str()
        .expect("ascii Set-Cookie")
        .split(';')
        .next()
        .expect("a name=value pair")
        .trim()
        .to_owned()
}

/// The `Cookie` of a browser logged in as `user` with [`sessions`].
pub(crate) fn session_cookie(user: &str) -> String {
    cookie_pair(&sessions().login(&SessionUser::new(user)))
}

/// A request with `Host: 127.0.0.1:3000` and these headers.
pub(crate) fn request(method: Method, uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    request_with_body(method, uri, headers, Body::empty())
}

pub(crate) fn request_with_body(
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: Body,
) -> Request<Body> {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", HOST);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(body).expect("request")
}

/// The head of a request, as `SessionGuardLayer::admit` sees it.
pub(crate) fn parts(method: Method, headers: &[(&str, &str)]) -> Parts {
    let (parts, ()) = request_with_body(method, "/settings", headers, Body::empty())
        .map(|_| ())
        .into_parts();
    parts
}

pub(crate) async fn send(router: &Router, request: Request<Body>) -> Reply {
    let response = router.clone().oneshot(request).await.expect("infallible");
    Reply::read(response).await
}

/// A refusal in the crate's envelope, never cached.
#[track_caller]
pub(crate) fn assert_refused(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{reply:?}");
    let json = reply.json();
    let error = json["error"].as_object().expect("an error object");
    assert_eq!(json.as_object().map(|o| o.len()), Some(1), "{json}");
    assert_eq!(error.len(), 2, "{json}");
    assert_eq!(error["code"], code, "{json}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{json}"
    );
    assert_eq!(reply.header("content-type"), "application/json");
    assert_eq!(reply.header("cache-control"), "no-store");
}

/// The same refusal answered to `HEAD`: axum sends the head only, no body.
#[track_caller]
pub(crate) fn assert_refused_to(method: &Method, reply: &Reply, status: StatusCode, code: &str) {
    if *method == Method::HEAD {
        assert_eq!(reply.status, status, "{reply:?}");
        assert!(reply.body.is_empty(), "{reply:?}");
        assert_eq!(reply.header("content-type"), "application/json");
        assert_eq!(reply.header("cache-control"), "no-store");
    } else {
        assert_refused(reply, status, code);
    }
}

#[track_caller]
pub(crate) fn assert_forbidden(reply: &Reply) {
    assert_refused(reply, StatusCode::FORBIDDEN, "forbidden");
}

#[track_caller]
pub(crate) fn assert_unauthorized(reply: &Reply) {
    assert_refused(reply, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[track_caller]
pub(crate) fn assert_unavailable(reply: &Reply) {
    assert_refused(reply, StatusCode::SERVICE_UNAVAILABLE, "internal_error");
    assert_eq!(reply.header("retry-after"), "1");
}

/// `/settings` behind a guard, answering any method with the session user's id and
/// counting how often it ran.
pub(crate) struct Guarded {
    pub(crate) router: Router,
    pub(crate) calls: Arc<AtomicUsize>,
}

impl Guarded {
    pub(crate) fn new(guard: SessionGuardLayer) -> Self {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let router = Router::new()
            .route(
                "/settings",
                any(move |user: SessionUser| {
                    let counter = counter.clone();
                    async move {
                        counter.fetch_add(1, Ordering::SeqCst);
                        user.id().to_owned()
                    }
                }),
            )
            .layer(guard);
        Guarded { router, calls }
    }

    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub(crate) async fn send(&self, method: Method, headers: &[(&str, &str)]) -> Reply {
        send(&self.router, request(method, "/settings", headers)).await
    }
}

pub(crate) fn cookie_guard() -> Guarded {
    Guarded::new(SessionGuardLayer::new(sessions()))
}

/// The management routes over a fresh store, behind `guard`.
pub(crate) struct Management {
    pub(crate) router: Router,
    pub(crate) store: InMemoryKeyStore,
    pub(crate) auth: Authenticator,
}

impl Management {
    pub(crate) fn new(guard: SessionGuardLayer) -> Self {
        let store = InMemoryKeyStore::new();
        let auth = Authenticator::new(store.clone());
        let keys = Keys::new(store.clone()).last_use(auth.last_use().clone());
        let router = manage::router(keys, guard, auth.clone());
        Management {
            router,
            store,
            auth,
        }
    }

    pub(crate) fn with_cookies() -> Self {
        Self::new(SessionGuardLayer::new(sessions()))
    }

    pub(crate) async fn send(&self, method: Method, uri: &str, headers: &[(&str, &str)]) -> Reply {
        send(&self.router, request(method, uri, headers)).await
    }

    pub(crate) async fn stored(&self, owner: &str) -> usize {
        self.store.list_by_owner(owner).await.expect("store").len()
    }
}

/// A resolver whose backend is down, counting how often it was asked.
#[derive(Clone, Default)]
pub(crate) struct Broken(pub(crate) Arc<AtomicUsize>);

#[async_trait::async_trait]
impl SessionResolver for Broken {
    async fn resolve(&self, _: &Parts) -> Result<Option<SessionUser>, SessionError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(SessionError(
            std::io::Error::other("session database secret-host:5432 is down").into(),
        ))
    }
}
