//! Signed-cookie sessions: who is admitted, and every way a cookie is refused.

use std::time::Duration;

use axum::{routing::any, Router};
use http::{HeaderValue, Method, StatusCode};
use tower_api_key::session::{CookieSessions, SessionGuardLayer, SessionUser};

use crate::setup::*;

#[tokio::test]
async fn no_cookie_is_unauthorized() {
    let app = cookie_guard();
    for method in UNSAFE.iter().chain(SAFE.iter()) {
        let reply = app.send(method.clone(), &[]).await;
        assert_refused_to(method, &reply, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    // Other cookies are not a session.
    let reply = app
        .send(Method::GET, &[("cookie", "theme=dark; session=1.demo")])
        .await;
    assert_unauthorized(&reply);
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn a_valid_api_key_alone_is_not_a_session() {
    let app = Management::with_cookies();
    let key = crate::common::mint(&app.store, "demo", &["account:read"]).await;
    let bearer = format!("Bearer {}", key.expose_secret());
    let (headers, ()) = http::Request::get("/")
        .header("authorization", &bearer)
        .body(())
        .expect("request")
        .into_parts();
    let principal = app.auth.authenticate(&headers).await.expect("a valid key");
    assert_eq!(principal.owner(), "demo");

    let auth = [("authorization", bearer.as_str())];
    for (method, uri) in [
        (Method::POST, ACTIVE),
        (Method::GET, ACTIVE),
        (Method::POST, "/api/v1/partners/api-key/rotate"),
        (Method::POST, NAMED),
        (Method::GET, NAMED),
    ] {
        assert_unauthorized(&app.send(method, uri, &auth).await);
    }
    // Nothing minted, nothing rotated: the one key is still the only one, and works.
    assert_eq!(app.stored("demo").await, 1);
    assert!(app.auth.authenticate(&headers).await.is_ok());
}

#[tokio::test]
async fn a_valid_cookie_admits_the_right_user() {
    let app = cookie_guard();
    for user in ["demo", "acct_42", "user.with.dots", "a;b c=d,\"e\""] {
        let cookie = session_cookie(user);
        let reply = app.send(Method::POST, &[("cookie", &cookie)]).await;
        assert_eq!(reply.status, StatusCode::OK, "{user}: {reply:?}");
        assert_eq!(reply.body, user);
    }
    // Among other cookies, and in a second Cookie header (as HTTP/2 sends them).
    let cookie = session_cookie("demo");
    let among = format!("theme=dark; {cookie}; lang=en");
    let reply = app.send(Method::PUT, &[("cookie", &among)]).await;
    assert_eq!(reply.body, "demo", "{reply:?}");
    let reply = app
        .send(
            Method::PATCH,
            &[("cookie", "theme=dark"), ("cookie", &cookie)],
        )
        .await;
    assert_eq!(reply.body, "demo", "{reply:?}");
    assert_eq!(app.calls(), 6);
}

#[tokio::test]
async fn a_valid_cookie_manages_its_own_keys_only() {
    let app = Management::with_cookies();
    let alice = session_cookie("alice");
    let created = app.send(Method::POST, ACTIVE, &[("cookie", &alice)]).await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    assert_eq!(app.stored("alice").await, 1);
    let bob = session_cookie("bob");
    let view = app.send(Method::GET, ACTIVE, &[("cookie", &bob)]).await;
    assert_refused(&view, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn two_session_cookies_are_refused() {
    let app = cookie_guard();
    let demo = session_cookie("demo");
    let root = session_cookie("root");
    let both = format!("{demo}; {root}");
    assert_unauthorized(&app.send(Method::GET, &[("cookie", &both)]).await);
    let reply = app
        .send(Method::GET, &[("cookie", &demo), ("cookie", &demo)])
        .await;
    assert_unauthorized(&reply);
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn a_tampered_cookie_is_unauthorized() {
    let app = cookie_guard();
    let good = session_cookie("demo");
    let (name, value) = good.split_once('=').expect("name=value");
    // Flip each character of the value in turn.
    for at in 0..value.len() {
        let mut bytes = value.as_bytes().to_vec();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let tampered = format!("{name}={}", String::from_utf8(bytes).expect("ascii"));
        let reply = app.send(Method::GET, &[("cookie", &tampered)]).await;
        assert_unauthorized(&reply);
    }
    // Another user's id, or a later expiry, spliced into a signed value.
    for forged in [
        good.replace(".demo", ".root"),
        good.replace(".demo", ".demo2"),
        format!("{name}=9999999999.demo"),
        format!("{name}="),
        format!("{name}={}", &value[..value.len() - 1]),
    ] {
        assert_ne!(forged, good);
        assert_unauthorized(&app.send(Method::GET, &[("cookie", &forged)]).await);
    }
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn a_cookie_signed_with_another_key_is_unauthorized() {
    let app = cookie_guard();
    let other = CookieSessions::new(&[8u8; 64]).expect("key");
    let foreign = cookie_pair(&other.login(&SessionUser::new("demo")));
    assert!(foreign.starts_with("__Host-session="));
    assert_unauthorized(&app.send(Method::GET, &[("cookie", &foreign)]).await);
    // Every session ends when the key changes.
    let random = CookieSessions::with_random_key().expect("random key");
    let foreign = cookie_pair(&random.login(&SessionUser::new("demo")));
    assert_unauthorized(&app.send(Method::POST, &[("cookie", &foreign)]).await);
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn an_expired_cookie_is_unauthorized() {
    let app = cookie_guard();
    let short = sessions().ttl(Duration::ZERO);
    let set_cookie = short.login(&SessionUser::new("demo"));
    assert!(set_cookie.to_str().expect("ascii").contains("Max-Age=0"));
    let expired = cookie_pair(&set_cookie);
    assert_unauthorized(&app.send(Method::GET, &[("cookie", &expired)]).await);
    // A short but live session works, with the same key.
    let live = cookie_pair(
        &sessions()
            .ttl(Duration::from_secs(60))
            .login(&SessionUser::new("demo")),
    );
    let reply = app.send(Method::GET, &[("cookie", &live)]).await;
    assert_eq!(reply.body, "demo", "{reply:?}");
    assert_eq!(app.calls(), 1);
}

#[tokio::test]
async fn local_http_cookies_work_over_oneshot() {
    let local = sessions().insecure_for_local_http();
    assert_eq!(local.cookie_name(), "session");
    let set_cookie = local.login(&SessionUser::new("demo"));
    let text = set_cookie.to_str().expect("ascii");
    assert!(text.starts_with("session="), "{text}");
    assert!(
        !text.contains("Secure") && !text.contains("__Host-"),
        "{text}"
    );
    assert!(
        text.contains("HttpOnly") && text.contains("SameSite=Lax"),
        "{text}"
    );

    let app = Guarded::new(SessionGuardLayer::new(local.clone()));
    let cookie = cookie_pair(&set_cookie);
    let reply = app
        .send(
            Method::POST,
            &[("cookie", &cookie), ("origin", "http://127.0.0.1:3000")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.body, "demo");
    // The secure `__Host-` cookie is not this guard's cookie…
    let secure = session_cookie("demo");
    assert_unauthorized(&app.send(Method::GET, &[("cookie", &secure)]).await);
    // …and the local cookie is not the secure guard's.
    let strict = cookie_guard();
    assert_unauthorized(&strict.send(Method::GET, &[("cookie", &cookie)]).await);
    assert_eq!(strict.calls(), 0);
    // Cross-origin rules are the same over plain http.
    let reply = app
        .send(
            Method::POST,
            &[("cookie", &cookie), ("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_forbidden(&reply);
    assert_eq!(app.calls(), 1);
}

/// The attributes of a `Set-Cookie` value after its `name=value`.
fn attributes(set_cookie: &HeaderValue) -> Vec<String> {
    set_cookie
        .to_str()
        .expect("ascii")
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_owned())
        .collect()
}

#[test]
fn login_sets_a_host_prefixed_secure_cookie() {
    let set_cookie = sessions().login(&SessionUser::new("demo"));
    let pair = cookie_pair(&set_cookie);
    assert!(pair.starts_with("__Host-session="), "{pair}");
    let attributes = attributes(&set_cookie);
    for expected in [
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=28800",
    ] {
        assert!(
            attributes.iter().any(|a| a == expected),
            "{expected} missing in {attributes:?}"
        );
    }
    // `__Host-` cookies carry no Domain.
    assert!(
        !attributes
            .iter()
            .any(|a| a.to_ascii_lowercase().starts_with("domain")),
        "{attributes:?}"
    );

    let strict = sessions()
        .same_site_strict()
        .login(&SessionUser::new("demo"));
    let attributes = self::attributes(&strict);
    assert!(
        attributes.iter().any(|a| a == "SameSite=Strict"),
        "{attributes:?}"
    );
    assert!(
        !attributes.iter().any(|a| a == "SameSite=Lax"),
        "{attributes:?}"
    );
    assert!(cookie_pair(&strict).starts_with("__Host-session="));

    let logout = sessions().logout();
    assert_eq!(cookie_pair(&logout), "__Host-session=");
    let attributes = self::attributes(&logout);
    for expected in ["Secure", "HttpOnly", "Path=/", "Max-Age=0"] {
        assert!(attributes.iter().any(|a| a == expected), "{attributes:?}");
    }
    assert!(CookieSessions::new(&[7u8; 63]).is_err());
}

#[tokio::test]
async fn a_logout_cookie_is_no_session() {
    let app = cookie_guard();
    let logout = cookie_pair(&sessions().logout());
    assert_unauthorized(&app.send(Method::GET, &[("cookie", &logout)]).await);
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn the_extractor_without_a_guard_is_unauthorized() {
    let router: Router = Router::new().route(
        "/me",
        any(|user: SessionUser| async move { user.id().to_owned() }),
    );
    let cookie = session_cookie("demo");
    let reply = send(&router, request(Method::GET, "/me", &[("cookie", &cookie)])).await;
    assert_unauthorized(&reply);
}
