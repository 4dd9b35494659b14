use std::{
    borrow::Cow,
    fmt,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use cookie::{Cookie, CookieJar, Key, SameSite};
use http::{header, request::Parts, HeaderValue};
use rand::{rngs::SysRng, TryRng};

use super::{SessionError, SessionResolver, SessionUser};
use crate::key::MintError;

/// Starts every signed value, so a value the app signs with the same key for another
/// purpose can never pass for a session.
const PURPOSE: &str = "tower-api-key.session.v1:";

/// A session key shorter than 64 bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a session signing key needs at least 64 bytes")]
pub struct InvalidSessionKey;

/// Sessions kept in one signed cookie (feature `cookie-session`): the user id and an
/// expiry, signed with HMAC-SHA256 by the `cookie` crate's signed jar.
///
/// The cookie is `__Host-session`, `Secure`, `HttpOnly`, `SameSite=Lax` (or `Strict`),
/// `Path=/`, with a `Max-Age` of the session lifetime (8 hours by default). A cookie
/// that was tampered with, signed with another key, or is past its expiry finds no
/// session (401). Nothing is stored on the server, so [`logout`](Self::logout) clears
/// the browser's cookie but cannot end a copy someone captured before its expiry; to
/// end every session at once, change the key. Keep the lifetime short, or use a
/// server-side session store (`TowerSessions`) when that matters.
///
/// ```
/// use tower_api_key::session::{CookieSessions, SessionUser};
///
/// let sessions = CookieSessions::new(&[7u8; 64]).unwrap(); // from your secret store
/// let set_cookie = sessions.login(&SessionUser::new("acct_42"));
/// let text = set_cookie.to_str().unwrap();
/// assert!(text.starts_with("__Host-session="));
/// assert!(text.contains("HttpOnly") && text.contains("Secure") && text.contains("SameSite=Lax"));
/// ```
#[derive(Clone)]
pub struct CookieSessions {
    key: Key,
    name: Cow<'static, str>,
    secure: bool,
    same_site: SameSite,
    ttl: Duration,
}

impl CookieSessions {
    /// Sessions signed with `key`, at least 64 bytes of secret (keep it in your secret
    /// store; the same key on every instance).
    pub fn new(key: &[u8]) -> Result<Self, InvalidSessionKey> {
        Key::try_from(key)
            .map(Self::with_key)
            .map_err(|_| InvalidSessionKey)
    }

    fn with_key(key: Key) -> Self {
        CookieSessions {
            key,
            name: Cow::Borrowed("__Host-session"),
            secure: true,
            same_site: SameSite::Lax,
            ttl: Duration::from_secs(8 * 3600),
        }
    }

    /// Sessions signed with a fresh random key: every session ends when the process
    /// does. For examples and single-instance tools.
    pub fn with_random_key() -> Result<Self, MintError> {
        let mut key = zeroize::Zeroizing::new([0u8; 64]);
        SysRng.try_fill_bytes(&mut key[..]).map_err(MintError)?;
        // Exactly the 64 bytes `Key::from` needs.
        Ok(Self::with_key(Key::from(&key[..])))
    }

    /// `SameSite=Strict` instead of `Lax`: the cookie is not sent even on top-level
    /// navigations from other sites.
    pub fn same_site_strict(mut self) -> Self {
        self.same_site = SameSite::Strict;
        self
    }

    /// How long a session lasts after login. Default 8 hours.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// For a development server on plain `http://localhost`: drops `Secure` and the
    /// `__Host-` prefix (which requires `Secure`), so browsers keep the cookie without
    /// TLS. Never in production.
    pub fn insecure_for_local_http(mut self) -> Self {
        self.secure = false;
        self.name = Cow::Borrowed("session");
        self
    }

    /// The name of the session cookie.
    pub fn cookie_name(&self) -> &str {
        &self.name
    }

    /// The `Set-Cookie` value that logs `user` in, after your login form has checked
    /// their password.
    pub fn login(&self, user: &SessionUser) -> HeaderValue {
        let expires = SystemTime::now() + self.ttl;
        let expires = expires
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let mut jar = CookieJar::new();
        jar.signed_mut(&self.key).add(Cookie::new(
            self.name.clone(),
            format!("{PURPOSE}{expires}.{}", user.id()),
        ));
        let signed = jar
            .get(&self.name)
            .map(|c| c.value().to_owned())
            .unwrap_or_default();
        let max_age = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        self.set_cookie(signed, max_age)
    }

    /// The `Set-Cookie` value that logs the browser out (an expired, empty cookie).
    pub fn logout(&self) -> HeaderValue {
        self.set_cookie(String::new(), 0)
    }

    fn set_cookie(&self, value: String, max_age: i64) -> HeaderValue {
        let cookie = Cookie::build((self.name.clone(), value))
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(self.same_site)
            .max_age(cookie::time::Duration::seconds(max_age))
            .build();
        HeaderValue::try_from(cookie.encoded().to_string())
            .unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// The user of a request's session cookie, if it is valid and not expired.
    fn user(&self, parts: &Parts) -> Option<SessionUser> {
        let mut found = None;
        for value in parts.headers.get_all(header::COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            for cookie in Cookie::split_parse_encoded(text).flatten() {
                if cookie.name() == self.name {
                    if found.is_some() {
                        // Two session cookies: refuse rather than pick one.
                        return None;
                    }
                    found = Some(cookie.into_owned());
                }
            }
        }
        let mut jar = CookieJar::new();
        jar.add_original(found?);
        let verified = jar.signed(&self.key).get(&self.name)?;
        let (expires, id) = verified.value().strip_prefix(PURPOSE)?.split_once('.')?;
        let expires: u64 = expires.parse().ok()?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
        (now < expires && !id.is_empty()).then(|| SessionUser::new(id))
    }
}

#[async_trait::async_trait]
impl SessionResolver for CookieSessions {
    async fn resolve(&self, parts: &Parts) -> Result<Option<SessionUser>, SessionError> {
        Ok(self.user(parts))
    }
}

impl fmt::Debug for CookieSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieSessions")
            .field("name", &self.name)
            .field("secure", &self.secure)
            .field("same_site", &self.same_site)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use http::Request;

    use super::*;

    fn parts_with_cookie(cookie: &str) -> Parts {
        Request::get("/")
            .header("cookie", cookie)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    /// `name=value` of a `Set-Cookie` value.
    fn pair(set_cookie: &HeaderValue) -> String {
        set_cookie
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn round_trip_and_attributes() {
        let sessions = CookieSessions::new(&[1u8; 64]).unwrap();
        let set = sessions.login(&SessionUser::new("demo"));
        let text = set.to_str().unwrap();
        for attribute in [
            "Path=/",
            "HttpOnly",
            "Secure",
            "SameSite=Lax",
            "Max-Age=28800",
        ] {
            assert!(text.contains(attribute), "{text}");
        }
        let user = sessions.user(&parts_with_cookie(&pair(&set))).unwrap();
        assert_eq!(user.id(), "demo");
        // Among other cookies too.
        let header = format!("theme=dark; {}; lang=en", pair(&set));
        assert!(sessions.user(&parts_with_cookie(&header)).is_some());
    }

    #[test]
    fn tampered_foreign_expired_and_duplicate_cookies_find_no_session() {
        let sessions = CookieSessions::new(&[1u8; 64]).unwrap();
        let good = pair(&sessions.login(&SessionUser::new("demo")));
        // Flip one character of the value.
        let mut bytes = good.clone().into_bytes();
        let at = bytes.len() - 3;
        bytes[at] = if bytes[at] == b'a' { b'b' } else { b'a' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert!(sessions.user(&parts_with_cookie(&tampered)).is_none());
        // Another user's id spliced in.
        let spliced = good.replace("demo", "root");
        assert!(sessions.user(&parts_with_cookie(&spliced)).is_none());
        // Signed with another key.
        let other = CookieSessions::new(&[2u8; 64]).unwrap();
        let foreign = pair(&other.login(&SessionUser::new("demo")));
        assert!(sessions.user(&parts_with_cookie(&foreign)).is_none());
        // Expired.
        let short = CookieSessions::new(&[1u8; 64]).unwrap().ttl(Duration::ZERO);
        let expired = pair(&short.login(&SessionUser::new("demo")));
        assert!(sessions.user(&parts_with_cookie(&expired)).is_none());
        // Two session cookies.
        let both = format!("{good}; {good}");
        assert!(sessions.user(&parts_with_cookie(&both)).is_none());
        // A value the app signed with the same key for something else.
        let mut jar = CookieJar::new();
        jar.signed_mut(&sessions.key)
            .add(Cookie::new("__Host-session", "9999999999.admin"));
        let other_purpose = format!(
            "__Host-session={}",
            jar.get("__Host-session").unwrap().value()
        );
        assert!(sessions.user(&parts_with_cookie(&other_purpose)).is_none());
        // Unsigned.
        assert!(sessions
            .user(&parts_with_cookie("__Host-session=9999999999.demo"))
            .is_none());
    }

    #[test]
    fn key_length_and_local_mode() {
        assert_eq!(
            CookieSessions::new(&[0u8; 63]).err(),
            Some(InvalidSessionKey)
        );
        let local = CookieSessions::with_random_key()
            .unwrap()
            .insecure_for_local_http();
        let text = local
            .login(&SessionUser::new("demo"))
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            text.starts_with("session=") && !text.contains("Secure"),
            "{text}"
        );
        let logout = local.logout().to_str().unwrap().to_owned();
        assert!(logout.contains("Max-Age=0"), "{logout}");
        assert!(!format!("{local:?}").contains("key"));
    }
}
