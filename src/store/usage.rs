//! Per-key usage, hour by hour: what a store keeps ([`UsageCounts`] in hourly
//! [`UsageBucket`]s) and what instances add to it ([`UsageBatch`]).

use std::{
    fmt,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::Serialize;

use super::KeyId;

/// An hour's length in milliseconds.
pub(crate) const HOUR_MS: u64 = 3_600_000;

/// What became of a request made with a key: the counters a store keeps per key and
/// hour. A request with an unknown key or a wrong secret is not any key's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UsageOutcome {
    /// Verified and let through by the layer.
    Admitted,
    /// Refused: the key is revoked.
    Revoked,
    /// Refused: the key has expired.
    Expired,
    /// Refused: outside the key's restrictions (client address, origin, route).
    Restricted,
    /// Refused by a scope check after the layer let it through (the key lacks the
    /// scope). Such a request is not counted as admitted: see [`UsageCounts::admitted`].
    InsufficientScope,
    /// Refused: the key is over its rate limit.
    RateLimited,
}

impl UsageOutcome {
    /// Every outcome, in the order stores list their counters.
    pub const ALL: [UsageOutcome; 6] = [
        UsageOutcome::Admitted,
        UsageOutcome::Revoked,
        UsageOutcome::Expired,
        UsageOutcome::Restricted,
        UsageOutcome::InsufficientScope,
        UsageOutcome::RateLimited,
    ];

    /// The counter's name, as stores name their columns and fields: `admitted`,
    /// `revoked`, `expired`, `restricted`, `insufficient_scope`, `rate_limited`.
    pub fn name(self) -> &'static str {
        match self {
            UsageOutcome::Admitted => "admitted",
            UsageOutcome::Revoked => "revoked",
            UsageOutcome::Expired => "expired",
            UsageOutcome::Restricted => "restricted",
            UsageOutcome::InsufficientScope => "insufficient_scope",
            UsageOutcome::RateLimited => "rate_limited",
        }
    }

    /// The outcome with this [`name`](Self::name).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.name() == name)
    }

    /// Its place in [`UsageOutcome::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Requests counted over a span (an hour, a day, a range), by [`UsageOutcome`].
///
/// A store keeps the raw counters and adds them up; [`admitted`](Self::admitted) and
/// [`refused`](Self::refused) read them the way an owner means them.
///
/// ```
/// use tower_api_key::store::{UsageCounts, UsageOutcome};
///
/// let counts = UsageCounts::default()
///     .with(UsageOutcome::Admitted, 10)
///     .with(UsageOutcome::InsufficientScope, 2)
///     .with(UsageOutcome::RateLimited, 3);
/// assert_eq!(counts.admitted(), 8); // two of the ten were then refused for scope
/// assert_eq!(counts.refused(), 5);
/// assert_eq!(counts.total(), 13);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UsageCounts([u64; 6]);

impl UsageCounts {
    /// These counts with `n` more of `outcome`.
    #[must_use]
    pub fn with(mut self, outcome: UsageOutcome, n: u64) -> Self {
        self.add(outcome, n);
        self
    }

    /// Adds `n` of `outcome`.
    pub fn add(&mut self, outcome: UsageOutcome, n: u64) {
        let count = &mut self.0[outcome.index()];
        *count = count.saturating_add(n);
    }

    /// Adds every counter of `other`.
    pub fn add_all(&mut self, other: &UsageCounts) {
        for outcome in UsageOutcome::ALL {
            self.add(outcome, other.get(outcome));
        }
    }

    /// The raw counter of `outcome`, as a store keeps it.
    pub fn get(&self, outcome: UsageOutcome) -> u64 {
        self.0[outcome.index()]
    }

