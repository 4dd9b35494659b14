//! Rate-limit quotas shared by many instances: [`QuotaStore`] and [`QuotaBucket`].

use std::{
    fmt,
    time::{Duration, SystemTime},
};

use super::Result;
use crate::policy::RateLimit;

/// Where instances lease slices of the shared rate-limit quotas: what
/// [`AuthenticatorBuilder::shared_rate_limits`](crate::auth::AuthenticatorBuilder::shared_rate_limits)
/// counts in. [`InMemoryKeyStore`](super::InMemoryKeyStore) (instances in one process),
/// `RedisKeyStore` and `PostgresKeyStore` implement it.
///
/// Each instance *leases* slices of a key's quota from the store and spends them
/// locally, so most requests need no round trip while the instances together never
/// admit more than the key's limit allows. The store's part is one atomic operation,
/// [`QuotaStore::lease`]: it ends the instance's previous lease on the bucket (taking
/// back what was not spent), refills the bucket for the time that passed, and grants
/// a new slice. [`QuotaBucket::lease`] is that operation on a value, so a store only
/// needs to read, change and write one bucket atomically.
///
/// # The rule, and why it holds across instances
///
/// A bucket holds up to `n` tokens (the rate's requests) and refills at `n` per period,
/// the same GCRA budget the in-process limiter enforces. A granted token leaves the
/// bucket at once and is *held* by its lease until the lease ends (renewed, or expired
/// after [`LeaseRequest::lease_for`]). The bucket never refills past `n` minus the
/// tokens held, so the tokens in the bucket plus the unspent tokens held anywhere are
/// never more than `n`. Hence in any interval of length `w`, all instances together
/// admit at most `n + n·w/period` requests: what one limiter would. A holder must not
/// spend a slice after its lease ended: it counts the lease from before it sent the
/// request, so its own deadline is never later than the store's.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use tower_api_key::{policy::RateLimit, store::{LeaseRequest, QuotaBucket}};
///
/// let rate: RateLimit = "10/s".parse().unwrap();
/// let mut bucket = QuotaBucket::default();
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
///
/// // One instance takes a slice of 4: 6 stay in the bucket.
/// let lease = bucket.lease(now, &LeaseRequest::new("key:a", rate, 1).want(4));
/// assert_eq!((lease.granted(), lease.remaining()), (4, 6));
/// // Another takes the rest; the bucket is empty.
/// let lease = bucket.lease(now, &LeaseRequest::new("key:a", rate, 2).want(8));
/// assert_eq!((lease.granted(), lease.remaining()), (6, 0));
/// // While their leases run (a quarter of the period), the held tokens do not refill.
/// let soon = now + Duration::from_millis(100);
/// let lease = bucket.lease(soon, &LeaseRequest::new("key:a", rate, 3).want(1));
/// assert_eq!(lease.granted(), 0);
/// ```
///
/// # Implementing it
///
/// Implement it with `#[tower_api_key::async_trait]`: read the request's bucket (a
/// [`QuotaBucket::default`] when there is none), call [`QuotaBucket::lease`] with the
/// store's own clock, write it back, atomically with the read; keep it at least until
/// [`QuotaBucket::idle_at`] (then it equals a fresh bucket and may be dropped).
///
/// Like every store call, bound it in time and fail rather than hang: the limiter
/// then falls back to a per-instance share of each limit until the store answers
/// again, so an outage never refuses a valid key.
#[async_trait::async_trait]
pub trait QuotaStore: Send + Sync + 'static {
    /// Ends the holder's previous lease on the bucket (its unspent tokens go back) and
    /// grants up to [`LeaseRequest::want`] tokens.
    async fn lease(&self, request: &LeaseRequest<'_>) -> Result<Lease>;
}

#[async_trait::async_trait]
impl<T: QuotaStore + ?Sized> QuotaStore for std::sync::Arc<T> {
    async fn lease(&self, request: &LeaseRequest<'_>) -> Result<Lease> {
        (**self).lease(request).await
    }
}

/// One instance asking for a slice of a bucket's quota.
#[derive(Clone, Debug)]
pub struct LeaseRequest<'a> {
    bucket: &'a str,
    rate: RateLimit,
    holder: u64,
    want: u32,
    unspent: u32,
    lease_for: Duration,
}

impl<'a> LeaseRequest<'a> {
    /// `holder` asks for one token of `bucket`, limited to `rate`, for a quarter of
    /// the rate's period (at least 100 ms, at most a minute).
    ///
    /// Spent tokens stay held until their lease ends, and held tokens keep the bucket
    /// from refilling: a lease of a quarter period keeps that from ever costing a key
    /// more than a quarter of its burst.
    pub fn new(bucket: &'a str, rate: RateLimit, holder: u64) -> Self {
        LeaseRequest {
            bucket,
            rate,
            holder,
            want: 1,
            unspent: 0,
            lease_for: (rate.period() / 4)
                .clamp(Duration::from_millis(100), Duration::from_secs(60)),
        }
    }

