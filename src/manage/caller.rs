//! Who performs a key operation, and from where: the argument every operation of
//! [`Keys`](super::Keys) that changes a key takes.

use std::net::IpAddr;

use serde::Serialize;

use crate::key::KeyPrefix;

/// Who performed a key operation. Serialises as `{"type":"user","id":"acct_42"}`,
/// `{"type":"key","prefix":"pk_live_…"}` or `{"type":"system"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Actor {
    /// A logged-in user (the management router's session user).
    User {
        /// The session user's id.
        id: String,
    },
    /// The key itself: a self-revoking `DELETE` with its own bearer key.
    Key {
        /// The key's public prefix.
        prefix: KeyPrefix,
    },
    /// Your own code: a job, an admin tool ([`Caller::system`]).
    System,
}

impl Actor {
    /// A logged-in user.
    pub fn user(id: impl Into<String>) -> Self {
        Actor::User { id: id.into() }
    }
}

/// Who performs a key operation, and from which client address: passed to every
/// operation of [`Keys`](super::Keys) that changes a key, and reported to the hooks
/// and the audit trail as [`KeyEvent::actor`](super::KeyEvent::actor) and [`KeyEvent::client_addr`](super::KeyEvent::client_addr).
///
/// The management router passes the session user (or, for a self-revoking `DELETE`,
/// the key itself) and the client's address as the authenticator names it.
///
/// ```
/// use tower_api_key::manage::{Actor, Caller};
///
/// let from_a_job = Caller::system();
/// let from_a_request = Caller::user("acct_42").from_addr("203.0.113.9".parse().ok());
/// assert_eq!(from_a_request.actor, Actor::user("acct_42"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Caller {
    /// Who acts.
    pub actor: Actor,
    /// From where, when known.
    pub client_addr: Option<IpAddr>,
}

impl Caller {
    /// Your own code (a job, an admin tool), from no particular address.
    pub fn system() -> Self {
        Caller::new(Actor::System)
    }

    /// A logged-in user.
    pub fn user(id: impl Into<String>) -> Self {
        Caller::new(Actor::user(id))
    }

    /// The key itself (a key revoking itself).
    pub fn key(prefix: KeyPrefix) -> Self {
        Caller::new(Actor::Key { prefix })
    }

    /// `actor`, from no particular address.
    pub fn new(actor: Actor) -> Self {
        Caller {
            actor,
            client_addr: None,
        }
    }

    /// The same caller, from `addr` (`None`: unknown).
    pub fn from_addr(mut self, addr: Option<IpAddr>) -> Self {
        self.client_addr = addr;
        self
    }
}
