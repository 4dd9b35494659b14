//! How the durable stores write a record: flat columns of plain types, shared by the
//! SQL and Redis backends so that all of them read back exactly what was written.

use std::{
    collections::BTreeMap,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};

use super::{KeyId, KeyRecord, StoreError};
use crate::{
    key::{KeyHash, KeyPrefix},
    policy::{RateLimit, Restrictions},
};

/// A record as columns. Times are nanoseconds since the Unix epoch (exact round trip,
/// comparable as integers, good until 2262); scopes, restrictions and metadata are JSON
/// text; the hash is its 32 bytes, lowercase hex in text-only stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Columns {
    pub(crate) id: String,
    pub(crate) prefix: String,
    pub(crate) hash: Vec<u8>,
    pub(crate) owner: String,
    pub(crate) name: String,
    pub(crate) scopes: String,
    pub(crate) created_at: i64,
    pub(crate) expires_at: Option<i64>,
    pub(crate) revoked_at: Option<i64>,
    pub(crate) last_used_at: Option<i64>,
    pub(crate) restrictions: String,
    pub(crate) rate_limit: Option<String>,
    pub(crate) metadata: String,
}

/// Nanoseconds since the epoch, saturating (negative before it).
pub(crate) fn nanos(at: SystemTime) -> i64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

/// The instant `nanos` after the epoch.
pub(crate) fn time(nanos: i64) -> SystemTime {
    let magnitude = Duration::from_nanos(nanos.unsigned_abs());
    if nanos >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
    }
}

fn corrupt(what: &'static str) -> StoreError {
    StoreError::backend(format!("stored key record has an unreadable {what}"))
}

impl Columns {
    /// The columns of `record`; a field that cannot be written is an error, never
    /// written as something less restrictive.
    pub(crate) fn of(record: &KeyRecord) -> Result<Self, StoreError> {
        let unwritable = |_| StoreError::backend("a key record field cannot be encoded");
        Ok(Columns {
            id: record.id.as_str().to_owned(),
            prefix: record.prefix.as_str().to_owned(),
            hash: record.hash.as_bytes().to_vec(),
            owner: record.owner.clone(),
            name: record.name.clone(),
            scopes: serde_json::to_string(&record.scopes).map_err(unwritable)?,
            created_at: nanos(record.created_at),
            expires_at: record.expires_at.map(nanos),
            revoked_at: record.revoked_at.map(nanos),
            last_used_at: record.last_used_at.map(nanos),
            restrictions: serde_json::to_string(&record.restrictions).map_err(unwritable)?,
            rate_limit: record.rate_limit.map(|rate| rate.to_string()),
            metadata: serde_json::to_string(&record.metadata).map_err(unwritable)?,
        })
    }

    /// The record; a column that does not parse is a backend error, never a panic.
    pub(crate) fn into_record(self) -> Result<KeyRecord, StoreError> {
        let prefix: KeyPrefix = self.prefix.parse().map_err(|_| corrupt("prefix"))?;
        let hash: [u8; 32] = self.hash.try_into().map_err(|_| corrupt("hash"))?;
        let scopes: Vec<String> =
            serde_json::from_str(&self.scopes).map_err(|_| corrupt("scope list"))?;
        let restrictions: Restrictions =
            serde_json::from_str(&self.restrictions).map_err(|_| corrupt("restriction"))?;
        let rate_limit = self
            .rate_limit
            .map(|text| text.parse::<RateLimit>())
            .transpose()
            .map_err(|_| corrupt("rate limit"))?;
        let metadata: BTreeMap<String, String> =
            serde_json::from_str(&self.metadata).map_err(|_| corrupt("metadata"))?;
        let mut record = KeyRecord::from_parts(
            KeyId::new(self.id),
            prefix,
            KeyHash::from_bytes(hash),
            self.owner,
        )
        .name(self.name)
        .scopes(scopes)
        .created_at(time(self.created_at))
        .expires_at(self.expires_at.map(time))
        .revoked_at(self.revoked_at.map(time))
        .last_used_at(self.last_used_at.map(time))
        .restrictions(restrictions)
        .rate_limit(rate_limit)
        .build();
        record.metadata = metadata;
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{ApiKey, KeyMode};

    #[test]
    fn times_round_trip_exactly() {
        for at in [
            UNIX_EPOCH,
            UNIX_EPOCH + Duration::new(1_800_000_000, 123_456_789),
            UNIX_EPOCH - Duration::new(5, 1),
        ] {
            assert_eq!(time(nanos(at)), at);
        }
    }

    #[test]
    fn records_round_trip_and_corruption_is_an_error() {
        let key = ApiKey::generate(KeyMode::Test).unwrap();
        let record = KeyRecord::builder(&key, "o")
            .scopes(["a", "b"])
            .rate_limit("5/m".parse::<RateLimit>().unwrap())
            .metadata("hook.webhook.error", "The \"app\" could not be made.")
            .build();
        let columns = Columns::of(&record).unwrap();
        assert_eq!(columns.clone().into_record().unwrap(), record);
        let mut bad = columns.clone();
        bad.hash.pop();
        assert!(matches!(bad.into_record(), Err(StoreError::Backend(_))));
        let mut bad = columns.clone();
        bad.metadata = r#"{"n":1}"#.into();
        assert!(matches!(bad.into_record(), Err(StoreError::Backend(_))));
        // A restriction this version does not know fails closed.
        let mut unknown = columns;
        unknown.restrictions = r#"{"ips":[],"countries":["FR"]}"#.into();
        assert!(matches!(unknown.into_record(), Err(StoreError::Backend(_))));
    }
}
