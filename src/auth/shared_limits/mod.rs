//! The shared limiter: slices of each key's (and client's) quota leased from a
//! [`QuotaStore`] and spent locally; a per-instance share of each limit while the
//! store does not answer. The authenticator counts here instead of in the
//! in-process [`Limiters`](crate::policy::Limiters) when a quota store is given; it
//! lives beside the pipeline, since it uses both `policy` (the rates) and `store`.

use std::{
    collections::HashMap,
    fmt,
    future::Future,
    hash::{BuildHasher, RandomState},
    net::IpAddr,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use governor::{clock::Clock, middleware::StateInformationMiddleware, DefaultKeyedRateLimiter};
use rand::{rngs::SysRng, TryRng};

use crate::{
    key::{KeyPrefix, PrefixHashing},
    policy::{OverLimit, RateLimit, RateLimitStatus},
    store::{LeaseRequest, QuotaStore, StoreError},
};

mod flight;

use flight::{Flight, Landed};

/// A limit's answer: at once, or once the store has answered.
pub(crate) enum Limited<T, E> {
    /// Decided without waiting.
    Now(Result<T, E>),
    /// The store must be asked first (boxed: only a slice's first or last request).
    Wait(Pin<Box<dyn Future<Output = Result<T, E>> + Send>>),
}

impl<T, E> Limited<T, E> {
    /// The answer, waiting if it must.
    pub(crate) async fn resolve(self) -> Result<T, E> {
        match self {
            Limited::Now(answer) => answer,
            Limited::Wait(wait) => wait.await,
        }
    }

    pub(crate) fn map<U, F>(
        self,
        f: impl FnOnce(Result<T, E>) -> Result<U, F> + Send + 'static,
    ) -> Limited<U, F>
    where
        T: 'static,
        E: 'static,
    {
        match self {
            Limited::Now(answer) => Limited::Now(f(answer)),
            Limited::Wait(wait) => Limited::Wait(Box::pin(async move { f(wait.await) })),
        }
    }
}

/// What a shared quota is kept for: a verified key, or a client's failed attempts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Bucket {
    Key(KeyPrefix),
    Client(IpAddr),
}

impl Bucket {
    /// The name the store keeps it under.
    fn name(&self) -> String {
        match self {
            Bucket::Key(prefix) => format!("key:{prefix}"),
            Bucket::Client(ip) => format!("client:{ip}"),
        }
    }
}

/// Keys' slices are kept in this many maps, each behind its own lock, so that busy
/// keys do not queue on one lock.
const SHARDS: usize = 16;
/// Every this many store asks, slices that are over and done are dropped.
const PRUNE_EVERY: u32 = 1024;
/// How long after a failed ask the store is not asked again (the fallback applies).
const OUTAGE_BACKOFF: Duration = Duration::from_millis(500);
/// Leases end this much earlier here than in the store (µs): a coarse clock tick, and
/// the clocks of two machines running at rates a little apart.
const LEASE_MARGIN: u64 = 20_000;

/// Microseconds on a monotonic clock: the kernel's coarse one where there is one (a
/// few nanoseconds to read, at most a tick behind), else `Instant` since first use.
/// Read on every limited request, so it must be cheap; never compared across processes.
fn clock_us() -> u64 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use rustix::time::{clock_gettime, ClockId};
        let now = clock_gettime(ClockId::MonotonicCoarse);
        if let (Ok(secs), Ok(nanos)) = (u64::try_from(now.tv_sec), u64::try_from(now.tv_nsec)) {
            return secs.saturating_mul(1_000_000).saturating_add(nanos / 1_000);
        }
    }
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    micros(start.elapsed())
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// Tokens asked for at a time at first, and whenever the key is at its limit: a
/// fiftieth of the burst (at least one, at most 1,000). At the limit an instance
/// waits until its slice has refilled, so slices this small keep the key's admissions
/// even: four instances' slices are 8 % of a period's worth.
fn first_slice(rate: RateLimit) -> u32 {
    rate.requests().div_ceil(50).min(1000)
}

/// The most asked for at a time: an eighth of the burst (at most 1,000). While the
/// key is well under its limit, a slice spent before its lease ends doubles the next
/// one (busy instances ask rarely); one left over halves it (idle ones hold little).
fn largest_slice(rate: RateLimit) -> u32 {
    rate.requests().div_ceil(8).min(1000)
}

