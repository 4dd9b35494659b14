use std::{fmt, net::IpAddr, str::FromStr};

use http::{header, HeaderMap, HeaderValue, Method, Uri};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Where and for what a key may be used; an empty list means "no restriction of that
/// kind". A request outside a key's restrictions gets 403 `forbidden`, with a message
/// naming the kind of restriction, never its values.
///
/// ```
/// use tower_api_key::policy::Restrictions;
///
/// let r = Restrictions::default()
///     .allow_ip("203.0.113.0/24".parse().unwrap())
///     .allow_ip("2001:db8::/32".parse().unwrap())
///     .allow_origin("https://*.example.com".parse().unwrap())
///     .allow_route("GET /api/leads/*".parse().unwrap());
/// assert!(!r.is_empty());
/// ```
///
/// Read back from storage, a field this version does not know is an error, never
/// ignored: a restriction written by a newer version (or mistyped by hand) must not
/// leave the key unrestricted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Restrictions {
    /// Client addresses or ranges the key may be used from (IPv4 and IPv6 CIDR).
    pub ips: Vec<IpNet>,
    /// Browser origins the key may be used from (for keys used client-side).
    pub origins: Vec<OriginPattern>,
    /// Methods and paths the key may call, in addition to its scopes.
    pub routes: Vec<RoutePattern>,
}

impl Restrictions {
    /// Allows a client address or range (`203.0.113.7/32`, `10.0.0.0/8`,
    /// `2001:db8::/32`).
    pub fn allow_ip(mut self, net: IpNet) -> Self {
        self.ips.push(net);
        self
    }

    /// Allows a browser origin.
    pub fn allow_origin(mut self, origin: OriginPattern) -> Self {
        self.origins.push(origin);
        self
    }

    /// Allows a route.
    pub fn allow_route(mut self, route: RoutePattern) -> Self {
        self.routes.push(route);
        self
    }

    /// No restriction at all.
    pub fn is_empty(&self) -> bool {
        self.ips.is_empty() && self.origins.is_empty() && self.routes.is_empty()
    }
}

/// A browser origin a key may be used from: exact (`https://app.example.com`,
/// `http://localhost:3000`) or with a leading wildcard label
/// (`https://*.example.com`, which matches `https://a.example.com` and
/// `https://a.b.example.com` but not `https://example.com`). Scheme and port must
/// match; a missing port is the scheme's default.
#[derive(Clone, PartialEq, Eq)]
pub struct OriginPattern {
    scheme: String,
    /// Host, or the suffix after `*.` (stored with its leading dot).
    host: String,
    wildcard: bool,
    port: u16,
}

/// A string that is not an origin pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an origin pattern: expected scheme://host[:port] or scheme://*.domain[:port]")]
pub struct InvalidPattern;

/// `(scheme, host, port)` of an origin without path (`[…]` hosts for IPv6).
fn split_origin(text: &str) -> Option<(String, &str, u16)> {
    let (scheme, rest) = text.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
        return None;
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (inside, after) = v6.split_once(']')?;
        let host = &rest[..inside.len() + 2];
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    let port = match port {
        Some(port) => port.parse().ok()?,
        None => default_port,
    };
    (!host.is_empty()).then_some((scheme, host, port))
}

/// The client's address as the connection reports it, for key IP restrictions, when
/// not using axum's `ConnectInfo`: insert it into the request's extensions
/// (`request.extensions_mut().insert(PeerAddr(addr))`) before the layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub std::net::SocketAddr);

impl FromStr for OriginPattern {
    type Err = InvalidPattern;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (scheme, host, port) =
            split_origin(text.trim_end_matches('/')).ok_or(InvalidPattern)?;
        let host = host.to_ascii_lowercase();
        let (host, wildcard) = match host.strip_prefix("*.") {
            Some(domain) if !domain.is_empty() && !domain.contains('*') => {
                (format!(".{domain}"), true)
            }
            Some(_) => return Err(InvalidPattern),
            None if host.contains('*') => return Err(InvalidPattern),
            None => (host, false),
        };
        Ok(OriginPattern {
            scheme,
            host,
            wildcard,
            port,
        })
    }
}

