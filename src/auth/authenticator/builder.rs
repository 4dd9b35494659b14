//! [`AuthenticatorBuilder`]: every setting of the verification pipeline, with its safe
//! default.

use std::{borrow::Cow, fmt, num::NonZeroU32, sync::Arc, time::Duration};

use http::{
    header::{AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION},
    HeaderName,
};

use super::{Authenticator, Config};
use crate::auth::shared_limits::SharedLimits;
use crate::{
    error::{AuthErrorKind, Messages, SharedRejections},
    key::{KeyFormat, KeyMode},
    policy::{AcceptedModes, ForwardedHeader, Limiters, RateLimit, TrustedProxies},
    store::{KeyStore, LastUse, QuotaStore},
};

/// Failed attempts a client address may make: 300 a minute.
const DEFAULT_FAILURE_LIMIT: RateLimit = match NonZeroU32::new(300) {
    Some(n) => RateLimit::per_minute(n),
    None => unreachable!(),
};

/// Configures an [`Authenticator`] (and so an [`ApiKeyLayer`](crate::auth::ApiKeyLayer)).
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
    count_usage: bool,
    modes: AcceptedModes,
    trusted_proxies: TrustedProxies,
    rate_limit: Option<RateLimit>,
    failure_limit: Option<RateLimit>,
    rate_limit_headers: bool,
    quotas: Option<Arc<dyn QuotaStore>>,
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

    /// Whether to count each key's requests, hour by hour, by outcome (see
    /// [`LastUse`] and [`Keys::usage`](crate::manage::Keys::usage)). Default: on when
    /// the store [keeps usage](KeyStore::keeps_usage), as every built-in store does;
    /// `false` counts nothing (what was counted before stays in the store).
    pub fn count_usage(mut self, count: bool) -> Self {
        self.count_usage = count;
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
    /// ([`KeyRecord::rate_limit`](crate::store::KeyRecord::rate_limit)). Over it: 429 `rate_limited` with `Retry-After`.
    /// Counted only for verified keys, in this process's memory — with several
    /// instances each counts on its own, unless they share
    /// [`shared_rate_limits`](Self::shared_rate_limits). Default: no limit.
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
    /// guessed at are untouched. Counted like [`rate_limit`](Self::rate_limit): in
    /// this process, or shared by every instance. Default: 300 per minute; `None`
    /// turns it off.
    pub fn failed_attempts_limit(mut self, rate: impl Into<Option<RateLimit>>) -> Self {
        self.failure_limit = rate.into();
        self
    }

    /// Count every rate limit — each key's, and each client's failed-attempts budget
    /// — in `quotas`, shared by every instance that uses the same store, instead of
    /// in this process: a key limited to 100/10s gets 100/10s across all of them,
    /// not 100/10s on each. Give it the deployment's `RedisKeyStore` or
    /// `PostgresKeyStore` (any [`QuotaStore`]).
    ///
    /// Most requests still cost no round trip: each instance leases a slice of a
    /// key's quota (a fiftieth of its burst, growing to an eighth while the key is
    /// well under its limit) and spends it locally, asking the store again only once
    /// the slice is spent or its lease (a quarter of the rate's period) ends. The
    /// instances together never admit more than the limit allows; a key's burst can
    /// come up short by the slices other instances hold but have not spent, for at
    /// most a lease, and a key over its limit is admitted a slice at a time.
    ///
    /// While the store does not answer, each instance admits its share of every
    /// limit (the limit divided by the most instances the store reported on one
    /// bucket in the last minute or two) and logs a warning; it counts in the store
    /// again as soon as the store answers. [`QuotaStore`] gives the rule and the
    /// bounds; the README's "Running many instances" the figures.
    ///
    /// ```
    /// use tower_api_key::{auth::Authenticator, store::InMemoryKeyStore};
    ///
    /// # let store = InMemoryKeyStore::new();
    /// // With many instances: `RedisKeyStore` or `PostgresKeyStore`.
    /// let auth = Authenticator::builder(store.clone())
    ///     .rate_limit("100/10s".parse().ok())
    ///     .shared_rate_limits(store)
    ///     .build();
    /// ```
    pub fn shared_rate_limits(mut self, quotas: impl QuotaStore) -> Self {
        self.quotas = Some(Arc::new(quotas));
        self
    }

    /// The authenticator.
    pub fn build(mut self) -> Authenticator {
        let last_use = self.last_use.unwrap_or_default();
        if self.count_usage && self.store.keeps_usage() {
            last_use.count_usage();
        }
        if let Some(message) = self.modes.refusal_message() {
            self.messages
                .set_default(AuthErrorKind::WrongMode, message.into());
        }
        Authenticator {
            config: Arc::new(Config {
                store: self.store,
                format: self.format,
                extra_header: self.extra_header,
                rejections: SharedRejections::new(&self.realm, self.messages, self.retry_after),
                last_use,
                modes: self.modes,
                trusted_proxies: self.trusted_proxies,
                limiters: Limiters::new(
                    self.rate_limit,
                    self.failure_limit,
                    self.rate_limit_headers,
                ),
                shared: self
                    .quotas
                    .map(|quotas| Arc::new(SharedLimits::new(quotas))),
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

impl AuthenticatorBuilder {
    /// Every setting at its default, over `store`.
    pub(super) fn new(store: Arc<dyn KeyStore>) -> Self {
        AuthenticatorBuilder {
            store,
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
            quotas: None,
            count_usage: true,
        }
    }
}
