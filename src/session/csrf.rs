use http::{header, request::Parts, HeaderMap, Method};

use crate::middleware::OneHeader;

/// Refuses cross-origin requests with unsafe methods, after the rules of Go 1.25's
/// `net/http.CrossOriginProtection`:
///
/// 1. `GET`, `HEAD` and `OPTIONS` always pass (they must not change anything).
/// 2. `Sec-Fetch-Site: same-origin` or `none` passes; `cross-site` or `same-site` is
///    refused (unless `Origin` is a trusted origin).
/// 3. Without `Sec-Fetch-Site` (older browsers): an `Origin` header that is present
///    must be exactly this server's origin — scheme, host and port; `null` and
///    look-alike hosts such as `http://127.0.0.1:3000.attacker.example` are refused —
///    or a trusted origin.
/// 4. Neither header: passes (not a browser, so no ambient cookies to abuse).
///
/// This server's origin is the one set with [`CrossOriginProtection::server_origin`];
/// when none is set, an `Origin` passes if its `host[:port]` is exactly the request's
/// host (`Host`, or the URI's authority over HTTP/2) and its scheme is `http` or
/// `https`, as Go does. An empty header counts as absent, as in Go.
///
/// ```
/// use http::{HeaderMap, HeaderValue, Method};
/// use tower_api_key::session::CrossOriginProtection;
///
/// let csrf = CrossOriginProtection::new().server_origin("https://app.example.com");
/// let mut headers = HeaderMap::new();
/// headers.insert("origin", HeaderValue::from_static("https://evil.example"));
/// assert!(csrf.check(&Method::POST, &headers).is_err());
/// assert!(csrf.check(&Method::GET, &headers).is_ok());
/// ```
///
/// It is also a [`Layer`](tower::Layer) ([`CrossOriginGuard`](super::CrossOriginGuard)):
/// a refused request gets 403 `forbidden` in the envelope and never reaches the
/// inner service. [`SessionGuardLayer`](super::SessionGuardLayer) applies these rules
/// already; the layer is for routes without a session yet, such as login and logout,
/// so that no page elsewhere logs a visitor into an account of its choosing, or out
/// of theirs:
///
/// ```
/// use axum::{body::Body, http::Request, routing::post, Router};
/// use tower::ServiceExt;
/// use tower_api_key::session::CrossOriginProtection;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let app: Router = Router::new()
///     .route("/login", post(|| async { "logged in" }))
///     .route("/logout", post(|| async { "logged out" }))
///     .route_layer(CrossOriginProtection::new());
///
/// let forged = Request::post("/login")
///     .header("host", "app.example.com")
///     .header("sec-fetch-site", "cross-site")
///     .body(Body::empty())
///     .unwrap();
/// let response = app.clone().oneshot(forged).await.unwrap();
/// assert_eq!(response.status(), 403);
/// assert_eq!(response.headers()["cache-control"], "no-store");
///
/// let own = Request::post("/login")
///     .header("host", "app.example.com")
///     .header("origin", "https://app.example.com")
///     .body(Body::empty())
///     .unwrap();
/// assert_eq!(app.oneshot(own).await.unwrap().status(), 200);
/// # });
/// ```
#[derive(Clone, Debug, Default)]
pub struct CrossOriginProtection {
    server_origin: Option<String>,
    trusted: Vec<String>,
}

/// A request refused by [`CrossOriginProtection`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cross-origin request refused")]
pub struct CrossOriginRequest;

impl CrossOriginProtection {
    /// The default rules, with this server's origin taken from `Host`.
    pub fn new() -> Self {
        Self::default()
    }

    /// This server's origin, e.g. `https://app.example.com`: compared exactly, scheme
    /// included (a trailing slash and letter case are normalised away). Recommended in
    /// production, and behind proxies that rewrite `Host`; without it, only
    /// `host[:port]` is compared, as Go does.
    pub fn server_origin(mut self, origin: impl Into<String>) -> Self {
        self.server_origin = Some(normalise(origin.into()));
        self
    }

    /// Also admit unsafe requests from this origin (exact match), e.g. a separate
    /// front-end at `https://dashboard.example.com`.
    pub fn trusted_origin(mut self, origin: impl Into<String>) -> Self {
        self.trusted.push(normalise(origin.into()));
        self
    }

    /// `Ok` if the request may proceed. This server's host is the `Host` header.
    pub fn check(&self, method: &Method, headers: &HeaderMap) -> Result<(), CrossOriginRequest> {
        let host = match OneHeader::of(headers, &header::HOST) {
            OneHeader::One(host) => Some(host),
            _ => None,
        };
        self.check_with_host(method, headers, host)
    }

    /// [`check`](Self::check) for a whole request head: the host is the `Host` header
    /// or, for HTTP/2 requests which carry none, the URI's authority.
    pub fn check_request(&self, parts: &Parts) -> Result<(), CrossOriginRequest> {
        let host = match OneHeader::of(&parts.headers, &header::HOST) {
            OneHeader::One(host) => Some(host),
            OneHeader::Repeated => None,
            OneHeader::Absent => parts.uri.authority().map(|a| a.as_str().as_bytes()),
        };
        self.check_with_host(&parts.method, &parts.headers, host)
    }