impl OriginPattern {
    /// Whether a request's `Origin` (or the origin of its `Referer`) matches.
    pub fn matches(&self, origin: &str) -> bool {
        let Some((scheme, host, port)) = split_origin(origin) else {
            return false;
        };
        let host = host.to_ascii_lowercase();
        scheme == self.scheme
            && port == self.port
            && if self.wildcard {
                host.len() > self.host.len() && host.ends_with(&self.host)
            } else {
                host == self.host
            }
    }
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let star = if self.wildcard { "*" } else { "" };
        write!(f, "{}://{star}{}:{}", self.scheme, self.host, self.port)
    }
}

impl fmt::Debug for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OriginPattern({self})")
    }
}

/// A route a key may call: a method (or `*`) and a path, exact or ending in `/*`
/// (`GET /api/leads/*` matches `/api/leads/1` and `/api/leads/1/notes`, not
/// `/api/leads` nor `/api/leadsx`). A lone `*` path matches every path.
#[derive(Clone, PartialEq, Eq)]
pub struct RoutePattern {
    method: Option<Method>,
    path: String,
    prefix: bool,
}

impl FromStr for RoutePattern {
    type Err = InvalidPattern;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (method, path) = text.trim().split_once(' ').ok_or(InvalidPattern)?;
        let path = path.trim();
        let method = match method {
            "*" => None,
            m => Some(
                Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                    .map_err(|_| InvalidPattern)?,
            ),
        };
        if path == "*" {
            return Ok(RoutePattern {
                method,
                path: "/".into(),
                prefix: true,
            });
        }
        if !path.starts_with('/') || path.contains(['?', '#', ' ']) {
            return Err(InvalidPattern);
        }
        let (path, prefix) = match path.strip_suffix('*') {
            Some(dir) if dir.ends_with('/') => (dir.to_owned(), true),
            Some(_) => return Err(InvalidPattern),
            None => (path.to_owned(), false),
        };
        if path.contains('*') {
            return Err(InvalidPattern);
        }
        Ok(RoutePattern {
            method,
            path,
            prefix,
        })
    }
}

impl RoutePattern {
    /// Whether a request's method and path match. A `GET` pattern also admits
    /// `HEAD`. A path with `.` or `..` segments, or with an encoded dot or slash, never
    /// matches: it could name another route once normalised downstream.
    pub fn matches(&self, method: &Method, path: &str) -> bool {
        !is_ambiguous(path) && self.matches_plain(method, path)
    }

    /// [`matches`](Self::matches) for a path already known not to be ambiguous.
    fn matches_plain(&self, method: &Method, path: &str) -> bool {
        let method_ok = self
            .method
            .as_ref()
            .is_none_or(|m| m == method || (*m == Method::GET && *method == Method::HEAD));
        method_ok
            && if self.prefix {
                path.starts_with(&self.path) && (self.path == "/" || path.len() > self.path.len())
            } else {
                path == self.path
            }
    }
}

/// Whether a path could mean another path once normalised: a `.` or `..` segment,
/// or an encoded dot, slash or backslash (`%2e`, `%2f`, `%5c`, any case). Such a path
/// never matches a route pattern. No allocation: it runs on every restricted request.
fn is_ambiguous(path: &str) -> bool {
    let bytes = path.as_bytes();
    let encoded = bytes.contains(&b'%')
        && bytes.windows(3).any(|w| {
            w[0] == b'%'
                && matches!(
                    (w[1], w[2].to_ascii_lowercase()),
                    (b'2', b'e' | b'f') | (b'5', b'c')
                )
        });
    encoded
        || (bytes.contains(&b'.')
            && path
                .split('/')
                .any(|segment| segment == "." || segment == ".."))
}

