//! Reading the presented key out of the request headers. No I/O happens here.

use http::{header::AUTHORIZATION, HeaderMap, HeaderName};

/// What the headers carry.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Credential<'a> {
    /// No credential header at all.
    Missing,
    /// A credential header that cannot be a single bearer token: another scheme, no
    /// token, several headers, bad characters.
    Malformed,
    /// The token text after `Bearer` (or the whole extra header); its shape is checked
    /// against the key format next.
    Token(&'a [u8]),
}

/// Extracts the credential from `Authorization: Bearer <key>` and, if configured, from
/// one extra header holding the bare key (e.g. `X-API-Key`).
///
/// Rules: the scheme is case-insensitive; one or more spaces (never tabs) separate it
/// from the token; the token runs to the end of the value. Several `Authorization`
/// headers, or both `Authorization` and the extra header, are refused rather than
/// guessed between. The query string and `Proxy-Authorization` are never read.
pub(crate) fn extract<'a>(headers: &'a HeaderMap, extra: Option<&HeaderName>) -> Credential<'a> {
    let from_authorization = single(headers, &AUTHORIZATION).map(|v| v.map(bearer_token));
    let from_extra = extra.and_then(|name| single(headers, name));
    match (from_authorization, from_extra) {
        (None, None) => Credential::Missing,
        (Some(Some(Some(token))), None) | (None, Some(Some(token))) => Credential::Token(token),
        _ => Credential::Malformed,
    }
}

/// `None` if the header is absent, `Some(None)` if it appears more than once.
fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<Option<&'a [u8]>> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    Some(match values.next() {
        None => Some(first.as_bytes()),
        Some(_) => None,
    })
}

fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    const SCHEME: &[u8] = b"bearer";
    if value.len() <= SCHEME.len() || !value[..SCHEME.len()].eq_ignore_ascii_case(SCHEME) {
        return None;
    }
    let rest = &value[SCHEME.len()..];
    let spaces = rest.iter().take_while(|&&b| b == b' ').count();
    let token = &rest[spaces..];
    (spaces > 0 && !token.is_empty()).then_some(token)
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
            (&[("authorization", b"Bearerabc")], Credential::Malformed),
            (&[("authorization", b"Bearer\tabc")], Credential::Malformed),
            (&[("authorization", b"Basic abc")], Credential::Malformed),
            (&[("authorization", b"abc")], Credential::Malformed),
            (&[("authorization", b"")], Credential::Malformed),
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
}
