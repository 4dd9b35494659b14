//! [`NamedKeys`]: the policy of many named keys per owner.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{
    keys::REVOKED_SHOWN_FOR, Caller, KeyRef, KeyView, Keys, ManageError, MintedKey, NewKey,
};
use crate::store::{InsertRule, KeyId, KeyRecord};

/// Many named keys per owner; see [`Keys::named`].
#[derive(Clone, Debug)]
pub struct NamedKeys {
    keys: Keys,
}

impl NamedKeys {
    pub(super) fn new(keys: Keys) -> Self {
        NamedKeys { keys }
    }

    /// Mints a key for the owner; it must have a name (422 otherwise).
    pub async fn create(
        &self,
        caller: &Caller,
        owner: &str,
        new: NewKey,
    ) -> Result<MintedKey, ManageError> {
        if new.name.trim().is_empty() {
            return Err(ManageError::Invalid("A named key needs a name."));
        }
        self.keys
            .create(caller, owner, new, InsertRule::Unconditional)
            .await
    }

    /// The owner's keys, oldest first: working and expired ones (marked so), and
    /// those revoked within the last 7 days (marked `revoked`, so a revocation stays
    /// visible across reloads for a while); older revoked keys are left out.
    pub async fn list(&self, owner: &str) -> Result<Vec<KeyView>, ManageError> {
        let now = SystemTime::now();
        let shown_since = now.checked_sub(REVOKED_SHOWN_FOR).unwrap_or(UNIX_EPOCH);
        let owned = self.keys.owned(owner).await?;
        let shown: Vec<&KeyRecord> = owned
            .iter()
            .filter(|r| r.revoked_at.is_none_or(|at| at > shown_since))
            .collect();
        let mut views: Vec<KeyView> = shown.iter().map(|r| self.keys.view(r, now)).collect();
        self.keys.add_totals(&mut views, &shown, now).await;
        Ok(views)
    }

    /// Revokes one of the owner's keys at once; another owner's key, or an unknown id,
    /// is [`ManageError::NotFound`] (404). Revoking a revoked key is not an error.
    pub async fn revoke(
        &self,
        caller: &Caller,
        owner: &str,
        id: &KeyId,
    ) -> Result<KeyView, ManageError> {
        self.revoke_key(caller, owner, &KeyRef::Id(id.clone()))
            .await
    }

    /// [`revoke`](Self::revoke), naming the key by id or by prefix.
    pub async fn revoke_key(
        &self,
        caller: &Caller,
        owner: &str,
        key: &KeyRef,
    ) -> Result<KeyView, ManageError> {
        let record = self.keys.find(owner, key).await?;
        self.keys
            .revoke_record(caller, &record, SystemTime::now())
            .await
    }

    /// Mints a successor to one of the owner's keys, with every bound of the old key
    /// (scopes, mode, expiry, restrictions, rate limit; and its name and metadata), and
    /// lets the old one work for `grace` more.
    pub async fn rotate(
        &self,
        caller: &Caller,
        owner: &str,
        id: &KeyId,
        grace: Duration,
    ) -> Result<MintedKey, ManageError> {
        let record = self.keys.find(owner, &KeyRef::Id(id.clone())).await?;
        self.keys.rotate_record(caller, &record, grace).await
    }
}
