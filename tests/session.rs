//! The session guard through real axum routers, as a user would wire it: the
//! cross-origin rules (after Go 1.25's `CrossOriginProtection`), signed-cookie
//! sessions, failing session backends, `SessionGuardLayer::admit`, the tower-sessions
//! adapter, the management routes behind the guard, and what `Debug` shows; one test
//! binary, one module per concern under `tests/session/`.

#[path = "session/admit.rs"]
mod admit;
mod common;
#[path = "session/cookies.rs"]
mod cookies;
#[path = "session/cross_origin.rs"]
mod cross_origin;
#[path = "session/debug.rs"]
mod debug;
#[path = "session/failing_backend.rs"]
mod failing_backend;
#[path = "session/login.rs"]
mod login;
#[path = "session/setup.rs"]
mod setup;
#[cfg(feature = "tower-sessions")]
#[path = "session/tower_sessions_adapter.rs"]
mod tower_sessions_adapter;
