//! [`OriginPattern`]: a browser origin a key may be used from.

use std::{fmt, str::FromStr};

use super::InvalidPattern;

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

crate::macros::serde_via_text!(OriginPattern);

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
}
