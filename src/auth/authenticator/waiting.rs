//! The part of a verification that waits: for a store that does not answer at once,
//! for a last-use or usage write, for a shared limit's quota store. It runs in one
//! boxed future, inside the verification's span, and admits a key only if no revoke
//! returned meanwhile.

use std::{sync::Arc, time::SystemTime};

use tracing::Instrument;

use super::{request::HeadFacts, Authenticator, Decision, Hashed, Started};
use crate::{
    auth::Principal,
    error::{AuthError, AuthErrorKind},
    policy::RateLimitStatus,
    store::{KeyRecord, Lookup},
    telemetry::{Verification, Waiting},
};

impl Authenticator {
    /// The lookup of a store that must be waited for: the facts a decision needs are
    /// kept, owned, for after the wait. Out of line (as is [`concluding`](Self::concluding)),
    /// so that the code of a request answered at once stays small.
    #[cold]
    #[inline(never)]
    pub(super) fn awaiting_store(
        &self,
        presented: Hashed,
        facts: Option<HeadFacts<'_>>,
        report: Verification,
    ) -> Started {
        let facts = facts.map(|facts| facts.to_owned());
        let auth = self.clone();
        let waiting = report.waiting(Some(&presented.prefix));
        let span = waiting.span();
        Started::Pending(Box::pin(
            async move {
                let found = auth.config.store.find_by_prefix(&presented.prefix).await;
                let decision =
                    auth.decide(&presented.hash, found.map(Lookup::found), facts.as_ref());
                reported(auth.conclude(decision).await, waiting)
            }
            .instrument(span),
        ))
    }

    /// A decision that must still wait (a write, a shared limit), carried on in the
    /// boxed future.
    #[cold]
    #[inline(never)]
    pub(super) fn concluding(&self, decision: Decision, waiting: Waiting) -> Started {
        let auth = self.clone();
        let span = waiting.span();
        Started::Pending(Box::pin(
            async move { reported(auth.conclude(decision).await, waiting) }.instrument(span),
        ))
    }

    /// Carries out a decision: a shared limit's answer is waited for, and a due
    /// last-use write happens before the admission. A key admitted after a wait is
    /// looked up again first: a revocation that returned meanwhile refuses it.
    pub(super) async fn conclude(&self, mut decision: Decision) -> Result<Principal, AuthError> {
        let mut waited = false;
        loop {
            decision = match decision {
                Decision::Refuse(error) => return Err(error),
                Decision::Admit(record, rate) if waited => {
                    return self.admit_unless_revoked(record, rate).await
                }
                Decision::Admit(record, rate) => return Ok(self.principal(record, rate)),
                Decision::WriteThenAdmit(record, rate, writes) => {
                    return self.write_and_admit(record, rate, writes).await
                }
                Decision::WriteUsageThenRefuse(error) => {
                    self.write_usage().await;
                    return Err(error);
                }
                Decision::AwaitLimit(record, wait) => {
                    waited = true;
                    self.admit(record, wait.await)
                }
                Decision::AwaitBudget(error, wait) => {
                    Decision::Refuse(self.budgeted(error, wait.await))
                }
            };
        }
    }

    /// Admits a key that was verified before a wait (a last-use write, a shared
    /// limit's lease) — unless the store now says it is revoked, so that no request
    /// is let through after a revoke returned.
    pub(super) async fn admit_unless_revoked(
        &self,
        record: Arc<KeyRecord>,
        rate: Option<RateLimitStatus>,
    ) -> Result<Principal, AuthError> {
        let store = &self.config.store;
        let current = match store.lookup_now(&record.prefix) {
            Some(found) => found.map(Lookup::into_found),
            None => store.find_by_prefix(&record.prefix).await,
        };
        match current {
            Ok(Some(current)) if current.is_revoked_at(SystemTime::now()) => {
                Err(self.error(AuthErrorKind::Revoked))
            }
            Ok(_) => Ok(self.principal(record, rate)),
            Err(e) => Err(self.error(AuthErrorKind::StoreUnavailable).with_source(e)),
        }
    }
}

/// A verification's answer, reported (span and metrics) on its way out.
fn reported(answer: Result<Principal, AuthError>, report: Waiting) -> Result<Principal, AuthError> {
    report.finished(answer.as_ref().map(drop).map_err(AuthError::kind));
    answer
}
