use std::{
    borrow::Cow,
    fmt,
    future::Future,
    net::IpAddr,
    num::NonZeroU32,
    pin::Pin,
    sync::Arc,
    time::{Duration, SystemTime},
};

use http::{
    header::{self, AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION},
    request::Parts,
    Extensions, HeaderMap, HeaderName, HeaderValue, Method, Uri,
};
use subtle::ConstantTimeEq;

use super::{
    credential::{extract, Credential},
    Principal,
};
use crate::{
    error::{AuthError, AuthErrorKind, Messages, Rejections},
    key::{KeyFormat, KeyHash, KeyMode, KeyPrefix},
    policy::{
        check_restrictions, AcceptedModes, Facts, ForwardedHeader, Limiters, Outside, PeerAddr,
        RateLimit, RateLimitStatus, RequestFacts, TrustedProxies,
    },
    store::{self, KeyRecord, KeyStore, LastUse, Lookup},
};

/// Failed attempts a client address may make: 300 a minute.
const DEFAULT_FAILURE_LIMIT: RateLimit = match NonZeroU32::new(300) {
    Some(n) => RateLimit::per_minute(n),
    None => unreachable!(),
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
/// constant time (against a fixed dummy digest when the prefix is unknown, so the
/// hashing, the comparison and the answer are the same as for a wrong secret); refuses
/// revoked and expired keys; and notes the key's last use in memory ([`LastUse`]),
/// writing it to the store at most once per key per interval.
///
/// With a store that answers from memory ([`KeyStore::find_by_prefix_now`]) the whole
/// check runs without allocating a future; other stores are awaited.
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

struct Config {
    store: Arc<dyn KeyStore>,
    format: KeyFormat,
    extra_header: Option<HeaderName>,
    rejections: Arc<Rejections>,
    last_use: LastUse,
    modes: AcceptedModes,
    trusted_proxies: TrustedProxies,
    limiters: Limiters,
    rate_limit_headers: bool,
}

/// How far [`Authenticator::start`] got without waiting.
pub(crate) enum Started {
    /// Verified: admit the request.
    Verified(Principal),
    /// Refused: answer with the error.
    Refused(AuthError),
    /// The store must be waited for.
    Pending(Pin<Box<dyn Future<Output = Result<Principal, AuthError>> + Send>>),
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

/// The parts of a request the authenticator reads.
#[derive(Clone, Copy)]
pub(crate) struct Head<'a> {
    pub(crate) method: &'a Method,
    pub(crate) uri: &'a Uri,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) extensions: &'a Extensions,
}

impl<'a> Head<'a> {
    pub(crate) fn of(parts: &'a Parts) -> Self {
        Head {
            method: &parts.method,
            uri: &parts.uri,
            headers: &parts.headers,
            extensions: &parts.extensions,
        }
    }

    pub(crate) fn of_request<B>(request: &'a http::Request<B>) -> Self {
        Head {
            method: request.method(),
            uri: request.uri(),
            headers: request.headers(),
            extensions: request.extensions(),
        }
    }
}

/// The restriction check's view of a request being handled, borrowed: nothing is
/// copied, and the client address is resolved only if a key restricts it.
struct HeadFacts<'a> {
    auth: &'a Authenticator,
    head: Head<'a>,
}

impl Facts for HeadFacts<'_> {
    fn method(&self) -> &Method {
        self.head.method
    }

    fn path(&self) -> &str {
        self.auth.uri(self.head).path()
    }

    fn header(&self, name: header::HeaderName) -> Option<&HeaderValue> {
        self.head.headers.get(name)
    }

    fn client(&self) -> Option<IpAddr> {
        self.auth.client(self.head)
    }
}

/// A well-formed key as presented: its prefix and digest, nothing secret.
struct Presented {
    prefix: KeyPrefix,
    hash: KeyHash,
}

impl Authenticator {
    /// An authenticator with the default settings over `store`.
    pub fn new(store: impl KeyStore) -> Self {
        Self::builder(store).build()
    }

    /// Starts configuring an authenticator over `store`.
    pub fn builder(store: impl KeyStore) -> AuthenticatorBuilder {
        AuthenticatorBuilder {
            store: Arc::new(store),
            format: KeyFormat::default(),
            extra_header: None,
            realm: "api".into(),
            messages: Messages::default(),
            retry_after: Duration::from_secs(1),
            last_use: None,
            modes: AcceptedModes::default(),
            trusted_proxies: TrustedProxies::default(),
            rate_limit: None,
            failure_limit: Some(DEFAULT_FAILURE_LIMIT),
            rate_limit_headers: false,
        }
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
        match self.check_shape(key.as_bytes()) {
            Ok(presented) => self.lookup(presented, None).finish().await,
            Err(error) => Err(error),
        }
    }

