//! [`Authenticator`]: the one verification pipeline every caller goes through — the
//! layer, the scope guard's principal, the self-revoking route, your own code.

mod builder;
mod limits;
mod request;
mod waiting;
mod writes;

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    time::{Duration, SystemTime},
};

use http::{request::Parts, HeaderMap, HeaderName};
use subtle::ConstantTimeEq;

pub use builder::AuthenticatorBuilder;
pub(crate) use request::Head;
use request::HeadFacts;

use super::{
    credential::{extract, Credential},
    shared_limits::{Limited, SharedLimits},
    Principal,
};
use crate::{
    error::{AuthError, AuthErrorKind, SharedRejections},
    key::{KeyFormat, KeyHash, KeyPrefix},
    policy::{
        check_restrictions, AcceptedModes, Facts, Limiters, Outside, OverLimit, RateLimit,
        RateLimitStatus, TrustedProxies,
    },
    store::{self, last_use_clock_ms, KeyRecord, KeyStore, LastUse, Lookup, UsageOutcome},
    telemetry::Verification,
};

/// Compared against when the prefix is unknown, so an unknown prefix costs the same
/// hashing and comparison as a wrong secret.
const DUMMY_HASH: KeyHash = KeyHash::from_bytes([0x5a; 32]);

/// The framework-free verifier: a request head in, [`Principal`] or [`AuthError`] out.
///
/// [`ApiKeyLayer`](super::ApiKeyLayer) is a thin adapter over it; use it directly from
/// code that is not a tower service but has the request ([`authenticate`](Self::authenticate):
/// a WebSocket upgrade, a handler of your own) or from code with no HTTP request at
/// all ([`authenticate_outside_http`](Self::authenticate_outside_http): a job queue).
/// Cloning is cheap.
///
/// For each request it: reads the credential (no I/O); checks the key's shape; makes
/// one store lookup by prefix; hashes the presented key and compares the digest in
/// constant time (against a decoy or a fixed dummy digest when the prefix is unknown,
/// so the hashing, the comparison and the answer are the same as for a wrong secret);
/// refuses revoked and expired keys; checks the key's restrictions and rate limit;
/// counts a failed attempt against the client's budget; and notes the key's last use
/// in memory ([`LastUse`]), writing it to the store at most once per key per interval.
///
/// With a store that answers from memory ([`KeyStore::lookup_now`]) the whole check
/// runs without allocating a future; other stores are awaited.
///
/// ```
/// use tower_api_key::{auth::Authenticator, error::AuthErrorKind, store::InMemoryKeyStore};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let auth = Authenticator::new(InMemoryKeyStore::new());
/// let request = http::Request::get("/api/account")
///     .header("authorization", "Bearer pk_live_not_a_key")
///     .body(())
///     .unwrap();
/// let (parts, ()) = request.into_parts();
/// let err = auth.authenticate(&parts).await.unwrap_err();
/// assert_eq!(err.kind(), AuthErrorKind::InvalidCredentials);
/// # });
/// ```
#[derive(Clone)]
pub struct Authenticator {
    config: Arc<Config>,
}

/// What [`AuthenticatorBuilder::build`] settles.
struct Config {
    store: Arc<dyn KeyStore>,
    format: KeyFormat,
    extra_header: Option<HeaderName>,
    rejections: SharedRejections,
    last_use: LastUse,
    modes: AcceptedModes,
    trusted_proxies: TrustedProxies,
    limiters: Limiters,
    /// With a quota store: the limits counted there, for every instance, at the
    /// rates `limiters` holds (which then count nothing).
    shared: Option<Arc<SharedLimits>>,
}

/// The part of a verification that waits for the store, boxed once.
pub(crate) type Verifying = Pin<Box<dyn Future<Output = Result<Principal, AuthError>> + Send>>;

/// How far [`Authenticator::start`] got without waiting.
pub(crate) enum Started {
    /// Verified: admit the request.
    Verified(Principal),
    /// Refused: answer with the error.
    Refused(AuthError),
    /// The store must be waited for.
    Pending(Verifying),
}

