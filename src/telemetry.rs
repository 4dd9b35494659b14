//! What the crate reports through the [`metrics`](https://docs.rs/metrics) facade
//! (feature `metrics`) and as `tracing` spans: the one place that names metrics and
//! their labels. Without the feature every metric here is empty and compiles away.
//!
//! The handles of the per-request metrics (verifications and their time) are taken from
//! the recorder at the first verification: install the recorder before serving.
//!
//! Names follow the Prometheus conventions (a `tower_api_key_` namespace, `_total`
//! for counters, base units); labels take a few fixed values each, never a key, a
//! prefix, an owner or an address (their number is unbounded).
//!
//! | metric | kind | labels |
//! | --- | --- | --- |
//! | `tower_api_key_verifications_total` | counter | `outcome`: `admitted` or the refusal ([`AuthErrorKind::as_str`](crate::error::AuthErrorKind::as_str)) |
//! | `tower_api_key_verification_duration_seconds` | histogram | `outcome`: `admitted`, `refused` |
//! | `tower_api_key_cache_lookups_total` | counter | `result`: `hit`, `negative_hit`, `miss` |
//! | `tower_api_key_change_feed_reconnects_total` | counter | — |
//! | `tower_api_key_change_feed_lag_seconds` | histogram | — (a change this instance wrote, until its feed delivered it) |
//! | `tower_api_key_store_errors_total` | counter | `kind`: `timeout`, `backend` |
//! | `tower_api_key_rate_limit_decisions_total` | counter | `limit`: `key`, `failed_attempts`; `counted`: `in_process`, `shared`; `decision`: `admitted`, `limited` |

#![cfg_attr(not(feature = "metrics"), allow(unused_variables))]

use std::time::Duration;

use crate::{error::AuthErrorKind, key::KeyPrefix};

/// One verification as it is reported: a `verify_api_key` span (at `DEBUG`, off in
/// most production configurations; fields `key_prefix` and `outcome`, never the key)
/// and, with the feature, its start for the duration histogram.
///
/// A verification answered at once gets its span when it ends, with both fields (a
/// span made and closed: the cheapest there is while `DEBUG` is off), and carries
/// nothing until then; one that waits for the store runs inside its span
/// ([`waiting`](Self::waiting)), so the store's own spans nest in it.
pub(crate) struct Verification {
    #[cfg(feature = "metrics")]
    at: std::time::Instant,
}

/// A verification that waits, inside its span.
pub(crate) struct Waiting {
    report: Verification,
    span: tracing::Span,
}

impl Verification {
    #[inline]
    pub(crate) fn start() -> Self {
        Verification {
            #[cfg(feature = "metrics")]
            at: std::time::Instant::now(),
        }
    }

    /// Carries the verification on past a wait, in a span opened now (none while
    /// `DEBUG` spans are off); `prefix`: the key's public prefix, once read.
    pub(crate) fn waiting(self, prefix: Option<&KeyPrefix>) -> Waiting {
        let span = if tracing::span_enabled!(tracing::Level::DEBUG) {
            tracing::debug_span!(
                "verify_api_key",
                key_prefix = prefix.map(KeyPrefix::as_str),
                outcome = tracing::field::Empty,
            )
        } else {
            tracing::Span::none()
        };
        Waiting { report: self, span }
    }

    /// Reports the outcome of a verification answered at once: a span with both
    /// fields, and counted with the verification's time.
    ///
    /// Only the level check is inline: on the common path (`DEBUG` off) it is two
    /// instructions in the verification's own code.
    #[inline(always)]
    pub(crate) fn finished(self, prefix: Option<&KeyPrefix>, outcome: Result<(), AuthErrorKind>) {
        if tracing::level_enabled!(tracing::Level::DEBUG) {
            span_finished(prefix, outcome);
        }
        self.measured(outcome);
    }