    /// Starts verifying a request: everything that needs no waiting happens here, and
    /// with a store that answers at once (in memory, a cache hit) so does the rest.
    pub(crate) fn start(&self, head: Head<'_>) -> Started {
        let limiters = &self.config.limiters;
        let started = match self.presented(head.headers) {
            Ok(presented) => self.lookup(presented, Some(head)),
            Err(error) => Started::Refused(error),
        };
        match started {
            Started::Refused(error)
                if error.kind() == AuthErrorKind::InvalidCredentials
                    && limiters.counts_failures() =>
            {
                Started::Refused(self.count_failure(error, self.client(head)))
            }
            other => other,
        }
    }

    fn lookup(&self, presented: Presented, head: Option<Head<'_>>) -> Started {
        let Some(found) = self.config.store.lookup_now(&presented.prefix) else {
            // What the restriction check needs, owned, for after the wait.
            let facts = head.map(|head| self.facts(head));
            let auth = self.clone();
            return Started::Pending(Box::pin(async move { auth.verify(presented, facts).await }));
        };
        let now = SystemTime::now();
        let checked = self.check(&presented, found, now).and_then(|record| {
            let facts = head.map(|head| HeadFacts { auth: self, head });
            let rate = self.permit(&record, facts.as_ref())?;
            Ok((record, rate))
        });
        match checked {
            Err(error) => Started::Refused(error),
            Ok((record, rate)) if self.config.last_use.note(&record, now) => {
                let auth = self.clone();
                Started::Pending(Box::pin(async move {
                    auth.note_use_and_admit(record, rate, now).await
                }))
            }
            Ok((record, rate)) => Started::Verified(self.principal(record, rate)),
        }
    }

    /// Reads and shape-checks the credential, and hashes it. No I/O.
    fn presented(&self, headers: &HeaderMap) -> Result<Presented, AuthError> {
        match extract(headers, self.config.extra_header.as_ref()) {
            Credential::Missing => Err(self.error(AuthErrorKind::MissingCredentials)),
            Credential::Malformed => Err(self.error(AuthErrorKind::InvalidCredentials)),
            Credential::Token(token) => self.check_shape(token),
        }
    }

    fn check_shape(&self, token: &[u8]) -> Result<Presented, AuthError> {
        let (prefix, mode) = self
            .config
            .format
            .split(token)
            .ok_or_else(|| self.error(AuthErrorKind::InvalidCredentials))?;
        // The mode is in the key's text, public: refuse a wrong one before any lookup.
        if !self.config.modes.accepts(mode) {
            return Err(self.error(AuthErrorKind::WrongMode));
        }
        Ok(Presented {
            prefix,
            hash: KeyHash::digest(token),
        })
    }

    /// The asynchronous path: one store lookup, then the same checks.
    async fn verify(
        &self,
        presented: Presented,
        facts: Option<RequestFacts>,
    ) -> Result<Principal, AuthError> {
        let found = self.config.store.find_by_prefix(&presented.prefix).await;
        let found = found.map(Lookup::found);
        let now = SystemTime::now();
        let record = match self.check(&presented, found, now) {
            Ok(record) => record,
            // Counted only for a request (without one there is no client to count).
            Err(error) if error.kind() == AuthErrorKind::InvalidCredentials => {
                return Err(match facts {
                    Some(facts) => self.count_failure(error, facts.client),
                    None => error,
                });
            }
            Err(error) => return Err(error),
        };
        let rate = self.permit(&record, facts.as_ref())?;
        if self.config.last_use.note(&record, now) {
            self.note_use_and_admit(record, rate, now).await
        } else {
            Ok(self.principal(record, rate))
        }
    }