impl Started {
    async fn finish(self) -> Result<Principal, AuthError> {
        match self {
            Started::Verified(principal) => Ok(principal),
            Started::Refused(error) => Err(error),
            Started::Pending(verify) => verify.await,
        }
    }
}

/// A well-formed key as presented: its prefix, and its text until it is hashed
/// (after the lookup, so the digest goes straight to the comparison).
struct Presented<'t> {
    prefix: KeyPrefix,
    token: &'t [u8],
}

/// A presented key carried past a wait: its prefix and digest, nothing secret.
struct Hashed {
    prefix: KeyPrefix,
    hash: KeyHash,
}

/// A shared limit's answer for a key, once its quota store has answered.
type LimitWait = Pin<Box<dyn Future<Output = Result<Option<RateLimitStatus>, OverLimit>> + Send>>;
/// A shared failed-attempts budget's answer, once its quota store has answered.
type BudgetWait = Pin<Box<dyn Future<Output = Result<(), Duration>> + Send>>;

/// Why [`Authenticator::check`] refused: for no key's reason (unknown, wrong secret,
/// store down), or for the found key's own (counted in its usage).
enum Refusal {
    Plain(AuthError),
    Key(Arc<KeyRecord>, AuthError, UsageOutcome),
}

/// Bookkeeping due before an answer: at most one of each per interval.
struct Writes {
    last_use: Option<SystemTime>,
    usage: bool,
}

/// What the pipeline decides once the store has answered.
enum Decision {
    /// Refused, with the answer (a failed attempt already counted).
    Refuse(AuthError),
    /// Admitted, with the key's standing against its rate, if it has one.
    Admit(Arc<KeyRecord>, Option<RateLimitStatus>),
    /// Admitted once the key's last use (at the time given, when its write interval is
    /// due) and this process's usage counts (when their batch is due) are written.
    WriteThenAdmit(Arc<KeyRecord>, Option<RateLimitStatus>, Writes),
    /// Refused once this process's usage counts are written (their batch is due).
    WriteUsageThenRefuse(AuthError),
    /// A verified key whose shared rate limit must ask its quota store first.
    AwaitLimit(Arc<KeyRecord>, LimitWait),
    /// A refusal for invalid credentials, answered once the client's shared budget
    /// has counted it.
    AwaitBudget(AuthError, BudgetWait),
}

impl Authenticator {
    /// An authenticator with the default settings over `store`.
    pub fn new(store: impl KeyStore) -> Self {
        Self::builder(store).build()
    }

    /// Starts configuring an authenticator over `store`.
    pub fn builder(store: impl KeyStore) -> AuthenticatorBuilder {
        AuthenticatorBuilder::new(Arc::new(store))
    }

    /// Authenticates a request by its head, as the [layer](super::ApiKeyLayer) does:
    /// the credential, the store lookup, the key's restrictions (client address,
    /// origin, route) against the request, its rate limit, and the client's
    /// failed-attempts budget. Every HTTP caller goes through here, so every rule
    /// holds on every route.
    ///
    /// ```
    /// use tower_api_key::{auth::Authenticator, error::AuthErrorKind, store::InMemoryKeyStore};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let auth = Authenticator::new(InMemoryKeyStore::new());
    /// let (parts, ()) = http::Request::new(()).into_parts();
    /// let err = auth.authenticate(&parts).await.unwrap_err();
    /// assert_eq!(err.kind(), AuthErrorKind::MissingCredentials);
    /// # });
    /// ```
    pub async fn authenticate(&self, parts: &Parts) -> Result<Principal, AuthError> {
        self.start(Head::of(parts)).finish().await
    }