impl fmt::Display for RoutePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let method = self.method.as_ref().map_or("*", Method::as_str);
        let star = if self.prefix { "*" } else { "" };
        write!(f, "{method} {}{star}", self.path)
    }
}

impl fmt::Debug for RoutePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoutePattern({self})")
    }
}

crate::macros::serde_via_text!(OriginPattern, RoutePattern);

/// Which restriction a request fell outside of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outside {
    Ip,
    Origin,
    Route,
}

/// What a restriction check reads from a request. The client address is asked for
/// only when a key has IP restrictions.
pub(crate) trait Facts {
    fn method(&self) -> &Method;
    fn path(&self) -> &str;
    fn header(&self, name: header::HeaderName) -> Option<&HeaderValue>;
    fn client(&self) -> Option<IpAddr>;
}

/// Checks a request against `restrictions`.
pub(crate) fn check(restrictions: &Restrictions, facts: &impl Facts) -> Result<(), Outside> {
    if !restrictions.ips.is_empty()
        && !facts
            .client()
            .is_some_and(|ip| restrictions.ips.iter().any(|net| net.contains(&ip)))
    {
        return Err(Outside::Ip);
    }
    if !restrictions.origins.is_empty() {
        let origin = request_origin(facts);
        if !origin.is_some_and(|o| restrictions.origins.iter().any(|p| p.matches(&o))) {
            return Err(Outside::Origin);
        }
    }
    if !restrictions.routes.is_empty() {
        let (method, path) = (facts.method(), facts.path());
        if is_ambiguous(path)
            || !restrictions
                .routes
                .iter()
                .any(|r| r.matches_plain(method, path))
        {
            return Err(Outside::Route);
        }
    }
    Ok(())
}

/// `Origin`, or else the origin part of `Referer`.
fn request_origin(facts: &impl Facts) -> Option<String> {
    if let Some(origin) = facts.header(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        return Some(origin.to_owned());
    }
    let referer = facts.header(header::REFERER)?.to_str().ok()?;
    let (scheme, rest) = referer.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    Some(format!("{scheme}://{authority}"))
}

/// What a restriction check needs, owned, for a check after the store was waited for.
#[derive(Debug, Clone)]
pub(crate) struct RequestFacts {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) origin: Option<HeaderValue>,
    pub(crate) referer: Option<HeaderValue>,
    /// The client, as far as the connection and trusted proxies tell; `None` if
    /// unknown (an IP restriction then refuses).
    pub(crate) client: Option<IpAddr>,
}

impl Facts for RequestFacts {
    fn method(&self) -> &Method {
        &self.method
    }

    fn path(&self) -> &str {
        self.uri.path()
    }

    fn header(&self, name: header::HeaderName) -> Option<&HeaderValue> {
        if name == header::ORIGIN {
            self.origin.as_ref()
        } else if name == header::REFERER {
            self.referer.as_ref()
        } else {
            None
        }
    }

    fn client(&self) -> Option<IpAddr> {
        self.client
    }
}

/// Which forwarding header your trusted proxies write: the client address is read
/// from that one only, so a client cannot smuggle in the other.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, most load balancers).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

/// Proxies whose forwarding header is believed. Empty by default: then no forwarding
/// header is ever read and the client is the peer.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustedProxies {
    pub(crate) nets: Vec<IpNet>,
    pub(crate) header: ForwardedHeader,
}

