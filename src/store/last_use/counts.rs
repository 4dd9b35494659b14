//! A key's usage counters, as [`LastUse`](super::LastUse) keeps them between batch
//! writes: the current hour's atomics and earlier hours' counts.

use std::sync::{
    atomic::{
        AtomicU64,
        Ordering::{Relaxed, SeqCst},
    },
    Mutex,
};

use super::{lock, UsageCounts, UsageOutcome, HOUR_MS};

/// One key's requests not yet in the store: the current hour's counters, and earlier
/// hours' counts.
#[derive(Default)]
pub(super) struct Counts {
    /// The hour `live` counts, in hours since the epoch.
    hour: AtomicU64,
    /// By [`UsageOutcome::index`].
    live: [AtomicU64; 6],
    /// Earlier hours, and counts a failed write put back.
    closed: Mutex<Vec<Hour>>,
}

/// An hour (hours since the epoch) and what was counted in it.
pub(super) type Hour = (u64, UsageCounts);

/// The counts of each hour added up, oldest first.
pub(super) fn by_hour(hours: Vec<Hour>) -> Vec<Hour> {
    let mut merged = std::collections::BTreeMap::<u64, UsageCounts>::new();
    for (hour, counts) in hours {
        merged.entry(hour).or_default().add_all(&counts);
    }
    merged.into_iter().collect()
}

impl Counts {
    /// Counts one request at `ms` since the epoch: an atomic increment, unless the
    /// hour has turned since the last count.
    #[inline(always)]
    pub(super) fn count(&self, outcome: UsageOutcome, ms: u64) {
        let hour = ms / HOUR_MS;
        if self.hour.load(Relaxed) < hour {
            self.turn(hour);
        }
        // SeqCst: ordered with the prune's look at the counters (see `Entry::prune`).
        self.live[outcome.index()].fetch_add(1, SeqCst);
    }

    /// Moves the live counters to `closed`, and starts counting `hour`. A count that
    /// races this lands in the new hour: counted, an hour late at worst.
    #[cold]
    pub(super) fn turn(&self, hour: u64) {
        let mut closed = lock(&self.closed);
        let was = self.hour.load(Relaxed);
        if was >= hour {
            return;
        }
        let live = self.take_live();
        if !live.is_empty() {
            closed.push((was, live));
        }
        self.hour.store(hour, Relaxed);
    }

    fn take_live(&self) -> UsageCounts {
        let mut counts = UsageCounts::default();
        for outcome in UsageOutcome::ALL {
            counts.add(outcome, self.live[outcome.index()].swap(0, SeqCst));
        }
        counts
    }

    /// Everything not yet written, taken out (to write), one entry per hour.
    pub(super) fn take(&self) -> Vec<Hour> {
        let mut closed = lock(&self.closed);
        let mut hours = std::mem::take(&mut *closed);
        let live = self.take_live();
        if !live.is_empty() {
            hours.push((self.hour.load(Relaxed), live));
        }
        by_hour(hours)
    }

    /// Counts whose write failed, pending again.
    pub(super) fn put_back(&self, hours: Vec<Hour>) {
        lock(&self.closed).extend(hours);
    }

    /// Everything not yet written, left in place.
    pub(super) fn pending(&self) -> Vec<Hour> {
        let closed = lock(&self.closed);
        let mut hours = closed.clone();
        let mut live = UsageCounts::default();
        for outcome in UsageOutcome::ALL {
            live.add(outcome, self.live[outcome.index()].load(Relaxed));
        }
        if !live.is_empty() {
            hours.push((self.hour.load(Relaxed), live));
        }
        hours
    }

    /// Nothing to write.
    pub(super) fn is_empty(&self) -> bool {
        self.live.iter().all(|n| n.load(SeqCst) == 0) && lock(&self.closed).is_empty()
    }
}
