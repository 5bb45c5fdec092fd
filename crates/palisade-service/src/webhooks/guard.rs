//! The SSRF guard of outbound webhooks: a receiver's URL must lead to a public
//! address. Refused: loopback, private (RFC 1918, unique-local, site-local),
//! link-local (which holds the cloud metadata service, 169.254.169.254), shared (RFC
//! 6598, 100.64/10, where some clouds put theirs), unspecified, multicast, reserved
//! (240/4 with broadcast), benchmarking, documentation and protocol-assignment
//! addresses, IPv6 forms that embed such an IPv4 address (mapped, compatible, 6to4,
//! NAT64), and Teredo.
//!
//! The check runs where the connection is made: the client resolves names through
//! [`GuardedResolver`], which drops every refused address, so a name that resolves
//! to a public address when the endpoint is saved and to a private one when it is
//! called (DNS rebinding) still cannot reach it. A URL naming an address literally
//! (no resolution) is checked by [`check_url`] before each call. Operators testing
//! against local receivers turn the guard off (`PALISADE_WEBHOOK_ALLOW_PRIVATE=true`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why a URL is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("not an http(s) URL")]
    NotHttp,
    #[error("{0} is not a public address")]
    Private(IpAddr),
    #[error("the name resolves to no public address")]
    NoPublicAddress,
}

/// Whether `ip` is an address a webhook may be sent to.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => public_v6(v6),
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let shared = a == 100 && (64..128).contains(&b);
    // 192.0.0.0/24 (protocol assignments), 198.18.0.0/15 (benchmarking), the three
    // documentation ranges, and 240.0.0.0/4 (reserved; 255.255.255.255 within it).
    let special = (a, b, c) == (192, 0, 0)
        || (a == 198 && (b == 18 || b == 19))
        || (a, b, c) == (192, 0, 2)
        || (a, b, c) == (198, 51, 100)
        || (a, b, c) == (203, 0, 113)
        || a >= 240;
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || shared
        || special
        || a == 0)
}

fn public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return public_v4(v4);
    }
    let s = ip.segments();
    let first = s[0];
    let unique_local = first & 0xfe00 == 0xfc00;
    let link_local = first & 0xffc0 == 0xfe80;
    let site_local = first & 0xffc0 == 0xfec0;
    // NAT64 (64:ff9b::/96) reaches the IPv4 address in its last 32 bits; the local-use
    // prefix 64:ff9b:1::/48 reaches whatever the network maps it to.
    let nat64 = (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
        && !public_v4(Ipv4Addr::from(ip.to_bits() as u32)))
        || (s[0], s[1], s[2]) == (0x64, 0xff9b, 1);
    // Teredo (2001::/32) tunnels to an IPv4 server and client of its own choosing.
    let teredo = (s[0], s[1]) == (0x2001, 0);
    // 6to4 (2002::/16) carries an IPv4 address in its next 32 bits.
    let six_to_four = first == 0x2002 && {
        !public_v4(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ))
    };
    // ::a.b.c.d, the deprecated IPv4-compatible form.
    let compatible =
        ip.segments()[..6].iter().all(|s| *s == 0) && !ip.is_loopback() && !ip.is_unspecified();
    let compatible_private = compatible && !public_v4(Ipv4Addr::from(ip.to_bits() as u32));
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || unique_local
        || link_local
        || site_local
        || nat64
        || teredo
        || six_to_four
        || compatible_private)
}

/// Checks a receiver's URL: http(s), and an address literal must be public.
pub fn check_url(url: &reqwest::Url) -> Result<(), Refused> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Refused::NotHttp);
    }
    // The URL parser writes an address literal in its canonical form (`0x7f000001`
    // becomes `127.0.0.1`; IPv6 in brackets).
    let host = url.host_str().ok_or(Refused::NotHttp)?;
    let Ok(ip) = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    else {
        return Ok(());
    };
    if is_public(ip) {
        Ok(())
    } else {
        Err(Refused::Private(ip))
    }
}

/// The resolver of the webhook client: the system's, without refused addresses.
#[derive(Clone, Copy, Debug, Default)]
pub struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let public: Vec<SocketAddr> = found.filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(
                    Box::new(Refused::NoPublicAddress) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_refused() {
        for refused in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.5.4",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.100.100.200",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.1.2.3",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "::10.0.0.1",
            "64:ff9b::a00:5",
            "64:ff9b::7f00:1",
            "64:ff9b:1::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "fec0::1",
            "240.0.0.1",
            "198.18.0.1",
            "198.19.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "203.0.113.9",
        ] {
            let ip: IpAddr = refused.parse().unwrap();
            assert!(!is_public(ip), "{refused} must be refused");
        }
        for allowed in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "2002:0808:0808::1",
            "64:ff9b::808:808",
            "198.20.0.1",
            "2001:db9::1",
        ] {
            let ip: IpAddr = allowed.parse().unwrap();
            assert!(is_public(ip), "{allowed} is public");
        }
    }

    #[test]
    fn literal_urls_are_checked_and_names_left_to_the_resolver() {
        let check = |u: &str| check_url(&reqwest::Url::parse(u).unwrap());
        assert_eq!(check("https://example.com/hook"), Ok(()));
        assert_eq!(check("https://93.184.216.34/hook"), Ok(()));
        assert!(matches!(
            check("http://127.0.0.1:8080/"),
            Err(Refused::Private(_))
        ));
        assert!(matches!(check("http://[::1]/"), Err(Refused::Private(_))));
        assert!(matches!(
            check("http://169.254.169.254/latest/meta-data"),
            Err(Refused::Private(_))
        ));
        assert!(matches!(
            check("http://0x7f000001/"),
            Err(Refused::Private(_))
        ));
        assert_eq!(check("ftp://example.com/"), Err(Refused::NotHttp));
        assert_eq!(check("file:///etc/passwd"), Err(Refused::NotHttp));
    }

    #[tokio::test]
    async fn the_resolver_drops_private_addresses() {
        use reqwest::dns::Resolve;
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let refused = GuardedResolver.resolve(name).await;
        assert!(refused.is_err(), "localhost resolves to loopback only");
    }
}
