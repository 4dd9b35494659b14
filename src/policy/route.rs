//! [`RoutePattern`]: a route a key may call.

use std::{fmt, str::FromStr};

use http::Method;

use super::InvalidPattern;

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

    /// Whether any of `routes` matches; the path is checked for ambiguity once.
    pub(crate) fn any_matches(routes: &[RoutePattern], method: &Method, path: &str) -> bool {
        !is_ambiguous(path) && routes.iter().any(|r| r.matches_plain(method, path))
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

crate::macros::serde_via_text!(RoutePattern);

#[cfg(test)]
mod tests {
    use super::*;

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
}
