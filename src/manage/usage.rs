//! A key's usage as its owner reads it: [`Keys::usage`] over a time range, by hour or
//! by day.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::{time::rfc3339, view::KeyRef, KeyView, Keys, ManageError, UsageTotals};
use crate::store::{usage_hour_after, KeyId, KeyRecord, UsageBucket, UsageCounts, HOUR_MS};

/// The most buckets one answer holds (840 days by day, or 35 days by hour).
pub const MAX_USAGE_BUCKETS: u64 = 840;

/// How long each bucket of a [`KeyUsage`] is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum UsageStep {
    /// One bucket per hour (UTC).
    #[default]
    Hour,
    /// One bucket per day (UTC).
    Day,
}

impl UsageStep {
    fn hours(self) -> u64 {
        match self {
            UsageStep::Hour => 1,
            UsageStep::Day => 24,
        }
    }

    /// `hour` or `day`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "hour" => Some(UsageStep::Hour),
            "day" => Some(UsageStep::Day),
            _ => None,
        }
    }
}

/// Which part of a key's history to read: the buckets that *start* in `from..to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsageQuery {
    /// The earliest bucket start.
    pub from: SystemTime,
    /// Buckets start before this.
    pub to: SystemTime,
    /// Bucket length.
    pub step: UsageStep,
}

impl UsageQuery {
    /// The last `span` up to `now`, by `step`: the buckets that start in
    /// `now - span..now` (the current, partial one included).
    pub fn last(span: Duration, step: UsageStep, now: SystemTime) -> Self {
        UsageQuery {
            from: now.checked_sub(span).unwrap_or(UNIX_EPOCH),
            to: now,
            step,
        }
    }
}

impl Default for UsageQuery {
    /// The last 24 hours, by hour.
    fn default() -> Self {
        UsageQuery::last(
            Duration::from_secs(24 * 3600),
            UsageStep::Hour,
            SystemTime::now(),
        )
    }
}

/// One bucket of a [`KeyUsage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct UsagePoint {
    /// Its first instant (a whole hour or day, UTC).
    #[serde(serialize_with = "rfc3339")]
    pub start: SystemTime,
    /// What was counted in it.
    #[serde(flatten)]
    pub counts: UsageCounts,
}

/// A key's requests over a range: every bucket in it, in order, zeros included (so a
/// chart needs no gaps filled), and their total.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyUsage {
    /// The key.
    pub key_id: KeyId,
    /// The first bucket's start.
    #[serde(serialize_with = "rfc3339")]
    pub from: SystemTime,
    /// The end of the last bucket.
    #[serde(serialize_with = "rfc3339")]
    pub to: SystemTime,
    /// Bucket length.
    pub step: UsageStep,
    /// Every bucket of the range, oldest first.
    pub buckets: Vec<UsagePoint>,
    /// The sum of the buckets.
    pub total: UsageCounts,
}

/// The first multiple of `step` hours at or after `at`, in hours since the epoch.
fn step_after(at: SystemTime, step: u64) -> u64 {
    let ms = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let step_ms = u128::from(HOUR_MS) * u128::from(step);
    u64::try_from(ms.div_ceil(step_ms)).unwrap_or(u64::MAX / step) * step
}

fn hour_start(hour: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(hour.saturating_mul(3600))
}

impl Keys {
    /// Fills each view's [`usage`](KeyView::usage) with its record's totals. A store
    /// that keeps no usage leaves them out; one that fails to answer too (logged: the
    /// list of keys matters more than its totals).
    pub(super) async fn add_totals(
        &self,
        views: &mut [KeyView],
        records: &[&KeyRecord],
        now: SystemTime,
    ) {
        if !self.keeps_usage() {
            return;
        }
        let month = now
            .checked_sub(Duration::from_secs(30 * 86_400))
            .unwrap_or(UNIX_EPOCH);
        let day_from = usage_hour_after(
            now.checked_sub(Duration::from_secs(86_400))
                .unwrap_or(UNIX_EPOCH),
        );
        for (view, record) in views.iter_mut().zip(records) {
            match self.hourly_usage(record, month, now).await {
                Ok(hours) => {
                    let mut totals = UsageTotals::default();
                    for bucket in hours {
                        totals.last_30_days.add_all(&bucket.counts);
                        if crate::store::usage_hour(bucket.start) >= day_from {
                            totals.last_24_hours.add_all(&bucket.counts);
                        }
                    }
                    view.usage = Some(totals);
                }
                Err(error) => {
                    tracing::warn!(%error, key = %record.prefix, "the key's usage could not be read");
                }
            }
        }
    }

    /// One of the owner's keys' requests over `query`'s range: admitted, and refused
    /// for reasons that are the key's (see [`UsageOutcome`](crate::store::UsageOutcome)).
    /// The counts the log given to [`Keys::last_use`] holds and has not yet written
    /// are included, as in the key views. Another owner's key, or an unknown one, is
    /// [`ManageError::NotFound`] (404); a range that ends before it starts, or spans
    /// more than [`MAX_USAGE_BUCKETS`] buckets, is [`ManageError::Invalid`] (422).
    ///
    /// ```
    /// use tower_api_key::{
    ///     auth::Authenticator,
    ///     manage::{Caller, Keys, NewKey, UsageQuery},
    ///     store::InMemoryKeyStore,
    /// };
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let store = InMemoryKeyStore::new();
    /// let auth = Authenticator::new(store.clone());
    /// let keys = Keys::new(store).last_use(auth.last_use().clone());
    /// let minted = keys.named().create(&Caller::system(), "acct_42", NewKey::named("ci")).await?;
    ///
    /// let auth_header = format!("Bearer {}", minted.api_key().expose_secret());
    /// let request = http::Request::get("/").header("authorization", auth_header).body(())?;
    /// auth.authenticate(&request.into_parts().0).await?;
    ///
    /// let usage = keys.usage("acct_42", &minted.view().id, UsageQuery::default()).await?;
    /// assert_eq!(usage.buckets.len(), 24);
    /// assert_eq!(usage.total.admitted(), 1);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn usage(
        &self,
        owner: &str,
        id: &KeyId,
        query: UsageQuery,
    ) -> Result<KeyUsage, ManageError> {
        let step = query.step.hours();
        let (first, end) = (step_after(query.from, step), step_after(query.to, step));
        if end < first {
            return Err(ManageError::Invalid(
                "the usage range ends before it starts",
            ));
        }
        if (end - first) / step > MAX_USAGE_BUCKETS {
            return Err(ManageError::Invalid(
                "the usage range holds too many buckets",
            ));
        }
        let record = self.find(owner, &KeyRef::Id(id.clone())).await?;
        let hours = self
            .hourly_usage(&record, hour_start(first), hour_start(end))
            .await?;
        let mut buckets: Vec<UsagePoint> = (first..end)
            .step_by(step as usize)
            .map(|hour| UsagePoint {
                start: hour_start(hour),
                counts: UsageCounts::default(),
            })
            .collect();
        let mut total = UsageCounts::default();
        for UsageBucket { start, counts } in hours {
            let hour = crate::store::usage_hour(start);
            if let Some(point) = hour
                .checked_sub(first)
                .and_then(|offset| buckets.get_mut((offset / step) as usize))
            {
                point.counts.add_all(&counts);
                total.add_all(&counts);
            }
        }
        Ok(KeyUsage {
            key_id: record.id,
            from: hour_start(first),
            to: hour_start(end),
            step: query.step,
            buckets,
            total,
        })
    }
}
