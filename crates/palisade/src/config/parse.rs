//! Parsers for configuration values; each returns a message fit to show the operator.

use std::time::Duration;

/// Splits `30s` into `(30, "s")`; `what` names the expected kind in the message.
fn number_and_unit<N: std::str::FromStr>(s: &str, what: &str) -> Result<(N, String), String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n = num.parse().map_err(|_| format!("`{s}` is not {what}"))?;
    Ok((n, unit.trim().to_ascii_lowercase()))
}

/// `30s`, `500ms`, `2m`, `1h`; a plain number is milliseconds
/// (`DB_IDLE_TIMEOUT=30000`).
pub fn duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (n, unit): (u64, _) = number_and_unit(s, "a duration (e.g. 30s, 500ms, 2m)")?;
    let seconds = |mul: u64| {
        n.checked_mul(mul)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("`{s}` is too long"))
    };
    match unit.as_str() {
        "" | "ms" => Ok(Duration::from_millis(n)),
        "s" => seconds(1),
        "m" => seconds(60),
        "h" => seconds(3600),
        "d" => seconds(24 * 3600),
        other => Err(format!(
            "unknown duration unit `{other}` in `{s}` (use ms, s, m, h or d)"
        )),
    }
}

/// `1048576`, `512KiB`, `1MiB` (also KB/MB as binary multiples).
pub fn size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let (n, unit): (usize, _) = number_and_unit(s, "a size (e.g. 1MiB, 512KiB, 1048576)")?;
    let mul = match unit.as_str() {
        "" | "b" => 1,
        "kib" | "kb" | "k" => 1024,
        "mib" | "mb" | "m" => 1024 * 1024,
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{s}` (use KiB or MiB)"
            ));
        }
    };
    n.checked_mul(mul)
        .ok_or_else(|| format!("`{s}` is too large"))
}

pub fn boolean(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("`{s}` is not a boolean (true or false)")),
    }
}

/// Comma-separated items, blanks dropped.
pub fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A comma-separated list of CIDRs (or bare addresses).
pub fn cidrs(s: &str) -> Result<Vec<ipnet::IpNet>, String> {
    list(s).iter().map(|c| cidr(c)).collect()
}

/// A comma-separated list of web origins, as the header values they are compared with.
pub fn origins(s: &str) -> Result<Vec<http::HeaderValue>, String> {
    list(s)
        .iter()
        .map(|o| {
            let o = origin(o)?;
            http::HeaderValue::from_str(&o).map_err(|_| format!("`{o}` is not a header value"))
        })
        .collect()
}

/// A whole number within `range`.
pub fn count<N>(range: std::ops::RangeInclusive<N>) -> impl Fn(&str) -> Result<N, String>
where
    N: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    move |s| match s.trim().parse::<N>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(format!(
            "`{s}` is not a count ({}..={})",
            range.start(),
            range.end()
        )),
    }
}

/// A duration within `range`.
pub fn duration_in(
    range: std::ops::RangeInclusive<Duration>,
) -> impl Fn(&str) -> Result<Duration, String> {
    move |s| {
        let d = duration(s)?;
        if range.contains(&d) {
            Ok(d)
        } else {
            Err(format!(
                "must be between {} and {}",
                human(*range.start()),
                human(*range.end())
            ))
        }
    }
}

/// `90s`, `15m`, `2h`, `250ms`: the largest unit that divides the duration.
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, n) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms >= n && ms.is_multiple_of(n) {
            return format!("{}{unit}", ms / n);
        }
    }
    format!("{ms}ms")
}

/// 32 bytes written as 64 hex digits.
pub fn hex_key(s: &str) -> Result<[u8; 32], String> {
    let bytes = s.as_bytes();
    if bytes.len() != 64 || !bytes.iter().all(u8::is_ascii_hexdigit) {
        return Err("must be 32 bytes written as 64 hex digits".into());
    }
    let mut key = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).map_err(|_| "not hex".to_owned())?;
        key[i] = u8::from_str_radix(text, 16).map_err(|_| "not hex".to_owned())?;
    }
    Ok(key)
}

/// A CIDR, or a bare address taken as a single host.
pub fn cidr(s: &str) -> Result<ipnet::IpNet, String> {
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("`{s}` is not a CIDR (e.g. 10.0.0.0/8) or an IP address"))
}

/// An exact web origin: `scheme://host[:port]`, nothing after.
pub fn origin(s: &str) -> Result<String, String> {
    if s == "*" {
        return Err("`*` is not allowed: credentials are sent, so origins must be listed".into());
    }
    if s.eq_ignore_ascii_case("null") {
        return Err(
            "the `null` origin is never allowed (sandboxed documents and file: pages send it)"
                .into(),
        );
    }
    // A trailing slash is a common slip; browsers never send one.
    let s = s.trim_end_matches('/');
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .ok_or_else(|| format!("`{s}` is not an origin: it must start with https:// or http://"))?;
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return Err(format!(
            "`{s}` is not an origin: scheme://host[:port] with no path"
        ));
    }
    Ok(s.to_owned())
}

