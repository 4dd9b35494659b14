use std::{
    collections::HashMap,
    fmt,
    net::IpAddr,
    num::NonZeroU32,
    str::FromStr,
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc, PoisonError, RwLock,
    },
    time::Duration,
};

use governor::{
    clock::Clock,
    middleware::{StateInformationMiddleware, StateSnapshot},
    DefaultKeyedRateLimiter, Quota, RateLimiter,
};
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::key::{KeyPrefix, PrefixHashing};

/// A limiter keyed by the prefixes of verified keys, hashed by their random bits; it
/// reports the key's remaining quota with each decision.
type KeyLimiter = DefaultKeyedRateLimiter<KeyPrefix, StateInformationMiddleware, PrefixHashing>;

fn key_limiter(rate: RateLimit) -> KeyLimiter {
    RateLimiter::dashmap_with_hasher(rate.quota(), PrefixHashing::default())
        .with_middleware::<StateInformationMiddleware>()
}

/// A request rate: `n` requests per period, written `20/s`, `100/10s`, `5/m`,
/// `1000/h` or `10000/d`. Enforced with GCRA (the `governor` crate): a burst of up to
/// `n` requests, refilled evenly over the period.
///
/// ```
/// use std::time::Duration;
/// use tower_api_key::policy::RateLimit;
///
/// let limit: RateLimit = "100/10s".parse().unwrap();
/// assert_eq!(limit.requests(), 100);
/// assert_eq!(limit.period(), Duration::from_secs(10));
/// assert_eq!(limit.to_string(), "100/10s");
/// assert!("0/s".parse::<RateLimit>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimit {
    requests: NonZeroU32,
    period_secs: u32,
}

/// Text that is not a rate (`<requests>/<number?><s|m|h|d>`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a rate: expected <requests>/<period>, e.g. 20/s, 100/10s, 5/m, 1000/h")]
pub struct InvalidRate;

impl RateLimit {
    /// `requests` per `period` (whole seconds, at least one; `None` otherwise).
    pub fn new(requests: u32, period: Duration) -> Option<Self> {
        if period.subsec_nanos() != 0 {
            return None;
        }
        let secs = u32::try_from(period.as_secs()).ok()?;
        Some(RateLimit {
            requests: NonZeroU32::new(requests)?,
            period_secs: (secs > 0).then_some(secs)?,
        })
    }

    /// `requests` per minute.
    pub const fn per_minute(requests: NonZeroU32) -> Self {
        RateLimit {
            requests,
            period_secs: 60,
        }
    }

    /// Requests allowed per period.
    pub fn requests(&self) -> u32 {
        self.requests.get()
    }

    /// The period.
    pub fn period(&self) -> Duration {
        Duration::from_secs(u64::from(self.period_secs))
    }

    pub(crate) fn quota(&self) -> Quota {
        let per_request = self.period() / self.requests.get();
        Quota::with_period(per_request.max(Duration::from_nanos(1)))
            .unwrap_or_else(|| Quota::per_second(self.requests))
            .allow_burst(self.requests)
    }
}

impl FromStr for RateLimit {
    type Err = InvalidRate;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (requests, period) = text.trim().split_once('/').ok_or(InvalidRate)?;
        let requests: u32 = requests.trim().parse().map_err(|_| InvalidRate)?;
        let period = period.trim();
        let split = period
            .find(|c: char| !c.is_ascii_digit())
            .ok_or(InvalidRate)?;
        let (count, unit) = period.split_at(split);
        let count: u32 = if count.is_empty() {
            1
        } else {
            count.parse().map_err(|_| InvalidRate)?
        };
        let unit: u32 = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(InvalidRate),
        };
        let secs = count.checked_mul(unit).ok_or(InvalidRate)?;
        RateLimit::new(requests, Duration::from_secs(u64::from(secs))).ok_or(InvalidRate)
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.period_secs {
            1 => write!(f, "{}/s", self.requests),
            secs => write!(f, "{}/{secs}s", self.requests),
        }
    }
}

impl fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RateLimit({self})")
    }
}

crate::macros::serde_via_text!(RateLimit);

