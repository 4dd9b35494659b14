//! The request facts the pipeline reads: the head of an HTTP request, borrowed while
//! the check runs at once, or the few facts a restriction check needs, owned for a
//! check after the store was waited for.

use std::net::IpAddr;

use http::{header, request::Parts, Extensions, HeaderMap, HeaderValue, Method, Uri};

use crate::policy::{Facts, RequestFacts, TrustedProxies};

/// The parts of a request the authenticator reads.
#[derive(Clone, Copy)]
pub(crate) struct Head<'a> {
    pub(crate) method: &'a Method,
    pub(crate) uri: &'a Uri,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) extensions: &'a Extensions,
}

impl<'a> Head<'a> {
    pub(crate) fn of(parts: &'a Parts) -> Self {
        Head {
            method: &parts.method,
            uri: &parts.uri,
            headers: &parts.headers,
            extensions: &parts.extensions,
        }
    }

    pub(crate) fn of_request<B>(request: &'a http::Request<B>) -> Self {
        Head {
            method: request.method(),
            uri: request.uri(),
            headers: request.headers(),
            extensions: request.extensions(),
        }
    }

    /// The request's URI as the application received it (axum's `OriginalUri` under
    /// `nest`), which route restrictions are written against.
    fn original_uri(self) -> &'a Uri {
        #[cfg(feature = "axum")]
        let uri = self
            .extensions
            .get::<axum::extract::OriginalUri>()
            .map_or(self.uri, |original| &original.0);
        #[cfg(not(feature = "axum"))]
        let uri = self.uri;
        uri
    }
}

/// A request being handled, as the restriction check and the failed-attempts budget
/// see it: borrowed, nothing copied, and the client address resolved only when a
/// rule asks for it.
pub(super) struct HeadFacts<'a> {
    pub(super) head: Head<'a>,
    pub(super) proxies: &'a TrustedProxies,
}

impl HeadFacts<'_> {
    /// The same facts, owned, for after the store was waited for.
    pub(super) fn to_owned(&self) -> RequestFacts {
        RequestFacts {
            method: self.head.method.clone(),
            uri: self.head.original_uri().clone(),
            origin: self.head.headers.get(header::ORIGIN).cloned(),
            referer: self.head.headers.get(header::REFERER).cloned(),
            client: self.client(),
        }
    }
}

impl Facts for HeadFacts<'_> {
    fn method(&self) -> &Method {
        self.head.method
    }

    fn path(&self) -> &str {
        self.head.original_uri().path()
    }

    fn header(&self, name: header::HeaderName) -> Option<&HeaderValue> {
        self.head.headers.get(name)
    }

    fn client(&self) -> Option<IpAddr> {
        self.proxies
            .client_of(self.head.headers, self.head.extensions)
    }
}
