use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::{Duration, SystemTime},
};

use crate::store::{KeyId, KeyRecord};

/// Above this many remembered attempts, attempts older than the interval are dropped.
const PRUNE_AT: usize = 4096;

/// Decides when a verified key's last use is written back to the store: when the
/// stored time is older than the interval, and at most once per key per interval from
/// this authenticator — so a burst of requests, or a store that keeps failing the
/// write, causes one write attempt per interval, not one per request.
///
/// Only verified keys get here, so the memory it holds is bounded by the keys in use
/// within one interval, never by what an attacker sends.
pub(crate) struct LastUse {
    interval: Duration,
    attempts: Mutex<HashMap<KeyId, SystemTime>>,
}

impl LastUse {
    pub(crate) fn new(interval: Duration) -> Self {
        LastUse {
            interval,
            attempts: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn interval(&self) -> Duration {
        self.interval
    }

    fn older_than_interval(&self, at: SystemTime, now: SystemTime) -> bool {
        now.duration_since(at).unwrap_or_default() >= self.interval
    }

    /// Whether to write `now` as the record's last use; if so, the attempt is noted.
    /// Takes no lock while the stored time is fresh, which is the common case.
    pub(crate) fn due(&self, record: &KeyRecord, now: SystemTime) -> bool {
        if record
            .last_used_at
            .is_some_and(|seen| !self.older_than_interval(seen, now))
        {
            return false;
        }
        let mut attempts = self.attempts.lock().unwrap_or_else(PoisonError::into_inner);
        if attempts
            .get(&record.id)
            .is_some_and(|&tried| !self.older_than_interval(tried, now))
        {
            return false;
        }
        if attempts.len() >= PRUNE_AT {
            attempts.retain(|_, tried| !self.older_than_interval(*tried, now));
        }
        attempts.insert(record.id.clone(), now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{ApiKey, KeyMode};

    fn record() -> KeyRecord {
        KeyRecord::builder(&ApiKey::generate(KeyMode::Live).unwrap(), "o").build()
    }

    #[test]
    fn one_attempt_per_interval_even_if_the_write_never_lands() {
        let last_use = LastUse::new(Duration::from_secs(60));
        let r = record();
        let t = SystemTime::now();
        assert!(last_use.due(&r, t));
        // The store was not updated (write failed or still in flight): no new attempt.
        assert!(!last_use.due(&r, t + Duration::from_secs(1)));
        assert!(!last_use.due(&r, t + Duration::from_secs(59)));
        assert!(last_use.due(&r, t + Duration::from_secs(60)));
        // Another key is independent.
        assert!(last_use.due(&record(), t));
    }

    #[test]
    fn fresh_stored_time_needs_no_write() {
        let last_use = LastUse::new(Duration::from_secs(60));
        let t = SystemTime::now();
        let mut r = record();
        r.last_used_at = Some(t);
        assert!(!last_use.due(&r, t + Duration::from_secs(30)));
        assert!(last_use.due(&r, t + Duration::from_secs(61)));
    }

    #[test]
    fn zero_interval_writes_every_time() {
        let last_use = LastUse::new(Duration::ZERO);
        let r = record();
        let t = SystemTime::now();
        assert!(last_use.due(&r, t));
        assert!(last_use.due(&r, t));
    }

    #[test]
    fn memory_is_pruned() {
        let last_use = LastUse::new(Duration::from_secs(1));
        let t = SystemTime::now();
        for _ in 0..PRUNE_AT {
            assert!(last_use.due(&record(), t));
        }
        assert!(last_use.due(&record(), t + Duration::from_secs(2)));
        assert_eq!(last_use.attempts.lock().unwrap().len(), 1);
    }
}
