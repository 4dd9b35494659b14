//! The header rules: every way a credential can be presented, one test each.

mod common;

use axum::body::Body;
use common::{app, wrong_secret, INVALID_BODY};
use http::{Request, StatusCode};

const MISSING: &str = r#"Bearer realm="api""#;

#[tokio::test]
async fn valid_key_reaches_the_handler_with_its_principal() {
    let app = app().await;
    let reply = app.get_bearer(app.full.expose_secret()).await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    assert_eq!(body["account"], "demo");
    assert_eq!(body["prefix"], app.full.prefix().as_str());
    assert_eq!(body["mode"], "live");
    assert!(!reply.body.contains(&app.full.expose_secret()[24..]));
    assert_eq!(app.calls(), 1);
}

#[tokio::test]
async fn scheme_is_case_insensitive() {
    let app = app().await;
    for scheme in ["bearer", "BEARER", "bEaReR"] {
        let value = format!("{scheme} {}", app.full.expose_secret());
        let reply = app.get_with(&[("authorization", value.as_bytes())]).await;
        assert_eq!(reply.status, StatusCode::OK, "{scheme}");
    }
}

#[tokio::test]
async fn several_spaces_may_follow_the_scheme() {
    let app = app().await;
    let value = format!("Bearer     {}", app.full.expose_secret());
    let reply = app.get_with(&[("authorization", value.as_bytes())]).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn no_header_is_401_without_error_parameter() {
    let app = app().await;
    let reply = app.get_with(&[]).await;
    reply.assert_unauthorized(MISSING);
    assert_eq!(reply.body, INVALID_BODY);
    assert_eq!(app.calls(), 0);
}

/// Each of these is a credential that was sent but cannot be a valid key: 401 with
/// `error="invalid_token"`, the generic body, and the handler never runs.
async fn assert_refused(app: &common::TestApp, value: &[u8], what: &str) {
    let before = app.calls();
    let reply = app.get_with(&[("authorization", value)]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{what}: {reply:?}");
    reply.assert_invalid_token();
    assert_eq!(app.calls(), before, "{what}: handler ran");
}

/// A credential that is not a bearer token at all (another scheme, nothing): 401 with
/// the generic body and, per RFC 6750 §3.1, a challenge without an error code.
async fn assert_not_bearer(app: &common::TestApp, value: &[u8], what: &str) {
    let before = app.calls();
    let reply = app.get_with(&[("authorization", value)]).await;
    reply.assert_unauthorized(MISSING);
    assert_eq!(reply.body, INVALID_BODY, "{what}");
    assert_eq!(app.calls(), before, "{what}: handler ran");
}

#[tokio::test]
async fn empty_or_whitespace_token() {
    let app = app().await;
    for value in [&b"Bearer"[..], b"Bearer ", b"Bearer    ", b"bearer  "] {
        assert_refused(&app, value, "bearer without a token").await;
    }
    for value in [&b""[..], b" ", b"   "] {
        assert_not_bearer(&app, value, "empty header").await;
    }
}

#[tokio::test]
async fn another_scheme() {
    let app = app().await;
    let key = app.full.expose_secret();
    assert_not_bearer(&app, b"Basic ZGVtbzpkZW1v", "basic").await;
    assert_not_bearer(&app, format!("Token {key}").as_bytes(), "token").await;
    assert_not_bearer(&app, format!("Bearer-{key}").as_bytes(), "glued").await;
    assert_not_bearer(&app, format!("Bearerx {key}").as_bytes(), "bearerx").await;
    assert_not_bearer(&app, format!("Basic {key}").as_bytes(), "basic key").await;
}

#[tokio::test]
async fn no_scheme() {
    let app = app().await;
    assert_not_bearer(&app, app.full.expose_secret().as_bytes(), "bare key").await;
    let value = format!(" {}", app.full.expose_secret());
    assert_refused(&app, value.as_bytes(), "leading space").await;
}

#[tokio::test]
async fn quoted_token() {
    let app = app().await;
    let value = format!("Bearer \"{}\"", app.full.expose_secret());
    assert_refused(&app, value.as_bytes(), "quoted").await;
}

#[tokio::test]
async fn comma_joined_credentials() {
    let app = app().await;
    let key = app.full.expose_secret();
    let other = app.read_only.expose_secret();
    assert_refused(
        &app,
        format!("Bearer {key}, Bearer {other}").as_bytes(),
        "list",
    )
    .await;
    assert_refused(&app, format!("Bearer {key},Basic abc").as_bytes(), "list2").await;
    assert_refused(&app, format!("Bearer {key},").as_bytes(), "trailing comma").await;
}

#[tokio::test]
async fn tabs_and_control_characters() {
    let app = app().await;
    let key = app.full.expose_secret();
    assert_refused(&app, format!("Bearer\t{key}").as_bytes(), "tab sep").await;
    assert_refused(&app, format!("Bearer {key}\t").as_bytes(), "trailing tab").await;
    assert_refused(&app, format!("Bearer \t{key}").as_bytes(), "space tab").await;
    // `http` refuses other control characters in a header value outright, so a
    // server never hands them to the layer; check that assumption.
    for c in [0u8, 0x01, 0x0a, 0x0d, 0x1f, 0x7f] {
        let mut value = format!("Bearer {key}").into_bytes();
        value.insert(10, c);
        assert!(http::HeaderValue::from_bytes(&value).is_err(), "{c:#x}");
    }
}

#[tokio::test]
async fn non_ascii_bytes() {
    let app = app().await;
    let key = app.full.expose_secret();
    let mut value = format!("Bearer {}", &key[..71]).into_bytes();
    value.push(0xe9);
    assert_refused(&app, &value, "latin-1").await;
    let value = format!("Bearer {}é", &key[..70]);
    assert_refused(&app, value.as_bytes(), "utf-8").await;
}

#[tokio::test]
async fn wrong_length() {
    let app = app().await;
    let key = app.full.expose_secret();
    assert_refused(&app, format!("Bearer {}", &key[..71]).as_bytes(), "short").await;
    assert_refused(&app, format!("Bearer {key}0").as_bytes(), "long").await;
    assert_refused(&app, format!("Bearer {key} ").as_bytes(), "trailing space").await;
    assert_refused(
        &app,
        format!("Bearer {}", &key[..24]).as_bytes(),
        "prefix only",
    )
    .await;
}

#[tokio::test]
async fn uppercase_hex() {
    let app = app().await;
    let key = app.full.expose_secret();
    let upper = format!("Bearer pk_live_{}", key[8..].to_uppercase());
    assert_refused(&app, upper.as_bytes(), "upper").await;
    let shouting = format!("Bearer {}", key.to_uppercase());
    assert_refused(&app, shouting.as_bytes(), "all upper").await;
}

#[tokio::test]
async fn unknown_namespace_or_mode() {
    let app = app().await;
    let secret = &app.full.expose_secret()[8..];
    for head in ["sk_live_", "pk_prod_", "px_live_", "pk_Live_"] {
        assert_refused(&app, format!("Bearer {head}{secret}").as_bytes(), head).await;
    }
}

#[tokio::test]
async fn unknown_prefix_and_wrong_secret_are_byte_identical() {
    let app = app().await;
    let key = app.full.expose_secret();
    let wrong_secret = wrong_secret(key);
    let unknown_prefix = format!("pk_live_{}", "0".repeat(64));

    let a = app.get_bearer(&wrong_secret).await;
    let b = app.get_bearer(&unknown_prefix).await;
    a.assert_invalid_token();
    assert_eq!(a.status, b.status);
    assert_eq!(a.headers, b.headers);
    assert_eq!(a.body, b.body);
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn two_authorization_headers_never_use_the_first() {
    let app = app().await;
    let good = format!("Bearer {}", app.full.expose_secret());
    let other = format!("Bearer {}", app.read_only.expose_secret());
    for pair in [
        [&good, &other],
        [&good, &good],
        [&good, &"Basic abc".to_owned()],
    ] {
        let reply = app
            .get_with(&[
                ("authorization", pair[0].as_bytes()),
                ("authorization", pair[1].as_bytes()),
            ])
            .await;
        reply.assert_invalid_token();
    }
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn query_string_and_proxy_authorization_are_never_read() {
    let app = app().await;
    let key = app.full.expose_secret();
    for uri in [
        format!("/api/account?api_key={key}"),
        format!("/api/account?access_token={key}"),
        format!("/api/account?key={key}"),
    ] {
        let reply = app
            .send(Request::get(uri).body(Body::empty()).unwrap())
            .await;
        reply.assert_unauthorized(MISSING);
    }
    let proxy = format!("Bearer {key}");
    let reply = app
        .get_with(&[("proxy-authorization", proxy.as_bytes())])
        .await;
    reply.assert_unauthorized(MISSING);
    // Nor does a body or cookie carry it.
    let reply = app
        .get_with(&[("cookie", format!("api_key={key}").as_bytes())])
        .await;
    reply.assert_unauthorized(MISSING);
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn very_long_header_is_a_4xx_and_the_service_keeps_serving() {
    let app = app().await;
    for len in [8 * 1024, 64 * 1024, 1024 * 1024] {
        let value = format!("Bearer {}", "a".repeat(len));
        let reply = app.get_with(&[("authorization", value.as_bytes())]).await;
        assert!(reply.status.is_client_error(), "{len}: {}", reply.status);
        reply.assert_invalid_token();
    }
    let reply = app.get_bearer(app.full.expose_secret()).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn messages_never_echo_the_key() {
    let app = app().await;
    let key = app.full.expose_secret();
    let wrong = wrong_secret(key);
    for value in [
        format!("Bearer {wrong}"),
        format!("Basic {key}"),
        format!("Bearer {key}x"),
    ] {
        let reply = app.get_with(&[("authorization", value.as_bytes())]).await;
        for part in [&key[24..], &key[8..24], &wrong[24..]] {
            assert!(!reply.body.contains(part));
            for (_, v) in &reply.headers {
                assert!(!v.to_str().unwrap_or_default().contains(part));
            }
        }
    }
}