impl TrustedProxies {
    fn trusts(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// The client address of a request — the one place the crate decides it, for IP
    /// restrictions, the failed-attempts budget, hooks and the audit trail alike: the
    /// connection's peer ([`PeerAddr`], or axum's `ConnectInfo<SocketAddr>`), unless
    /// the peer is a trusted proxy; see [`client`](Self::client).
    pub(crate) fn client_of(
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
        self.client(peer, headers)
    }

    /// The client address: the peer, unless the peer is a trusted proxy; then the
    /// rightmost hop of the configured forwarding header that is not a trusted proxy
    /// (what lies left of it was written by the client and is ignored). `None` when
    /// that hop is missing or unreadable: the client is then unknown.
    fn client(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer.map(|ip| ip.to_canonical())?;
        if self.nets.is_empty() || !self.trusts(peer) {
            return Some(peer);
        }
        let (name, parse): (header::HeaderName, fn(&str) -> Option<IpAddr>) = match self.header {
            ForwardedHeader::XForwardedFor => (
                header::HeaderName::from_static("x-forwarded-for"),
                parse_hop,
            ),
            ForwardedHeader::Forwarded => (header::FORWARDED, forwarded_for),
        };
        // All values of the header, hops right to left.
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().ok())
            .collect::<Option<_>>()?;
        for hop in values.iter().rev().flat_map(|v| v.rsplit(',')) {
            let ip = parse(hop.trim())?.to_canonical();
            if !self.trusts(ip) {
                return Some(ip);
            }
        }
        None
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse() {
        return Some(ip);
    }
    if let Some(v6) = entry.strip_prefix('[') {
        return v6.split(']').next()?.parse().ok();
    }
    entry.rsplit_once(':')?.0.parse().ok()
}

/// The address in one `Forwarded` element's `for=` parameter (RFC 7239).
fn forwarded_for(element: &str) -> Option<IpAddr> {
    let value = element.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        name.eq_ignore_ascii_case("for").then_some(value.trim())
    })?;
    parse_hop(value.trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_patterns() {
        let exact: OriginPattern = "https://app.example.com".parse().unwrap();
        assert!(exact.matches("https://app.example.com"));
        assert!(exact.matches("https://APP.example.com:443"));
        assert!(!exact.matches("http://app.example.com"));
        assert!(!exact.matches("https://app.example.com:8443"));
        assert!(!exact.matches("https://app.example.com.evil.test"));
        let wild: OriginPattern = "https://*.example.com".parse().unwrap();
        assert!(wild.matches("https://a.example.com"));
        assert!(wild.matches("https://a.b.example.com"));
        assert!(!wild.matches("https://example.com"));
        assert!(!wild.matches("https://evilexample.com"));
        assert!(!wild.matches("null"));
        let local: OriginPattern = "http://localhost:3000".parse().unwrap();
        assert!(local.matches("http://localhost:3000") && !local.matches("http://localhost"));
        let v6: OriginPattern = "http://[::1]:8080".parse().unwrap();
        assert!(v6.matches("http://[::1]:8080") && !v6.matches("http://[::1]"));
        for bad in [
            "example.com",
            "ftp://x",
            "https://",
            "https://a/b",
            "https://*",
            "https://a.*.com",
            "https://*.*.com",
        ] {
            assert!(bad.parse::<OriginPattern>().is_err(), "{bad}");
        }
    }

    #[test]
    fn route_patterns() {
        let leads: RoutePattern = "GET /api/leads/*".parse().unwrap();
        assert!(leads.matches(&Method::GET, "/api/leads/1"));
        assert!(leads.matches(&Method::GET, "/api/leads/1/notes"));
        assert!(!leads.matches(&Method::POST, "/api/leads/1"));
        assert!(!leads.matches(&Method::GET, "/api/leads"));
        assert!(!leads.matches(&Method::GET, "/api/leads/"));
        assert!(!leads.matches(&Method::GET, "/api/leadsx"));
        let any: RoutePattern = "* /api/account".parse().unwrap();
        assert!(any.matches(&Method::DELETE, "/api/account"));
        assert!(!any.matches(&Method::GET, "/api/account/x"));
        let all: RoutePattern = "GET *".parse().unwrap();
        assert!(all.matches(&Method::GET, "/anything"));
        assert_eq!(leads.to_string(), "GET /api/leads/*");
        assert!(leads.matches(&Method::HEAD, "/api/leads/1"));
        for sneaky in [
            "/api/leads/../admin",
            "/api/leads/./1",
            "/api/leads/%2e%2e/admin",
            "/api/leads/a%2Fb",
        ] {
            assert!(!leads.matches(&Method::GET, sneaky), "{sneaky}");
        }
        let lower: RoutePattern = "get /x".parse().unwrap();
        assert!(lower.matches(&Method::GET, "/x"));
        for bad in ["GET", "GET api", "GET /a*", "GET /a/*/b", "G ET /a"] {
            assert!(bad.parse::<RoutePattern>().is_err(), "{bad}");
        }
    }

    #[test]
    fn serde_as_strings() {
        let r = Restrictions::default()
            .allow_ip("10.0.0.0/8".parse().unwrap())
            .allow_origin("https://*.example.com".parse().unwrap())
            .allow_route("GET /a/*".parse().unwrap());
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            json,
            r#"{"ips":["10.0.0.0/8"],"origins":["https://*.example.com:443"],"routes":["GET /a/*"]}"#
        );
        assert_eq!(serde_json::from_str::<Restrictions>(&json).unwrap(), r);
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn client_address() {
        let peer: IpAddr = "10.0.0.2".parse().unwrap();
        let spoof = headers(&[("x-forwarded-for", "203.0.113.9")]);
        // No trusted proxies: forwarding headers are never read.
        assert_eq!(
            TrustedProxies::default().client(Some(peer), &spoof),
            Some(peer)
        );
        let proxies = TrustedProxies {
            nets: vec!["10.0.0.0/8".parse().unwrap()],
            header: ForwardedHeader::XForwardedFor,
        };
        // Rightmost untrusted hop counts; what the client claims to the left does not,
        // even when unreadable.
        let chain = headers(&[("x-forwarded-for", "junk, 1.1.1.1, 198.51.100.7, 10.0.0.5")]);
        assert_eq!(
            proxies.client(Some(peer), &chain),
            "198.51.100.7".parse().ok()
        );
        let with_port = headers(&[("x-forwarded-for", "198.51.100.7:5678")]);
        assert_eq!(
            proxies.client(Some(peer), &with_port),
            "198.51.100.7".parse().ok()
        );
        // An untrusted peer's headers are ignored.
        let outside: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(proxies.client(Some(outside), &chain), Some(outside));
        // The other header is never read: a client cannot smuggle it in.
        let smuggled = headers(&[
            ("forwarded", "for=203.0.113.9"),
            ("x-forwarded-for", "192.0.2.66"),
        ]);
        assert_eq!(
            proxies.client(Some(peer), &smuggled),
            "192.0.2.66".parse().ok()
        );
        // A trusted proxy that forwarded nothing, or only trusted hops: unknown.
        assert_eq!(proxies.client(Some(peer), &HeaderMap::new()), None);
        let junk = headers(&[("x-forwarded-for", "not-an-ip")]);
        assert_eq!(proxies.client(Some(peer), &junk), None);
        // RFC 7239, when that is what the proxies write.
        let rfc = TrustedProxies {
            header: ForwardedHeader::Forwarded,
            ..proxies.clone()
        };
        let fwd = headers(&[(
            "forwarded",
            r#"for=192.0.2.60;proto=http, for="[2001:db8::1]:4711""#,
        )]);
        assert_eq!(rfc.client(Some(peer), &fwd), "2001:db8::1".parse().ok());
        // IPv4-mapped IPv6 peers are seen as IPv4.
        let mapped: IpAddr = "::ffff:203.0.113.4".parse().unwrap();
        assert_eq!(
            TrustedProxies::default().client(Some(mapped), &HeaderMap::new()),
            "203.0.113.4".parse().ok()
        );
    }
}