/// A key's standing against its rate once a request was counted: what
/// [`Principal::rate_limit`](crate::Principal::rate_limit) tells a handler, and what
/// the IETF `RateLimit` / `RateLimit-Policy` headers carry when
/// [`rate_limit_headers`](crate::auth::AuthenticatorBuilder::rate_limit_headers) is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitStatus {
    limit: RateLimit,
    remaining: u32,
    reset: Duration,
}

impl RateLimitStatus {
    /// The status after a decision: `remaining` requests left of `limit`'s burst.
    pub(crate) fn new(limit: RateLimit, remaining: u32) -> Self {
        let n = limit.requests();
        let remaining = remaining.min(n);
        // GCRA refills one request every period / n: the whole burst is back after
        // (n - remaining) of those.
        let nanos = limit.period().as_nanos() * u128::from(n - remaining) / u128::from(n);
        RateLimitStatus {
            limit,
            remaining,
            reset: Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)),
        }
    }

    pub(crate) fn from_snapshot(limit: RateLimit, snapshot: &StateSnapshot) -> Self {
        Self::new(limit, snapshot.remaining_burst_capacity())
    }

    /// The rate that applies to the key (its own, or the layer's default).
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Requests the key may still make at once.
    pub fn remaining(&self) -> u32 {
        self.remaining
    }

    /// How long until the key's whole quota is available again.
    pub fn reset(&self) -> Duration {
        self.reset
    }

    /// The IETF headers (draft-ietf-httpapi-ratelimit-headers):
    /// `RateLimit-Policy: "key";q=<requests>;w=<period seconds>` and
    /// `RateLimit: "key";r=<remaining>;t=<seconds until the quota is back>`
    /// (rounded up).
    pub(crate) fn headers(&self) -> HeaderMap {
        let reset = self.reset.as_secs() + u64::from(self.reset.subsec_nanos() > 0);
        let policy = format!(
            "\"key\";q={};w={}",
            self.limit.requests(),
            self.limit.period_secs
        );
        let state = format!("\"key\";r={};t={reset}", self.remaining);
        let mut headers = HeaderMap::with_capacity(2);
        // Digits, quotes, `;` and `=` only: always valid header values.
        if let (Ok(policy), Ok(state)) =
            (HeaderValue::try_from(policy), HeaderValue::try_from(state))
        {
            headers.insert(HeaderName::from_static("ratelimit-policy"), policy);
            headers.insert(HeaderName::from_static("ratelimit"), state);
        }
        headers
    }
}

/// A verified key over its rate.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OverLimit {
    /// When the next request would be admitted.
    pub(crate) retry_after: Duration,
    /// The key's standing: nothing remaining.
    pub(crate) status: RateLimitStatus,
}

/// Every this many failed attempts, the state of addresses whose budget refilled is
/// dropped.
const PRUNE_EVERY: u64 = 4096;

/// The layer's limiters: the default per-key rate, one more per distinct rate a key
/// sets for itself (keyed by prefix, only ever for verified keys, so bounded by the
/// keys in use), and one for failed attempts per client address (pruned of idle
/// addresses, since anyone can fail). Limits shared by every instance are counted by
/// the authenticator's shared limiter instead, at the rates these hold.
pub(crate) struct Limiters {
    failure_rate: Option<RateLimit>,
    default: Option<(RateLimit, KeyLimiter)>,
    per_key: RwLock<HashMap<RateLimit, Arc<KeyLimiter>>>,
    failures: Option<DefaultKeyedRateLimiter<IpAddr>>,
    failures_seen: AtomicU64,
    /// Whether admitted requests report the key's standing (the rate-limit headers).
    report: bool,
}

impl Limiters {
    /// With `report`, admitted requests get the key's [`RateLimitStatus`].
    pub(crate) fn new(
        default: Option<RateLimit>,
        failures: Option<RateLimit>,
        report: bool,
    ) -> Self {
        Limiters {
            failure_rate: failures,
            report,
            default: default.map(|rate| (rate, key_limiter(rate))),
            per_key: RwLock::new(HashMap::new()),
            failures: failures.map(|rate| RateLimiter::keyed(rate.quota())),
            failures_seen: AtomicU64::new(0),
        }
    }