    /// The store's answer, the constant-time comparison and the key's lifecycle. An
    /// unknown prefix is compared against the store's decoy, else a fixed dummy digest.
    fn check(
        &self,
        presented: &Presented,
        lookup: store::Result<Lookup>,
        now: SystemTime,
    ) -> Result<Arc<KeyRecord>, AuthError> {
        let (record, found) = lookup
            .map_err(|e| self.error(AuthErrorKind::StoreUnavailable).with_source(e))?
            .into_parts();
        // The same work whether the record is the prefix's or a decoy: no branch on
        // `found` before the outcome, which is the same refusal for both.
        let expected = record.as_deref().map_or(&DUMMY_HASH, |r| &r.hash);
        let matched = presented.hash.ct_eq(expected) & found;
        let record = match record {
            Some(record) if bool::from(matched) => record,
            _ => return Err(self.error(AuthErrorKind::InvalidCredentials)),
        };
        if record.is_revoked_at(now) {
            return Err(self.error(AuthErrorKind::Revoked));
        }
        if record.is_expired_at(now) {
            return Err(self.error(AuthErrorKind::Expired));
        }
        Ok(record)
    }

    /// The key's restrictions against the request; without the request (`None`), a
    /// restricted key is refused.
    fn restrict(&self, record: &KeyRecord, facts: Option<&impl Facts>) -> Result<(), AuthError> {
        let outside = match facts {
            Some(facts) => check_restrictions(&record.restrictions, facts),
            None if !record.restrictions.ips.is_empty() => Err(Outside::Ip),
            None if !record.restrictions.origins.is_empty() => Err(Outside::Origin),
            None => Err(Outside::Route),
        };
        if let (Err(Outside::Ip), Some(facts)) = (&outside, facts) {
            if facts.client().is_none() {
                warn_no_client_addr("an IP restriction");
            }
        }
        outside.map_err(|outside| {
            self.error(match outside {
                Outside::Ip => AuthErrorKind::IpNotAllowed,
                Outside::Origin => AuthErrorKind::OriginNotAllowed,
                Outside::Route => AuthErrorKind::RouteNotAllowed,
            })
        })
    }

    /// What a verified key may do with this request: its restrictions (if it has
    /// any), then its rate. The one place both the immediate and the waiting path
    /// decide it; `Ok` carries the key's standing against its rate, if it has one.
    fn permit(
        &self,
        record: &KeyRecord,
        facts: Option<&impl Facts>,
    ) -> Result<Option<RateLimitStatus>, AuthError> {
        if !record.restrictions.is_empty() {
            self.restrict(record, facts)?;
        }
        self.limit(record)
    }

    /// Counts a verified key's request against its rate; 429 when over. Only verified
    /// keys get here, so guesses under a key's prefix never use up its quota.
    fn limit(&self, record: &KeyRecord) -> Result<Option<RateLimitStatus>, AuthError> {
        self.config
            .limiters
            .check_key(&record.prefix, record.rate_limit)
            .map_err(|over| {
                let error = self.rate_limited(over.retry_after);
                if self.config.rate_limit_headers {
                    error.with_headers(over.status.headers())
                } else {
                    error
                }
            })
    }

    /// Counts a failed attempt from `client`; the refusal becomes 429 while the client
    /// is over its failure budget (its valid keys keep working).
    fn count_failure(&self, error: AuthError, client: Option<IpAddr>) -> AuthError {
        if client.is_none() {
            warn_no_client_addr("the failed-attempts budget");
        }
        match self.config.limiters.failed(client) {
            Ok(()) => error,
            Err(wait) => self.rate_limited(wait),
        }
    }

    fn rate_limited(&self, wait: Duration) -> AuthError {
        self.error(AuthErrorKind::RateLimited)
            .with_retry_after(wait)
    }

    /// The client's address: the connection's peer (`PeerAddr`, or axum's
    /// `ConnectInfo`), or behind trusted proxies the rightmost untrusted hop.
    fn client(&self, head: Head<'_>) -> Option<IpAddr> {
        self.client_addr(head.headers, head.extensions)
    }

