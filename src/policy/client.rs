//! The client's address: the one place the crate decides it (the connection's peer,
//! or behind trusted proxies the rightmost untrusted forwarded hop).

use std::net::IpAddr;

use http::{header, HeaderMap};
use ipnet::IpNet;

/// The client's address as the connection reports it, for key IP restrictions, when
/// not using axum's `ConnectInfo`: insert it into the request's extensions
/// (`request.extensions_mut().insert(PeerAddr(addr))`) before the layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub std::net::SocketAddr);

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

    use crate::middleware::test_headers as headers;

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
