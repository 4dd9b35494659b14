//! The key dashboard (feature `dashboard`): a web page where a logged-in user sees,
//! creates, rotates and revokes their API keys.
//!
//! Plain HTML, CSS and a little JavaScript embedded in the crate: no build step, no
//! CDN, works offline. The page calls the management router's JSON endpoints with
//! `fetch` (same origin, the session cookie), so the session guard's cross-origin
//! rules hold for the page itself. Mount it on the management router:
//!
//! ```
//! use axum::Router;
//! use tower_api_key::{
//!     auth::Authenticator,
//!     manage::dashboard::DashboardConfig,
//!     manage::{Keys, ManagementRoutes},
//!     session::{CookieSessions, SessionGuardLayer},
//!     store::InMemoryKeyStore,
//! };
//!
//! let store = InMemoryKeyStore::new();
//! let auth = Authenticator::new(store.clone());
//! let guard = SessionGuardLayer::new(CookieSessions::new(&[9u8; 64]).unwrap());
//! let app: Router = ManagementRoutes::new(Keys::new(store), guard, auth)
//!     .dashboard(DashboardConfig::new("/settings/api-keys").login_url("/login"))
//!     .into_router();
//! ```
//!
//! | route | answers |
//! | --- | --- |
//! | `GET {path}` | the page, with a session; without one, 303 to the login URL for a browser (`Accept: text/html`), else the 401 envelope |
//! | `GET {path}/dashboard.js`, `GET {path}/dashboard.css`, `GET {path}/favicon.svg` | the script, the style sheet and the icon (public: they hold no data; with the icon the browser asks for no `/favicon.ico`, which an app may answer 404) |
//! | `GET {path}/active-key` | only when the one-active shape is mounted alone: the page's own status read, `{"key":{…view, "retiring":[…]}}` or `{"key":null}` with 200 (the JSON endpoint answers 404 without a key, which a browser logs as an error); behind the session guard, errors as the envelope |
//!
//! Every answer has `Cache-Control: no-store`, `Content-Security-Policy: default-src
//! 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self';
//! form-action 'self'; frame-ancestors 'none'; base-uri 'none'` (no inline script or
//! style anywhere), `X-Frame-Options: DENY`, `X-Content-Type-Options: nosniff` and
//! `Referrer-Policy: no-referrer`.
//!
//! # One list of keys
//!
//! What the page shows depends on the shapes mounted, so that one owner's keys appear
//! once, in one place, and every action acts on the key it is shown next to:
//!
//! - **The named shape mounted** (alone, or with the one-active shape: the default):
//!   one table of all the owner's keys, whichever shape made them — the named list
//!   endpoint lists them all, and keeps revoked keys for 7 days. Each working row has
//!   its own Rotate (with a grace period: none, 1 hour, 1 day, 7 days) and Revoke,
//!   which call `{named}/{id}/rotate` and `DELETE {named}/{id}` with that row's id
//!   only. A revoked or expired row stays in the table, greyed, with its status and
//!   no buttons — right after the click and after a reload alike. Above the table, a
//!   form creates a key (name, scopes, expiry, live or test). The one-active card is
//!   not shown: its revoke-everything and its "one key" view would contradict the
//!   table.
//! - **The one-active shape alone**: one card with the owner's key (or "No key" and
//!   Generate), Rotate with a grace period, Revoke, and the retiring keys (each with
//!   its own Revoke). Every rotate and revoke names the key shown by its id, so a
//!   stale page never acts on another key: the server answers 409 and the page shows
//!   its message.
//!
//! Each key shows its bounds as text: the addresses, origins and routes it is
//! limited to, and its own rate limit (`"100/10s"` reads "100 requests / 10 s").
//! Nothing from the server is ever parsed as markup.
//!
//! The page never contains a raw key: a freshly minted key is shown once, from the
//! create or rotate answer, in a read-only box with a Copy button, and is gone on
//! reload.
//!
//! Paths are absolute: mount the management router at the root of your app (`merge`,
//! not `nest`).

