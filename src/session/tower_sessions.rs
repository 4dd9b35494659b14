use std::{borrow::Cow, fmt};

use http::request::Parts;
use tower_sessions::Session;

use super::{SessionError, SessionResolver, SessionUser};

/// Uses a `tower-sessions` session (feature `tower-sessions`): the user id is the
/// string or number your login handler stored under a key (default `"user_id"`).
///
/// Put `tower_sessions::SessionManagerLayer` outside the session guard, so the
/// `Session` is in the request's extensions when the guard runs; its cookie settings
/// are then tower-sessions' own. No `Session` in the extensions finds no session (401).
///
/// ```
/// use tower_api_key::session::{SessionGuardLayer, TowerSessions};
///
/// let guard = SessionGuardLayer::new(TowerSessions::new().user_id_key("account"));
/// ```
#[derive(Clone)]
pub struct TowerSessions {
    key: Cow<'static, str>,
}

impl TowerSessions {
    /// Reads the user id from the session key `"user_id"`.
    pub fn new() -> Self {
        TowerSessions {
            key: Cow::Borrowed("user_id"),
        }
    }

    /// Reads the user id from this session key instead.
    pub fn user_id_key(mut self, key: impl Into<Cow<'static, str>>) -> Self {
        self.key = key.into();
        self
    }
}

impl Default for TowerSessions {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for TowerSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TowerSessions")
            .field("user_id_key", &self.key)
            .finish()
    }
}

#[async_trait::async_trait]
impl SessionResolver for TowerSessions {
    async fn resolve(&self, parts: &Parts) -> Result<Option<SessionUser>, SessionError> {
        let Some(session) = parts.extensions.get::<Session>() else {
            return Ok(None);
        };
        let value: Option<serde_json::Value> = session
            .get(&self.key)
            .await
            .map_err(|e| SessionError(Box::new(e)))?;
        let id = match value {
            Some(serde_json::Value::String(id)) if !id.is_empty() => Some(id),
            Some(serde_json::Value::Number(id)) => Some(id.to_string()),
            _ => None,
        };
        Ok(id.map(SessionUser::new))
    }
}