/// One bucket's slice on this instance. Times are [`clock_us`].
struct Slice {
    rate: RateLimit,
    /// Tokens to ask for next.
    want: u32,
    /// Whether the store granted anything at the last ask.
    granted: bool,
    /// Tokens still to spend.
    left: u32,
    /// Until when they may be spent.
    until: u64,
    /// The bucket's own tokens at the last lease (what the headers add to `left`).
    remaining: u32,
    /// Instances holding leases on the bucket at the last lease (this one included).
    holders: u32,
    /// Once the slice is spent, no store ask before this: requests are refused here.
    ask_at: u64,
    /// At the limit, the slice is spent at this instance's share of the rate: a token
    /// every `pace` (0: all at once), the next one not before `next`.
    pace: u64,
    /// Whether this instance waited for the key's quota since its last slice (it was
    /// refused for it, or the store granted nothing): the key is at its limit.
    waited: bool,
    next: u64,
    /// A store ask under way: other requests wait for it rather than ask too.
    asking: Option<Arc<Flight>>,
}

impl Slice {
    fn new(rate: RateLimit, now: u64) -> Self {
        Slice {
            rate,
            want: first_slice(rate),
            granted: false,
            left: 0,
            until: now,
            remaining: 0,
            holders: 1,
            ask_at: now,
            pace: 0,
            waited: false,
            next: now,
            asking: None,
        }
    }

    fn status(&self) -> RateLimitStatus {
        RateLimitStatus::new(self.rate, self.left.saturating_add(self.remaining))
    }

    /// Over the limit here: the next token of a paced slice, or the next ask.
    fn over(&self, now: u64) -> OverLimit {
        let next = if self.left > 0 && self.next < self.until {
            self.next
        } else {
            self.ask_at
        };
        OverLimit {
            retry_after: Duration::from_micros(next.saturating_sub(now)),
            status: RateLimitStatus::new(self.rate, 0),
        }
    }

    /// Sizes the next ask from how the last slice went: left over when its lease
    /// ended, ask for less; all spent in time, for more while the bucket had plenty
    /// left (twice a slice for every holder), else for the first size again (the key
    /// is at its limit).
    fn resize(&mut self, now: u64) {
        if self.left > 0 && now >= self.until {
            self.want = (self.want / 2).max(1);
        } else if self.granted && self.left == 0 {
            let plenty = self.want.saturating_mul(2).saturating_mul(self.holders);
            self.want = if self.remaining >= plenty {
                (self.want * 2).min(largest_slice(self.rate))
            } else {
                first_slice(self.rate)
            };
        }
    }

    /// Spends a token if the slice has one due.
    fn spend(&mut self, now: u64) -> Option<RateLimitStatus> {
        (self.left > 0 && now < self.until && now >= self.next).then(|| {
            self.left -= 1;
            self.next = self.next.saturating_add(self.pace);
            self.status()
        })
    }

    /// Whether the slice still has tokens to spend (due now or later in its lease).
    fn has_tokens(&self, now: u64) -> bool {
        self.left > 0 && now < self.until && self.next < self.until
    }

    /// Neither tokens to spend nor anything to wait for: it may be dropped.
    fn is_done(&self, now: u64) -> bool {
        self.asking.is_none() && now >= self.until && now >= self.ask_at
    }
}

/// Lands a flight however its ask ends (answered, or dropped with the request).
struct Landing {
    limits: Arc<SharedLimits>,
    bucket: Bucket,
    flight: Arc<Flight>,
}

impl Drop for Landing {
    fn drop(&mut self) {
        if let Some(slice) = self.limits.shard(self.bucket).get() {
            if slice
                .asking
                .as_ref()
                .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
            {
                slice.asking = None;
            }
        }
        self.flight.land();
    }
}

/// Whether the store answers, and the largest number of instances it reported
/// holding leases on one bucket lately (the fallback's divisor).
struct Health {
    down_until: Option<Instant>,
    peers: u32,
    peers_before: u32,
    peers_since: Instant,
    asks: u32,
}

type FallbackLimiter = DefaultKeyedRateLimiter<Bucket, StateInformationMiddleware>;

/// Slices of keys: only verified keys are counted, and their prefixes come from the OS
/// random source, so their fingerprints pick the map and hash in it.
type KeySlices = HashMap<KeyPrefix, Slice, PrefixHashing>;
/// Slices of clients' failed-attempts budgets: addresses are the callers' choice, so
/// a keyed hash.
type ClientSlices = HashMap<IpAddr, Slice>;

