//! What verifications leave to write to the store: a key's last use and this
//! process's usage counts, written when due on the way to an answer, or all at once
//! with [`Authenticator::flush`].

use std::sync::Arc;

use super::{Authenticator, Writes};
use crate::{
    auth::Principal,
    error::AuthError,
    policy::RateLimitStatus,
    store::{self, KeyRecord, LastUse},
};

impl Authenticator {
    /// Writes the key's last use and this process's usage counts (whichever is due),
    /// then admits it — unless the key was revoked while the writes were under way,
    /// so that no request is let through after a revoke returned. A failed write does
    /// not refuse a valid key (what it would have written stays pending for the next
    /// write or [`LastUse::flush`] / [`LastUse::flush_usage`]).
    pub(super) async fn write_and_admit(
        &self,
        record: Arc<KeyRecord>,
        rate: Option<RateLimitStatus>,
        writes: Writes,
    ) -> Result<Principal, AuthError> {
        let store = &self.config.store;
        if let Some(now) = writes.last_use {
            if store.record_last_use(&record.id, now).await.is_ok() {
                self.config.last_use.stored(&record, now);
            }
        }
        if writes.usage {
            self.write_usage().await;
        }
        self.admit_unless_revoked(record, rate).await
    }

    /// Writes this process's usage batch; a failure is logged (the counts stay
    /// pending for the next batch).
    pub(super) async fn write_usage(&self) {
        if let Err(error) = self.config.last_use.flush_usage(&*self.config.store).await {
            tracing::warn!(
                error = %error,
                "usage counts were not written to the key store; they stay pending for \
                 the next batch",
            );
        }
    }

    /// The log of last uses this authenticator notes into.
    pub fn last_use(&self) -> &LastUse {
        &self.config.last_use
    }

    /// Writes the last uses noted here but not yet stored (not the usage counts:
    /// [`flush`](Self::flush) writes both).
    pub async fn flush_last_use(&self) -> store::Result<usize> {
        self.config.last_use.flush(&*self.config.store).await
    }

    /// Writes everything noted in memory and not yet stored — the keys' last uses and
    /// this process's usage counts — so that nothing is lost; call it on graceful
    /// shutdown. Both are tried; the first error is returned (what failed stays
    /// pending).
    pub async fn flush(&self) -> store::Result<()> {
        let store = &*self.config.store;
        let log = &self.config.last_use;
        let last_uses = log.flush(store).await;
        let usage = if log.counts_usage() {
            log.flush_usage(store).await.map(drop)
        } else {
            Ok(())
        };
        last_uses.and(usage)
    }
}
