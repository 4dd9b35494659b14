//! A key's entry in a [`LastUse`](super::LastUse) log: its last use seen, written and
//! attempted, its counts, and the slot beside a record that points to it.

use std::sync::{
    atomic::{
        AtomicBool, AtomicU64,
        Ordering::{Relaxed, SeqCst},
    },
    Arc, Mutex, OnceLock,
};

use super::{counts::Counts, last_use_clock_ms, lock, millis, UsageOutcome};
use crate::{
    key::KeyPrefix,
    store::{KeyId, KeyRecord},
};

/// The part of a log its entries hold, so that a count through a record's slot (a
/// scope check's) needs no log.
#[derive(Default)]
pub(super) struct Shared {
    /// Whether requests are counted: set once an authenticator over a store that keeps
    /// usage notes here.
    pub(super) counting: AtomicBool,
    /// Entries a count landed in while they were being taken out of the map (or whose
    /// write failed): the next flush writes them, and forgets them.
    pub(super) orphans: Mutex<Vec<Arc<Entry>>>,
}

pub(super) struct Entry {
    pub(super) id: KeyId,
    pub(super) prefix: KeyPrefix,
    /// Taken out of the log (idle, nothing to write); a record still pointing here
    /// notes into the log's current entry instead.
    pub(super) pruned: AtomicBool,
    /// Latest use seen here, in ms since the epoch (0: none).
    pub(super) seen: AtomicU64,
    /// When a write was last started from here (or found unnecessary): the throttle.
    pub(super) attempted: AtomicU64,
    /// Latest use known to be in the store.
    pub(super) stored: AtomicU64,
    /// Requests counted and not yet written.
    pub(super) counts: Counts,
    /// In the log's orphans (at most once).
    pub(super) orphaned: AtomicBool,
    pub(super) log: Arc<Shared>,
}

/// A record's way to its entry in the log that noted it first, so that a record kept
/// in memory between requests (the in-memory store's, the cache's) is noted without
/// a lookup in the log's map or its lock: the state lives beside the record.
///
/// Not part of the record's data: a copy of the record starts empty, and two records
/// compare equal whatever their slots hold.
#[derive(Default)]
pub(crate) struct UseSlot(pub(super) OnceLock<(u64, Arc<Entry>)>);

impl UseSlot {
    /// Counts a request that a scope check refused after the layer admitted it, in the
    /// log that noted the admission (when it counts).
    pub(crate) fn count_scope_refusal(&self) {
        if let Some((_, entry)) = self.0.get() {
            if entry.log.counting.load(Relaxed) {
                entry.count(UsageOutcome::InsufficientScope, last_use_clock_ms());
            }
        }
    }
}

impl Clone for UseSlot {
    fn clone(&self) -> Self {
        UseSlot::default()
    }
}

impl PartialEq for UseSlot {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for UseSlot {}

impl Entry {
    /// Counts a request. Taken out of the map meanwhile (see `prune`)? Then the count
    /// stays here, and the entry goes to the orphans the next flush writes.
    #[inline(always)]
    pub(super) fn count(self: &Arc<Self>, outcome: UsageOutcome, ms: u64) {
        self.counts.count(outcome, ms);
        if self.pruned.load(SeqCst) {
            self.orphan();
        }
    }

    /// Into the log's orphans, unless there already.
    #[cold]
    pub(super) fn orphan(self: &Arc<Self>) {
        if !self.orphaned.swap(true, SeqCst) {
            lock(&self.log.orphans).push(self.clone());
        }
    }

    /// Idle since `horizon` with nothing left to write: marks it pruned and says so.
    ///
    /// A use noted through a record's slot meanwhile is not lost: the noter raises
    /// `seen`, then reads `pruned`; this marks `pruned`, then reads `seen` (all in one
    /// total order). Either the noter sees the mark and notes again in the map, or
    /// this sees the use and keeps the entry.
    pub(super) fn prune(&self, horizon: u64) -> bool {
        let idle = || {
            let seen = self.seen.load(SeqCst);
            seen <= horizon && seen <= self.stored.load(SeqCst) && self.counts.is_empty()
        };
        if !idle() {
            return false;
        }
        self.pruned.store(true, SeqCst);
        if idle() {
            return true;
        }
        self.pruned.store(false, SeqCst);
        false
    }

    #[inline(always)]
    pub(super) fn note(&self, ms: u64, record: &KeyRecord, interval: u64) -> bool {
        // Plain loads first: most requests land in a millisecond already noted, or
        // within an interval of the last attempt, and then need no read-modify-write.
        if self.seen.load(Relaxed) < ms {
            self.seen.fetch_max(ms, SeqCst);
        }
        let attempted = self.attempted.load(Relaxed);
        if ms.saturating_sub(attempted) < interval {
            return false;
        }
        self.attempt(ms, attempted, record, interval)
    }

    /// Once per interval: whether this caller writes the last use now. What the store
    /// already has (maybe from another instance) needs no write.
    #[cold]
    #[inline(never)]
    fn attempt(&self, ms: u64, attempted: u64, record: &KeyRecord, interval: u64) -> bool {
        let in_store = record.last_used_at.map_or(0, millis);
        self.stored.fetch_max(in_store, Relaxed);
        let due = ms.saturating_sub(in_store) >= interval;
        let mark = if due { ms } else { in_store };
        // One caller wins the attempt; a fresh store just moves the throttle.
        self.attempted
            .compare_exchange(attempted, mark, Relaxed, Relaxed)
            .is_ok()
            && due
    }
}
