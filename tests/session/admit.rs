//! `SessionGuardLayer::admit`: the guard's decision outside the layer.

use http::{request::Parts, Method, StatusCode};
use std::sync::atomic::Ordering;
use tower_api_key::{
    session::{SessionGuardLayer, SessionUser},
    ErrorCode,
};

use crate::setup::*;

/// `admit`'s answer as (status, code), 200 and no code when it admits.
async fn admitted(guard: &SessionGuardLayer, parts: &Parts) -> (StatusCode, Option<ErrorCode>) {
    match guard.admit(parts).await {
        Ok(_) => (StatusCode::OK, None),
        Err(error) => (error.status(), Some(error.code())),
    }
}

#[tokio::test]
async fn admit_answers_like_the_layer() {
    let cookie = session_cookie("demo");
    let cookie = cookie.as_str();
    let cases: &[(Method, Headers, StatusCode)] = &[
        (Method::POST, &[("cookie", cookie)], StatusCode::OK),
        (Method::POST, &[], StatusCode::UNAUTHORIZED),
        (
            Method::POST,
            &[("cookie", "__Host-session=x")],
            StatusCode::UNAUTHORIZED,
        ),
        (
            Method::POST,
            &[("sec-fetch-site", "cross-site")],
            StatusCode::FORBIDDEN,
        ),
        (
            Method::DELETE,
            &[("cookie", cookie), ("origin", "null")],
            StatusCode::FORBIDDEN,
        ),
        (
            Method::GET,
            &[("cookie", cookie), ("sec-fetch-site", "cross-site")],
            StatusCode::OK,
        ),
        (
            Method::GET,
            &[("sec-fetch-site", "cross-site")],
            StatusCode::UNAUTHORIZED,
        ),
    ];
    let guard = SessionGuardLayer::new(sessions());
    let app = Guarded::new(guard.clone());
    for (method, headers, status) in cases {
        let (admit_status, admit_code) = admitted(&guard, &parts(method.clone(), headers)).await;
        assert_eq!(admit_status, *status, "{method} {headers:?}");
        let reply = app.send(method.clone(), headers).await;
        assert_eq!(reply.status, admit_status, "{method} {headers:?}");
        match admit_code {
            Some(code) => assert_eq!(reply.envelope().error.code, code),
            None => assert_eq!(reply.body, "demo"),
        }
    }

    let user = guard
        .admit(&parts(Method::PATCH, &[("cookie", cookie)]))
        .await
        .expect("admitted");
    assert_eq!(user, SessionUser::new("demo"));
    assert_eq!(user.id(), "demo");

    // 403 before 401, and before asking a broken backend.
    let broken = Broken::default();
    let guard = SessionGuardLayer::new(broken.clone());
    let cross = parts(Method::POST, &[("sec-fetch-site", "cross-site")]);
    assert_eq!(
        admitted(&guard, &cross).await,
        (StatusCode::FORBIDDEN, Some(ErrorCode::Forbidden))
    );
    assert_eq!(broken.0.load(Ordering::SeqCst), 0);
    let error = guard
        .admit(&parts(Method::POST, &[("cookie", cookie)]))
        .await
        .expect_err("never a pass");
    assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error.code(), ErrorCode::InternalError);
    let response: http::Response<bytes::Bytes> = error.into_http_response();
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(broken.0.load(Ordering::SeqCst), 1);
}
