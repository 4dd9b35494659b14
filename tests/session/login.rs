//! Login and logout routes as the README wires them: `CrossOriginProtection` as a
//! layer (no session yet to guard) and `safe_next` for the redirect after login.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use axum::{
    body::Body,
    extract::{Query, State},
    http::header::{LOCATION, SET_COOKIE},
    response::{IntoResponse, Redirect},
    routing::post,
    Router,
};
use http::{Method, StatusCode};
use tower_api_key::session::{safe_next, CookieSessions, CrossOriginProtection, SessionUser};

use crate::setup::*;

#[derive(serde::Deserialize)]
struct Next {
    next: Option<String>,
}

/// `POST /login?next=…` logs `demo` in and redirects; `POST /logout` logs out; both
/// count their calls.
fn login_routes(calls: Arc<AtomicUsize>) -> Router {
    let login = {
        let calls = calls.clone();
        move |State(sessions): State<CookieSessions>, Query(query): Query<Next>| async move {
            calls.fetch_add(1, Ordering::SeqCst);
            let next = query.next.as_deref().and_then(safe_next).unwrap_or("/home");
            let cookie = sessions.login(&SessionUser::new("demo"));
            ([(SET_COOKIE, cookie)], Redirect::to(next)).into_response()
        }
    };
    let logout = move |State(sessions): State<CookieSessions>| async move {
        calls.fetch_add(1, Ordering::SeqCst);
        ([(SET_COOKIE, sessions.logout())], StatusCode::NO_CONTENT).into_response()
    };
    Router::new()
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route_layer(CrossOriginProtection::new())
        .with_state(sessions())
}

#[tokio::test]
async fn cross_origin_login_and_logout_are_refused_by_the_layer() {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = login_routes(calls.clone());
    for uri in ["/login", "/logout"] {
        for headers in [
            &[("sec-fetch-site", "cross-site")][..],
            &[("sec-fetch-site", "same-site")],
            &[("origin", "http://attacker.example")],
            &[("origin", "http://127.0.0.1:3000.attacker.example")],
            &[("origin", "null")],
        ] {
            let reply = send(&app, request(Method::POST, uri, headers)).await;
            assert_forbidden(&reply);
            assert!(reply.headers.get(SET_COOKIE).is_none(), "{reply:?}");
        }
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0, "no handler ran");
}

#[tokio::test]
async fn same_origin_and_non_browser_logins_pass() {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = login_routes(calls.clone());
    for headers in [
        &[("sec-fetch-site", "same-origin")][..],
        &[("origin", "http://127.0.0.1:3000")],
        &[],
    ] {
        let reply = send(&app, request(Method::POST, "/login", headers)).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{reply:?}");
        assert!(reply.headers.get(SET_COOKIE).is_some(), "{reply:?}");
    }
    let reply = send(&app, request(Method::POST, "/logout", &[])).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn the_layer_reads_the_http2_authority_without_host() {
    let app = login_routes(Arc::default());
    let forged = http::Request::post("http://127.0.0.1:3000/login")
        .header("origin", "http://attacker.example")
        .body(Body::empty())
        .expect("request");
    assert_forbidden(&send(&app, forged).await);
    let own = http::Request::post("http://127.0.0.1:3000/login")
        .header("origin", "http://127.0.0.1:3000")
        .body(Body::empty())
        .expect("request");
    assert_eq!(send(&app, own).await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn login_redirects_only_to_local_paths() {
    let app = login_routes(Arc::default());
    for (next, location) in [
        (
            "%2Fsettings%2Fapi-keys%3Ftab%3Dnamed",
            "/settings/api-keys?tab=named",
        ),
        ("%2F%2Fevil.example", "/home"),
        ("%2F%5Cevil.example", "/home"),
        ("https%3A%2F%2Fevil.example", "/home"),
        ("%2F%09%2Fevil.example", "/home"),
        ("javascript%3Aalert(1)", "/home"),
    ] {
        let uri = format!("/login?next={next}");
        let reply = send(&app, request(Method::POST, &uri, &[])).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{next}");
        assert_eq!(reply.header(LOCATION.as_str()), location, "{next}");
    }
}
