//! What `Debug` shows of sessions and guards: never key material.

use tower::Layer;
use tower_api_key::session::{CrossOriginProtection, SessionGuardLayer, SessionUser};

use crate::setup::*;

#[test]
fn debug_output_shows_no_key_material() {
    let sessions = sessions();
    let cookie = session_cookie("demo");
    let (_, signed_value) = cookie.split_once('=').expect("name=value");
    let guard = SessionGuardLayer::new(sessions.clone()).cross_origin(
        CrossOriginProtection::new()
            .server_origin("https://app.example")
            .trusted_origin("https://dashboard.example"),
    );
    let service = guard.layer(());
    for debug in [
        format!("{sessions:?}"),
        format!("{sessions:#?}"),
        format!("{:?}", sessions.clone().insecure_for_local_http()),
        format!("{guard:?}"),
        format!("{guard:#?}"),
        format!("{service:?}"),
    ] {
        assert!(!debug.contains("7, 7"), "{debug}");
        assert!(!debug.contains("[7"), "{debug}");
        assert!(!debug.contains("0707"), "{debug}");
        assert!(!debug.contains("Key"), "{debug}");
        assert!(!debug.contains(signed_value), "{debug}");
        assert!(!debug.contains(&signed_value[..16]), "{debug}");
    }
    let debug = format!("{sessions:?}");
    assert!(debug.starts_with("CookieSessions"), "{debug}");
    assert!(debug.contains("__Host-session"), "{debug}");
    let debug = format!("{guard:?}");
    assert!(debug.starts_with("SessionGuardLayer"), "{debug}");
    assert!(debug.contains("https://app.example"), "{debug}");

    let user = SessionUser::new("demo");
    assert_eq!(format!("{user:?}"), r#"SessionUser { id: "demo" }"#);
}
