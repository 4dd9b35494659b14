//! What a key that manages keys may do ([`Caller::acting_key`](super::Caller::acting_key)):
//! act for its own owner, and give a key nothing it does not have itself — no other
//! scope, no other mode, no later expiry, no looser restrictions or rate limit.

use std::time::SystemTime;

use super::{leak::LEAK_REPORTED_AT, ManageError};
use crate::{
    key::KeyMode,
    policy::{RateLimit, Restrictions},
    store::KeyRecord,
};

/// A verified key acting on keys: its owner and its bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ActingKey {
    owner: String,
    scopes: Vec<String>,
    mode: KeyMode,
    expires_at: Option<SystemTime>,
    restrictions: Restrictions,
    rate_limit: Option<RateLimit>,
}

fn beyond(what: &'static str) -> ManageError {
    ManageError::BeyondCaller(what)
}

impl ActingKey {
    /// The key `record` as a caller; a key that was rotated out (in its grace period)
    /// or reported leaked manages nothing.
    pub(crate) fn of(record: &KeyRecord) -> Result<Self, ManageError> {
        if record.revoked_at.is_some() {
            return Err(beyond("A key that was rotated out cannot manage keys."));
        }
        if record.metadata.contains_key(LEAK_REPORTED_AT) {
            return Err(beyond("A key reported leaked cannot manage keys."));
        }
        Ok(ActingKey {
            owner: record.owner.clone(),
            scopes: record.scopes.clone(),
            mode: record.mode,
            expires_at: record.expires_at,
            restrictions: record.restrictions.clone(),
            rate_limit: record.rate_limit,
        })
    }

    /// `Ok` for the key's own owner; another owner's keys are "not found".
    pub(crate) fn may_act_for(&self, owner: &str) -> Result<(), ManageError> {
        if owner == self.owner {
            Ok(())
        } else {
            Err(ManageError::NotFound)
        }
    }

    /// `Ok` if the key holds every one of `scopes`.
    pub(crate) fn may_grant(&self, scopes: &[String]) -> Result<(), ManageError> {
        if scopes.iter().all(|scope| self.scopes.contains(scope)) {
            Ok(())
        } else {
            Err(beyond("A key can give a key only scopes it holds itself."))
        }
    }

    /// A new key's mode: the one asked for, which must be the key's own, or the key's.
    pub(crate) fn mode_for(&self, asked: Option<KeyMode>) -> Result<KeyMode, ManageError> {
        match asked {
            Some(mode) if mode != self.mode => {
                Err(beyond("A key can mint keys only in its own mode."))
            }
            _ => Ok(self.mode),
        }
    }

    /// A new key's expiry: the one asked for, no later than the key's own, or the
    /// key's own.
    pub(crate) fn expiry_for(
        &self,
        asked: Option<SystemTime>,
    ) -> Result<Option<SystemTime>, ManageError> {
        match (asked, self.expires_at) {
            (Some(asked), Some(own)) if asked > own => Err(beyond(
                "A key can mint keys that expire no later than itself.",
            )),
            (None, own) => Ok(own),
            (asked, _) => Ok(asked),
        }
    }

    /// Bounds a new key's record as this key is bounded: each kind of restriction the
    /// key has replaces a looser one (or none) on the record, and its rate limit a
    /// looser one (or none).
    pub(crate) fn bound(&self, record: &mut KeyRecord) {
        let (own, new) = (&self.restrictions, &mut record.restrictions);
        within(&own.ips, &mut new.ips);
        within(&own.origins, &mut new.origins);
        within(&own.routes, &mut new.routes);
        if let Some(own) = self.rate_limit {
            if record.rate_limit.is_none_or(|rate| looser(rate, own)) {
                record.rate_limit = Some(own);
            }
        }
    }

    /// `Ok` if a successor to `old` (which keeps all of `old`'s bounds) would have
    /// nothing this key does not: its scopes, mode, expiry, restrictions, rate limit.
    pub(crate) fn may_replace(&self, old: &KeyRecord) -> Result<(), ManageError> {
        self.may_grant(&old.scopes)?;
        let mut bounded = old.clone();
        self.bound(&mut bounded);
        let later = match (old.expires_at, self.expires_at) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(old), Some(own)) => old > own,
        };
        if old.mode != self.mode || later || bounded != *old {
            return Err(beyond(
                "A key can rotate only keys bounded at least as it is (mode, expiry, \
                 restrictions, rate limit).",
            ));
        }
        Ok(())
    }
}