    /// Authenticates bare key text that did not come with an HTTP request (a job
    /// queue's message, a CLI argument). There is no request, so there is no client
    /// address: no failed-attempts budget is counted, and a key with any restriction
    /// is refused (403). Never use this for a key taken from an HTTP request: use
    /// [`authenticate`](Self::authenticate) with the request's parts.
    pub async fn authenticate_outside_http(&self, key: &str) -> Result<Principal, AuthError> {
        let report = Verification::start();
        match self.check_shape(key.as_bytes()) {
            Ok(presented) => {
                self.lookup(presented, None::<HeadFacts<'_>>, report)
                    .finish()
                    .await
            }
            Err(error) => {
                self.started(Decision::Refuse(error), report, None)
                    .finish()
                    .await
            }
        }
    }

    /// Starts verifying a request: everything that needs no waiting happens here, and
    /// with a store that answers at once (in memory, a cache hit) so does the rest.
    ///
    /// The steps of that common path are inlined here (`#[inline(always)]`) and the
    /// paths that wait or refuse are out of line (`#[cold]`, `#[inline(never)]`), so
    /// that its code is one short run. Inside a service, whose request handling fills
    /// the instruction cache already, the layer's cost follows the code it runs more
    /// than the instructions it counts (issue 15 §6).
    pub(crate) fn start(&self, head: Head<'_>) -> Started {
        let report = Verification::start();
        let facts = HeadFacts {
            head,
            proxies: &self.config.trusted_proxies,
        };
        match self.presented(head.headers) {
            Ok(presented) => self.lookup(presented, Some(facts), report),
            Err(error) => {
                std::hint::cold_path();
                self.started(self.refuse(error, Some(&facts)), report, None)
            }
        }
    }

    /// The store lookup: answered at once (the decision is made here) or waited for
    /// (the facts a decision needs are kept, owned, for after the wait).
    #[inline(always)]
    fn lookup(
        &self,
        presented: Presented<'_>,
        facts: Option<HeadFacts<'_>>,
        report: Verification,
    ) -> Started {
        let Presented { prefix, token } = presented;
        let found = self.config.store.lookup_now(&prefix);
        let hash = KeyHash::digest(token);
        match found {
            Some(found) => {
                let decision = self.decide(&hash, found, facts.as_ref());
                self.started(decision, report, Some(&prefix))
            }
            None => self.awaiting_store(Hashed { prefix, hash }, facts, report),
        }
    }

    /// A decision made without waiting: final, or carried on in the boxed future.
    #[inline(always)]
    fn started(
        &self,
        decision: Decision,
        report: Verification,
        prefix: Option<&KeyPrefix>,
    ) -> Started {
        match decision {
            Decision::Refuse(error) => {
                report.finished(prefix, Err(error.kind()));
                Started::Refused(error)
            }
            Decision::Admit(record, rate) => {
                report.finished(prefix, Ok(()));
                Started::Verified(self.principal(record, rate))
            }
            decision => self.concluding(decision, report.waiting(prefix)),
        }
    }

    /// The one place a verification is decided, whether the store answered at once or
    /// after a wait: the comparison and the key's lifecycle, then (for a verified key)
    /// its restrictions and rate, and whether its last use is due to be written. A
    /// refusal for invalid credentials is counted against the client's budget.
    ///
    /// The last use is noted in memory at the coarse clock's time ([`last_use_clock_ms`]),
    /// never a time a refusal depends on; a write to the store, when due, carries the
    /// system clock's.
    #[inline(always)]
    fn decide(
        &self,
        hash: &KeyHash,
        lookup: store::Result<Lookup>,
        facts: Option<&impl Facts>,
    ) -> Decision {
        let record = match self.check(hash, lookup) {
            Ok(record) => record,
            Err(Refusal::Plain(error)) => return self.refuse(error, facts),
            Err(Refusal::Key(record, error, outcome)) => {
                return self.refuse_key(&record, error, outcome)
            }
        };
        if !record.restrictions.is_empty() {
            if let Err(error) = self.restrict(&record, facts) {
                return self.refuse_key(&record, error, UsageOutcome::Restricted);
            }
        }
        // Only verified keys are counted, so guesses under a key's prefix never use
        // up its quota. A key without a rate has nothing to count.
        match self.rate_of(&record) {
            None => self.admit(record, Ok(None)),
            Some(rate) => self.admit_limited(record, rate),
        }
    }

    /// [`decide`](Self::decide) for a key with a rate: counted against it first. Out
    /// of line, as every step off the common path is.
    #[inline(never)]
    fn admit_limited(&self, record: Arc<KeyRecord>, rate: RateLimit) -> Decision {
        match self.limit_key(&record, rate) {
            Limited::Now(answer) => self.admit(record, answer),
            Limited::Wait(wait) => Decision::AwaitLimit(record, wait),
        }
    }

    /// A verified key's request, once counted against its rate: refused when over
    /// (429), else admitted, noting its last use.
    #[inline(always)]
    fn admit(
        &self,
        record: Arc<KeyRecord>,
        counted: Result<Option<RateLimitStatus>, OverLimit>,
    ) -> Decision {
        let rate = match counted {
            Ok(rate) => rate,
            Err(over) => {
                std::hint::cold_path();
                let error = self.over_limit(over);
                return self.refuse_key(&record, error, UsageOutcome::RateLimited);
            }
        };
        // A record someone else holds too is the store's own copy, kept between requests.
        let kept = Arc::strong_count(&record) > 1;
        let log = &self.config.last_use;
        let ms = last_use_clock_ms();
        // Due (once per interval): what is written is the exact time.
        let last_use = log.note_at(&record, ms, kept).then(SystemTime::now);
        let usage = log.usage_due(ms);
        if last_use.is_some() || usage {
            // Once per interval.
            std::hint::cold_path();
            Decision::WriteThenAdmit(record, rate, Writes { last_use, usage })
        } else {
            Decision::Admit(record, rate)
        }
    }

    /// A refusal for a reason that is the key's (revoked, expired, outside its
    /// restrictions, over its rate): counted in the key's usage.
    #[cold]
    fn refuse_key(
        &self,
        record: &Arc<KeyRecord>,
        error: AuthError,
        outcome: UsageOutcome,
    ) -> Decision {
        let log = &self.config.last_use;
        let ms = last_use_clock_ms();
        log.count_refusal(record, ms, Arc::strong_count(record) > 1, outcome);
        if log.usage_due(ms) {
            Decision::WriteUsageThenRefuse(error)
        } else {
            Decision::Refuse(error)
        }
    }

    /// Reads and shape-checks the credential. No I/O.
    #[inline(always)]
    fn presented<'h>(&self, headers: &'h HeaderMap) -> Result<Presented<'h>, AuthError> {
        match extract(headers, self.config.extra_header.as_ref()) {
            Credential::Missing => Err(self.error(AuthErrorKind::MissingCredentials)),
            Credential::Malformed => Err(self.error(AuthErrorKind::InvalidCredentials)),
            Credential::Token(token) => self.check_shape(token),
        }
    }

    #[inline(always)]
    fn check_shape<'t>(&self, token: &'t [u8]) -> Result<Presented<'t>, AuthError> {
        let (prefix, mode) = self
            .config
            .format
            .split(token)
            .ok_or_else(|| self.error(AuthErrorKind::InvalidCredentials))?;
        // The mode is in the key's text, public: refuse a wrong one before any lookup.
        if !self.config.modes.accepts(mode) {
            return Err(self.error(AuthErrorKind::WrongMode));
        }
        Ok(Presented { prefix, token })
    }

    /// The store's answer, the constant-time comparison and the key's lifecycle. An
    /// unknown prefix is compared against the store's decoy, else a fixed dummy digest.
    /// The system clock is read only for a key with a revocation or an expiry: a key
    /// with neither has no lifecycle to check, whatever the time.
    #[inline(always)]
    fn check(
        &self,
        hash: &KeyHash,
        lookup: store::Result<Lookup>,
    ) -> Result<Arc<KeyRecord>, Refusal> {
        let (record, found) = lookup
            .map_err(|e| {
                Refusal::Plain(self.error(AuthErrorKind::StoreUnavailable).with_source(e))
            })?
            .into_parts();
        // The same work whether the record is the prefix's or a decoy: no branch on
        // `found` before the outcome, which is the same refusal for both.
        let expected = record.as_deref().map_or(&DUMMY_HASH, |r| &r.hash);
        let matched = hash.ct_eq(expected) & found;
        let record = match record {
            Some(record) if bool::from(matched) => record,
            _ => {
                return Err(Refusal::Plain(
                    self.error(AuthErrorKind::InvalidCredentials),
                ))
            }
        };
        if record.revoked_at.is_none() && record.expires_at.is_none() {
            return Ok(record);
        }
        self.lifecycle(record)
    }

    /// A verified key with a revocation or an expiry: refused once either is past.
    /// Out of line, as every step off the common path is.
    #[inline(never)]
    fn lifecycle(&self, record: Arc<KeyRecord>) -> Result<Arc<KeyRecord>, Refusal> {
        let now = SystemTime::now();
        let (kind, outcome) = if record.is_revoked_at(now) {
            (AuthErrorKind::Revoked, UsageOutcome::Revoked)
        } else if record.is_expired_at(now) {
            (AuthErrorKind::Expired, UsageOutcome::Expired)
        } else {
            return Ok(record);
        };
        Err(Refusal::Key(record, self.error(kind), outcome))
    }

    #[inline(never)]
    fn restrict(&self, record: &KeyRecord, facts: Option<&impl Facts>) -> Result<(), AuthError> {
        let outside = match facts {
            Some(facts) => {
                let outside = check_restrictions(&record.restrictions, facts);
                if outside == Err(Outside::Ip) && facts.client().is_none() {
                    warn_no_client_addr("an IP restriction");
                }
                outside
            }
            None if !record.restrictions.ips.is_empty() => Err(Outside::Ip),
            None if !record.restrictions.origins.is_empty() => Err(Outside::Origin),
            None => Err(Outside::Route),
        };
        outside.map_err(|outside| {
            self.error(match outside {
                Outside::Ip => AuthErrorKind::IpNotAllowed,
                Outside::Origin => AuthErrorKind::OriginNotAllowed,
                Outside::Route => AuthErrorKind::RouteNotAllowed,
            })
        })
    }

    /// A refusal, counted against the client's failed-attempts budget when it is for
    /// invalid credentials and came with a request (without one there is no client to
    /// count); it becomes 429 while the client is over its budget (its valid keys keep
    /// working).
    #[cold]
    fn refuse(&self, error: AuthError, facts: Option<&impl Facts>) -> Decision {
        let limiters = &self.config.limiters;
        let Some(facts) = facts else {
            return Decision::Refuse(error);
        };
        if error.kind() != AuthErrorKind::InvalidCredentials || !limiters.counts_failures() {
            return Decision::Refuse(error);
        }
        let client = facts.client();
        if client.is_none() {
            warn_no_client_addr("the failed-attempts budget");
        }
        match self.count_failure(client) {
            Limited::Now(counted) => Decision::Refuse(self.budgeted(error, counted)),
            Limited::Wait(wait) => Decision::AwaitBudget(error, wait),
        }
    }

    /// Whose forwarding headers are believed: the management routes name a request's
    /// client with [`TrustedProxies::client_of`], as this pipeline does.
    #[cfg(feature = "axum")]
    pub(crate) fn trusted_proxies(&self) -> &TrustedProxies {
        &self.config.trusted_proxies
    }

    #[inline(always)]
    fn principal(&self, record: Arc<KeyRecord>, rate: Option<RateLimitStatus>) -> Principal {
        Principal::new(record, self.config.rejections.clone(), rate)
    }

    #[cold]
    pub(crate) fn error(&self, kind: AuthErrorKind) -> AuthError {
        AuthError::with_rejections(kind, self.config.rejections.clone())
    }
}

/// Logs, once per process, that a request came without a client address while a rule
/// needed one: every such client then shares one failed-attempts budget, and keys
/// restricted to addresses are refused.
fn warn_no_client_addr(needed_by: &'static str) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        tracing::warn!(
            needed_by,
            "a request reached the API key check without a client address: clients of \
             unknown address share one failed-attempts budget and IP-restricted keys are \
             refused. Give axum the peer (`ConnectInfo`, from \
             `into_make_service_with_connect_info::<SocketAddr>()`), \
             or insert `tower_api_key::policy::PeerAddr` into each hyper request's \
             extensions (logged once)",
        );
    });
}

impl<S: KeyStore> From<S> for Authenticator {
    fn from(store: S) -> Self {
        Authenticator::new(store)
    }
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("format", &self.config.format)
            .field("extra_header", &self.config.extra_header)
            .field("last_use", &self.config.last_use)
            .finish_non_exhaustive()
    }
}