use std::sync::Arc;

use axum::{
    body::Body,
    extract::{Request, State},
    response::Response,
    routing::get,
    Router,
};
use http::{header, HeaderMap, HeaderValue, StatusCode};

use crate::{
    error::{json_response, ApiError, ErrorCode},
    manage::{Keys, ManageError},
    session::SessionGuardLayer,
};

const PAGE: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("dashboard.js");
const STYLE: &str = include_str!("dashboard.css");
const ICON: &str = include_str!("favicon.svg");

/// The page's `Content-Security-Policy`: only this origin's script, style and `fetch`
/// targets; no inline code; never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// Where the key dashboard lives and where it sends visitors without a session; mount
/// it with [`ManagementRoutes::dashboard`](crate::manage::ManagementRoutes::dashboard).
///
/// ```
/// use tower_api_key::manage::dashboard::DashboardConfig;
///
/// let config = DashboardConfig::new("/settings/api-keys")
///     .login_url("/login")
///     .logout_url("/logout");
/// assert_eq!(config.path(), "/settings/api-keys");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DashboardConfig {
    path: String,
    login_url: Option<String>,
    logout_url: Option<String>,
}

impl DashboardConfig {
    /// The page at `path` (e.g. `/settings/api-keys`; a trailing `/` is dropped), its
    /// assets under it.
    ///
    /// # Panics
    ///
    /// If `path` does not start with `/`.
    pub fn new(path: impl Into<String>) -> Self {
        let path: String = path.into();
        assert!(
            path.starts_with('/'),
            "the dashboard path must start with `/`"
        );
        let trimmed = path.trim_end_matches('/');
        let path = if trimmed.is_empty() { "/" } else { trimmed };
        DashboardConfig {
            path: path.to_owned(),
            login_url: None,
            logout_url: None,
        }
    }

    /// Where a browser without a session is sent (303), with `next=<the page's
    /// path>` added to the query. Default: none, so it gets the 401 envelope.
    pub fn login_url(mut self, url: impl Into<String>) -> Self {
        self.login_url = Some(url.into());
        self
    }

    /// Shows a "Log out" button that posts a form to `url`. Default: no button.
    pub fn logout_url(mut self, url: impl Into<String>) -> Self {
        self.logout_url = Some(url.into());
        self
    }

    /// The page's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The assets' base path: the page's path without a trailing `/`.
    fn assets(&self) -> &str {
        self.path.trim_end_matches('/')
    }
}

/// What the page needs to know besides its configuration.
pub(crate) struct Endpoints {
    /// The one-active-key endpoint's path, if mounted.
    pub(crate) one_active: Option<String>,
    /// The named-keys endpoint's path, if mounted.
    pub(crate) named: Option<String>,
    /// The 409 message a create gets while a key is active.
    pub(crate) conflict: String,
    /// The keys the endpoints manage, for the page's own status read.
    pub(crate) keys: Keys,
}

impl Endpoints {
    /// The one-active card is the page's view only when the one-active shape is
    /// mounted alone; with the named shape, the table lists every key.
    fn one_active_alone(&self) -> bool {
        self.one_active.is_some() && self.named.is_none()
    }
}

struct Dashboard {
    config: DashboardConfig,
    guard: SessionGuardLayer,
    endpoints: Endpoints,
}

/// The page and its assets as a router, to merge into the management router.
pub(crate) fn router<S: Clone + Send + Sync + 'static>(
    config: DashboardConfig,
    guard: SessionGuardLayer,
    endpoints: Endpoints,
) -> Router<S> {
    let assets = config.assets().to_owned();
    let state = Arc::new(Dashboard {
        config,
        guard,
        endpoints,
    });
    let mut router = Router::new().route(&state.config.path.clone(), get(page));
    if state.endpoints.one_active_alone() {
        router = router.route(&format!("{assets}/active-key"), get(active_key));
    }
    router
        .route(
            &format!("{assets}/dashboard.js"),
            get(|| async { asset(SCRIPT, "text/javascript; charset=utf-8") }),
        )
        .route(
            &format!("{assets}/dashboard.css"),
            get(|| async { asset(STYLE, "text/css; charset=utf-8") }),
        )
        .route(
            &format!("{assets}/favicon.svg"),
            get(|| async { asset(ICON, "image/svg+xml") }),
        )
        // Below the page, but nothing of ours: the envelope, not the app's 404.
        .route(
            &format!("{assets}/{{*rest}}"),
            axum::routing::any(|| async {
                ApiError::not_found("No such route.").into_http_response::<axum::body::Body>()
            }),
        )
        .with_state(state)
}