    /// The outcomes counted at least once, with their counts.
    pub fn iter(&self) -> impl Iterator<Item = (UsageOutcome, u64)> + '_ {
        UsageOutcome::ALL
            .into_iter()
            .map(|o| (o, self.get(o)))
            .filter(|(_, n)| *n > 0)
    }

    /// Requests admitted: let through by the layer and not then refused by a scope
    /// check.
    pub fn admitted(&self) -> u64 {
        self.get(UsageOutcome::Admitted)
            .saturating_sub(self.get(UsageOutcome::InsufficientScope))
    }

    /// Requests refused, for any reason that is the key's.
    pub fn refused(&self) -> u64 {
        UsageOutcome::ALL
            .into_iter()
            .filter(|o| *o != UsageOutcome::Admitted)
            .map(|o| self.get(o))
            .fold(0, u64::saturating_add)
    }

    /// Requests counted: admitted and refused.
    pub fn total(&self) -> u64 {
        self.admitted().saturating_add(self.refused())
    }

    /// Nothing counted.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|n| *n == 0)
    }
}

impl Serialize for UsageCounts {
    /// `{"admitted":…,"refused":…,"revoked":…,"expired":…,"restricted":…,
    /// "insufficient_scope":…,"rate_limited":…}`: admitted as
    /// [`admitted`](Self::admitted) reads it, then each refusal.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(7))?;
        map.serialize_entry("admitted", &self.admitted())?;
        map.serialize_entry("refused", &self.refused())?;
        for outcome in &UsageOutcome::ALL[1..] {
            map.serialize_entry(outcome.name(), &self.get(*outcome))?;
        }
        map.end()
    }
}

/// A key's counts for one hour (or, summed, one day), from `start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsageBucket {
    /// The first instant counted: a whole hour (UTC).
    pub start: SystemTime,
    /// What was counted.
    pub counts: UsageCounts,
}

/// The hour `at` falls in, as hours since the Unix epoch.
pub fn usage_hour(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 3600)
}

/// The first hour that starts at or after `at`: hours that start in `from..to` are
/// `usage_hour_after(from)..usage_hour_after(to)`.
pub(crate) fn usage_hour_after(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().div_ceil(u128::from(HOUR_MS)) as u64)
}

/// The start of hour `hour` (hours since the Unix epoch).
pub fn usage_hour_start(hour: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(hour.saturating_mul(3600))
}

/// Counts to add to one key's hour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageDelta {
    /// The key.
    pub key: KeyId,
    /// The hour, in hours since the Unix epoch ([`usage_hour`]).
    pub hour: u64,
    /// What to add.
    pub counts: UsageCounts,
}

/// What one instance adds to the store at a time: counts for some keys' hours, and
/// how long the store keeps hours (older ones may be dropped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageBatch {
    /// The counts to add.
    pub deltas: Vec<UsageDelta>,
    /// Hours before this one (hours since the Unix epoch) are past the retention: the
    /// store drops them, now or later, and never returns them.
    pub keep_from: u64,
}

/// The error a store that keeps no usage answers (the default of
/// [`KeyStore::add_usage`](super::KeyStore::add_usage) and
/// [`KeyStore::usage`](super::KeyStore::usage)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageNotKept;

impl fmt::Display for UsageNotKept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("this key store keeps no usage history")
    }
}

impl std::error::Error for UsageNotKept {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for outcome in UsageOutcome::ALL {
            assert_eq!(UsageOutcome::from_name(outcome.name()), Some(outcome));
            assert_eq!(UsageOutcome::ALL[outcome.index()], outcome);
        }
        assert_eq!(UsageOutcome::from_name("other"), None);
    }

    #[test]
    fn counts_serialize_as_an_owner_reads_them() {
        let counts = UsageCounts::default()
            .with(UsageOutcome::Admitted, 5)
            .with(UsageOutcome::InsufficientScope, 1)
            .with(UsageOutcome::Revoked, 2);
        let json = serde_json::to_value(counts).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"admitted": 4, "refused": 3, "revoked": 2, "expired": 0,
                "restricted": 0, "insufficient_scope": 1, "rate_limited": 0})
        );
    }

    #[test]
    fn hours_are_whole_utc_hours() {
        let at = UNIX_EPOCH + Duration::from_secs(3 * 3600 + 59);
        assert_eq!(usage_hour(at), 3);
        assert_eq!(
            usage_hour_start(3),
            UNIX_EPOCH + Duration::from_secs(3 * 3600)
        );
    }
}
