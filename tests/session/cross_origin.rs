//! The cross-origin rules (after Go 1.25's `CrossOriginProtection`) on session
//! routes: with a valid session, only the rule decides.

use std::sync::atomic::Ordering;

use axum::body::Body;
use http::{HeaderValue, Method, StatusCode};
use tower_api_key::session::{CrossOriginProtection, SessionGuardLayer};

use crate::setup::*;

/// Runs each case with a valid session cookie, so only the cross-origin rule decides:
/// every unsafe method passes or is refused (403, handler not run) as the case says,
/// and every safe method always passes.
async fn check_rules(app: &Guarded, host: &str, cases: &[(Headers<'_>, bool)]) {
    let cookie = session_cookie("demo");
    for (headers, passes) in cases {
        let mut all = vec![("cookie", cookie.as_str())];
        all.extend_from_slice(headers);
        for method in UNSAFE.iter().chain(SAFE.iter()) {
            let mut request = request(method.clone(), "/settings", &all);
            request
                .headers_mut()
                .insert("host", HeaderValue::from_str(host).expect("host"));
            let before = app.calls();
            let reply = send(&app.router, request).await;
            let safe = SAFE.contains(method);
            if *passes || safe {
                assert_eq!(
                    reply.status,
                    StatusCode::OK,
                    "{method} {headers:?}: {reply:?}"
                );
                assert_eq!(app.calls(), before + 1, "{method} {headers:?}");
                if *method != Method::HEAD {
                    assert_eq!(reply.body, "demo", "{method} {headers:?}");
                }
            } else {
                assert_refused_to(method, &reply, StatusCode::FORBIDDEN, "forbidden");
                assert_eq!(app.calls(), before, "{method} {headers:?} ran the handler");
            }
        }
    }
}

#[tokio::test]
async fn go_cross_origin_rules_with_a_valid_session() {
    let app = cookie_guard();
    let cases: &[(Headers, bool)] = &[
        // Sec-Fetch-Site decides when present.
        (&[("sec-fetch-site", "cross-site")], false),
        (&[("sec-fetch-site", "same-site")], false),
        (&[("sec-fetch-site", "same-origin")], true),
        (&[("sec-fetch-site", "none")], true),
        (&[("sec-fetch-site", "something-new")], false),
        (
            &[
                ("sec-fetch-site", "cross-site"),
                ("origin", "http://127.0.0.1:3000"),
            ],
            false,
        ),
        (
            &[
                ("sec-fetch-site", "same-origin"),
                ("origin", "http://127.0.0.1:3000"),
            ],
            true,
        ),
        // Without it, Origin must be this server (Host), or absent.
        (&[("origin", "http://127.0.0.1:3000")], true),
        (&[("origin", "https://127.0.0.1:3000")], true),
        (&[("origin", "null")], false),
        (
            &[("origin", "http://127.0.0.1:3000.attacker.example")],
            false,
        ),
        (&[("origin", "http://127.0.0.1:3001")], false),
        (&[("origin", "http://127.0.0.1")], false),
        (&[("origin", "http://attacker.example")], false),
        (&[("origin", "ftp://127.0.0.1:3000")], false),
        (&[], true),
    ];
    check_rules(&app, HOST, cases).await;
}

#[tokio::test]
async fn repeated_headers_are_refused() {
    let app = cookie_guard();
    let cookie = session_cookie("demo");
    for (name, value) in [
        ("origin", "http://127.0.0.1:3000"),
        ("sec-fetch-site", "same-origin"),
    ] {
        let mut request = request(Method::POST, "/settings", &[("cookie", &cookie)]);
        let value = HeaderValue::from_static(value);
        request.headers_mut().append(name, value.clone());
        request.headers_mut().append(name, value);
        assert_forbidden(&send(&app.router, request).await);
    }
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn a_trusted_origin_passes_even_cross_site() {
    let app = Guarded::new(
        SessionGuardLayer::new(sessions())
            .cross_origin(CrossOriginProtection::new().trusted_origin("https://dashboard.example")),
    );
    let cases: &[(Headers, bool)] = &[
        (
            &[
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://dashboard.example"),
            ],
            true,
        ),
        (
            &[
                ("sec-fetch-site", "same-site"),
                ("origin", "https://dashboard.example"),
            ],
            true,
        ),
        (&[("origin", "https://dashboard.example")], true),
        // Exact match only.
        (
            &[
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://dashboard.example.evil"),
            ],
            false,
        ),
        (
            &[
                ("sec-fetch-site", "cross-site"),
                ("origin", "http://dashboard.example"),
            ],
            false,
        ),
        (&[("origin", "https://dashboard.example:8443")], false),
        // Cross-site without an Origin cannot be matched against the trusted list.
        (&[("sec-fetch-site", "cross-site")], false),
        // The default rules still hold for everyone else.
        (&[("origin", "http://127.0.0.1:3000")], true),
        (&[("origin", "http://attacker.example")], false),
        (&[], true),
    ];
    check_rules(&app, HOST, cases).await;
}

#[tokio::test]
async fn a_configured_server_origin_is_compared_exactly() {
    let app = Guarded::new(
        SessionGuardLayer::new(sessions())
            .cross_origin(CrossOriginProtection::new().server_origin("https://app.example")),
    );
    let cases: &[(Headers, bool)] = &[
        (&[("origin", "https://app.example")], true),
        (&[("origin", "http://app.example")], false),
        (&[("origin", "https://app.example:443")], false),
        (&[("origin", "https://app.example/")], false),
        (&[("origin", "https://app.example.attacker.example")], false),
        (&[("sec-fetch-site", "same-origin")], true),
        (&[("sec-fetch-site", "cross-site")], false),
        (&[], true),
    ];
    check_rules(&app, "app.example", cases).await;
    // Behind a proxy that rewrites Host, the configured origin still matches…
    check_rules(
        &app,
        "internal:8080",
        &[(&[("origin", "https://app.example")], true)],
    )
    .await;
    // …and an Origin equal to the (rewritten) Host no longer does.
    check_rules(
        &app,
        "internal:8080",
        &[
            (&[("origin", "http://internal:8080")], false),
            (&[("origin", "https://internal:8080")], false),
        ],
    )
    .await;
}

#[tokio::test]
async fn without_host_an_origin_cannot_be_this_server() {
    let app = cookie_guard();
    let cookie = session_cookie("demo");
    let mut request = request(
        Method::POST,
        "/settings",
        &[("cookie", &cookie), ("origin", "http://127.0.0.1:3000")],
    );
    request.headers_mut().remove("host");
    assert_forbidden(&send(&app.router, request).await);
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn the_cross_origin_check_comes_before_the_session() {
    // No cookie at all: still 403, not 401.
    let app = cookie_guard();
    let reply = app
        .send(Method::POST, &[("sec-fetch-site", "cross-site")])
        .await;
    assert_forbidden(&reply);
    // A broken backend is not even asked about a cross-origin request.
    let broken = Broken::default();
    let app = Guarded::new(SessionGuardLayer::new(broken.clone()));
    let reply = app
        .send(Method::DELETE, &[("origin", "http://attacker.example")])
        .await;
    assert_forbidden(&reply);
    assert_eq!(broken.0.load(Ordering::SeqCst), 0);
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn a_refused_cross_origin_mint_mints_nothing() {
    let app = Management::with_cookies();
    let cookie = session_cookie("fresh");
    let attacks: [&[(&str, &str)]; 4] = [
        &[("sec-fetch-site", "cross-site")],
        &[("sec-fetch-site", "same-site")],
        &[("origin", "null")],
        &[("origin", "http://127.0.0.1:3000.attacker.example")],
    ];
    for attack in attacks {
        let mut headers = vec![("cookie", cookie.as_str())];
        headers.extend_from_slice(attack);
        for (method, uri) in [
            (Method::POST, ACTIVE),
            (Method::POST, NAMED),
            (Method::POST, "/api/v1/partners/api-key/rotate"),
        ] {
            assert_forbidden(&app.send(method, uri, &headers).await);
        }
    }
    assert_eq!(app.stored("fresh").await, 0);
    // The owner's own views, read cross-site (GET is never blocked): nothing there.
    let headers = [
        ("cookie", cookie.as_str()),
        ("sec-fetch-site", "cross-site"),
    ];
    let view = app.send(Method::GET, ACTIVE, &headers).await;
    assert_refused(&view, StatusCode::NOT_FOUND, "not_found");
    let list = app.send(Method::GET, NAMED, &headers).await;
    assert_eq!(list.status, StatusCode::OK, "{list:?}");
    assert_eq!(list.json(), serde_json::json!({ "keys": [] }));
    assert_eq!(list.header("cache-control"), "no-store");
}

#[tokio::test]
async fn cross_origin_revokes_and_rotations_change_nothing() {
    let app = Management::with_cookies();
    let cookie = session_cookie("owner");
    let same_origin = [
        ("cookie", cookie.as_str()),
        ("sec-fetch-site", "same-origin"),
    ];
    let created = app.send(Method::POST, ACTIVE, &same_origin).await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    assert_eq!(created.header("cache-control"), "no-store");
    let created = created.json();
    let raw = created["api_key"].as_str().expect("api_key").to_owned();
    assert!(raw.starts_with("pk_live_"), "{raw}");
    // Named keys under another owner: both shapes share one owner namespace.
    let other = session_cookie("other");
    let other_same_origin = [
        ("cookie", other.as_str()),
        ("sec-fetch-site", "same-origin"),
    ];
    let named = send(
        &app.router,
        request_with_body(
            Method::POST,
            NAMED,
            &other_same_origin,
            Body::from(r#"{"name":"ci"}"#),
        ),
    )
    .await;
    assert_eq!(named.status, StatusCode::CREATED, "{named:?}");
    let named_id = named.json()["id"].as_str().expect("id").to_owned();

    let cross = [
        ("cookie", cookie.as_str()),
        ("sec-fetch-site", "cross-site"),
    ];
    let other_cross = [("cookie", other.as_str()), ("sec-fetch-site", "cross-site")];
    let named_path = format!("{NAMED}/{named_id}");
    let named_rotate = format!("{NAMED}/{named_id}/rotate");
    for (method, uri, headers) in [
        (Method::DELETE, ACTIVE, &cross),
        (Method::POST, "/api/v1/partners/api-key/rotate", &cross),
        (Method::DELETE, named_path.as_str(), &other_cross),
        (Method::POST, named_rotate.as_str(), &other_cross),
    ] {
        assert_forbidden(&app.send(method, uri, headers).await);
    }
    assert_eq!(app.stored("owner").await, 1);
    assert_eq!(app.stored("other").await, 1);
    let list = app.send(Method::GET, NAMED, &other_same_origin).await;
    let list = list.json();
    assert_eq!(list["keys"][0]["id"], named_id.as_str(), "{list}");
    assert_eq!(list["keys"][0]["status"], "active", "{list}");
    let view = app.send(Method::GET, ACTIVE, &same_origin).await;
    assert_eq!(view.status, StatusCode::OK, "{view:?}");
    let view = view.json();
    assert_eq!(view["id"], created["id"]);
    assert_eq!(view["status"], "active");
    assert_eq!(view["retiring"], serde_json::json!([]));
    // The minted key still works.
    let (headers, ()) = http::Request::get("/")
        .header("authorization", format!("Bearer {raw}"))
        .body(())
        .expect("request")
        .into_parts();
    assert!(app.auth.authenticate(&headers).await.is_ok());
}