    /// Asks for up to `want` tokens (at least one).
    pub fn want(mut self, want: u32) -> Self {
        self.want = want.max(1);
        self
    }

    /// Gives back `unspent` tokens of the holder's previous lease (at most what it
    /// was granted counts).
    pub fn unspent(mut self, unspent: u32) -> Self {
        self.unspent = unspent;
        self
    }

    /// How long the granted tokens may be spent (whole milliseconds).
    pub fn lease_for(mut self, lease_for: Duration) -> Self {
        self.lease_for = lease_for;
        self
    }

    /// The bucket's name: `key:<prefix>` for a key, `client:<address>` for a client's
    /// failed-attempts budget.
    pub fn bucket(&self) -> &str {
        self.bucket
    }

    /// The bucket's rate.
    pub fn rate(&self) -> RateLimit {
        self.rate
    }

    /// Who asks: one number per limiter, random at its start.
    pub fn holder(&self) -> u64 {
        self.holder
    }

    /// Tokens asked for.
    pub fn wanted(&self) -> u32 {
        self.want
    }

    /// Tokens of the previous lease given back.
    pub fn unspent_tokens(&self) -> u32 {
        self.unspent
    }

    /// How long a grant may be spent.
    pub fn lease_duration(&self) -> Duration {
        self.lease_for
    }

    fn lease_ms(&self) -> u64 {
        u64::try_from(self.lease_for.as_millis()).unwrap_or(u64::MAX)
    }
}

/// What a store granted: a slice of the bucket, and the bucket's standing after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    granted: u32,
    remaining: u32,
    retry_after: Duration,
    ask_after: Duration,
    holders: u32,
}

impl Lease {
    /// A store's answer from its parts, for stores that compute it themselves (the
    /// Redis store's script): `granted` tokens; `remaining` whole tokens left in the
    /// bucket; `retry_after` until the bucket has a token and `ask_after` until it has
    /// the slice asked for; `holders` holding leases now.
    pub fn from_parts(
        granted: u32,
        remaining: u32,
        retry_after: Duration,
        ask_after: Duration,
        holders: u32,
    ) -> Self {
        Lease {
            granted,
            remaining,
            retry_after,
            ask_after: ask_after.max(retry_after),
            holders,
        }
    }

    /// Tokens granted (may be fewer than asked, or none).
    pub fn granted(&self) -> u32 {
        self.granted
    }

    /// Whole tokens left in the bucket after the grant.
    pub fn remaining(&self) -> u32 {
        self.remaining
    }

    /// How long until the bucket has a token again (zero when it has one now).
    pub fn retry_after(&self) -> Duration {
        self.retry_after
    }

    /// How long until the bucket has a slice of the size asked for again (not before
    /// [`retry_after`](Self::retry_after)): a holder that spent what it was granted,
    /// or got nothing, asks again then.
    pub fn ask_after(&self) -> Duration {
        self.ask_after
    }

    /// How many holders have a lease on the bucket now.
    pub fn holders(&self) -> u32 {
        self.holders
    }
}

/// One holder's lease: tokens granted, spendable until `until` (ms since the epoch).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Held {
    holder: u64,
    granted: u32,
    until: u64,
}

/// A bucket's state, as a store keeps it: the tokens in it at a time, and the leases
/// holding the rest. [`lease`](Self::lease) is the whole algorithm; a store reads,
/// leases and writes back atomically. Text form: [`Display`](fmt::Display) and
/// [`parse`](Self::parse).
#[derive(Clone, Debug, PartialEq)]
pub struct QuotaBucket {
    /// Tokens in the bucket at `at` (infinite: never used, full).
    level: f64,
    /// Milliseconds since the epoch, store time.
    at: u64,
    held: Vec<Held>,
}

impl Default for QuotaBucket {
    /// A bucket never leased from: full.
    fn default() -> Self {
        QuotaBucket {
            level: f64::INFINITY,
            at: 0,
            held: Vec::new(),
        }
    }
}

