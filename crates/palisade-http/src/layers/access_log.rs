//! One JSON log line per request. Every line logged while the request is served,
//! this one included, carries its id ([`request_id::scope`]). Logs the path without
//! its query string and no header values: neither may carry a token into the logs.
//!
//! [`request_id::scope`]: super::request_id::scope

use std::io::Write;
use std::net::IpAddr;
use std::time::Duration;

use http::StatusCode;

use super::client_ip::ClientIp;

/// The access-log line of an answered request.
pub fn record(
    method: &'static str,
    path: &str,
    route: &str,
    status: StatusCode,
    elapsed: Duration,
    client: ClientIp,
) {
    tracing::info!(
        method,
        path,
        route,
        status = status.as_u16(),
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        client_ip = ip_text(client.0, &mut [0; 45]),
        "request served"
    );
}

/// The address as text, in `buf`: the `Display` of an address goes through the
/// formatting machinery, a measurable part of this line's cost.
fn ip_text(ip: IpAddr, buf: &mut [u8; 45]) -> &str {
    let mut len = 0;
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    buf[len] = b'.';
                    len += 1;
                }
                let mut digits = itoa::Buffer::new();
                let d = digits.format(octet).as_bytes();
                buf[len..len + d.len()].copy_from_slice(d);
                len += d.len();
            }
        }
        IpAddr::V6(v6) => {
            let mut cursor = std::io::Cursor::new(&mut buf[..]);
            // 45 bytes hold the longest IPv6 text (an IPv4-mapped address).
            let _ = write!(cursor, "{v6}");
            len = usize::try_from(cursor.position()).unwrap_or(0);
        }
    }
    std::str::from_utf8(&buf[..len]).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "255.255.255.255",
            "10.20.3.40",
            "::1",
            "2001:db8::7",
            "::ffff:255.255.255.255",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            let ip: IpAddr = ip.parse().expect("address");
            assert_eq!(ip_text(ip, &mut [0; 45]), ip.to_string());
        }
    }
}