    /// Counts a request of a verified key against its rate (its own, else the
    /// default): `Ok(Some(status))` when admitted and reporting, `Ok(None)` when
    /// admitted otherwise (or no rate applies), `Err` when over.
    pub(crate) fn check_key(
        &self,
        prefix: &KeyPrefix,
        own: Option<RateLimit>,
    ) -> Result<Option<RateLimitStatus>, OverLimit> {
        if own.is_none() && self.default.is_none() {
            return Ok(None);
        }
        self.maybe_prune_keys();
        let over = |rate: RateLimit, limiter: &KeyLimiter| match limiter.check_key(prefix) {
            Ok(snapshot) => Ok(self
                .report
                .then(|| RateLimitStatus::from_snapshot(rate, &snapshot))),
            Err(not_until) => Err(OverLimit {
                retry_after: not_until.wait_time_from(limiter.clock().now()),
                status: RateLimitStatus::new(rate, 0),
            }),
        };
        match (own, &self.default) {
            (None, None) => Ok(None),
            (None, Some((rate, limiter))) => over(*rate, limiter),
            (Some(rate), Some((default, limiter))) if rate == *default => over(rate, limiter),
            (Some(rate), _) => {
                // Checked under the read lock: no reference count to bump.
                {
                    let per_key = self.per_key.read().unwrap_or_else(PoisonError::into_inner);
                    if let Some(limiter) = per_key.get(&rate) {
                        return over(rate, limiter);
                    }
                }
                let limiter = self
                    .per_key
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entry(rate)
                    .or_insert_with(|| Arc::new(key_limiter(rate)))
                    .clone();
                over(rate, &limiter)
            }
        }
    }

    /// Counts a failed attempt from `client` (`None`: an unknown client, counted in
    /// one shared bucket); `Err(retry_after)` while the client is over its budget.
    /// Only failing requests are counted and answered 429: the client's valid keys
    /// keep working.
    pub(crate) fn failed(&self, client: Option<IpAddr>) -> Result<(), Duration> {
        let Some(limiter) = &self.failures else {
            return Ok(());
        };
        if self
            .failures_seen
            .fetch_add(1, Relaxed)
            .is_multiple_of(PRUNE_EVERY)
        {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        limiter
            .check_key(&failure_bucket(client))
            .map_err(|not_until| not_until.wait_time_from(limiter.clock().now()))
    }

    /// Whether answers carry the key's standing (the rate-limit headers).
    pub(crate) fn sends_headers(&self) -> bool {
        self.report
    }

    pub(crate) fn counts_failures(&self) -> bool {
        self.failure_rate.is_some()
    }

    /// The rate every key gets unless it has its own.
    pub(crate) fn default_rate(&self) -> Option<RateLimit> {
        self.default.as_ref().map(|(rate, _)| *rate)
    }

    /// The failed-attempts budget per client.
    pub(crate) fn failure_rate(&self) -> Option<RateLimit> {
        self.failure_rate
    }

    /// Every so many checks on a thread, drops the state of keys whose quota has
    /// refilled (idle, revoked or deleted keys). A per-thread count costs no shared
    /// write on the request path.
    fn maybe_prune_keys(&self) {
        thread_local! {
            static CHECKS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
        }
        let due = CHECKS.with(|c| {
            let n = c.get().wrapping_add(1);
            c.set(n);
            n.is_multiple_of(1 << 16)
        });
        if due {
            if let Some((_, limiter)) = &self.default {
                limiter.retain_recent();
            }
            for limiter in self
                .per_key
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .values()
            {
                limiter.retain_recent();
            }
        }
    }
}

/// The failure budget's key for a client: IPv6 clients by their /64 (one host can
/// hold a whole /64), an unknown client in one shared bucket.
pub(crate) fn failure_bucket(client: Option<IpAddr>) -> IpAddr {
    match client {
        Some(IpAddr::V6(v6)) => IpAddr::V6(std::net::Ipv6Addr::from(
            u128::from(v6) & !((1u128 << 64) - 1),
        )),
        Some(v4) => v4,
        None => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
    }
}

impl fmt::Debug for Limiters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiters")
            .field("default", &self.default.as_ref().map(|(rate, _)| rate))
            .field("failures", &self.failure_rate)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rates() {
        for (text, n, secs) in [
            ("20/s", 20, 1),
            ("100/10s", 100, 10),
            ("5/m", 5, 60),
            ("1000/h", 1000, 3600),
            ("7/2d", 7, 172_800),
        ] {
            let rate: RateLimit = text.parse().unwrap();
            assert_eq!(
                (rate.requests(), rate.period().as_secs()),
                (n, secs),
                "{text}"
            );
        }
        for bad in [
            "", "20", "20/", "/s", "0/s", "20/0s", "20/x", "-1/s", "20/1.5s", "a/s",
        ] {
            assert!(bad.parse::<RateLimit>().is_err(), "{bad}");
        }
    }

