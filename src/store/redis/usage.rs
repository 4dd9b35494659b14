//! Per-key usage in [`RedisKeyStore`]: one hash per key and hour, its counters added
//! to with `HINCRBY` in one `MULTI` per batch, expiring with the retention. The first
//! hour kept is stored too (`<namespace>:usage:keep_from`, only ever raised), so that
//! a retention shortened later hides older hours at once, as the SQL stores delete them.

use std::{
    collections::HashMap,
    time::{SystemTime, UNIX_EPOCH},
};

use super::RedisKeyStore;
use crate::store::{
    usage_hour, usage_hour_after, usage_hour_start, KeyId, Result, UsageBatch, UsageBucket,
    UsageCounts, UsageOutcome,
};

/// Sets a number key to `ARGV[1]` unless it holds a larger number already.
const RAISE: &str = "local v = tonumber(redis.call('GET', KEYS[1]) or '0') \
    if tonumber(ARGV[1]) > v then redis.call('SET', KEYS[1], ARGV[1]) end return 0";

impl RedisKeyStore {
    /// Adds a batch: every counter of every key-hour in one transaction (it lands whole
    /// or not at all), each hour's hash set to expire once it is past the retention
    /// the batch carries.
    pub(super) async fn add_usage_batch(&self, batch: &UsageBatch) -> Result<()> {
        let now_hour = usage_hour(SystemTime::now());
        let kept_hours = now_hour.saturating_sub(batch.keep_from);
        let mut pipe = redis::pipe();
        pipe.atomic();
        for delta in batch.deltas.iter().filter(|d| d.hour >= batch.keep_from) {
            let key = self.shared.names.usage(delta.key.as_str(), delta.hour);
            for (outcome, n) in delta.counts.iter() {
                pipe.hincr(&key, outcome.name(), n).ignore();
            }
            // Past the retention once `keep_from` passes this hour.
            let gone_at = usage_hour_start(delta.hour + 1 + kept_hours);
            let gone_at = gone_at
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            pipe.cmd("EXPIREAT").arg(&key).arg(gone_at).ignore();
        }
        // Only ever later, like the SQL stores' deletes: an hour once past a retention
        // stays gone.
        pipe.cmd("EVAL")
            .arg(RAISE)
            .arg(1)
            .arg(self.shared.names.usage_kept_from())
            .arg(batch.keep_from)
            .ignore();
        let mut conn = self.connection();
        self.run(pipe.query_async::<()>(&mut conn)).await
    }

    /// A key's hours that start in `from..to`: one `HGETALL` per hour, pipelined.
    pub(super) async fn read_usage(
        &self,
        id: &KeyId,
        from: SystemTime,
        to: SystemTime,
    ) -> Result<Vec<UsageBucket>> {
        let mut conn = self.connection();
        let kept_from: Option<u64> = self
            .run(
                redis::cmd("GET")
                    .arg(self.shared.names.usage_kept_from())
                    .query_async(&mut conn),
            )
            .await?;
        let first = usage_hour_after(from).max(kept_from.unwrap_or(0));
        let hours: Vec<u64> = (first..usage_hour_after(to)).collect();
        if hours.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for hour in &hours {
            pipe.hgetall(self.shared.names.usage(id.as_str(), *hour));
        }
        let found: Vec<HashMap<String, u64>> = self.run(pipe.query_async(&mut conn)).await?;
        Ok(hours
            .into_iter()
            .zip(found)
            .filter(|(_, fields)| !fields.is_empty())
            .map(|(hour, fields)| {
                let mut counts = UsageCounts::default();
                for (name, n) in fields {
                    if let Some(outcome) = UsageOutcome::from_name(&name) {
                        counts.add(outcome, n);
                    }
                }
                UsageBucket {
                    start: usage_hour_start(hour),
                    counts,
                }
            })
            .collect())
    }
}