    /// [`client`](Self::client) for other parts of the crate (key management's
    /// hooks and audit trail), so that every part names the same address.
    pub(crate) fn client_addr(
        &self,
        headers: &HeaderMap,
        extensions: &http::Extensions,
    ) -> Option<IpAddr> {
        let peer = extensions.get::<PeerAddr>().map(|p| p.0.ip());
        #[cfg(feature = "axum")]
        let peer = peer.or_else(|| {
            extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|info| info.0.ip())
        });
        self.config.trusted_proxies.client(peer, headers)
    }

    /// The request's URI as the application received it (axum's `OriginalUri` under
    /// `nest`), which route restrictions are written against.
    fn uri<'h>(&self, head: Head<'h>) -> &'h Uri {
        #[cfg(feature = "axum")]
        let uri = head
            .extensions
            .get::<axum::extract::OriginalUri>()
            .map_or(head.uri, |original| &original.0);
        #[cfg(not(feature = "axum"))]
        let uri = head.uri;
        uri
    }

    /// What a restriction check needs to know about the request, owned.
    fn facts(&self, head: Head<'_>) -> RequestFacts {
        RequestFacts {
            method: head.method.clone(),
            uri: self.uri(head).clone(),
            origin: head.headers.get(header::ORIGIN).cloned(),
            referer: head.headers.get(header::REFERER).cloned(),
            client: self.client(head),
        }
    }

    /// Writes the key's last use, then admits it — unless the key was revoked while
    /// the write was under way, so that no request is let through after a revoke
    /// returned. A failed write does not refuse a valid key (the use stays pending for
    /// the next write or [`LastUse::flush`]).
    async fn note_use_and_admit(
        &self,
        record: Arc<KeyRecord>,
        rate: Option<RateLimitStatus>,
        now: SystemTime,
    ) -> Result<Principal, AuthError> {
        let store = &self.config.store;
        if store.record_last_use(&record.id, now).await.is_ok() {
            self.config.last_use.stored(&record, now);
        }
        let current = match store.find_by_prefix_now(&record.prefix) {
            Some(found) => found,
            None => store.find_by_prefix(&record.prefix).await,
        };
        match current {
            Ok(Some(current)) if current.is_revoked_at(SystemTime::now()) => {
                Err(self.error(AuthErrorKind::Revoked))
            }
            Ok(_) => Ok(self.principal(record, rate)),
            Err(e) => Err(self.error(AuthErrorKind::StoreUnavailable).with_source(e)),
        }
    }

    fn principal(&self, record: Arc<KeyRecord>, rate: Option<RateLimitStatus>) -> Principal {
        Principal::new(record, self.config.rejections.clone(), rate)
    }

    /// The log of last uses this authenticator notes into.
    pub fn last_use(&self) -> &LastUse {
        &self.config.last_use
    }

    /// Writes the last uses noted here but not yet stored; call on graceful shutdown.
    pub async fn flush_last_use(&self) -> store::Result<usize> {
        self.config.last_use.flush(&*self.config.store).await
    }

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

/// Configures an [`Authenticator`] (and so an [`ApiKeyLayer`](super::ApiKeyLayer)).
///
/// Every setting has a safe default; see each method.
///
/// ```
/// use std::time::Duration;
/// use http::HeaderName;
/// use tower_api_key::{
///     auth::{ApiKeyLayer, Authenticator},
///     error::AuthErrorKind,
///     key::KeyFormat,
///     store::{InMemoryKeyStore, LastUse},
/// };
///
/// let auth = Authenticator::builder(InMemoryKeyStore::new())
///     .realm("acme")
///     .key_format(KeyFormat::new("acme").unwrap())
///     .also_accept_header(HeaderName::from_static("x-api-key"))
///     .message(AuthErrorKind::Expired, "This key has expired; mint a new one in Settings.")
///     .last_use(LastUse::new(Duration::from_secs(300)))
///     .build();
/// let layer = ApiKeyLayer::new(auth);
/// ```
#[must_use]
pub struct AuthenticatorBuilder {
    store: Arc<dyn KeyStore>,
    format: KeyFormat,
    extra_header: Option<HeaderName>,
    realm: String,
    messages: Messages,
    retry_after: Duration,
    last_use: Option<LastUse>,
    modes: AcceptedModes,
    trusted_proxies: TrustedProxies,
    rate_limit: Option<RateLimit>,
    failure_limit: Option<RateLimit>,
    rate_limit_headers: bool,
}

impl AuthenticatorBuilder {
    /// The `realm` of the `WWW-Authenticate` challenge. Default `api`. Quotes and
    /// backslashes are escaped; characters outside printable ASCII are dropped.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// The key format (namespace) accepted. Default `pk`.
    pub fn key_format(mut self, format: KeyFormat) -> Self {
        self.format = format;
        self
    }

    /// Also read the bare key from this header (e.g. `X-API-Key`). Off by default. A
    /// request carrying both this header and `Authorization` is refused.
    ///
    /// # Panics
    ///
    /// For `Authorization`, `Proxy-Authorization` and `Cookie`, which must never carry
    /// a bare key: a configuration mistake, caught at start-up.
    pub fn also_accept_header(mut self, name: HeaderName) -> Self {
        assert!(
            ![AUTHORIZATION, PROXY_AUTHORIZATION, COOKIE].contains(&name),
            "also_accept_header: `{name}` cannot carry a bare API key"
        );
        self.extra_header = Some(name);
        self
    }

