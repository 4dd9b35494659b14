//! What a verified key may do, beyond being valid: which modes (live, test) an
//! endpoint accepts, and the per-key [`Restrictions`] (client address, browser origin,
//! route).

mod client;
mod origin;
mod rate_limit;
mod restrictions;
mod route;

pub(crate) use client::TrustedProxies;
pub use client::{ForwardedHeader, PeerAddr};
pub use origin::OriginPattern;
pub(crate) use rate_limit::{failure_bucket, Limiters, OverLimit};
pub use rate_limit::{InvalidRate, RateLimit, RateLimitStatus};
pub(crate) use restrictions::{check as check_restrictions, Facts, Outside, RequestFacts};
pub use restrictions::{InvalidPattern, Restrictions};
pub use route::RoutePattern;

use crate::key::KeyMode;

/// The key modes a layer accepts: both by default, or one (production: live only;
/// staging: test only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AcceptedModes {
    live: bool,
    test: bool,
}

impl Default for AcceptedModes {
    fn default() -> Self {
        AcceptedModes {
            live: true,
            test: true,
        }
    }
}

impl AcceptedModes {
    pub(crate) fn only(mode: KeyMode) -> Self {
        AcceptedModes {
            live: mode == KeyMode::Live,
            test: mode == KeyMode::Test,
        }
    }

    pub(crate) fn accepts(self, mode: KeyMode) -> bool {
        match mode {
            KeyMode::Live => self.live,
            KeyMode::Test => self.test,
        }
    }

    /// The refusal's message: which mode this endpoint expects. `None` when both are
    /// accepted (nothing is ever refused for its mode).
    pub(crate) fn refusal_message(self) -> Option<&'static str> {
        match (self.live, self.test) {
            (true, false) => Some("This endpoint accepts live keys (pk_live_…) only."),
            (false, true) => Some("This endpoint accepts test keys (pk_test_…) only."),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        let both = AcceptedModes::default();
        assert!(both.accepts(KeyMode::Live) && both.accepts(KeyMode::Test));
        assert_eq!(both.refusal_message(), None);
        let live = AcceptedModes::only(KeyMode::Live);
        assert!(live.accepts(KeyMode::Live) && !live.accepts(KeyMode::Test));
        assert!(live.refusal_message().unwrap().contains("live"));
        let test = AcceptedModes::only(KeyMode::Test);
        assert!(!test.accepts(KeyMode::Live) && test.accepts(KeyMode::Test));
        assert!(test.refusal_message().unwrap().contains("test keys"));
    }
}
