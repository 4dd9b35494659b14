//! A session backend that fails: 503, never a pass.

use std::sync::atomic::Ordering;

use http::{Method, StatusCode};
use tower_api_key::session::SessionGuardLayer;

use crate::setup::*;

#[tokio::test]
async fn a_failing_resolver_is_503_never_a_pass() {
    let broken = Broken::default();
    let app = Guarded::new(SessionGuardLayer::new(broken.clone()));
    let cookie = session_cookie("demo");
    for method in UNSAFE.iter().chain(SAFE.iter()) {
        let reply = app.send(method.clone(), &[("cookie", &cookie)]).await;
        assert_refused_to(
            method,
            &reply,
            StatusCode::SERVICE_UNAVAILABLE,
            "internal_error",
        );
        assert_eq!(reply.header("retry-after"), "1");
        assert!(!reply.body.contains("secret-host"), "{}", reply.body);
    }
    assert_eq!(app.calls(), 0);
    assert_eq!(broken.0.load(Ordering::SeqCst), UNSAFE.len() + SAFE.len());

    let management = Management::new(SessionGuardLayer::new(broken));
    for (method, uri) in [
        (Method::POST, ACTIVE),
        (Method::GET, ACTIVE),
        (Method::DELETE, ACTIVE),
        (Method::POST, NAMED),
    ] {
        assert_unavailable(&management.send(method, uri, &[("cookie", &cookie)]).await);
    }
    assert_eq!(management.stored("demo").await, 0);
}