    fn check_with_host(
        &self,
        method: &Method,
        headers: &HeaderMap,
        host: Option<&[u8]>,
    ) -> Result<(), CrossOriginRequest> {
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return Ok(());
        }
        let origin = OneHeader::of(headers, &header::ORIGIN);
        match OneHeader::of(headers, &http::HeaderName::from_static("sec-fetch-site")) {
            OneHeader::One(b"same-origin" | b"none") => return Ok(()),
            // Absent, or empty as Go treats it: fall back to `Origin`.
            OneHeader::Absent | OneHeader::One(b"") => {}
            // cross-site, same-site, anything unknown, or several values
            _ => {
                return match origin {
                    OneHeader::One(o) if self.is_trusted(o) => Ok(()),
                    _ => Err(CrossOriginRequest),
                }
            }
        }
        match origin {
            OneHeader::Absent | OneHeader::One(b"") => Ok(()),
            OneHeader::One(o) if self.is_this_server(o, host) || self.is_trusted(o) => Ok(()),
            _ => Err(CrossOriginRequest),
        }
    }

    fn is_trusted(&self, origin: &[u8]) -> bool {
        self.trusted.iter().any(|t| t.as_bytes() == origin)
    }

    fn is_this_server(&self, origin: &[u8], host: Option<&[u8]>) -> bool {
        if let Some(server) = &self.server_origin {
            return server.as_bytes() == origin;
        }
        let authority = origin
            .strip_prefix(b"https://")
            .or_else(|| origin.strip_prefix(b"http://"));
        match (authority, host) {
            (Some(authority), Some(host)) => !authority.is_empty() && authority == host,
            _ => false,
        }
    }
}

/// Browsers send origins in lowercase without a trailing slash.
fn normalise(origin: String) -> String {
    origin.trim_end_matches('/').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    use crate::middleware::test_headers as headers;

    #[test]
    fn go_rules() {
        let csrf = CrossOriginProtection::new().trusted_origin("https://trusted.example");
        let host = ("host", "127.0.0.1:3000");
        let cases: &[(&[(&str, &str)], bool)] = &[
            (&[host], true),
            (&[host, ("sec-fetch-site", "same-origin")], true),
            (&[host, ("sec-fetch-site", "none")], true),
            (&[host, ("sec-fetch-site", "cross-site")], false),
            (&[host, ("sec-fetch-site", "same-site")], false),
            (&[host, ("sec-fetch-site", "bogus")], false),
            (
                &[
                    host,
                    ("sec-fetch-site", "cross-site"),
                    ("origin", "https://trusted.example"),
                ],
                true,
            ),
            (&[host, ("origin", "http://127.0.0.1:3000")], true),
            (&[host, ("origin", "https://127.0.0.1:3000")], true),
            (&[host, ("origin", "http://127.0.0.1:3001")], false),
            (
                &[host, ("origin", "http://127.0.0.1:3000.attacker.example")],
                false,
            ),
            (&[host, ("origin", "http://attacker.example")], false),
            (&[host, ("origin", "null")], false),
            (&[host, ("origin", "ftp://127.0.0.1:3000")], false),
            (&[host, ("origin", "http://")], false),
            (&[("origin", "http://127.0.0.1:3000")], false),
            (&[host, ("origin", "https://trusted.example")], true),
            (&[host, ("origin", "https://trusted.example.evil")], false),
            (
                &[
                    host,
                    ("origin", "http://127.0.0.1:3000"),
                    ("origin", "http://127.0.0.1:3000"),
                ],
                false,
            ),
            // Sec-Fetch-Site wins over a matching Origin.
            (
                &[
                    host,
                    ("sec-fetch-site", "cross-site"),
                    ("origin", "http://127.0.0.1:3000"),
                ],
                false,
            ),
        ];
        for (pairs, ok) in cases {
            let h = headers(pairs);
            for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
                assert_eq!(csrf.check(&method, &h).is_ok(), *ok, "{method} {pairs:?}");
            }
            for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
                assert!(csrf.check(&method, &h).is_ok(), "{method} {pairs:?}");
            }
        }
    }

    #[test]
    fn http2_authority_and_empty_headers() {
        let csrf = CrossOriginProtection::new();
        // HTTP/2: no Host header, the authority is in the URI.
        let (mut parts, ()) = http::Request::post("https://127.0.0.1:3000/keys")
            .header("origin", "https://127.0.0.1:3000")
            .body(())
            .unwrap()
            .into_parts();
        assert!(csrf.check_request(&parts).is_ok());
        parts
            .headers
            .insert("origin", HeaderValue::from_static("https://evil.example"));
        assert!(csrf.check_request(&parts).is_err());
        // Empty headers count as absent, as in Go.
        let empty = headers(&[("host", "a"), ("origin", ""), ("sec-fetch-site", "")]);
        assert!(csrf.check(&Method::POST, &empty).is_ok());
    }

    #[test]
    fn configured_origin_is_compared_exactly() {
        let csrf = CrossOriginProtection::new().server_origin("https://app.example.com");
        let ok = headers(&[
            ("host", "internal:8080"),
            ("origin", "https://app.example.com"),
        ]);
        assert!(csrf.check(&Method::POST, &ok).is_ok());
        let wrong_scheme = headers(&[
            ("host", "app.example.com"),
            ("origin", "http://app.example.com"),
        ]);
        assert!(csrf.check(&Method::POST, &wrong_scheme).is_err());
    }
}