async fn page(State(dashboard): State<Arc<Dashboard>>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let mut response = match dashboard.guard.admit(&parts).await {
        Ok(user) => {
            let html = dashboard.render(user.id());
            let mut response = Response::new(Body::from(html));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            response
        }
        Err(refused) => match &dashboard.config.login_url {
            Some(login)
                if refused.code() == ErrorCode::Unauthorized && wants_html(&parts.headers) =>
            {
                see_other(&login_location(login, &dashboard.config.path))
            }
            _ => refused.into_http_response(),
        },
    };
    security_headers(response.headers_mut());
    response
}

/// `GET {path}/active-key`: the owner's one active key (and retiring ones) as
/// `{"key":…}`, `{"key":null}` when there is none: a normal state, so 200.
async fn active_key(State(dashboard): State<Arc<Dashboard>>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let answer = match dashboard.guard.admit(&parts).await {
        Ok(user) => match dashboard.endpoints.keys.one_active().view(user.id()).await {
            Ok(active) => serde_json::to_vec(&serde_json::json!({ "key": active })).map_err(|_| {
                ApiError::new(ErrorCode::InternalError, "The answer could not be encoded.")
            }),
            Err(ManageError::NotFound) => Ok(br#"{"key":null}"#.to_vec()),
            Err(failed) => Err(ApiError::from(failed)),
        },
        Err(refused) => Err(refused),
    };
    let mut response = match answer {
        Ok(body) => json_response(StatusCode::OK, body.into(), HeaderMap::new()),
        Err(error) => error.into_http_response(),
    };
    security_headers(response.headers_mut());
    response
}

impl Dashboard {
    fn render(&self, user: &str) -> String {
        let endpoints = &self.endpoints;
        let alone = endpoints.one_active_alone();
        let active_key = format!("{}/active-key", self.config.assets());
        render(PAGE, |name| match name {
            "assets" => Some(self.config.assets()),
            "one_active" => Some(endpoints.one_active.as_deref().unwrap_or("")),
            "active_key" => Some(if alone { active_key.as_str() } else { "" }),
            "named" => Some(endpoints.named.as_deref().unwrap_or("")),
            "conflict" => Some(&endpoints.conflict),
            "logout" => Some(self.config.logout_url.as_deref().unwrap_or("")),
            "user" => Some(user),
            _ => None,
        })
    }
}

fn asset(text: &'static str, content_type: &'static str) -> Response {
    let mut response = Response::new(Body::from(text));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    security_headers(headers);
    response
}

fn see_other(location: &str) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SEE_OTHER;
    // Every byte of the location is a visible ASCII character (percent-encoded below,
    // or the application's own login URL); if not, `/` is a safe place to go.
    let value = HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/"));
    response.headers_mut().insert(header::LOCATION, value);
    response
}

/// The login URL with `next=<path>` added to its query.
fn login_location(login: &str, next: &str) -> String {
    let separator = if login.contains('?') { '&' } else { '?' };
    format!("{login}{separator}next={}", percent_encode(next))
}

/// Percent-encodes everything but unreserved characters and `/`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// True when the client asks for HTML (a browser navigating to the page).
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|accept| accept.to_ascii_lowercase().contains("text/html"))
}

