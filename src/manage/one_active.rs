//! [`OneActiveKeys`]: the policy of one working key per owner.

use std::time::{Duration, SystemTime};

use super::{ActiveKey, Caller, KeyRef, KeyView, Keys, ManageError, MintedKey, NewKey};
use crate::store::{InsertRule, KeyRecord};

/// One active key per owner; see [`Keys::one_active`].
#[derive(Clone, Debug)]
pub struct OneActiveKeys {
    keys: Keys,
}

impl OneActiveKeys {
    pub(super) fn new(keys: Keys) -> Self {
        OneActiveKeys { keys }
    }

    /// Mints the owner's key; [`ManageError::ActiveKeyExists`] (409) while one is
    /// active. The check and the insert are one atomic store operation, so of two
    /// concurrent creates exactly one succeeds.
    pub async fn create(
        &self,
        caller: &Caller,
        owner: &str,
        new: NewKey,
    ) -> Result<MintedKey, ManageError> {
        self.keys
            .create(caller, owner, new, InsertRule::NoOtherActiveKey)
            .await
    }

    /// The owner's active key and any retiring ones; [`ManageError::NotFound`] (404)
    /// when there is no active key. With several active keys (named keys made through
    /// [`Keys::named`] next to this policy) the newest one is shown, and it is the
    /// one [`rotate`](Self::rotate) replaces.
    pub async fn view(&self, owner: &str) -> Result<ActiveKey, ManageError> {
        let now = SystemTime::now();
        let owned = self.keys.owned(owner).await?;
        let active = newest_active(&owned, now).ok_or(ManageError::NotFound)?;
        let shown: Vec<&KeyRecord> = std::iter::once(active)
            .chain(
                owned
                    .iter()
                    .filter(|r| !r.is_active_key_at(now) && r.works_at(now)),
            )
            .collect();
        let mut views: Vec<KeyView> = shown.iter().map(|r| self.keys.view(r, now)).collect();
        self.keys.add_totals(&mut views, &shown, now).await;
        let key = views.remove(0);
        Ok(ActiveKey {
            key,
            retiring: views,
        })
    }

    /// Revokes, at once, every key of the owner that still works — the active one, any
    /// retiring ones, and named keys made through [`Keys::named`] for the same owner;
    /// [`ManageError::NotFound`] (404) when none does. When it returns, requests with
    /// those keys are refused — including a successor that a concurrent rotation
    /// inserted meanwhile. To revoke one key, use [`revoke_key`](Self::revoke_key).
    pub async fn revoke(&self, caller: &Caller, owner: &str) -> Result<Vec<KeyView>, ManageError> {
        let mut revoked = Vec::new();
        // Until a listing finds nothing left that works (bounded, in case of a
        // rotation storm; each pass revokes what it finds).
        for _ in 0..8 {
            let now = SystemTime::now();
            let working: Vec<KeyRecord> = self
                .keys
                .owned(owner)
                .await?
                .into_iter()
                .filter(|r| r.works_at(now))
                .collect();
            if working.is_empty() {
                break;
            }
            for record in &working {
                revoked.push(self.keys.revoke_record(caller, record, now).await?);
            }
        }
        if revoked.is_empty() {
            return Err(ManageError::NotFound);
        }
        Ok(revoked)
    }

    /// Revokes exactly one of the owner's working keys (the active one or a retiring
    /// one), named by id or prefix as the owner saw it: nothing else is touched.
    /// [`ManageError::NotFound`] (404) for a key that is not the owner's;
    /// [`ManageError::AlreadyRevoked`] (409) for one that no longer works.
    pub async fn revoke_key(
        &self,
        caller: &Caller,
        owner: &str,
        key: impl Into<KeyRef>,
    ) -> Result<KeyView, ManageError> {
        let record = self.keys.find(owner, &key.into()).await?;
        let now = SystemTime::now();
        if !record.works_at(now) {
            return Err(ManageError::AlreadyRevoked);
        }
        self.keys.revoke_record(caller, &record, now).await
    }

    /// Mints a successor to the active key — the one [`view`](Self::view) shows —
    /// with every bound of the old key (scopes, mode, expiry, restrictions, rate limit;
    /// and its name and metadata), and lets the old key work for `grace` more (zero:
    /// refused at once). Atomic: of two concurrent rotations one wins, the other gets
    /// [`ManageError::AlreadyRevoked`].
    pub async fn rotate(
        &self,
        caller: &Caller,
        owner: &str,
        grace: Duration,
    ) -> Result<MintedKey, ManageError> {
        let owned = self.keys.owned(owner).await?;
        let active = newest_active(&owned, SystemTime::now()).ok_or(ManageError::NotFound)?;
        self.keys.rotate_record(caller, active, grace).await
    }

    /// [`rotate`](Self::rotate), but only if `key` (by id or prefix, as the owner saw
    /// it) is still the active key: [`ManageError::NotActiveKey`] (409) otherwise, so
    /// that a stale page never replaces a key its owner did not pick.
    pub async fn rotate_key(
        &self,
        caller: &Caller,
        owner: &str,
        key: impl Into<KeyRef>,
        grace: Duration,
    ) -> Result<MintedKey, ManageError> {
        let key = key.into();
        let owned = self.keys.owned(owner).await?;
        if !owned.iter().any(|r| key.names(r)) {
            return Err(ManageError::NotFound);
        }
        match newest_active(&owned, SystemTime::now()) {
            Some(active) if key.names(active) => {
                self.keys.rotate_record(caller, active, grace).await
            }
            _ => Err(ManageError::NotActiveKey),
        }
    }
}

/// The owner's active key as the one-active policy sees it: the newest one.
fn newest_active(owned: &[KeyRecord], now: SystemTime) -> Option<&KeyRecord> {
    owned
        .iter()
        .filter(|r| r.is_active_key_at(now))
        .max_by_key(|r| r.created_at)
}
