use std::{
    collections::HashMap,
    fmt,
    sync::{
        atomic::{
            AtomicBool, AtomicU64,
            Ordering::{Relaxed, SeqCst},
        },
        Arc, Mutex, PoisonError, RwLock,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use super::{
    usage_hour, KeyId, KeyRecord, KeyStore, Result, UsageBatch, UsageBucket, UsageCounts,
    UsageDelta, UsageOutcome, HOUR_MS,
};
use crate::key::{KeyPrefix, PrefixHashing};

mod counts;
mod entry;

use counts::{Counts, Hour};
pub(crate) use entry::UseSlot;
use entry::{Entry, Shared};

/// Above this many keys, idle keys with nothing left to write are forgotten.
const PRUNE_AT: usize = 4096;

/// The last use of each key, and how many requests each key had hour by hour, kept in
/// memory and written back to the store at most once per key (last use) and once per
/// process (usage counts) per interval.
///
/// The layer notes every successful request here — a few atomic operations, no store
/// write. A write to the store ([`KeyStore::record_last_use`]) happens when the stored
/// time is older than the interval, and at most once per key per interval from this
/// process even while writes fail. Management views read the merged value
/// ([`LastUse::last_used_at`]), so the instance that served a request shows the use at
/// once; [`LastUse::flush`] writes what is still pending, e.g. on graceful shutdown.
///
/// With a store that [keeps usage](KeyStore::keeps_usage) (every built-in one), the
/// layer also counts each key's requests by [`UsageOutcome`] — admitted, and refused
/// for a reason that is the key's — an atomic increment per request. The counts go to
/// the store ([`KeyStore::add_usage`]) in one batch per interval from this process,
/// where every instance's are summed; [`LastUse::usage`] reads the stored hours with
/// this process's pending counts added, so a request shows at once where it was
/// served. The store keeps hours for [`LastUse::usage_retention`] (90 days by default).
///
/// Only verified keys are noted, so memory is bounded by the keys in use, never by what
/// callers send. Cloning is cheap and clones share the same log.
///
/// A record that a store keeps in memory (the in-memory store's, the cache's) carries
/// (in 24 bytes of its own) the way to its entry in the first log that notes it, and
/// that log then notes it without a lookup or a lock; the entry (about 140 bytes) then
/// lives as long as the store keeps that record, even once the log has forgotten it or
/// been dropped. Layers over one store should share one authenticator (or one
/// `LastUse`): another log notes the same records through its map, as it does records
/// a store reads afresh for each request.
///
/// ```
/// use std::time::Duration;
/// use tower_api_key::{auth::Authenticator, store::{InMemoryKeyStore, LastUse}};
///
/// let last_use = LastUse::new(Duration::from_secs(300));
/// let auth = Authenticator::builder(InMemoryKeyStore::new())
///     .last_use(last_use.clone())
///     .build();
/// ```
#[derive(Clone)]
pub struct LastUse {
    inner: Arc<Log>,
}

struct Log {
    /// Tells this log apart from every other in the process (see [`UseSlot`]).
    id: u64,
    interval_ms: u64,
    keys: RwLock<HashMap<KeyPrefix, Arc<Entry>, PrefixHashing>>,
    /// When the next usage batch is due (ms since the epoch).
    usage_due: AtomicU64,
    /// How long the store keeps usage hours (ms).
    retention_ms: AtomicU64,
    /// What the log's entries reach too.
    shared: Arc<Shared>,
}

fn millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn from_millis(ms: u64) -> Option<SystemTime> {
    (ms > 0).then(|| UNIX_EPOCH + Duration::from_millis(ms))
}

/// The time a use is noted at, in ms since the epoch: the kernel's coarse real-time
/// clock where there is one (a few nanoseconds to read, at most a clock tick — a few
/// milliseconds — behind), else the system clock. Read as a number, with no
/// `SystemTime` in between, as it is stored. Bookkeeping only: no refusal depends on it.
#[inline(always)]
pub(crate) fn last_use_clock_ms() -> u64 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use rustix::time::{clock_gettime, ClockId};
        let now = clock_gettime(ClockId::RealtimeCoarse);
        if let (Ok(secs), Ok(nanos)) = (u64::try_from(now.tv_sec), u64::try_from(now.tv_nsec)) {
            return secs.saturating_mul(1000).saturating_add(nanos / 1_000_000);
        }
    }
    millis(SystemTime::now())
}