/// A bucket's map, locked, with the bucket's key.
enum Shard<'a> {
    Key(MutexGuard<'a, KeySlices>, KeyPrefix),
    Client(MutexGuard<'a, ClientSlices>, IpAddr),
}

impl Shard<'_> {
    /// The bucket's slice, made by `make` when there is none.
    fn slot(&mut self, make: impl FnOnce() -> Slice) -> &mut Slice {
        match self {
            Shard::Key(map, prefix) => map.entry(*prefix).or_insert_with(make),
            Shard::Client(map, ip) => map.entry(*ip).or_insert_with(make),
        }
    }

    /// The bucket's slice, if there is one.
    fn get(&mut self) -> Option<&mut Slice> {
        match self {
            Shard::Key(map, prefix) => map.get_mut(prefix),
            Shard::Client(map, ip) => map.get_mut(ip),
        }
    }
}

/// No code panics while holding these locks; a poisoned one is used as it is.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Limits shared by every instance through a [`QuotaStore`].
pub(crate) struct SharedLimits {
    store: Arc<dyn QuotaStore>,
    /// This limiter in the store's leases: random, so instances never collide.
    holder: u64,
    keys: [Mutex<KeySlices>; SHARDS],
    clients: Mutex<ClientSlices>,
    health: Mutex<Health>,
    /// Per-instance shares of the limits while the store is down, by share.
    fallback: Mutex<HashMap<RateLimit, Arc<FallbackLimiter>>>,
}

impl SharedLimits {
    pub(crate) fn new(store: Arc<dyn QuotaStore>) -> Self {
        let mut holder = [0u8; 8];
        // Without the OS random source, the time: still distinct per instance.
        let holder = match SysRng.try_fill_bytes(&mut holder) {
            Ok(()) => u64::from_le_bytes(holder),
            Err(_) => RandomState::new().hash_one(Instant::now()),
        };
        SharedLimits {
            store,
            holder,
            keys: std::array::from_fn(|_| Mutex::default()),
            clients: Mutex::default(),
            health: Mutex::new(Health {
                down_until: None,
                peers: 1,
                peers_before: 1,
                peers_since: Instant::now(),
                asks: 0,
            }),
            fallback: Mutex::default(),
        }
    }