    fn measured(self, outcome: Result<(), AuthErrorKind>) {
        #[cfg(feature = "metrics")]
        {
            metrics::counter!("tower_api_key_verifications_total", "outcome" => label(outcome))
                .increment(1);
            let coarse = if outcome.is_ok() {
                "admitted"
            } else {
                "refused"
            };
            metrics::histogram!("tower_api_key_verification_duration_seconds", "outcome" => coarse)
                .record(self.at.elapsed().as_secs_f64());
        }
    }
}

/// The span of a verification answered at once, when `DEBUG` may be on.
#[cold]
#[inline(never)]
fn span_finished(prefix: Option<&KeyPrefix>, outcome: Result<(), AuthErrorKind>) {
    // Asked first: with `tracing`'s `log` feature on (axum's and sqlx's defaults)
    // and no subscriber, a disabled span would still format its fields for `log`.
    if tracing::span_enabled!(tracing::Level::DEBUG) {
        tracing::debug_span!(
            "verify_api_key",
            key_prefix = prefix.map(KeyPrefix::as_str),
            outcome = label(outcome),
        );
    }
}

impl Waiting {
    /// The span the waiting part runs in.
    pub(crate) fn span(&self) -> tracing::Span {
        self.span.clone()
    }

    /// Reports the outcome on the span, and counted with the verification's time.
    pub(crate) fn finished(self, outcome: Result<(), AuthErrorKind>) {
        if !self.span.is_none() {
            self.span.record("outcome", label(outcome));
        }
        self.report.measured(outcome);
    }
}

/// The `outcome` a verification is reported with.
fn label(outcome: Result<(), AuthErrorKind>) -> &'static str {
    match outcome {
        Ok(()) => "admitted",
        Err(kind) => kind.as_str(),
    }
}

/// What a cache lookup found.
#[derive(Clone, Copy)]
#[cfg_attr(not(feature = "cache"), allow(dead_code))]
pub(crate) enum CacheLookup {
    Hit,
    NegativeHit,
    Miss,
}

#[inline]
#[cfg_attr(not(feature = "cache"), allow(dead_code))]
pub(crate) fn cache_lookup(result: CacheLookup) {
    #[cfg(feature = "metrics")]
    {
        let label = match result {
            CacheLookup::Hit => "hit",
            CacheLookup::NegativeHit => "negative_hit",
            CacheLookup::Miss => "miss",
        };
        metrics::counter!("tower_api_key_cache_lookups_total", "result" => label).increment(1);
    }
}

#[inline]
#[cfg_attr(not(any(feature = "postgres", feature = "redis")), allow(dead_code))]
pub(crate) fn feed_reconnected() {
    #[cfg(feature = "metrics")]
    metrics::counter!("tower_api_key_change_feed_reconnects_total").increment(1);
}

#[inline]
#[cfg_attr(not(feature = "cache"), allow(dead_code))]
pub(crate) fn feed_lag(lag: Duration) {
    #[cfg(feature = "metrics")]
    metrics::histogram!("tower_api_key_change_feed_lag_seconds").record(lag.as_secs_f64());
}

/// A store call that failed: `timeout` or `backend`.
#[inline]
#[cfg_attr(
    not(any(
        feature = "sqlite",
        feature = "postgres",
        feature = "redis",
        feature = "cache"
    )),
    allow(dead_code)
)]
pub(crate) fn store_error(kind: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("tower_api_key_store_errors_total", "kind" => kind).increment(1);
}

/// A rate-limit decision: `limit` is `key` or `failed_attempts`, `shared` whether it
/// was counted in the shared limiter.
#[inline]
pub(crate) fn limit_decision(limit: &'static str, shared: bool, admitted: bool) {
    #[cfg(feature = "metrics")]
    {
        let counted = if shared { "shared" } else { "in_process" };
        let decision = if admitted { "admitted" } else { "limited" };
        metrics::counter!(
            "tower_api_key_rate_limit_decisions_total",
            "limit" => limit,
            "counted" => counted,
            "decision" => decision,
        )
        .increment(1);
    }
}