/// How long usage hours are kept by default: 90 days.
const DEFAULT_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);

fn ms_of(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl LastUse {
    /// A log that writes each key's last use at most once per `interval`, and this
    /// process's usage counts once per `interval`. `Duration::ZERO` writes on every
    /// request.
    pub fn new(interval: Duration) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        let interval_ms = ms_of(interval);
        LastUse {
            inner: Arc::new(Log {
                id: NEXT_ID.fetch_add(1, Relaxed),
                interval_ms,
                keys: RwLock::new(HashMap::default()),
                usage_due: AtomicU64::new(last_use_clock_ms().saturating_add(interval_ms)),
                retention_ms: AtomicU64::new(ms_of(DEFAULT_RETENTION)),
                shared: Arc::default(),
            }),
        }
    }

    /// Keeps usage hours in the store for `retention` (default 90 days): older hours
    /// are dropped as batches are written.
    #[must_use]
    pub fn with_usage_retention(self, retention: Duration) -> Self {
        self.inner.retention_ms.store(ms_of(retention), Relaxed);
        self
    }

    /// How long usage hours are kept.
    pub fn usage_retention(&self) -> Duration {
        Duration::from_millis(self.inner.retention_ms.load(Relaxed))
    }

    /// Counts requests from now on (the authenticator turns it on for a store that
    /// keeps usage).
    pub(crate) fn count_usage(&self) {
        self.inner.shared.counting.store(true, Relaxed);
    }

    /// Whether requests are counted.
    pub(crate) fn counts_usage(&self) -> bool {
        self.inner.shared.counting.load(Relaxed)
    }

    /// The write interval.
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.inner.interval_ms)
    }

    /// Notes a use of `record`'s key at `ms` since the epoch (and, when counting, an
    /// admitted request); `true` when the caller should write the last use to the
    /// store now (the write is then counted as done for this interval). `kept`: the
    /// store keeps this very record in memory between requests, so its slot is worth
    /// filling.
    #[inline(always)]
    pub(crate) fn note_at(&self, record: &KeyRecord, ms: u64, kept: bool) -> bool {
        self.note_outcome(record, ms, kept, UsageOutcome::Admitted)
    }

    /// Counts a request refused for a reason that is the key's (see
    /// [`UsageOutcome`]); nothing when not counting.
    pub(crate) fn count_refusal(
        &self,
        record: &KeyRecord,
        ms: u64,
        kept: bool,
        outcome: UsageOutcome,
    ) {
        if self.counts_usage() {
            self.note_outcome(record, ms, kept, outcome);
        }
    }

    /// Whether this process's usage batch is due at `ms`: `true` for one caller per
    /// interval, which then writes it ([`flush_usage`](Self::flush_usage)).
    #[inline(always)]
    pub(crate) fn usage_due(&self, ms: u64) -> bool {
        let due = self.inner.usage_due.load(Relaxed);
        self.counts_usage()
            && ms >= due
            && self
                .inner
                .usage_due
                .compare_exchange(
                    due,
                    ms.saturating_add(self.inner.interval_ms),
                    Relaxed,
                    Relaxed,
                )
                .is_ok()
    }

    /// Counts `outcome` (when counting) and, for an admitted request, notes the use.
    ///
    /// Through the record's slot, on the path of nearly every request: a few loads
    /// and the count's increment. The log's map is the way only for a record noted
    /// here for the first time, or whose entry was pruned.
    #[inline(always)]
    fn note_outcome(&self, record: &KeyRecord, ms: u64, kept: bool, outcome: UsageOutcome) -> bool {
        let mut to_count = self.counts_usage().then_some(outcome);
        let slot = record
            .use_slot
            .0
            .get()
            .filter(|(log, entry)| {
                *log == self.inner.id && entry.prefix.same_as(&record.prefix) == 1
            })
            .map(|(_, entry)| entry);
        if let Some(entry) = slot {
            if let Some(outcome) = to_count.take() {
                entry.count(outcome, ms);
            }
            let due =
                outcome == UsageOutcome::Admitted && entry.note(ms, record, self.inner.interval_ms);
            // Pruned before the use was noted? Then the use is noted again in the
            // map, where the log looks (the order of the two is total: see `prune`);
            // the count stays in this entry, which `Entry::count` made an orphan.
            if !entry.pruned.load(SeqCst) {
                return due;
            }
        }
        self.note_in_map(record, ms, kept, outcome, to_count, slot)
    }

    /// [`note_outcome`](Self::note_outcome) through the log's map; `to_count`: the
    /// outcome, unless counted already (in the record's pruned entry, `slot`).
    #[cold]
    #[inline(never)]
    fn note_in_map(
        &self,
        record: &KeyRecord,
        ms: u64,
        kept: bool,
        outcome: UsageOutcome,
        to_count: Option<UsageOutcome>,
        slot: Option<&Arc<Entry>>,
    ) -> bool {
        let interval = self.inner.interval_ms;
        let used = outcome == UsageOutcome::Admitted;
        // Under the log's lock from here: a prune (which takes it to write) cannot take
        // the entry away between finding it and noting the use.
        {
            let keys = self.read();
            if let Some(entry) = keys.get(&record.prefix) {
                self.claim(record, entry, kept);
                if let Some(outcome) = to_count {
                    entry.count(outcome, ms);
                }
                return used && entry.note(ms, record, interval);
            }
        }
        let mut keys = self
            .inner
            .keys
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if keys.len() >= PRUNE_AT {
            let horizon = ms.saturating_sub(self.inner.interval_ms);
            keys.retain(|_, entry| !entry.prune(horizon));
        }
        let entry = keys.entry(record.prefix).or_insert_with(|| match slot {
            // The record's own entry, pruned: back into the log with what it holds, so
            // the slot is good again.
            Some(pruned) => {
                pruned.pruned.store(false, SeqCst);
                pruned.clone()
            }
            None => Arc::new(Entry {
                id: record.id.clone(),
                prefix: record.prefix,
                pruned: AtomicBool::new(false),
                seen: AtomicU64::new(0),
                attempted: AtomicU64::new(0),
                stored: AtomicU64::new(0),
                counts: Counts::default(),
                orphaned: AtomicBool::new(false),
                log: self.inner.shared.clone(),
            }),
        });
        self.claim(record, entry, kept);
        if let Some(outcome) = to_count {
            entry.count(outcome, ms);
        }
        used && entry.note(ms, record, interval)
    }

    /// Points a kept record's empty slot at its entry in this log: the first log to
    /// note a record keeps the slot; later ones take the map.
    ///
    /// While counting, a record only the caller holds gets its slot too: a scope check
    /// later in the request counts through it ([`LastUse::count_scope_refusal`]).
    fn claim(&self, record: &KeyRecord, entry: &Arc<Entry>, kept: bool) {
        if (kept || self.counts_usage()) && record.use_slot.0.get().is_none() {
            let _ = record.use_slot.0.set((self.inner.id, entry.clone()));
        }
    }

    /// Records that `at` was written to the store for this key.
    pub(crate) fn stored(&self, record: &KeyRecord, at: SystemTime) {
        if let Some(entry) = self.read().get(&record.prefix) {
            entry.stored.fetch_max(millis(at), Relaxed);
        }
    }

    /// The key's last use: the later of the stored value and what this process has
    /// seen but not yet written.
    pub fn last_used_at(&self, record: &KeyRecord) -> Option<SystemTime> {
        let seen = self
            .read()
            .get(&record.prefix)
            .and_then(|e| from_millis(e.seen.load(Relaxed)));
        seen.max(record.last_used_at)
    }

    /// Writes every use seen here and not yet in the store (failed writes included);
    /// returns how many keys were written. Call it on graceful shutdown so nothing is
    /// lost. Stops at the first store error (what was not written stays pending).
    pub async fn flush(&self, store: &dyn KeyStore) -> Result<usize> {
        let pending: Vec<(KeyPrefix, KeyId, u64)> = self
            .read()
            .iter()
            .filter_map(|(prefix, e)| {
                let seen = e.seen.load(Relaxed);
                (seen > e.stored.load(Relaxed)).then(|| (*prefix, e.id.clone(), seen))
            })
            .collect();
        for (prefix, id, seen) in &pending {
            if let Some(at) = from_millis(*seen) {
                store.record_last_use(id, at).await?;
            }
            if let Some(entry) = self.read().get(prefix) {
                entry.stored.fetch_max(*seen, Relaxed);
            }
        }
        Ok(pending.len())
    }

    /// Writes the usage counted here and not yet in the store, in one batch, and
    /// drops hours past the retention; returns how many key-hours were written. On a
    /// store error nothing is lost: the counts stay pending for the next batch.
    pub async fn flush_usage(&self, store: &dyn KeyStore) -> Result<usize> {
        let mut taken: Vec<(Arc<Entry>, Vec<Hour>)> = Vec::new();
        let orphans = std::mem::take(&mut *lock(&self.inner.shared.orphans));
        for orphan in &orphans {
            // Before its counts are taken: a count after this orphans it again.
            orphan.orphaned.store(false, SeqCst);
        }
        for entry in self.read().values().chain(orphans.iter()) {
            let hours = entry.counts.take();
            if !hours.is_empty() {
                taken.push((entry.clone(), hours));
            }
        }
        let retention = Duration::from_millis(self.inner.retention_ms.load(Relaxed));
        let keep_from = usage_hour(
            SystemTime::now()
                .checked_sub(retention)
                .unwrap_or(UNIX_EPOCH),
        );
        let batch = UsageBatch {
            deltas: taken
                .iter()
                .flat_map(|(entry, hours)| {
                    hours.iter().map(|(hour, counts)| UsageDelta {
                        key: entry.id.clone(),
                        hour: *hour,
                        counts: *counts,
                    })
                })
                .collect(),
            keep_from,
        };
        match store.add_usage(&batch).await {
            Ok(()) => Ok(batch.deltas.len()),
            Err(error) => {
                // Pending again, in entries the next flush finds even if a prune takes
                // them out of the map meanwhile (it sees nothing pending now).
                for (entry, hours) in taken {
                    entry.counts.put_back(hours);
                    entry.orphan();
                }
                Err(error)
            }
        }
    }

    /// The key's usage by hour for the hours that start in `from..to`: what the store
    /// holds, plus what this process counted and has not yet written. Oldest first;
    /// hours with nothing counted are left out.
    pub async fn usage(
        &self,
        store: &dyn KeyStore,
        record: &KeyRecord,
        from: SystemTime,
        to: SystemTime,
    ) -> Result<Vec<UsageBucket>> {
        let mut hours: std::collections::BTreeMap<u64, UsageCounts> = store
            .usage(&record.id, from, to)
            .await?
            .into_iter()
            .map(|bucket| (usage_hour(bucket.start), bucket.counts))
            .collect();
        let range = super::usage_hour_after(from)..super::usage_hour_after(to);
        for (hour, counts) in self.pending_usage(record) {
            if range.contains(&hour) {
                hours.entry(hour).or_default().add_all(&counts);
            }
        }
        Ok(hours
            .into_iter()
            .filter(|(_, counts)| !counts.is_empty())
            .map(|(hour, counts)| UsageBucket {
                start: super::usage_hour_start(hour),
                counts,
            })
            .collect())
    }

    /// What this process counted for the key and has not yet written, by hour.
    fn pending_usage(&self, record: &KeyRecord) -> Vec<Hour> {
        let in_map = self
            .read()
            .get(&record.prefix)
            .filter(|entry| entry.id == record.id)
            .cloned();
        let orphans = lock(&self.inner.shared.orphans).clone();
        let mut entries: Vec<Arc<Entry>> = Vec::new();
        for entry in in_map.into_iter().chain(orphans) {
            if entry.id == record.id && !entries.iter().any(|e| Arc::ptr_eq(e, &entry)) {
                entries.push(entry);
            }
        }
        entries.iter().flat_map(|e| e.counts.pending()).collect()
    }

    fn read(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, HashMap<KeyPrefix, Arc<Entry>, PrefixHashing>> {
        // No code path panics while holding the lock.
        self.inner
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// No code panics while holding these locks; a poisoned one is used as it is.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Default for LastUse {
    /// Writes at most once per key per 60 s.
    fn default() -> Self {
        LastUse::new(Duration::from_secs(60))
    }
}

impl fmt::Debug for LastUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LastUse")
            .field("interval", &self.interval())
            .field("keys", &self.read().len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::{counts::by_hour, *};
    use crate::{
        key::{ApiKey, KeyMode},
        store::{InMemoryKeyStore, InsertRule},
    };

    impl LastUse {
        /// Notes `record` as one a store keeps.
        fn note(&self, record: &KeyRecord, now: SystemTime) -> bool {
            self.note_at(record, millis(now), true)
        }
    }

    #[test]
    fn the_coarse_clock_reads_the_time_in_ms() {
        let before = millis(SystemTime::now());
        let coarse = last_use_clock_ms();
        let after = millis(SystemTime::now());
        // At most a clock tick behind the precise clock, never ahead of it.
        assert!(
            coarse <= after && coarse + 100 >= before,
            "{before} {coarse} {after}"
        );
    }

    fn record() -> KeyRecord {
        KeyRecord::builder(&ApiKey::generate(KeyMode::Live).unwrap(), "o").build()
    }

    /// Puts a copy of `record` in `store`.
    async fn keep(store: &InMemoryKeyStore, record: &KeyRecord) {
        store
            .insert(record.clone(), InsertRule::Unconditional)
            .await
            .unwrap();
    }

    #[test]
    fn one_write_per_interval_even_if_the_write_never_lands() {
        let last_use = LastUse::new(Duration::from_secs(60));
        let r = record();
        let t = SystemTime::now();
        assert!(last_use.note(&r, t));
        // The store was not updated (write failed or still in flight): no new attempt.
        assert!(!last_use.note(&r, t + Duration::from_secs(1)));
        assert!(!last_use.note(&r, t + Duration::from_secs(59)));
        assert!(last_use.note(&r, t + Duration::from_secs(60)));
        // Another key is independent.
        assert!(last_use.note(&record(), t));
    }

    #[test]
    fn fresh_stored_time_needs_no_write_but_the_view_sees_the_use() {
        let last_use = LastUse::new(Duration::from_secs(60));
        let t = SystemTime::now();
        let mut r = record();
        r.last_used_at = Some(t);
        let later = t + Duration::from_secs(30);
        assert!(!last_use.note(&r, later));
        let seen = last_use.last_used_at(&r).unwrap();
        assert_eq!(millis(seen), millis(later));
        assert!(last_use.note(&r, t + Duration::from_secs(61)));
    }

    #[test]
    fn zero_interval_writes_every_time() {
        let last_use = LastUse::new(Duration::ZERO);
        let r = record();
        let t = SystemTime::now();
        assert!(last_use.note(&r, t));
        assert!(last_use.note(&r, t + Duration::from_millis(1)));
    }

    #[test]
    fn idle_keys_are_forgotten() {
        let last_use = LastUse::new(Duration::from_secs(1));
        let t = SystemTime::now();
        for _ in 0..PRUNE_AT {
            let mut r = record();
            r.last_used_at = Some(t);
            last_use.note(&r, t);
        }
        // Those were seen but already stored: nothing pending, so once idle they go.
        last_use.note(&record(), t + Duration::from_secs(2));
        assert_eq!(last_use.read().len(), 1);
    }

    #[tokio::test]
    async fn a_use_noted_through_a_pruned_slot_is_still_flushed() {
        let store = InMemoryKeyStore::new();
        let last_use = LastUse::new(Duration::from_secs(1));
        let t = SystemTime::now();
        let mut r = record();
        r.last_used_at = Some(t);
        // The record as a store keeps it: noted once, so its slot points at its entry.
        assert!(!last_use.note(&r, t));
        for _ in 0..PRUNE_AT {
            let mut other = record();
            other.last_used_at = Some(t);
            last_use.note(&other, t);
        }
        // `r` is idle with nothing to write: the next new key prunes its entry.
        last_use.note(&record(), t + Duration::from_secs(2));
        assert!(last_use.read().get(&r.prefix).is_none());
        // A later use through the same record is in the log again, and flushed.
        let later = t + Duration::from_millis(2500);
        last_use.note(&r, later);
        assert_eq!(last_use.last_used_at(&r).map(millis), Some(millis(later)));
        // The record's own entry went back, so its slot is good again: one throttle.
        let (_, slotted) = r.use_slot.0.get().expect("a slot");
        assert!(Arc::ptr_eq(&last_use.read()[&r.prefix], slotted));
        keep(&store, &r).await;
        assert!(last_use.flush(&store).await.unwrap() >= 1);
        let back = store.find_by_prefix(&r.prefix).await.unwrap().unwrap();
        assert_eq!(back.last_used_at.map(millis), Some(millis(later)));
    }

    #[test]
    fn a_record_only_the_caller_holds_fills_no_slot() {
        let last_use = LastUse::default();
        let r = record();
        assert!(last_use.note_at(&r, millis(SystemTime::now()), false));
        assert!(
            r.use_slot.0.get().is_none(),
            "a fresh copy per request: no slot"
        );
        assert!(last_use.read().contains_key(&r.prefix));
    }

    #[test]
    fn a_record_given_another_prefix_is_noted_as_that_key() {
        let last_use = LastUse::new(Duration::from_secs(60));
        let t = SystemTime::now();
        let mut r = record();
        last_use.note(&r, t);
        let first = r.prefix;
        r.prefix = record().prefix;
        last_use.note(&r, t + Duration::from_secs(1));
        assert!(last_use.read().contains_key(&r.prefix), "its own entry");
        let seen = last_use.read()[&first].seen.load(Relaxed);
        assert_eq!(seen, millis(t), "the first key's use is not moved");
    }

    #[test]
    fn two_logs_over_one_record_each_see_its_uses() {
        let (a, b) = (LastUse::default(), LastUse::default());
        let r = record();
        let t = SystemTime::now();
        assert!(a.note(&r, t));
        assert!(b.note(&r, t), "the other log has its own throttle");
        assert!(!b.note(&r, t + Duration::from_secs(1)));
        assert_eq!(b.last_used_at(&r).map(millis), Some(millis(t) + 1000));
        assert_eq!(a.last_used_at(&r).map(millis), Some(millis(t)));
    }

    #[tokio::test]
    async fn a_failed_write_is_retried_by_flush() {
        let store = InMemoryKeyStore::new();
        let r = record();
        keep(&store, &r).await;
        let last_use = LastUse::new(Duration::from_secs(60));
        let t = SystemTime::now();
        // The write was due, and then failed: nothing marked stored.
        assert!(last_use.note(&r, t));
        assert_eq!(last_use.flush(&store).await.unwrap(), 1);
        let back = store.find_by_prefix(&r.prefix).await.unwrap().unwrap();
        assert_eq!(back.last_used_at.map(millis), Some(millis(t)));
        // A successful write is not repeated.
        last_use.stored(&back, t);
        assert_eq!(last_use.flush(&store).await.unwrap(), 0);
    }

    /// A log that counts, as an authenticator over a store that keeps usage makes it.
    fn counting() -> LastUse {
        let log = LastUse::new(Duration::from_secs(60));
        log.count_usage();
        log
    }

    #[test]
    fn counts_move_to_the_next_hour_when_it_turns() {
        let log = counting();
        let r = record();
        let hour = 490_000;
        log.note_at(&r, hour * HOUR_MS + 10, true);
        log.count_refusal(&r, hour * HOUR_MS + 20, true, UsageOutcome::RateLimited);
        log.note_at(&r, (hour + 1) * HOUR_MS, true);
        let pending = log.pending_usage(&r);
        let first = UsageCounts::default()
            .with(UsageOutcome::Admitted, 1)
            .with(UsageOutcome::RateLimited, 1);
        let second = UsageCounts::default().with(UsageOutcome::Admitted, 1);
        assert_eq!(by_hour(pending), vec![(hour, first), (hour + 1, second)]);
        // A clock that steps back counts in the current hour: nothing is lost.
        log.note_at(&r, hour * HOUR_MS, true);
        let pending = by_hour(log.pending_usage(&r));
        assert_eq!(pending[1].1.get(UsageOutcome::Admitted), 2);
    }

    #[test]
    fn a_log_that_does_not_count_keeps_no_counts() {
        let log = LastUse::new(Duration::from_secs(60));
        let r = record();
        log.note_at(&r, 1_000, true);
        log.count_refusal(&r, 1_000, true, UsageOutcome::Revoked);
        r.use_slot.count_scope_refusal();
        assert!(log.pending_usage(&r).is_empty());
    }

    #[test]
    fn keys_with_counts_to_write_are_not_forgotten() {
        let log = counting();
        let t = SystemTime::now();
        let mut r = record();
        r.last_used_at = Some(t);
        // Seen and stored (nothing to write for last use), but counted.
        log.note_at(&r, millis(t), true);
        for _ in 0..PRUNE_AT {
            let mut other = record();
            other.last_used_at = Some(t);
            log.note_at(&other, millis(t), false);
        }
        log.note_at(&record(), millis(t) + 120_000, false);
        assert!(
            log.read().contains_key(&r.prefix),
            "its count is not written yet"
        );
    }

    #[tokio::test]
    async fn a_count_through_a_pruned_slot_is_still_written() {
        let store = InMemoryKeyStore::new();
        let log = counting();
        let t = SystemTime::now();
        let mut r = record();
        r.last_used_at = Some(t);
        log.note_at(&r, millis(t), true);
        assert_eq!(log.flush_usage(&store).await.unwrap(), 1);
        // Idle, nothing pending: the next new key past the limit prunes its entry.
        for _ in 0..PRUNE_AT {
            let mut other = record();
            other.last_used_at = Some(t);
            log.note_at(&other, millis(t), false);
        }
        log.flush_usage(&store).await.unwrap();
        log.note_at(&record(), millis(t) + 120_000, false);
        assert!(log.read().get(&r.prefix).is_none(), "pruned");
        // A refusal counted through the record's slot lands in the pruned entry.
        log.count_refusal(&r, millis(t) + 121_000, true, UsageOutcome::Revoked);
        log.flush_usage(&store).await.unwrap();
        let hours = store
            .usage(
                &r.id,
                t - Duration::from_secs(7200),
                t + Duration::from_secs(7200),
            )
            .await
            .unwrap();
        let mut total = UsageCounts::default();
        hours.iter().for_each(|b| total.add_all(&b.counts));
        assert_eq!(
            total,
            UsageCounts::default()
                .with(UsageOutcome::Admitted, 1)
                .with(UsageOutcome::Revoked, 1)
        );
    }

    #[tokio::test]
    async fn flush_writes_what_is_pending() {
        let store = InMemoryKeyStore::new();
        let r = record();
        keep(&store, &r).await;
        let last_use = LastUse::new(Duration::from_secs(60));
        let t = SystemTime::now();
        let mut stored = r.clone();
        stored.last_used_at = Some(t);
        last_use.note(&stored, t + Duration::from_secs(5));
        assert_eq!(last_use.flush(&store).await.unwrap(), 1);
        let back = store.find_by_prefix(&r.prefix).await.unwrap().unwrap();
        assert_eq!(back.last_used_at.map(millis), Some(millis(t) + 5000));
        assert_eq!(last_use.flush(&store).await.unwrap(), 0, "nothing left");
    }
}