    fn shard(&self, bucket: Bucket) -> Shard<'_> {
        match bucket {
            Bucket::Key(prefix) => {
                let at = prefix.fingerprint() as usize % SHARDS;
                Shard::Key(lock(&self.keys[at]), prefix)
            }
            Bucket::Client(ip) => Shard::Client(lock(&self.clients), ip),
        }
    }

    /// Counts one request against the bucket's shared quota.
    pub(crate) fn check(
        self: &Arc<Self>,
        bucket: Bucket,
        rate: RateLimit,
    ) -> Limited<RateLimitStatus, OverLimit> {
        let now = clock_us();
        let mut shard = self.shard(bucket);
        let slice = shard.slot(|| Slice::new(rate, now));
        if slice.rate != rate {
            // The key's rate changed: its slice was leased under the old one.
            *slice = Slice::new(rate, now);
        }
        if let Some(status) = slice.spend(now) {
            return Limited::Now(Ok(status));
        }
        if slice.has_tokens(now) {
            // Paced: the next token is due soon; no need to ask the store.
            return Limited::Now(Err(slice.over(now)));
        }
        if let Some(flight) = &slice.asking {
            let (limits, flight) = (self.clone(), flight.clone());
            return Limited::Wait(Box::pin(async move {
                Landed(flight).await;
                limits.check(bucket, rate).resolve().await
            }));
        }
        if now < slice.ask_at {
            slice.waited = true;
            return Limited::Now(Err(slice.over(now)));
        }
        if self.is_down() {
            drop(shard);
            return Limited::Now(self.fallback(bucket, rate));
        }
        // Tokens of a lease that ended are the store's again: nothing to give back.
        let unspent = if now < slice.until { slice.left } else { 0 };
        slice.resize(now);
        let want = slice.want;
        slice.left = 0;
        let flight = Arc::new(Flight::default());
        slice.asking = Some(flight.clone());
        drop(shard);
        let landing = Landing {
            limits: self.clone(),
            bucket,
            flight,
        };
        Limited::Wait(Box::pin(async move {
            let answer = landing.limits.ask(bucket, rate, want, unspent).await;
            drop(landing);
            answer
        }))
    }

    /// Asks the store for a slice, then spends from it; on failure, the fallback.
    async fn ask(
        self: &Arc<Self>,
        bucket: Bucket,
        rate: RateLimit,
        want: u32,
        unspent: u32,
    ) -> Result<RateLimitStatus, OverLimit> {
        let name = bucket.name();
        let request = LeaseRequest::new(&name, rate, self.holder)
            .want(want)
            .unspent(unspent);
        // Counted from before the ask, so the lease ends here no later than there.
        let sent = clock_us();
        let lease = match self.store.lease(&request).await {
            Ok(lease) => lease,
            Err(error) => {
                self.went_down(&error);
                return self.fallback(bucket, rate);
            }
        };
        self.answered(lease.holders());
        let now = clock_us();
        let mut shard = self.shard(bucket);
        let slice = shard.slot(|| Slice::new(rate, now));
        slice.left = lease.granted();
        slice.granted = lease.granted() > 0;
        let until = (sent + micros(request.lease_duration())).saturating_sub(LEASE_MARGIN);
        slice.until = until;
        slice.remaining = lease.remaining();
        slice.holders = lease.holders().max(1);
        slice.ask_at = sent + micros(lease.ask_after());
        // At the limit — this instance had to wait for the quota, or was pacing already,
        // and the bucket kept less than a slice for every holder — spend the slice at
        // this instance's share of the rate rather than at once: the key's admissions
        // stay even across instances, each asking again about when its next slice is
        // in. Otherwise (well under the limit, or the rest of a burst) a slice is
        // spent as requests come.
        slice.next = now;
        let low = lease.remaining() < lease.granted().saturating_mul(slice.holders);
        let at_limit = low && (slice.waited || slice.pace > 0);
        slice.waited = lease.granted() == 0;
        slice.pace = if lease.granted() > 1 && at_limit {
            let per_token = micros(rate.period()) / u64::from(rate.requests());
            // A little faster than the share (3/4 of its interval), so that what
            // waited in the store while the instances turned from burst to rate is
            // caught up within a few slices; the store grants no more than the rate.
            let share = per_token.saturating_mul(u64::from(lease.holders().max(1))) * 3 / 4;
            // All of it spendable within most of the lease.
            share.min(until.saturating_sub(now) * 4 / 5 / u64::from(lease.granted()))
        } else {
            0
        };
        match slice.spend(now) {
            Some(status) => Ok(status),
            None => Err(slice.over(now)),
        }
    }

    fn is_down(&self) -> bool {
        lock(&self.health)
            .down_until
            .is_some_and(|until| Instant::now() < until)
    }

    fn went_down(&self, error: &StoreError) {
        let (first, peers) = {
            let mut health = lock(&self.health);
            let first = health.down_until.is_none();
            health.down_until = Some(Instant::now() + OUTAGE_BACKOFF);
            (first, health.peers.max(health.peers_before))
        };
        if first {
            tracing::warn!(
                error = %error,
                instances = peers,
                "shared rate limits: the quota store did not answer; each instance \
                 now admits its share of every limit (the limit divided by the \
                 instances last seen) until it answers again",
            );
        }
    }

    /// The store answered: limits are shared again; notes how many instances hold
    /// leases on the bucket, and now and then drops slices that are over and done.
    fn answered(&self, holders: u32) {
        let prune = {
            let mut health = lock(&self.health);
            if health.down_until.take().is_some() {
                tracing::info!("shared rate limits: the quota store answers again");
            }
            let now = Instant::now();
            if now.duration_since(health.peers_since) > Duration::from_secs(60) {
                health.peers_before = health.peers;
                health.peers = 1;
                health.peers_since = now;
            }
            health.peers = health.peers.max(holders);
            health.asks = health.asks.wrapping_add(1);
            health.asks.is_multiple_of(PRUNE_EVERY)
        };
        if prune {
            self.prune(clock_us());
        }
    }

    /// Drops the slices that are over and done: no tokens to spend, nothing to wait
    /// for. What stays is bounded by the buckets used within the last lease.
    fn prune(&self, now: u64) {
        for shard in &self.keys {
            lock(shard).retain(|_, s| !s.is_done(now));
        }
        lock(&self.clients).retain(|_, s| !s.is_done(now));
    }

    /// While the store does not answer: this instance's share of the limit, the
    /// limit divided by the most instances the store reported on one bucket within
    /// the last one to two minutes (rounded up; the whole limit when alone).
    fn fallback(&self, bucket: Bucket, rate: RateLimit) -> Result<RateLimitStatus, OverLimit> {
        let peers = {
            let health = lock(&self.health);
            health.peers.max(health.peers_before).max(1)
        };
        let share = RateLimit::new(rate.requests().div_ceil(peers), rate.period()).unwrap_or(rate);
        let limiter = lock(&self.fallback)
            .entry(share)
            .or_insert_with(|| {
                Arc::new(
                    governor::RateLimiter::keyed(share.quota())
                        .with_middleware::<StateInformationMiddleware>(),
                )
            })
            .clone();
        match limiter.check_key(&bucket) {
            Ok(snapshot) => Ok(RateLimitStatus::from_snapshot(share, &snapshot)),
            Err(not_until) => Err(OverLimit {
                retry_after: not_until.wait_time_from(limiter.clock().now()),
                status: RateLimitStatus::new(share, 0),
            }),
        }
    }
}

