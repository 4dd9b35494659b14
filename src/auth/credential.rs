//! Reading the presented key out of the request headers. No I/O happens here.

use std::fmt;

use http::{header::AUTHORIZATION, HeaderMap, HeaderName};

use crate::middleware::OneHeader;

/// What the headers carry.
#[derive(PartialEq, Eq)]
pub(crate) enum Credential<'a> {
    /// No bearer credential: no header, an empty one, or another scheme (`Basic …`).
    /// RFC 6750 §3.1: the challenge then carries no error code.
    Missing,
    /// Something that tried to be a bearer credential and cannot be one: `Bearer`
    /// without a token, several headers, characters no scheme may contain.
    Malformed,
    /// The token text after `Bearer` (or the whole extra header); its shape is checked
    /// against the key format next.
    Token(&'a [u8]),
}

impl fmt::Debug for Credential<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Missing => f.write_str("Missing"),
            Credential::Malformed => f.write_str("Malformed"),
            Credential::Token(token) => write!(f, "Token({} bytes)", token.len()),
        }
    }
}

/// Extracts the credential from `Authorization: Bearer <key>` and, if configured, from
/// one extra header holding the bare key (e.g. `X-API-Key`).
///
/// Rules: the scheme is case-insensitive; one or more spaces (never tabs) separate it
/// from the token; the token runs to the end of the value. Several `Authorization`
/// headers, or both `Authorization` and the extra header, are refused rather than
/// guessed between. The query string and `Proxy-Authorization` are never read.
#[inline(always)]
pub(crate) fn extract<'a>(headers: &'a HeaderMap, extra: Option<&HeaderName>) -> Credential<'a> {
    let authorization = OneHeader::of(headers, &AUTHORIZATION);
    let extra = extra.map_or(OneHeader::Absent, |name| OneHeader::of(headers, name));
    match (authorization, extra) {
        (OneHeader::Absent, OneHeader::Absent) => Credential::Missing,
        (OneHeader::One(value), OneHeader::Absent) => authorization_credential(value),
        (OneHeader::Absent, OneHeader::One(token)) => Credential::Token(token),
        _ => Credential::Malformed,
    }
}

#[inline(always)]
fn authorization_credential(value: &[u8]) -> Credential<'_> {
    canonical_bearer(value).map_or_else(|| by_the_rules(value), Credential::Token)
}

/// What nearly every client sends, `Bearer`, one space and a token, taken as it is:
/// the rules give the same answer for it ([`by_the_rules`]), with more work.
fn canonical_bearer(value: &[u8]) -> Option<&[u8]> {
    let token = value.strip_prefix(b"Bearer ")?;
    token.first().is_some_and(|&b| b != b' ').then_some(token)
}

/// Any `Authorization` value, by the rules [`extract`] gives.
#[cold]
fn by_the_rules(value: &[u8]) -> Credential<'_> {
    let scheme_end = value.iter().position(|&b| b == b' ').unwrap_or(value.len());
    let (scheme, rest) = value.split_at(scheme_end);
    if scheme.eq_ignore_ascii_case(b"bearer") {
        let token = &rest[rest.iter().take_while(|&&b| b == b' ').count()..];
        if token.is_empty() {
            Credential::Malformed
        } else {
            Credential::Token(token)
        }
    } else if (!scheme.is_empty() && scheme.iter().all(|&b| is_tchar(b)))
        || value.iter().all(|&b| b == b' ')
    {
        // Another scheme (RFC 9110 token), or an empty or all-space value.
        Credential::Missing
    } else {
        Credential::Malformed
    }
}

/// RFC 9110 `tchar`: what an authentication scheme name may contain.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    type Headers<'a> = &'a [(&'a str, &'a [u8])];

    fn headers(pairs: Headers<'_>) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn bearer_rules() {
        let x = HeaderName::from_static("x-api-key");
        let cases: &[(Headers<'_>, Credential<'_>)] = &[
            (&[], Credential::Missing),
            (
                &[("authorization", b"Bearer abc")],
                Credential::Token(b"abc"),
            ),
            (
                &[("authorization", b"bEaReR   abc")],
                Credential::Token(b"abc"),
            ),
            (&[("authorization", b"Bearer")], Credential::Malformed),
            (&[("authorization", b"Bearer ")], Credential::Malformed),
            (&[("authorization", b"Bearer\tabc")], Credential::Malformed),
            (
                &[("authorization", b"Bearer \"abc\"")],
                Credential::Token(b"\"abc\""),
            ),
            (&[("authorization", b"Bearerabc")], Credential::Missing),
            (&[("authorization", b"Basic abc")], Credential::Missing),
            (&[("authorization", b"abc")], Credential::Missing),
            (&[("authorization", b"")], Credential::Missing),
            (&[("authorization", b"   ")], Credential::Missing),
            (&[("authorization", b" Bearer abc")], Credential::Malformed),
            (&[("authorization", b"Bea\"rer abc")], Credential::Malformed),
            (
                &[("authorization", b"Bearer,Basic abc")],
                Credential::Malformed,
            ),
            (
                &[
                    ("authorization", b"Bearer a"),
                    ("authorization", b"Bearer b"),
                ],
                Credential::Malformed,
            ),
            (
                &[("proxy-authorization", b"Bearer abc")],
                Credential::Missing,
            ),
            (&[("x-api-key", b"abc")], Credential::Token(b"abc")),
            (
                &[("x-api-key", b"abc"), ("authorization", b"Bearer abc")],
                Credential::Malformed,
            ),
            (
                &[("x-api-key", b"a"), ("x-api-key", b"b")],
                Credential::Malformed,
            ),
        ];
        for (pairs, want) in cases {
            assert_eq!(&extract(&headers(pairs), Some(&x)), want, "{pairs:?}");
        }
        // Without the extra header configured, it is ignored entirely.
        assert_eq!(
            extract(&headers(&[("x-api-key", b"abc")]), None),
            Credential::Missing
        );
    }

    #[test]
    fn the_canonical_bearer_shortcut_agrees_with_the_rules() {
        let values: &[&[u8]] = &[
            b"Bearer abc",
            b"Bearer abc def",
            b"Bearer pk_live_0123",
            b"Bearer \"abc\"",
            b"Bearer  abc",
            b"Bearer ",
            b"Bearer",
            b"Bearer\tabc",
            b"bearer abc",
            b"Bearer,abc",
            b"Basic abc",
        ];
        for value in values {
            if let Some(token) = canonical_bearer(value) {
                assert_eq!(Credential::Token(token), by_the_rules(value), "{value:?}");
            }
            assert_eq!(authorization_credential(value), by_the_rules(value));
        }
        assert_eq!(canonical_bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(canonical_bearer(b"Bearer  abc"), None);
    }

    #[test]
    fn debug_never_shows_the_token() {
        assert_eq!(
            format!("{:?}", Credential::Token(b"pk_live_secret")),
            "Token(14 bytes)"
        );
    }
}
