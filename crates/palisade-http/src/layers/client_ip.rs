//! The client's address: the socket peer, unless the peer is a trusted proxy
//! (`PALISADE_TRUSTED_PROXIES`); then the right-most address in `Forwarded` /
//! `X-Forwarded-For` that is not itself a trusted proxy. Addresses left of it were
//! written by the client and prove nothing.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, Request};
use http::HeaderMap;
use ipnet::IpNet;

/// The resolved client address of the request being served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Resolves the client address and records it on the request.
pub fn assign(req: &mut Request, trusted: &[IpNet]) -> ClientIp {
    // Without connection info (a request built in-process) the peer is unknown, which
    // grants nothing: 0.0.0.0 is in no allow-list.
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let ip = ClientIp(resolve(peer, req.headers(), trusted));
    req.extensions_mut().insert(ip);
    ip
}

pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(&canonical(*ip)));
    if !is_trusted(&peer) {
        return peer;
    }
    let chain = forwarded_chain(headers);
    chain
        .iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .or(chain.first())
        .copied()
        .unwrap_or(peer)
}

/// IPv4-mapped IPv6 addresses compare as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The hop addresses, client first: from `Forwarded` (RFC 7239) when present, else from
/// `X-Forwarded-For`. Unparseable entries (obfuscated ids, `unknown`) are skipped.
fn forwarded_chain(headers: &HeaderMap) -> Vec<IpAddr> {
    let forwarded: Vec<IpAddr> = headers
        .get_all(http::header::FORWARDED)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (k, v) = pair.trim().split_once('=')?;
                k.eq_ignore_ascii_case("for").then(|| parse_node(v))?
            })
        })
        .collect();
    if !forwarded.is_empty() {
        return forwarded;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(parse_node)
        .collect()
}

/// `1.2.3.4`, `"[2001:db8::1]:8080"`, `1.2.3.4:80` → the address.
fn parse_node(raw: &str) -> Option<IpAddr> {
    let s = raw.trim().trim_matches('"');
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok().map(canonical);
    }
    s.parse::<SocketAddr>().ok().map(|a| canonical(a.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    fn nets(s: &[&str]) -> Vec<IpNet> {
        s.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let h = headers(&[("x-forwarded-for", "1.1.1.1")]);
        assert_eq!(
            resolve("9.9.9.9".parse().unwrap(), &h, &nets(&["10.0.0.0/8"])),
            "9.9.9.9".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn takes_the_right_most_untrusted_hop() {
        // The client forged 6.6.6.6; the real client is 2.2.2.2, added by our proxy 10.0.0.2.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 2.2.2.2, 10.0.0.2")]);
        assert_eq!(
            resolve("10.0.0.1".parse().unwrap(), &h, &nets(&["10.0.0.0/8"])),
            "2.2.2.2".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn reads_the_forwarded_header() {
        let h = headers(&[(
            "forwarded",
            "for=6.6.6.6, for=\"[2001:db8::7]:443\";proto=https",
        )]);
        assert_eq!(
            resolve("10.0.0.1".parse().unwrap(), &h, &nets(&["10.0.0.0/8"])),
            "2001:db8::7".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn all_hops_trusted_gives_the_left_most() {
        let h = headers(&[("x-forwarded-for", "10.1.1.1, 10.2.2.2")]);
        assert_eq!(
            resolve("10.0.0.1".parse().unwrap(), &h, &nets(&["10.0.0.0/8"])),
            "10.1.1.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn garbage_falls_back_to_the_peer() {
        let h = headers(&[("x-forwarded-for", "unknown, not-an-ip")]);
        assert_eq!(
            resolve("10.0.0.1".parse().unwrap(), &h, &nets(&["10.0.0.0/8"])),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
    }
}
