//! [`QuotaStore`] for [`RedisKeyStore`]: shared rate-limit buckets, one Lua script.

use std::time::Duration;

use super::{scripts::SCRIPTS, RedisKeyStore};
use crate::store::{Lease, LeaseRequest, QuotaStore, Result};

/// Each bucket is a string in [`QuotaBucket`](crate::store::QuotaBucket)'s text form under
/// `<namespace>:quota:<bucket>`, changed by one Lua script (atomic, one round trip, the
/// server's clock), and expiring once it is the same as a fresh bucket: only keys and
/// clients counted lately take room.
#[async_trait::async_trait]
impl QuotaStore for RedisKeyStore {
    async fn lease(&self, request: &LeaseRequest<'_>) -> Result<Lease> {
        let mut call = SCRIPTS.lease.key(self.shared.names.quota(request.bucket()));
        let rate = request.rate();
        call.arg(rate.requests())
            .arg(u64::try_from(rate.period().as_millis()).unwrap_or(u64::MAX))
            .arg(request.holder())
            .arg(request.wanted())
            .arg(request.unspent_tokens())
            .arg(u64::try_from(request.lease_duration().as_millis()).unwrap_or(u64::MAX));
        let mut conn = self.connection();
        let (granted, remaining, retry, ask, holders): (u32, u32, u64, u64, u32) =
            self.run(call.invoke_async(&mut conn)).await?;
        Ok(Lease::from_parts(
            granted,
            remaining,
            Duration::from_millis(retry),
            Duration::from_millis(ask),
            holders,
        ))
    }
}
