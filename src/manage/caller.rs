//! Who performs a key operation, and from where: the argument every operation of
//! [`Keys`](super::Keys) that changes a key takes.

use std::net::IpAddr;

use serde::Serialize;

use std::sync::Arc;

use super::{acting_key::ActingKey, ManageError};
use crate::{auth::Principal, key::KeyPrefix};

/// Who performed a key operation. Serialises as `{"type":"user","id":"acct_42"}`,
/// `{"type":"key","prefix":"pk_live_…"}`, `{"type":"system"}` or
/// `{"type":"secret_scanner","name":"github"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Actor {
    /// A logged-in user (the management router's session user).
    User {
        /// The session user's id.
        id: String,
    },
    /// A key: one revoking itself with its own bearer key, or a key that carries the
    /// management scope managing its owner's keys.
    Key {
        /// The key's public prefix.
        prefix: KeyPrefix,
    },
    /// Your own code: a job, an admin tool ([`Caller::system`]).
    System,
    /// A secret scanner's leak report (`github`, …), received by the management
    /// router's secret-scanning route (feature `secret-scanning`) or passed to
    /// [`Keys::report_leak`](super::Keys::report_leak).
    SecretScanner {
        /// The scanner's name.
        name: String,
    },
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
/// The management router passes the session user (or the key, for a self-revoking
/// `DELETE` or a key that manages keys) and the client's address as the authenticator
/// names it.
///
/// A caller made from a verified key with [`Caller::acting_key`] acts for that key's
/// owner only and gives a key nothing it does not have itself; see there.
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
    /// When a key manages keys: its owner and bounds, which bound what it does.
    acting: Option<Arc<ActingKey>>,
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

    /// A verified key acting on its owner's keys. [`Keys`](super::Keys) then holds it
    /// to these rules, whoever calls (the management router's `bearer_scope`, with the
    /// `axum` feature, or a handler of yours):
    ///
    /// - it acts for its own owner only (another owner's keys are "not found");
    /// - a key it mints gets only scopes it holds, its mode, an expiry no later than
    ///   its own (its own when none is asked), and no looser restrictions or rate
    ///   limit (each kind it is bounded in replaces a looser or missing one);
    /// - it rotates only keys bounded at least as it is (a successor keeps the old
    ///   key's bounds);
    /// - over any of these, [`ManageError::BeyondCaller`] (403).
    ///
    /// A key that was rotated out (in its grace period) or reported leaked manages
    /// nothing: this refuses it with [`ManageError::BeyondCaller`].
    ///
    /// ```
    /// # #[cfg(feature = "axum")] {
    /// use tower_api_key::{manage::{Caller, Keys, NewKey}, Principal};
    ///
    /// // A handler of yours behind the layer, minting keys for the caller's owner.
    /// async fn mint_for(keys: &Keys, key: &Principal) -> Result<String, Box<dyn std::error::Error>> {
    ///     key.require_scope("keys:manage")?;
    ///     let caller = Caller::acting_key(key)?;
    ///     let minted = keys.named().create(&caller, key.owner(), NewKey::named("ci")).await?;
    ///     Ok(minted.api_key().expose_secret().to_owned())
    /// }
    /// # }
    /// ```
    pub fn acting_key(key: &Principal) -> Result<Self, ManageError> {
        let acting = ActingKey::of(key.record())?;
        Ok(Caller {
            acting: Some(Arc::new(acting)),
            ..Caller::key(key.prefix())
        })
    }

    /// `actor`, from no particular address.
    pub fn new(actor: Actor) -> Self {
        Caller {
            actor,
            client_addr: None,
            acting: None,
        }
    }

    /// The same caller, from `addr` (`None`: unknown).
    pub fn from_addr(mut self, addr: Option<IpAddr>) -> Self {
        self.client_addr = addr;
        self
    }

    /// The key acting, when a key manages keys.
    pub(crate) fn acting(&self) -> Option<&ActingKey> {
        self.acting.as_deref()
    }

    /// `Ok` unless a key acting for another owner.
    pub(crate) fn may_act_for(&self, owner: &str) -> Result<(), ManageError> {
        self.acting().map_or(Ok(()), |key| key.may_act_for(owner))
    }
}
