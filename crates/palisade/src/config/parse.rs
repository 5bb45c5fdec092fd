//! Parsers for configuration values; each returns a message fit to show the operator.

use std::time::Duration;

/// Splits `30s` into `(30, "s")`; `what` names the expected kind in the message.
fn number_and_unit<N: std::str::FromStr>(s: &str, what: &str) -> Result<(N, String), String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n = num.parse().map_err(|_| format!("`{s}` is not {what}"))?;
    Ok((n, unit.trim().to_ascii_lowercase()))
}

/// `30s`, `500ms`, `2m`, `1h`; a plain number is milliseconds (as the reference
/// backends' `DB_IDLE_TIMEOUT=30000`).
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
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .ok_or_else(|| format!("`{s}` is not an origin: it must start with https:// or http://"))?;
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return Err(format!(
            "`{s}` is not an origin: scheme://host[:port] with no path"
        ));
    }
    Ok(s.trim_end_matches('/').to_owned())
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
        assert!(origin("app.example.com").is_err());
    }

    #[test]
    fn cidrs() {
        assert!(cidr("10.0.0.0/8").is_ok());
        assert_eq!(cidr("192.0.2.7").map(|n| n.prefix_len()), Ok(32));
        assert!(cidr("10.0.0.0/33").is_err());
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