/// `300/60s`: a count and a window.
pub fn rate(s: &str) -> Result<(u32, std::time::Duration), String> {
    let (count, window) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}` is not <count>/<window> (e.g. 10/15m)"))?;
    let count: u32 = count
        .trim()
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("`{count}` is not a positive count"))?;
    let window = duration(window)?;
    if window.is_zero() {
        return Err("the window must not be zero".into());
    }
    Ok((count, window))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("30000"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert!(duration("soon").is_err());
        assert_eq!(duration("7d"), Ok(Duration::from_secs(7 * 24 * 3600)));
        assert!(duration("5w").is_err());
        assert!(
            duration("18446744073709551615h").is_err(),
            "overflow is an error, not a panic"
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(size("1MiB"), Ok(1 << 20));
        assert_eq!(size("512KiB"), Ok(512 << 10));
        assert_eq!(size("100"), Ok(100));
        assert!(size("1GiB").is_err());
    }

    #[test]
    fn origins() {
        assert_eq!(
            origin("https://app.example.com"),
            Ok("https://app.example.com".into())
        );
        assert_eq!(
            origin("http://localhost:5173"),
            Ok("http://localhost:5173".into())
        );
        assert!(origin("*").is_err());
        assert!(origin("null").is_err());
        assert!(origin("https://a.example/path").is_err());
        assert_eq!(
            origin("https://a.example/").as_deref(),
            Ok("https://a.example")
        );
        assert!(origin("app.example.com").is_err());
    }

    #[test]
    fn cidrs() {
        assert!(cidr("10.0.0.0/8").is_ok());
        assert_eq!(cidr("192.0.2.7").map(|n| n.prefix_len()), Ok(32));
        assert!(cidr("10.0.0.0/33").is_err());
    }

    #[test]
    fn keys_are_64_hex_digits() {
        let key = hex_key(&"0f".repeat(32)).expect("valid");
        assert_eq!(key, [0x0f; 32]);
        assert!(hex_key("abc").is_err());
        assert!(hex_key(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn bounded_values() {
        assert_eq!(count(1..=10u32)("3"), Ok(3));
        assert!(count(1..=10u32)("0").is_err());
        assert!(count(1..=10u32)("x").is_err());
        let d = duration_in(Duration::from_secs(1)..=Duration::from_secs(60));
        assert_eq!(d("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(d("2m").unwrap_err(), "must be between 1s and 1m");
        assert_eq!(human(Duration::from_millis(1500)), "1500ms");
        assert_eq!(human(Duration::from_secs(900)), "15m");
    }

    #[test]
    fn rates_are_a_count_over_a_window() {
        assert_eq!(rate("10/15m"), Ok((10, Duration::from_secs(900))));
        assert_eq!(rate("300/60s"), Ok((300, Duration::from_secs(60))));
        assert!(rate("0/1m").is_err());
        assert!(rate("10").is_err());
        assert!(rate("10/0s").is_err());
    }
}
