//! The session guard: routes that a logged-in *browser* may use, never a bearer key.
//!
//! Key management (mint, view, revoke) must not be reachable with an API key — a
//! leaked key must not be able to mint more keys. [`SessionGuardLayer`] admits a
//! request only with a valid session, puts the [`SessionUser`] into the request's
//! extensions (an axum extractor with the `axum` feature), and refuses cross-origin
//! unsafe requests ([`CrossOriginProtection`], after Go 1.25's rules).
//!
//! For the login handler next to it: [`safe_next`] checks where to send the user
//! afterwards, and [`CrossOriginProtection`] is a layer too, for the login and logout
//! routes, which have no session to guard yet.
//!
//! Where the session comes from is pluggable ([`SessionResolver`]): the crate ships a
//! signed-cookie resolver (`CookieSessions`, feature `cookie-session`) and an adapter
//! for `tower-sessions` (`TowerSessions`, feature `tower-sessions`); an app with its
//! own session system implements the trait.
//!
//! | situation | status | `code` |
//! | --- | --- | --- |
//! | unsafe method from another origin | 403 | `forbidden` |
//! | no session, or a tampered or expired one (a bearer key does not count) | 401 | `unauthorized` |
//! | the session backend failed | 503 | `internal_error` |

mod csrf;
mod csrf_guard;
mod guard;
mod next;
mod resolver;
mod user;

#[cfg(feature = "cookie-session")]
mod cookie;
#[cfg(feature = "tower-sessions")]
mod tower_sessions;

#[cfg(feature = "cookie-session")]
#[cfg_attr(docsrs, doc(cfg(feature = "cookie-session")))]
pub use self::cookie::{CookieSessions, InvalidSessionKey};
#[cfg(feature = "tower-sessions")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower-sessions")))]
pub use self::tower_sessions::TowerSessions;
pub use csrf::{CrossOriginProtection, CrossOriginRequest};
pub use csrf_guard::CrossOriginGuard;
pub use guard::{SessionGuard, SessionGuardLayer};
pub use next::safe_next;
pub use resolver::{SessionError, SessionResolver};
pub use user::SessionUser;
