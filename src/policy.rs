//! What a verified key may do. For now: its lifecycle (revocation and expiry); mode,
//! restrictions and rate limits join here.

use std::time::SystemTime;

use crate::{error::AuthErrorKind, store::KeyRecord};

/// Refuses a verified key that is revoked or expired at `now`.
pub(crate) fn check_lifecycle(record: &KeyRecord, now: SystemTime) -> Result<(), AuthErrorKind> {
    if record.is_revoked_at(now) {
        Err(AuthErrorKind::Revoked)
    } else if record.is_expired_at(now) {
        Err(AuthErrorKind::Expired)
    } else {
        Ok(())
    }
}