/// `new` becomes `own` unless it lists only entries of `own` (an empty `own` bounds
/// nothing).
fn within<T: Clone + PartialEq>(own: &[T], new: &mut Vec<T>) {
    if !own.is_empty() && (new.is_empty() || !new.iter().all(|entry| own.contains(entry))) {
        *new = own.to_vec();
    }
}

/// Whether `rate` admits more than `own`: a higher rate, or the same rate with a
/// larger burst.
fn looser(rate: RateLimit, own: RateLimit) -> bool {
    let per =
        |r: RateLimit, other: RateLimit| u128::from(r.requests()) * other.period().as_millis();
    let (rate_side, own_side) = (per(rate, own), per(own, rate));
    rate_side > own_side || (rate_side == own_side && rate.requests() > own.requests())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::key::ApiKey;

    type Bound = fn(crate::store::KeyRecordBuilder) -> crate::store::KeyRecordBuilder;

    fn record_in(
        mode: KeyMode,
        bound: impl FnOnce(crate::store::KeyRecordBuilder) -> crate::store::KeyRecordBuilder,
    ) -> KeyRecord {
        let key = ApiKey::generate(mode).unwrap();
        bound(KeyRecord::builder(&key, "acct").scopes(["a", "b"])).build()
    }

    fn record(bound: Bound) -> KeyRecord {
        record_in(KeyMode::Live, bound)
    }

    #[test]
    fn a_rate_is_looser_when_it_admits_more() {
        let r = |text: &str| text.parse::<RateLimit>().unwrap();
        assert!(looser(r("20/s"), r("10/s")));
        assert!(!looser(r("10/s"), r("10/s")));
        assert!(looser(r("100/10s"), r("10/s")), "same rate, larger burst");
        assert!(!looser(r("10/s"), r("100/10s")));
        assert!(!looser(r("100/h"), r("10/s")));
    }

    #[test]
    fn a_new_key_is_bounded_as_the_acting_key_is() {
        let office: Restrictions = Restrictions::default().allow_ip("10.0.0.0/8".parse().unwrap());
        let rate: RateLimit = "10/s".parse().unwrap();
        let soon = SystemTime::now() + Duration::from_secs(3600);
        let acting = ActingKey::of(&record_in(KeyMode::Test, |b| {
            b.restrictions(office.clone())
                .rate_limit(rate)
                .expires_at(Some(soon))
        }))
        .unwrap();

        let mut new = record(|b| b.rate_limit("1000/s".parse::<RateLimit>().unwrap()));
        acting.bound(&mut new);
        assert_eq!(new.restrictions, office);
        assert_eq!(new.rate_limit, Some(rate));

        assert!(acting.mode_for(Some(KeyMode::Live)).is_err());
        assert_eq!(acting.mode_for(None).unwrap(), KeyMode::Test);
        assert_eq!(acting.expiry_for(None).unwrap(), Some(soon));
        assert!(acting
            .expiry_for(Some(soon + Duration::from_secs(1)))
            .is_err());
        assert!(acting.may_act_for("acct").is_ok());
        assert!(acting.may_act_for("other").is_err());
    }

    #[test]
    fn only_keys_bounded_as_it_is_may_be_rotated() {
        let acting =
            ActingKey::of(&record(|b| b.rate_limit("10/s".parse::<RateLimit>().ok()))).unwrap();
        let unlimited = record(|b| b);
        assert!(acting.may_replace(&unlimited).is_err());
        let tighter = record(|b| b.rate_limit("5/s".parse::<RateLimit>().ok()));
        assert!(acting.may_replace(&tighter).is_ok());
    }

    #[test]
    fn a_rotated_out_or_leaked_key_cannot_act() {
        let mut retiring = record(|b| b);
        retiring.revoked_at = Some(SystemTime::now() + Duration::from_secs(60));
        assert!(ActingKey::of(&retiring).is_err());
        let mut leaked = record(|b| b);
        leaked
            .metadata
            .insert(LEAK_REPORTED_AT.into(), "2026-12-02T00:00:00Z".into());
        assert!(ActingKey::of(&leaked).is_err());
    }
}
