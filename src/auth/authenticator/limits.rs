//! Counting a request against the rates that apply to it: a verified key's own (or the
//! default) rate, and the client's failed-attempts budget, in this process or in the
//! shared quota store.

use std::time::Duration;

use super::Authenticator;
use crate::{
    auth::shared_limits::{Bucket, Limited},
    error::{AuthError, AuthErrorKind},
    policy::{failure_bucket, OverLimit, RateLimit, RateLimitStatus},
    store::KeyRecord,
    telemetry,
};

impl Authenticator {
    /// The rate a verified key's requests are counted against: its own, else the
    /// default, if any.
    #[inline(always)]
    pub(super) fn rate_of(&self, record: &KeyRecord) -> Option<RateLimit> {
        record.rate_limit.or(self.config.limiters.default_rate())
    }

    /// Counts a verified key's request against `rate` ([`rate_of`](Self::rate_of)):
    /// in the shared limiter when there is one, else in this process.
    pub(super) fn limit_key(
        &self,
        record: &KeyRecord,
        rate: RateLimit,
    ) -> Limited<Option<RateLimitStatus>, OverLimit> {
        let limiters = &self.config.limiters;
        let Some(shared) = &self.config.shared else {
            let counted = limiters.check_key(&record.prefix, Some(rate));
            telemetry::limit_decision("key", false, counted.is_ok());
            return Limited::Now(counted);
        };
        let report = limiters.sends_headers();
        shared
            .check(Bucket::Key(record.prefix), rate)
            .map(move |counted| {
                telemetry::limit_decision("key", true, counted.is_ok());
                counted.map(|status| report.then_some(status))
            })
    }

    /// Counts a failed attempt against the client's budget: in the shared limiter
    /// when there is one, else in this process.
    pub(super) fn count_failure(&self, client: Option<std::net::IpAddr>) -> Limited<(), Duration> {
        let limiters = &self.config.limiters;
        match (&self.config.shared, limiters.failure_rate()) {
            (Some(shared), Some(rate)) => shared
                .check(Bucket::Client(failure_bucket(client)), rate)
                .map(|counted| {
                    telemetry::limit_decision("failed_attempts", true, counted.is_ok());
                    counted.map(drop).map_err(|over| over.retry_after)
                }),
            _ => {
                let counted = limiters.failed(client);
                if limiters.counts_failures() {
                    telemetry::limit_decision("failed_attempts", false, counted.is_ok());
                }
                Limited::Now(counted)
            }
        }
    }

    /// 429 for a key over its rate, with the rate-limit headers when they are on.
    pub(super) fn over_limit(&self, over: OverLimit) -> AuthError {
        let error = self.rate_limited(over.retry_after);
        if self.config.limiters.sends_headers() {
            error.with_headers(over.status.headers())
        } else {
            error
        }
    }

    /// The refusal once counted: 429 while the client is over its budget.
    pub(super) fn budgeted(&self, error: AuthError, counted: Result<(), Duration>) -> AuthError {
        match counted {
            Ok(()) => error,
            Err(wait) => self.rate_limited(wait),
        }
    }

    pub(super) fn rate_limited(&self, wait: Duration) -> AuthError {
        self.error(AuthErrorKind::RateLimited)
            .with_retry_after(wait)
    }
}