#[cfg(test)]
impl SharedLimits {
    /// Slices held here now.
    fn slices(&self) -> usize {
        self.keys.iter().map(|s| lock(s).len()).sum::<usize>() + lock(&self.clients).len()
    }
}

impl fmt::Debug for SharedLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedLimits").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst},
        task::Poll,
    };

    use super::*;
    use crate::store::{InMemoryKeyStore, Lease, StoreError};

    /// A quota store that counts its asks, and fails while told to.
    #[derive(Default)]
    struct Counting {
        inner: InMemoryKeyStore,
        asks: AtomicU32,
        wants: Mutex<Vec<u32>>,
        failing: AtomicBool,
        slow: AtomicBool,
    }

    #[async_trait::async_trait]
    impl QuotaStore for Counting {
        async fn lease(&self, request: &LeaseRequest<'_>) -> crate::store::Result<Lease> {
            self.asks.fetch_add(1, SeqCst);
            self.wants.lock().unwrap().push(request.wanted());
            if self.slow.load(SeqCst) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if self.failing.load(SeqCst) {
                return Err(StoreError::Timeout);
            }
            self.inner.lease(request).await
        }
    }

    fn prefix(n: u8) -> KeyPrefix {
        format!("pk_live_00000000000000{n:02x}").parse().unwrap()
    }

    fn instances(store: &Arc<Counting>, n: usize) -> Vec<Arc<SharedLimits>> {
        (0..n)
            .map(|_| Arc::new(SharedLimits::new(store.clone())))
            .collect()
    }

    async fn admitted(limits: &Arc<SharedLimits>, bucket: Bucket, rate: RateLimit) -> bool {
        limits.check(bucket, rate).resolve().await.is_ok()
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn instances_together_admit_the_limit_not_each_of_them() {
        runtime().block_on(async {
            let store = Arc::new(Counting::default());
            let rate: RateLimit = "200/m".parse().unwrap();
            let all = instances(&store, 4);
            let mut admitted_total = 0;
            for i in 0..1_000 {
                admitted_total +=
                    u32::from(admitted(&all[i % 4], Bucket::Key(prefix(1)), rate).await);
            }
            // At most the limit; at the end of the burst, up to a first-size slice
            // (4) per instance may still wait in the store for its turn.
            assert!(
                (184..=200).contains(&admitted_total),
                "{admitted_total} admitted"
            );
            // Slices of 4 growing to 25: a few asks, then refusals decided locally.
            let asks = store.asks.load(SeqCst);
            assert!(asks <= 30, "{asks} asks for 1,000 requests");
            // Another key has a quota of its own.
            assert!(admitted(&all[0], Bucket::Key(prefix(2)), rate).await);
        });
    }

    #[test]
    fn the_headers_tell_the_keys_remaining_quota_not_the_instances() {
        runtime().block_on(async {
            let store = Arc::new(Counting::default());
            let rate: RateLimit = "80/m".parse().unwrap();
            let [a, b] = <[_; 2]>::try_from(instances(&store, 2)).ok().unwrap();
            let first = a
                .check(Bucket::Key(prefix(1)), rate)
                .resolve()
                .await
                .unwrap();
            assert_eq!(first.remaining(), 79);
            let second = b
                .check(Bucket::Key(prefix(1)), rate)
                .resolve()
                .await
                .unwrap();
            // b sees what a leased gone from the bucket: 80 - 2 - 2, plus its own 1.
            assert_eq!(second.remaining(), 77);
        });
    }

    #[test]
    fn a_store_outage_falls_back_to_a_share_and_recovers() {
        runtime().block_on(async {
            let store = Arc::new(Counting::default());
            let rate: RateLimit = "40/m".parse().unwrap();
            let [a, b] = <[_; 2]>::try_from(instances(&store, 2)).ok().unwrap();
            // Both lease on one key (slices of one): a hears of two holders.
            let busy: RateLimit = "8/m".parse().unwrap();
            for limits in [&a, &b, &a] {
                assert!(admitted(limits, Bucket::Key(prefix(1)), busy).await);
            }
            store.failing.store(true, SeqCst);
            // Another key, store down: a's share is 40 / 2 = 20, and no error.
            let key = Bucket::Key(prefix(2));
            let mut admitted_here = 0;
            for _ in 0..50 {
                admitted_here += u32::from(admitted(&a, key, rate).await);
            }
            assert_eq!(admitted_here, 20);
            // One failed ask, then no more until the backoff is over.
            assert_eq!(store.asks.load(SeqCst), 4);
            store.failing.store(false, SeqCst);
            tokio::time::sleep(OUTAGE_BACKOFF).await;
            assert!(admitted(&a, Bucket::Key(prefix(3)), rate).await);
            assert_eq!(store.asks.load(SeqCst), 5, "asks the store again");
            assert!(!a.is_down());
        });
    }

    #[test]
    fn concurrent_requests_wait_for_one_ask() {
        runtime().block_on(async {
            let store = Arc::new(Counting::default());
            store.slow.store(true, SeqCst);
            let rate: RateLimit = "5000/m".parse().unwrap();
            let limits = Arc::new(SharedLimits::new(store.clone()));
            let checks = (0..50).map(|_| limits.check(Bucket::Key(prefix(1)), rate).resolve());
            let answers = futures_join(checks).await;
            assert!(answers.iter().all(Result::is_ok));
            // A first slice of 100 covers all 50: one ask.
            assert_eq!(store.asks.load(SeqCst), 1);
        });
    }

    #[test]
    fn slices_grow_while_spent_in_time_and_shrink_when_not() {
        runtime().block_on(async {
            let store = Arc::new(Counting::default());
            let limits = Arc::new(SharedLimits::new(store.clone()));
            let busy: RateLimit = "800/m".parse().unwrap();
            for _ in 0..700 {
                assert!(admitted(&limits, Bucket::Key(prefix(1)), busy).await);
            }
            // A fiftieth, doubling up to an eighth of the burst while the bucket has
            // plenty; back to a fiftieth near the limit (188 left, under 2 x 100).
            assert_eq!(
                *store.wants.lock().unwrap(),
                [16, 32, 64, 100, 100, 100, 100, 100, 16, 32, 64]
            );
            store.wants.lock().unwrap().clear();
            // 80/s: a slice of 2 held for a quarter second; one left over halves the
            // next ask.
            let quiet: RateLimit = "80/s".parse().unwrap();
            assert!(admitted(&limits, Bucket::Key(prefix(2)), quiet).await);
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(admitted(&limits, Bucket::Key(prefix(2)), quiet).await);
            assert_eq!(*store.wants.lock().unwrap(), [2, 1]);
        });
    }

    #[test]
    fn slices_of_idle_keys_are_dropped() {
        runtime().block_on(async {
            let store = Arc::new(Counting::default());
            let rate: RateLimit = "8/s".parse().unwrap();
            let limits = Arc::new(SharedLimits::new(store.clone()));
            for n in 0..100 {
                assert!(admitted(&limits, Bucket::Key(prefix(n)), rate).await);
            }
            limits.prune(clock_us());
            assert_eq!(limits.slices(), 100, "leases still running");
            // Leases of a quarter second, less the margin.
            limits.prune(clock_us() + 300_000);
            assert_eq!(limits.slices(), 0);
        });
    }

    /// Polls every future to completion together (a tiny `join_all`).
    async fn futures_join<F: Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
        let mut pending: Vec<Pin<Box<F>>> = futures.map(Box::pin).collect();
        let mut done: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
        std::future::poll_fn(|cx| {
            for (future, out) in pending.iter_mut().zip(done.iter_mut()) {
                if out.is_none() {
                    if let Poll::Ready(value) = future.as_mut().poll(cx) {
                        *out = Some(value);
                    }
                }
            }
            if done.iter().all(Option::is_some) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
        done.into_iter().map(Option::unwrap).collect()
    }
}
