//! Who is calling: the client address used by the failure limiter and
//! written to the audit trail.
//!
//! The TCP peer is the client unless it is one of `[server]
//! trusted_proxies`; only then is `X-Forwarded-For` read, because anyone
//! else can write any address into it.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use bulwark_ops::IpNetwork;

/// The client's address, or None when the peer is unknown (the router
/// driven without a server, as tests do).
pub(crate) fn client_ip(parts: &Parts, trusted: &[IpNetwork]) -> Option<IpAddr> {
    let ConnectInfo(peer) = parts.extensions.get::<ConnectInfo<SocketAddr>>()?;
    Some(resolve(peer.ip(), &parts.headers, trusted))
}

/// Whether the client reached us over TLS: the peer is a trusted proxy
/// that says so in `X-Forwarded-Proto`. Bulwark itself serves plain HTTP,
/// so a proxy in front is the only way a request arrives over TLS.
pub(crate) fn forwarded_https(parts: &Parts, trusted: &[IpNetwork]) -> bool {
    let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
        return false;
    };
    let peer = peer.ip().to_canonical();
    trusted.iter().any(|n| n.contains(peer))
        && parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// The right-most address of the chain `X-Forwarded-For…, peer` that is not
/// a trusted proxy. Each proxy appends the address it received the request
/// from, so reading from the right, every address up to the first untrusted
/// one was written by a proxy we trust; what lies left of it was written by
/// the client and proves nothing. When every address is trusted, the
/// left-most is the client. An unreadable entry ends the walk at the last
/// address known good.
fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNetwork]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    let mut client = peer.to_canonical();
    if !is_trusted(client) {
        return client;
    }
    // Several header lines form one list, in order.
    for value in headers.get_all("x-forwarded-for").iter().rev() {
        let Ok(value) = value.to_str() else {
            return client;
        };
        for hop in value.rsplit(',') {
            let Some(ip) = parse_hop(hop) else {
                return client;
            };
            client = ip;
            if !is_trusted(ip) {
                return client;
            }
        }
    }
    client
}

/// `203.0.113.9`, `2001:db8::1`, and the forms with a port some proxies
/// write (`203.0.113.9:4711`, `[2001:db8::1]:4711`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpNetwork> = ["10.0.0.0/8", "127.0.0.1"]
            .iter()
            .map(|s| IpNetwork::parse(s).unwrap())
            .collect();
        let check = |peer: &str, forwarded: &[&str], expected: &str| {
            let mut headers = HeaderMap::new();
            for v in forwarded {
                headers.append("x-forwarded-for", v.parse().unwrap());
            }
            let got = resolve(peer.parse().unwrap(), &headers, &trusted);
            assert_eq!(got.to_string(), expected, "{peer} {forwarded:?}");
        };
        // An untrusted peer is the client, whatever it claims.
        check("203.0.113.9", &["198.51.100.1"], "203.0.113.9");
        check("203.0.113.9", &[], "203.0.113.9");
        // A trusted peer without the header is the client.
        check("127.0.0.1", &[], "127.0.0.1");
        // One proxy.
        check("127.0.0.1", &["198.51.100.1"], "198.51.100.1");
        // The client forged a left part; the right-most untrusted wins.
        check("127.0.0.1", &["6.6.6.6, 198.51.100.1"], "198.51.100.1");
        // Proxies in a chain are skipped.
        check(
            "10.1.1.1",
            &["6.6.6.6, 198.51.100.1, 10.2.2.2"],
            "198.51.100.1",
        );
        // Several header lines are one list.
        check("127.0.0.1", &["198.51.100.1", "10.2.2.2"], "198.51.100.1");
        check("127.0.0.1", &["6.6.6.6, 10.2.2.2", "10.3.3.3"], "6.6.6.6");
        // Everything trusted: the left-most.
        check("127.0.0.1", &["10.9.9.9, 10.2.2.2"], "10.9.9.9");
        // Ports and IPv6.
        check("127.0.0.1", &["198.51.100.1:4711"], "198.51.100.1");
        check("127.0.0.1", &["[2001:db8::1]:4711"], "2001:db8::1");
        check("127.0.0.1", &["2001:db8::1"], "2001:db8::1");
        // An unreadable entry: the last address known good.
        check(
            "127.0.0.1",
            &["198.51.100.1, unknown, 10.2.2.2"],
            "10.2.2.2",
        );
        check("127.0.0.1", &["garbage"], "127.0.0.1");
        // A dual-stack listener's mapped IPv4 peer.
        check("::ffff:127.0.0.1", &["198.51.100.1"], "198.51.100.1");
        check("::ffff:203.0.113.9", &["198.51.100.1"], "203.0.113.9");
    }

    #[test]
    fn no_trusted_proxies_means_the_peer() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "198.51.100.1".parse().unwrap());
        let got = resolve("127.0.0.1".parse().unwrap(), &headers, &[]);
        assert_eq!(got.to_string(), "127.0.0.1");
    }
}