/// Milliseconds since the epoch (0 before it).
pub(crate) fn epoch_ms(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn millis(ms: f64) -> Duration {
    Duration::from_millis(ms.max(0.0).ceil() as u64)
}

impl QuotaBucket {
    /// The store's operation at time `now` (the store's clock): drops expired leases,
    /// ends the holder's previous one (its unspent tokens, up to what it was granted,
    /// go back), refills for the time since the last lease without passing the rate's
    /// requests minus the tokens others hold, then grants up to what is asked.
    pub fn lease(&mut self, now: SystemTime, request: &LeaseRequest<'_>) -> Lease {
        let n = f64::from(request.rate.requests());
        let period_ms = request.rate.period().as_millis() as f64;
        let per_token_ms = period_ms / n;
        // Time never runs backwards in a bucket (a store's clock may step back).
        let now = epoch_ms(now).max(self.at);
        self.held.retain(|h| h.until > now);
        let mut back = 0.0;
        if let Some(at) = self.held.iter().position(|h| h.holder == request.holder) {
            let ended = self.held.swap_remove(at);
            back = f64::from(request.unspent.min(ended.granted));
        }
        let held: f64 = self.held.iter().map(|h| f64::from(h.granted)).sum();
        let refill = (now - self.at) as f64 / per_token_ms;
        self.level = (self.level + back + refill).min(n - held);
        self.at = now;
        let granted = (self.level.floor() as u32).min(request.want);
        if granted > 0 {
            self.level -= f64::from(granted);
            self.held.push(Held {
                holder: request.holder,
                granted,
                until: now.saturating_add(request.lease_ms()),
            });
        }
        // When the bucket will have a token, and when a slice: a holder that spent
        // its slice (or got none) asks again then. It counts one slice for each other
        // holder (they wait for theirs too), so that asks rarely come back empty, and
        // never waits past the bucket being as full as the held tokens let it be.
        let (retry_after, ask_after) = {
            let held = held + f64::from(granted);
            let room = n - held;
            let holders = self.held.len().max(1) as f64;
            let slice = (f64::from(request.want) * holders).min(room).max(1.0);
            let until = |tokens: f64| {
                let refill = (tokens - self.level).max(0.0) * per_token_ms;
                if room >= 1.0 {
                    millis(refill)
                } else {
                    // Held tokens keep the bucket empty until the first lease ends.
                    let first_end = self.held.iter().map(|h| h.until).min().unwrap_or(now);
                    millis((first_end - now) as f64 + refill)
                }
            };
            (until(1.0), until(slice))
        };
        Lease::from_parts(
            granted,
            self.level.max(0.0).floor() as u32,
            retry_after,
            ask_after,
            self.held.len() as u32,
        )
    }

    /// When the bucket becomes the same as a fresh one (full, no leases): a store may
    /// drop it then.
    pub fn idle_at(&self, rate: RateLimit) -> SystemTime {
        let n = f64::from(rate.requests());
        let per_token_ms = rate.period().as_millis() as f64 / n;
        let full = if self.level.is_finite() {
            self.at + ((n - self.level).max(0.0) * per_token_ms).ceil() as u64
        } else {
            self.at
        };
        let leases = self.held.iter().map(|h| h.until).max().unwrap_or(0);
        SystemTime::UNIX_EPOCH + Duration::from_millis(full.max(leases))
    }

    /// Reads the [text form](fmt::Display) back; `None` when it is not one.
    pub fn parse(text: &str) -> Option<Self> {
        let mut words = text.split(' ');
        let level = words.next()?.parse().ok()?;
        let at = words.next()?.parse().ok()?;
        let held = words
            .map(|word| {
                let mut parts = word.split(':');
                let held = Held {
                    holder: parts.next()?.parse().ok()?,
                    granted: parts.next()?.parse().ok()?,
                    until: parts.next()?.parse().ok()?,
                };
                parts.next().is_none().then_some(held)
            })
            .collect::<Option<Vec<_>>>()?;
        Some(QuotaBucket { level, at, held })
    }
}

/// `<level> <at ms>` then `<holder>:<granted>:<until ms>` per lease, space-separated.
impl fmt::Display for QuotaBucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.level, self.at)?;
        for h in &self.held {
            write!(f, " {}:{}:{}", h.holder, h.granted, h.until)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(1_800_000_000_000 + ms)
    }

    /// A request held for 10 s unless the test says otherwise.
    fn ask(holder: u64, want: u32) -> LeaseRequest<'static> {
        LeaseRequest::new("key:x", "10/s".parse().unwrap(), holder)
            .want(want)
            .lease_for(Duration::from_secs(10))
    }

    #[test]
    fn unspent_tokens_go_back_and_held_ones_do_not_refill() {
        let mut bucket = QuotaBucket::default();
        assert_eq!(bucket.lease(at(0), &ask(1, 5)).granted(), 5);
        // A second later the bucket would be full, but holder 1 still holds 5.
        let lease = bucket.lease(at(1000), &ask(2, 10));
        assert_eq!(
            (lease.granted(), lease.remaining(), lease.holders()),
            (5, 0, 2)
        );
        // Holder 1 renews giving back 3 unspent: only those can be granted.
        let lease = bucket.lease(at(1000), &ask(1, 10).unspent(3));
        assert_eq!(lease.granted(), 3);
        // Giving back more than was granted counts only what was granted.
        let lease = bucket.lease(at(1000), &ask(1, 10).unspent(99));
        assert_eq!(lease.granted(), 3);
    }

    #[test]
    fn expired_leases_stop_holding() {
        let mut bucket = QuotaBucket::default();
        let short = ask(1, 10).lease_for(Duration::from_millis(500));
        assert_eq!(bucket.lease(at(0), &short).granted(), 10);
        let lease = bucket.lease(at(100), &ask(2, 1));
        assert_eq!(lease.granted(), 0);
        // Until the lease ends at 500 ms, then one token every 100 ms.
        assert_eq!(lease.retry_after(), Duration::from_millis(500));
        // Refilled lazily: 5 tokens for the 500 ms since the last lease.
        assert_eq!(bucket.lease(at(600), &ask(2, 10)).granted(), 5);
    }

    #[test]
    fn admitted_over_any_window_stays_within_the_rate() {
        // Three holders, greedy, spending every token the moment it is granted.
        let mut bucket = QuotaBucket::default();
        let mut grants = Vec::new();
        let rate = "10/s".parse().unwrap();
        for ms in (0..20_000).step_by(7) {
            let holder = ms % 3;
            let request = LeaseRequest::new("key:x", rate, holder).want(4);
            let granted = bucket.lease(at(ms), &request).granted();
            grants.extend(std::iter::repeat_n(ms, granted as usize));
        }
        // 10/s: any window of w ms admits at most 10 + w / 100.
        for (i, &start) in grants.iter().enumerate() {
            for w in [0, 100, 999, 5_000] {
                let inside = grants[i..].iter().take_while(|&&t| t <= start + w).count();
                assert!(
                    inside as u64 <= 10 + w / 100,
                    "{inside} in {w} ms from {start}"
                );
            }
        }
        // And under demand it admits the rate: 10 + 200 over 20 s, less a slice.
        assert!(grants.len() >= 200, "{}", grants.len());
    }

    #[test]
    fn holders_that_wait_for_their_slice_still_get_the_rate() {
        // Four holders over 100/10s, each asking for slices of 12 and waiting as told.
        let rate: RateLimit = "100/10s".parse().unwrap();
        let mut bucket = QuotaBucket::default();
        let mut next = [0u64; 4];
        let (mut admitted, mut asks) = (0, 0);
        for ms in 0..60_000u64 {
            for (holder, next) in next.iter_mut().enumerate() {
                if ms < *next {
                    continue;
                }
                asks += 1;
                let request = LeaseRequest::new("key:x", rate, holder as u64).want(12);
                let lease = bucket.lease(at(ms), &request);
                admitted += lease.granted();
                *next = ms + lease.ask_after().as_millis() as u64;
            }
        }
        // 100 + 600 allowed over 60 s; at least 90 % of it, and no more.
        assert!((630..=700).contains(&admitted), "{admitted}");
        assert!(asks * 10 <= admitted, "{asks} asks for {admitted}");
    }

    #[test]
    fn ask_after_waits_for_the_slice() {
        let mut bucket = QuotaBucket::default();
        assert_eq!(bucket.lease(at(0), &ask(1, 10)).granted(), 10);
        let lease = bucket.lease(at(0), &ask(1, 4));
        assert_eq!(lease.granted(), 0);
        assert_eq!(lease.retry_after(), Duration::from_millis(100));
        assert_eq!(lease.ask_after(), Duration::from_millis(400));
    }

    #[test]
    fn text_form_round_trips() {
        let mut bucket = QuotaBucket::default();
        assert_eq!(
            QuotaBucket::parse(&bucket.to_string()),
            Some(bucket.clone())
        );
        bucket.lease(at(3), &ask(7, 2));
        bucket.lease(at(5), &ask(9, 1));
        let text = bucket.to_string();
        assert_eq!(QuotaBucket::parse(&text), Some(bucket));
        for bad in ["", "1", "x 1", "1 2 3:4", "1 2 3:4:5:6"] {
            assert_eq!(QuotaBucket::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn idle_at_is_when_it_is_full_and_unleased() {
        let rate: RateLimit = "10/s".parse().unwrap();
        let mut bucket = QuotaBucket::default();
        bucket.lease(at(0), &ask(1, 3).lease_for(Duration::from_millis(50)));
        assert_eq!(bucket.idle_at(rate), at(300));
    }
}
