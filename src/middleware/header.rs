use http::{HeaderMap, HeaderName};

/// How often a header appears in a request, for the headers that must appear at most
/// once (credentials, `Origin`, `Sec-Fetch-Site`, `Host`): a repeated one is never
/// resolved by picking a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OneHeader<'a> {
    /// Not sent.
    Absent,
    /// Sent once, with this value.
    One(&'a [u8]),
    /// Sent more than once.
    Repeated,
}

impl<'a> OneHeader<'a> {
    /// The header `name` of `headers`.
    #[inline(always)]
    pub(crate) fn of(headers: &'a HeaderMap, name: &HeaderName) -> Self {
        let mut values = headers.get_all(name).iter();
        match (values.next(), values.next()) {
            (None, _) => OneHeader::Absent,
            (Some(value), None) => OneHeader::One(value.as_bytes()),
            (Some(_), Some(_)) => OneHeader::Repeated,
        }
    }
}

/// A header map of `pairs` (repeats appended), for unit tests.
#[cfg(test)]
pub(crate) fn test_headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, http::HeaderValue::from_static(value));
    }
    map
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn absent_one_repeated() {
        let name = HeaderName::from_static("origin");
        let mut headers = HeaderMap::new();
        assert_eq!(OneHeader::of(&headers, &name), OneHeader::Absent);
        headers.append(&name, HeaderValue::from_static("a"));
        assert_eq!(OneHeader::of(&headers, &name), OneHeader::One(b"a"));
        headers.append(&name, HeaderValue::from_static("a"));
        assert_eq!(OneHeader::of(&headers, &name), OneHeader::Repeated);
    }
}
