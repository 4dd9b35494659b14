//! [`Restrictions`]: where and for what a key may be used, and the check of a request
//! against them.

use std::net::IpAddr;

use http::{header, HeaderValue, Method, Uri};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::{OriginPattern, RoutePattern};

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

/// A string that is not an origin or route pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "not a restriction pattern: an origin is scheme://host[:port] or scheme://*.domain[:port], \
     a route is METHOD /path or METHOD /prefix/*"
)]
pub struct InvalidPattern;

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
    if !restrictions.routes.is_empty()
        && !RoutePattern::any_matches(&restrictions.routes, facts.method(), facts.path())
    {
        return Err(Outside::Route);
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
