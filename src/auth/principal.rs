use std::{borrow::Cow, fmt, sync::Arc, time::SystemTime};

use crate::{
    error::{AuthError, AuthErrorKind, SharedRejections},
    key::{KeyMode, KeyPrefix},
    middleware::{Admitted, ExtraHeaders},
    policy::RateLimitStatus,
    store::{KeyId, KeyRecord},
};

/// Who is calling: the verified key's identity, put into the request extensions by the
/// layer.
///
/// With the `axum` feature it is an extractor. Cloning is cheap (it shares the record).
///
/// ```
/// # #[cfg(feature = "axum")] {
/// use tower_api_key::{AuthError, Principal};
///
/// async fn create_signal(caller: Principal) -> Result<String, AuthError> {
///     caller.require_scope("signals:write")?;
///     Ok(format!("signal created for {}", caller.owner()))
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct Principal {
    record: Arc<KeyRecord>,
    rejections: SharedRejections,
    rate_limit: Option<RateLimitStatus>,
}

impl Principal {
    pub(crate) fn new(
        record: Arc<KeyRecord>,
        rejections: SharedRejections,
        rate_limit: Option<RateLimitStatus>,
    ) -> Self {
        Principal {
            record,
            rejections,
            rate_limit,
        }
    }

    /// The verified key's record.
    pub(crate) fn record(&self) -> &KeyRecord {
        &self.record
    }

    /// The key's id.
    pub fn key_id(&self) -> &KeyId {
        &self.record.id
    }

    /// The account the key acts for.
    pub fn owner(&self) -> &str {
        &self.record.owner
    }

    /// The key's public prefix — what to log or show, never the key.
    pub fn prefix(&self) -> KeyPrefix {
        self.record.prefix
    }

    /// The key's label.
    pub fn name(&self) -> &str {
        &self.record.name
    }

    /// The key's scopes.
    pub fn scopes(&self) -> &[String] {
        &self.record.scopes
    }

    /// Live or test: route test traffic to sandbox data.
    pub fn mode(&self) -> KeyMode {
        self.record.mode
    }

    /// When the key expires, if ever.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.record.expires_at
    }

    /// When the key stops working because a rotation replaced it (the end of its grace
    /// period), if it was rotated out; `None` for a key that is not being replaced.
    pub fn retires_at(&self) -> Option<SystemTime> {
        self.record.revoked_at
    }

    /// The key's standing against its rate after this request, when the key has a
    /// rate and the layer sends the rate-limit headers
    /// ([`rate_limit_headers`](crate::auth::AuthenticatorBuilder::rate_limit_headers)).
    pub fn rate_limit(&self) -> Option<RateLimitStatus> {
        self.rate_limit
    }

    /// Whether the key carries `scope` (exact match).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.record.has_scope(scope)
    }

    /// `Ok` if the key carries `scope`; otherwise the 403 `insufficient_scope` refusal,
    /// rendered with the layer's realm and messages. The challenge names the scope
    /// when it is a valid RFC 6749 scope token.
    pub fn require_scope(&self, scope: impl Into<Cow<'static, str>>) -> Result<(), AuthError> {
        let scope = scope.into();
        if self.has_scope(&scope) {
            Ok(())
        } else {
            self.record.use_slot.count_scope_refusal();
            Err(AuthError::with_rejections(
                AuthErrorKind::InsufficientScope,
                self.rejections.clone(),
            )
            .with_scope(scope))
        }
    }
}

impl Admitted for Principal {
    #[inline]
    fn response_headers(&self) -> ExtraHeaders {
        self.rate_limit
    }
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Principal")
            .field("key_id", &self.record.id)
            .field("owner", &self.record.owner)
            .field("prefix", &self.record.prefix)
            .field("scopes", &self.record.scopes)
            .field("mode", &self.record.mode)
            .finish()
    }
}