/// Sets the headers every dashboard answer carries on `headers`: `Cache-Control:
/// no-store`, [`CONTENT_SECURITY_POLICY`], `X-Frame-Options: DENY`,
/// `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer` and same-origin
/// cross-origin opener and resource policies. Use it on pages of your own that sit
/// next to the dashboard, such as a login form (the policy admits this origin's
/// script and style sheet only, and forms posting to this origin).
///
/// ```
/// use http::HeaderMap;
///
/// let mut headers = HeaderMap::new();
/// tower_api_key::manage::dashboard::security_headers(&mut headers);
/// assert_eq!(headers["x-frame-options"], "DENY");
/// ```
pub fn security_headers(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        http::HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        http::HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
}

/// Fills `{{name}}` placeholders in one pass (a value is never scanned again), each
/// value HTML-escaped; unknown names are left out.
fn render<'a>(template: &str, value: impl Fn(&str) -> Option<&'a str>) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        if let Some(text) = value(after[..end].trim()) {
            escape_into(&mut out, text);
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Escapes text for an HTML element or a quoted attribute.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_escapes_and_does_not_rescan_values() {
        let html = render(
            r#"<b data-x="{{x}}">{{ y }}</b>{{unknown}}{{x"#,
            |name| match name {
                "x" => Some(r#""><script>alert(1)</script>{{y}}"#),
                "y" => Some("a & 'b'"),
                _ => None,
            },
        );
        assert_eq!(
            html,
            "<b data-x=\"&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;{{y}}\">a &amp; &#39;b&#39;</b>{{x"
        );
    }

    #[test]
    fn the_page_template_has_no_inline_code_and_only_known_placeholders() {
        let known = [
            "assets",
            "one_active",
            "active_key",
            "named",
            "conflict",
            "logout",
            "user",
        ];
        let mut rest = PAGE;
        while let Some(start) = rest.find("{{") {
            let end = rest[start..].find("}}").expect("closed placeholder") + start;
            let name = rest[start + 2..end].trim();
            assert!(known.contains(&name), "unknown placeholder {name}");
            rest = &rest[end + 2..];
        }
        assert!(!PAGE.contains("<script>"), "inline script");
        assert!(!PAGE.contains("<style"), "inline style");
        assert!(!PAGE.contains("style=\""), "style attribute");
        let handler = PAGE.split(" on").skip(1).any(|after| {
            let name: String = after.chars().take_while(char::is_ascii_lowercase).collect();
            !name.is_empty() && after[name.len()..].starts_with('=')
        });
        assert!(!handler, "inline event handler");
        // The icon's and the charts' only URL is the SVG namespace, a name that is
        // never fetched.
        let icon = ICON.replace(r#"xmlns="http://www.w3.org/2000/svg""#, "");
        let script = SCRIPT.replace("var SVG = 'http://www.w3.org/2000/svg';", "");
        for asset in [&script, STYLE, &icon] {
            assert!(!asset.contains("http://") && !asset.contains("https://"));
        }
        assert!(!SCRIPT.contains("localStorage") && !SCRIPT.contains("sessionStorage"));
        assert!(!SCRIPT.contains("innerHTML"), "markup built from data");
    }

    #[test]
    fn login_location_keeps_the_next_path_local_and_encoded() {
        assert_eq!(
            login_location("/login", "/settings/api-keys"),
            "/login?next=/settings/api-keys"
        );
        assert_eq!(
            login_location("/auth?app=1", "/keys page"),
            "/auth?app=1&next=/keys%20page"
        );
    }

    #[test]
    fn paths_are_normalised() {
        assert_eq!(DashboardConfig::new("/keys/").path(), "/keys");
        assert_eq!(DashboardConfig::new("/").path(), "/");
        assert_eq!(DashboardConfig::new("/").assets(), "");
    }

    #[test]
    #[should_panic(expected = "must start with")]
    fn a_relative_path_is_refused() {
        let _ = DashboardConfig::new("settings");
    }

    #[test]
    fn html_is_wanted_by_browsers_only() {
        let mut headers = HeaderMap::new();
        assert!(!wants_html(&headers));
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(!wants_html(&headers));
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"),
        );
        assert!(wants_html(&headers));
    }
}
