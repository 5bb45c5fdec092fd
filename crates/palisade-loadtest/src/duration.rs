//! Durations as k6 writes them: `500ms`, `30s`, `5m`, `1h30m`, `1m30.5s`; a bare number
//! is seconds (k6 reads a bare number of a duration option as milliseconds only from
//! JavaScript, where it is a number, not a string).

use std::time::Duration;

/// Parses a k6 duration string.
pub fn parse(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("an empty duration".into());
    }
    if let Ok(secs) = s.parse::<f64>() {
        return seconds(secs, text);
    }
    let mut total = 0.0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("`{text}`: a number without a unit (ms, s, m, h)"))?;
        if digits == 0 {
            return Err(format!("`{text}`: expected a number before `{rest}`"));
        }
        let value: f64 = rest[..digits]
            .parse()
            .map_err(|_| format!("`{text}`: `{}` is not a number", &rest[..digits]))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "us" | "µs" => 0.000_001,
            other => return Err(format!("`{text}`: unknown unit `{other}` (ms, s, m, h)")),
        };
        total += value * factor;
        rest = &rest[unit_len..];
    }
    seconds(total, text)
}

fn seconds(secs: f64, text: &str) -> Result<Duration, String> {
    // At most ten years: beyond that it is a typo, and Duration would overflow sooner.
    if !secs.is_finite() || !(0.0..=10.0 * 365.0 * 86400.0).contains(&secs) {
        return Err(format!("`{text}`: out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Formats as k6 prints durations: `1m30s`, `2.5s`, `850ms`.
pub fn show(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        return format!("{}ms", trim(ms));
    }
    let total = d.as_secs_f64();
    let h = (total / 3600.0).floor();
    let m = ((total - h * 3600.0) / 60.0).floor();
    let s = total - h * 3600.0 - m * 60.0;
    let mut out = String::new();
    if h > 0.0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0.0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0.0005 || out.is_empty() {
        out.push_str(&format!("{}s", trim(s)));
    }
    out
}

fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Serde adapter: a duration field written as a k6 duration string.
pub mod serde_k6 {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse(&text).map_err(serde::de::Error::custom)
    }

    pub mod option {
        use super::*;
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            let text = Option::<String>::deserialize(d)?;
            text.map(|t| crate::duration::parse(&t).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_k6_durations() {
        let cases = [
            ("500ms", 0.5),
            ("30s", 30.0),
            ("5m", 300.0),
            ("1h30m", 5400.0),
            ("1m30.5s", 90.5),
            ("2", 2.0),
            ("0s", 0.0),
        ];
        for (text, secs) in cases {
            assert_eq!(
                parse(text).unwrap(),
                Duration::from_secs_f64(secs),
                "{text}"
            );
        }
        for bad in ["", "s", "5x", "1m5", "-1s", "ms5"] {
            assert!(parse(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn shows_durations_as_k6() {
        assert_eq!(show(Duration::from_millis(850)), "850ms");
        assert_eq!(show(Duration::from_secs(90)), "1m30s");
        assert_eq!(show(Duration::from_millis(2500)), "2.5s");
        assert_eq!(show(Duration::from_secs(3600)), "1h");
    }
}