    /// Replaces the envelope message for one kind of refusal. The wire shape, code and
    /// status stay; never put anything secret in a message.
    pub fn message(mut self, kind: AuthErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        self.messages.set(kind, message.into());
        self
    }

    /// `Retry-After` sent with 503 when the store fails. Default 1 s.
    pub fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = after;
        self
    }

    /// Where the layer notes each key's last use; see [`LastUse`]. Default: a log of
    /// its own with a 60 s write interval. Pass a shared one to show the merged value
    /// in management views; reach it later with [`Authenticator::last_use`].
    pub fn last_use(mut self, last_use: LastUse) -> Self {
        self.last_use = Some(last_use);
        self
    }

    /// Accept keys of this mode only: `KeyMode::Live` in production, `KeyMode::Test`
    /// on a staging deployment. A key of the other mode gets 401 with a message that
    /// names the mode this endpoint expects. Default: both.
    pub fn only_mode(mut self, mode: KeyMode) -> Self {
        self.modes = AcceptedModes::only(mode);
        self
    }

    /// Proxies whose forwarding header (`header`: the one they write) is believed for
    /// a key's IP restrictions and the failed-attempts budget: when the connection
    /// comes from one of them, the client is the rightmost forwarded address that is
    /// not one of them. Default: none — no forwarding header is ever read and the
    /// client is the connection's peer (axum's `ConnectInfo`, or
    /// [`PeerAddr`](crate::policy::PeerAddr)).
    pub fn trusted_proxies<I: IntoIterator<Item = ipnet::IpNet>>(
        mut self,
        proxies: I,
        header: ForwardedHeader,
    ) -> Self {
        self.trusted_proxies = TrustedProxies {
            nets: proxies.into_iter().collect(),
            header,
        };
        self
    }

    /// The request rate every key gets unless its record sets its own
    /// ([`KeyRecord::rate_limit`]). Over it: 429 `rate_limited` with `Retry-After`.
    /// Counted only for verified keys. Default: no limit.
    pub fn rate_limit(mut self, rate: impl Into<Option<RateLimit>>) -> Self {
        self.rate_limit = rate.into();
        self
    }

    /// Send the IETF rate-limit headers (draft-ietf-httpapi-ratelimit-headers) for
    /// keys that have a rate: `RateLimit-Policy: "key";q=<requests>;w=<seconds>` and
    /// `RateLimit: "key";r=<remaining>;t=<seconds until the whole quota is back>`, on
    /// the inner service's responses and on the key's 429s. Off by default: the
    /// draft may still change, and the headers tell every caller its quota.
    pub fn rate_limit_headers(mut self, on: bool) -> Self {
        self.rate_limit_headers = on;
        self
    }

    /// The budget of failed attempts (malformed, unknown or wrong keys) per client
    /// address (IPv6: per /64; clients of unknown address share one budget). Over it,
    /// the client's failing requests get 429 with `Retry-After` instead of 401 until
    /// the budget refills; its valid keys, other clients, and the quota of the keys it
    /// guessed at are untouched. Default: 300 per minute; `None` turns it off.
    pub fn failed_attempts_limit(mut self, rate: impl Into<Option<RateLimit>>) -> Self {
        self.failure_limit = rate.into();
        self
    }

    /// The authenticator.
    pub fn build(mut self) -> Authenticator {
        if let Some(message) = self.modes.refusal_message() {
            self.messages
                .set_default(AuthErrorKind::WrongMode, message.into());
        }
        Authenticator {
            config: Arc::new(Config {
                store: self.store,
                format: self.format,
                extra_header: self.extra_header,
                rejections: Arc::new(Rejections::new(
                    &self.realm,
                    self.messages,
                    self.retry_after,
                )),
                last_use: self.last_use.unwrap_or_default(),
                modes: self.modes,
                trusted_proxies: self.trusted_proxies,
                limiters: Limiters::new(
                    self.rate_limit,
                    self.failure_limit,
                    self.rate_limit_headers,
                ),
                rate_limit_headers: self.rate_limit_headers,
            }),
        }
    }
}

impl fmt::Debug for AuthenticatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticatorBuilder")
            .field("format", &self.format)
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}
