use std::{
    borrow::Cow,
    error::Error as StdError,
    fmt,
    ops::Deref,
    sync::{Arc, LazyLock, Mutex, PoisonError},
    time::Duration,
};

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};

use super::{envelope_json, json_response, retry_after_value, ErrorCode};

/// Declares [`AuthErrorKind`] and its list of every kind from one list of variants, so
/// the two never disagree; a kind's index (into the per-kind tables of messages and
/// bodies) is its position.
macro_rules! auth_error_kinds {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident,)+ }) => {
        $(#[$meta])*
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        /// How many kinds there are.
        pub(crate) const KINDS: usize = [$(stringify!($variant)),+].len();

        impl $name {
            /// Every kind, in declaration order.
            pub(crate) const ALL: [$name; KINDS] = [$($name::$variant),+];

            /// The kind's position in [`ALL`](Self::ALL).
            pub(crate) const fn index(self) -> usize {
                self as usize
            }
        }
    };
}

auth_error_kinds! {
    /// Why a request was refused by the layer.
    ///
    /// New kinds may be added in minor releases.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    #[non_exhaustive]
    pub enum AuthErrorKind {
        /// No credentials at all: 401, challenge without `error=`.
        MissingCredentials,
        /// Credentials that are malformed, ambiguous, unknown or wrong: 401,
        /// `error="invalid_token"`. Unknown prefix and wrong secret are indistinguishable.
        InvalidCredentials,
        /// The key was revoked: 401, `error="invalid_token"`.
        Revoked,
        /// The key has expired: 401, `error="invalid_token"`.
        Expired,
        /// The key is valid but lacks a required scope: 403, `error="insufficient_scope"`.
        InsufficientScope,
        /// The key is of a mode (live or test) this endpoint does not accept: 401,
        /// `error="invalid_token"`, with a message naming the mode it does accept.
        WrongMode,
        /// The key may not be used from this client address: 403.
        IpNotAllowed,
        /// The key may not be used from this browser origin: 403.
        OriginNotAllowed,
        /// The key may not call this method and path: 403.
        RouteNotAllowed,
        /// Too many requests for this key, or too many failed attempts from this client:
        /// 429 `rate_limited` with `Retry-After`.
        RateLimited,
        /// The key store answered with an error (including [`StoreError::Timeout`] from a
        /// store that bounds its calls); the request fails closed: 503 with `Retry-After`.
        ///
        /// [`StoreError::Timeout`]: crate::store::StoreError::Timeout
        StoreUnavailable,
    }
}

impl AuthErrorKind {
    /// The kind's name in snake case (`invalid_credentials`, `rate_limited`…), as logs
    /// and metrics label it.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuthErrorKind::MissingCredentials => "missing_credentials",
            AuthErrorKind::InvalidCredentials => "invalid_credentials",
            AuthErrorKind::Revoked => "revoked",
            AuthErrorKind::Expired => "expired",
            AuthErrorKind::InsufficientScope => "insufficient_scope",
            AuthErrorKind::WrongMode => "wrong_mode",
            AuthErrorKind::IpNotAllowed => "ip_not_allowed",
            AuthErrorKind::OriginNotAllowed => "origin_not_allowed",
            AuthErrorKind::RouteNotAllowed => "route_not_allowed",
            AuthErrorKind::RateLimited => "rate_limited",
            AuthErrorKind::StoreUnavailable => "store_unavailable",
        }
    }

    /// The HTTP status this kind is answered with.
    pub const fn status(self) -> StatusCode {
        match self {
            AuthErrorKind::MissingCredentials
            | AuthErrorKind::InvalidCredentials
            | AuthErrorKind::Revoked
            | AuthErrorKind::Expired
            | AuthErrorKind::WrongMode => StatusCode::UNAUTHORIZED,
            AuthErrorKind::InsufficientScope
            | AuthErrorKind::IpNotAllowed
            | AuthErrorKind::OriginNotAllowed
            | AuthErrorKind::RouteNotAllowed => StatusCode::FORBIDDEN,
            AuthErrorKind::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            AuthErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// The envelope code this kind is answered with.
    pub const fn code(self) -> ErrorCode {
        match self {
            AuthErrorKind::MissingCredentials
            | AuthErrorKind::InvalidCredentials
            | AuthErrorKind::Revoked
            | AuthErrorKind::Expired
            | AuthErrorKind::WrongMode => ErrorCode::Unauthorized,
            AuthErrorKind::InsufficientScope
            | AuthErrorKind::IpNotAllowed
            | AuthErrorKind::OriginNotAllowed
            | AuthErrorKind::RouteNotAllowed => ErrorCode::Forbidden,
            AuthErrorKind::StoreUnavailable => ErrorCode::InternalError,
            AuthErrorKind::RateLimited => ErrorCode::RateLimited,
        }
    }

    const fn default_message(self) -> &'static str {
        match self {
            AuthErrorKind::MissingCredentials | AuthErrorKind::InvalidCredentials => {
                "Missing or invalid authentication credentials."
            }
            AuthErrorKind::Revoked => "This API key has been revoked.",
            AuthErrorKind::Expired => "This API key has expired.",
            AuthErrorKind::InsufficientScope => {
                "This API key does not have the scope this request requires."
            }
            AuthErrorKind::StoreUnavailable => {
                "Authentication is temporarily unavailable. Please retry shortly."
            }
            // Replaced by the authenticator with the modes it accepts.
            AuthErrorKind::WrongMode => "This endpoint does not accept keys of this mode.",
            AuthErrorKind::IpNotAllowed => {
                "This API key may not be used from this network address."
            }
            AuthErrorKind::OriginNotAllowed => "This API key may not be used from this origin.",
            AuthErrorKind::RouteNotAllowed => "This API key may not call this method and path.",
            AuthErrorKind::RateLimited => "Too many requests. Retry after the time in Retry-After.",
        }
    }
}