    #[test]
    fn per_key_limit_and_retry_after() {
        let limiters = Limiters::new(Some("3/10s".parse().unwrap()), None, true);
        let a: KeyPrefix = "pk_live_0000000000000001".parse().unwrap();
        let b: KeyPrefix = "pk_live_0000000000000002".parse().unwrap();
        for left in (0..3).rev() {
            let status = limiters.check_key(&a, None).unwrap().unwrap();
            assert_eq!(status.remaining(), left);
            assert_eq!(status.limit().to_string(), "3/10s");
        }
        let over = limiters.check_key(&a, None).unwrap_err();
        assert_eq!(over.status.remaining(), 0);
        assert_eq!(over.status.reset(), Duration::from_secs(10));
        let wait = over.retry_after;
        assert!(
            wait > Duration::from_secs(2) && wait <= Duration::from_secs(4),
            "{wait:?}"
        );
        assert!(
            limiters.check_key(&b, None).is_ok(),
            "other keys unaffected"
        );
        // A key's own rate overrides the default.
        let own: RateLimit = "1/m".parse().unwrap();
        let c: KeyPrefix = "pk_live_0000000000000003".parse().unwrap();
        assert!(limiters.check_key(&c, Some(own)).is_ok());
        assert!(limiters.check_key(&c, Some(own)).is_err());
        // No limit at all.
        assert_eq!(
            Limiters::new(None, None, true).check_key(&a, None).unwrap(),
            None
        );
    }

    #[test]
    fn status_headers() {
        let rate: RateLimit = "100/10s".parse().unwrap();
        let status = RateLimitStatus::new(rate, 97);
        assert_eq!(status.reset(), Duration::from_millis(300));
        let headers = status.headers();
        assert_eq!(headers["ratelimit-policy"], "\"key\";q=100;w=10");
        assert_eq!(headers["ratelimit"], "\"key\";r=97;t=1");
        let full = RateLimitStatus::new(rate, 100);
        assert_eq!(full.headers()["ratelimit"], "\"key\";r=100;t=0");
        let empty = RateLimitStatus::new("5/m".parse().unwrap(), 0);
        assert_eq!(empty.headers()["ratelimit"], "\"key\";r=0;t=60");
    }

    #[test]
    fn failures_are_budgeted_per_address_and_ipv6_per_64() {
        let limiters = Limiters::new(None, Some("2/m".parse().unwrap()), false);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(limiters.failed(Some(ip)).is_ok());
        assert!(limiters.failed(Some(ip)).is_ok());
        let wait = limiters.failed(Some(ip)).unwrap_err();
        assert!(wait > Duration::ZERO);
        assert!(limiters.failed(Some(other)).is_ok());
        // Rotating through one /64 does not buy a fresh budget.
        for i in 0..2u128 {
            let v6 = IpAddr::V6(std::net::Ipv6Addr::from(
                0x2001_0db8_0000_0001_0000_0000_0000_0000 + i,
            ));
            assert!(limiters.failed(Some(v6)).is_ok());
        }
        let v6 = IpAddr::V6(std::net::Ipv6Addr::from(
            0x2001_0db8_0000_0001_ffff_0000_0000_0009u128,
        ));
        assert!(limiters.failed(Some(v6)).is_err());
        // Unknown clients share one bucket.
        assert!(limiters.failed(None).is_ok());
        assert!(limiters.failed(None).is_ok());
        assert!(limiters.failed(None).is_err());
    }
}