/// Message texts, one per kind, as configured by the user.
#[derive(Clone, PartialEq)]
pub(crate) struct Messages([Cow<'static, str>; KINDS]);

impl Default for Messages {
    fn default() -> Self {
        Messages(AuthErrorKind::ALL.map(|k| Cow::Borrowed(k.default_message())))
    }
}

impl Messages {
    pub(crate) fn set(&mut self, kind: AuthErrorKind, message: Cow<'static, str>) {
        self.0[kind.index()] = message;
    }

    /// Sets the message unless the user already replaced the default.
    pub(crate) fn set_default(&mut self, kind: AuthErrorKind, message: Cow<'static, str>) {
        if self.0[kind.index()] == kind.default_message() {
            self.0[kind.index()] = message;
        }
    }
}

/// Everything needed to render an [`AuthError`], built once per layer: realm, message
/// texts and, precomputed, each kind's body and challenge.
pub(crate) struct Rejections {
    messages: Messages,
    bodies: [Bytes; KINDS],
    /// `Bearer realm="…"`, escaped, without parameters.
    realm_challenge: String,
    challenge_missing: HeaderValue,
    challenge_invalid: HeaderValue,
    retry_after: HeaderValue,
}

/// How many distinct configurations of [`Rejections`] a process keeps for good (see
/// [`SharedRejections`]); past it, further ones are reference-counted.
const MAX_INTERNED: usize = 32;

/// A handle on a layer's [`Rejections`] that every request's [`Principal`] and
/// [`AuthError`] carries.
///
/// Cloning it per request must cost nothing: the tables of the first few distinct
/// configurations (a process has one or two: one per realm and set of messages) are
/// kept for the life of the process and shared by reference, with no reference count
/// to touch; only past [`MAX_INTERNED`] of them is one counted.
///
/// [`Principal`]: crate::Principal
#[derive(Clone)]
pub(crate) enum SharedRejections {
    Interned(&'static Rejections),
    Counted(Arc<Rejections>),
}

impl Deref for SharedRejections {
    type Target = Rejections;

    fn deref(&self) -> &Rejections {
        match self {
            SharedRejections::Interned(rejections) => rejections,
            SharedRejections::Counted(rejections) => rejections,
        }
    }
}

impl SharedRejections {
    /// The tables for this configuration: an interned one if there is one (or room
    /// for one more), else a counted one of its own.
    pub(crate) fn new(realm: &str, messages: Messages, retry_after: Duration) -> Self {
        static INTERNED: Mutex<Vec<&'static Rejections>> = Mutex::new(Vec::new());
        let rejections = Rejections::new(realm, messages, retry_after);
        if rejections.same_as(&DEFAULT_REJECTIONS) {
            return SharedRejections::Interned(&DEFAULT_REJECTIONS);
        }
        // No code path panics while holding the lock.
        let mut interned = INTERNED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = interned.iter().find(|r| r.same_as(&rejections)) {
            return SharedRejections::Interned(found);
        }
        if interned.len() < MAX_INTERNED {
            let kept: &'static Rejections = Box::leak(Box::new(rejections));
            interned.push(kept);
            return SharedRejections::Interned(kept);
        }
        SharedRejections::Counted(Arc::new(rejections))
    }

    /// The default realm (`api`), messages and `Retry-After`.
    pub(crate) fn default_shared() -> Self {
        SharedRejections::Interned(&DEFAULT_REJECTIONS)
    }
}

/// The tables of the default configuration.
static DEFAULT_REJECTIONS: LazyLock<Rejections> =
    LazyLock::new(|| Rejections::new("api", Messages::default(), Duration::from_secs(1)));

impl Rejections {
    fn new(realm: &str, messages: Messages, retry_after: Duration) -> Self {
        let mut realm_challenge = String::from("Bearer realm=\"");
        for c in realm.chars() {
            match c {
                '"' | '\\' => {
                    realm_challenge.push('\\');
                    realm_challenge.push(c);
                }
                ' '..='~' => realm_challenge.push(c),
                _ => {}
            }
        }
        realm_challenge.push('"');
        let header = |s: String| {
            HeaderValue::try_from(s).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
        };
        Rejections {
            bodies: AuthErrorKind::ALL.map(|k| envelope_json(k.code(), &messages.0[k.index()])),
            messages,
            challenge_missing: header(realm_challenge.clone()),
            challenge_invalid: header(format!("{realm_challenge}, error=\"invalid_token\"")),
            realm_challenge,
            retry_after: retry_after_value(retry_after),
        }
    }

    /// Renders every answer the same as `other` (the bodies and challenges follow
    /// from these).
    fn same_as(&self, other: &Rejections) -> bool {
        self.realm_challenge == other.realm_challenge
            && self.messages == other.messages
            && self.retry_after == other.retry_after
    }

    fn challenge(&self, kind: AuthErrorKind, scope: Option<&str>) -> Option<HeaderValue> {
        match kind {
            AuthErrorKind::MissingCredentials => Some(self.challenge_missing.clone()),
            AuthErrorKind::InvalidCredentials
            | AuthErrorKind::Revoked
            | AuthErrorKind::Expired
            | AuthErrorKind::WrongMode => Some(self.challenge_invalid.clone()),
            AuthErrorKind::InsufficientScope => {
                let mut value = format!("{}, error=\"insufficient_scope\"", self.realm_challenge);
                if let Some(scope) = scope.filter(|s| is_scope_token(s)) {
                    value.push_str(", scope=\"");
                    value.push_str(scope);
                    value.push('"');
                }
                HeaderValue::try_from(value).ok()
            }
            AuthErrorKind::IpNotAllowed
            | AuthErrorKind::OriginNotAllowed
            | AuthErrorKind::RouteNotAllowed => HeaderValue::try_from(format!(
                "{}, error=\"insufficient_scope\"",
                self.realm_challenge
            ))
            .ok(),
            AuthErrorKind::StoreUnavailable | AuthErrorKind::RateLimited => None,
        }
    }
}

/// One RFC 6749 §3.3 scope-token: printable ASCII but space, `"` and `\`.
pub(crate) fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// A refused request: what the layer, a scope check or the [`Authenticator`] returns.
///
/// It renders as the envelope with the right status and headers
/// ([`AuthError::into_http_response`], or `IntoResponse` with the `axum` feature) using the
/// realm and messages configured on the layer that produced it. Its `Display` is the
/// client-facing message; for a store failure, [`std::error::Error::source`] holds the
/// store's error for your logs. Neither ever contains a key.
///
/// [`Authenticator`]: crate::auth::Authenticator
pub struct AuthError {
    kind: AuthErrorKind,
    scope: Option<Cow<'static, str>>,
    retry_after: Option<Duration>,
    extra_headers: Option<Box<HeaderMap>>,
    rejections: SharedRejections,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl AuthError {
    /// An error of this kind with the default realm (`api`) and messages.
    pub fn new(kind: AuthErrorKind) -> Self {
        Self::with_rejections(kind, SharedRejections::default_shared())
    }

    pub(crate) fn with_rejections(kind: AuthErrorKind, rejections: SharedRejections) -> Self {
        AuthError {
            kind,
            scope: None,
            retry_after: None,
            extra_headers: None,
            rejections,
            source: None,
        }
    }

    /// The scope that was missing; shown in the `WWW-Authenticate` challenge.
    pub(crate) fn with_scope(mut self, scope: Cow<'static, str>) -> Self {
        self.scope = Some(scope);
        self
    }

    /// When the client may retry (rate limits).
    pub(crate) fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// More headers for the response (the IETF rate-limit headers).
    pub(crate) fn with_headers(mut self, headers: HeaderMap) -> Self {
        self.extra_headers = Some(Box::new(headers));
        self
    }

    pub(crate) fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Why the request was refused.
    pub fn kind(&self) -> AuthErrorKind {
        self.kind
    }

    /// The HTTP status of the response.
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// The client-facing message.
    pub fn message(&self) -> &str {
        &self.rejections.messages.0[self.kind.index()]
    }

    /// The scope a route required, for [`AuthErrorKind::InsufficientScope`].
    pub fn required_scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// The envelope response: status, JSON body, `Cache-Control: no-store`, and
    /// `WWW-Authenticate` (401/403) or `Retry-After` (503). With any body type that
    /// can be made from `Bytes`; named apart from axum's `IntoResponse::into_response`
    /// (which calls it), so that with the trait in scope `into_response()` is the
    /// trait's.
    pub fn into_http_response<B: From<Bytes>>(self) -> Response<B> {
        let r = &self.rejections;
        let mut headers = HeaderMap::new();
        if let Some(challenge) = r.challenge(self.kind, self.scope.as_deref()) {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        match (self.kind, self.retry_after) {
            (_, Some(after)) => {
                headers.insert(header::RETRY_AFTER, retry_after_value(after));
            }
            (AuthErrorKind::StoreUnavailable, None) => {
                headers.insert(header::RETRY_AFTER, r.retry_after.clone());
            }
            _ => {}
        }
        if let Some(extra) = self.extra_headers {
            headers.extend(*extra);
        }
        json_response(
            self.kind.status(),
            r.bodies[self.kind.index()].clone(),
            headers,
        )
    }
}

impl fmt::Debug for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthError")
            .field("kind", &self.kind)
            .field("scope", &self.scope)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl StdError for AuthError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(e: AuthError) -> Response<Bytes> {
        e.into_http_response()
    }

    #[test]
    fn missing_has_no_error_parameter() {
        let r = render(AuthError::new(AuthErrorKind::MissingCredentials));
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"api\"");
        assert_eq!(
            r.body(),
            r#"{"error":{"code":"unauthorized","message":"Missing or invalid authentication credentials."}}"#
        );
    }

    #[test]
    fn invalid_and_scope_challenges() {
        let r = render(AuthError::new(AuthErrorKind::Revoked));
        assert_eq!(
            r.headers()["www-authenticate"],
            "Bearer realm=\"api\", error=\"invalid_token\""
        );
        let r = render(
            AuthError::new(AuthErrorKind::InsufficientScope).with_scope("signals:write".into()),
        );
        assert_eq!(r.status(), 403);
        assert_eq!(
            r.headers()["www-authenticate"],
            "Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"signals:write\""
        );
    }

    #[test]
    fn store_unavailable_is_503_with_retry_after() {
        let r = render(AuthError::new(AuthErrorKind::StoreUnavailable));
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "1");
        assert!(r.headers().get("www-authenticate").is_none());
        assert!(std::str::from_utf8(r.body())
            .unwrap()
            .contains("internal_error"));
    }

    #[test]
    fn a_configuration_is_interned_once_and_past_the_cap_counted() {
        let interned = |realm: &str| match SharedRejections::new(
            realm,
            Messages::default(),
            Duration::from_secs(2),
        ) {
            SharedRejections::Interned(r) => Some(r as *const Rejections),
            SharedRejections::Counted(_) => None,
        };
        assert!(matches!(
            SharedRejections::new("api", Messages::default(), Duration::from_secs(1)),
            SharedRejections::Interned(r) if std::ptr::eq(r, &*DEFAULT_REJECTIONS)
        ));
        let first = interned("interning test");
        assert!(first.is_some());
        assert_eq!(
            interned("interning test"),
            first,
            "the same tables, not a copy"
        );
        // Other tests intern too: distinct realms fill whatever room is left.
        let counted = (0..=MAX_INTERNED).any(|n| interned(&format!("realm {n}")).is_none());
        assert!(
            counted,
            "past the cap, configurations are counted, not kept"
        );
    }

    #[test]
    fn custom_realm_is_escaped_and_messages_replaced() {
        let mut messages = Messages::default();
        messages.set(
            AuthErrorKind::Expired,
            "Key expired; mint a new one.".into(),
        );
        let rej = SharedRejections::new("my \"api\"\n", messages, Duration::from_secs(5));
        let e = AuthError::with_rejections(AuthErrorKind::Expired, rej);
        assert_eq!(e.to_string(), "Key expired; mint a new one.");
        let r = render(e);
        assert_eq!(
            r.headers()["www-authenticate"],
            "Bearer realm=\"my \\\"api\\\"\", error=\"invalid_token\""
        );
        assert!(std::str::from_utf8(r.body())
            .unwrap()
            .contains("Key expired; mint a new one."));
    }
}
