//! The `Stripe-Signature` header of an inbound webhook (docs/SECURITY.md § Webhooks):
//! `t=<unix seconds>,v1=<hex HMAC-SHA256>[,v1=…]`, the MAC over `"{t}.{raw body}"` keyed
//! with the whole endpoint secret (`whsec_…`, as bytes). Any `v1` may match (Stripe
//! sends several while a secret is being rolled), compared in constant time; a `t`
//! further than the tolerance from now is refused, so a captured request cannot be
//! replayed later. The raw bytes are verified before anything parses them.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::secretbox::decode_hex;

/// How old (or how far ahead) a signature's timestamp may be.
pub const TOLERANCE_SECS: u64 = 300;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no t= and v1= in the Stripe-Signature header")]
    Malformed,
    #[error("the signature's timestamp is outside the tolerance")]
    Stale,
    #[error("no v1 signature matches")]
    Mismatch,
}

/// Checks `header` for `body` with `secret` at `now` (unix seconds).
pub fn verify(header: &str, body: &[u8], secret: &str, now: u64) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<u64>().ok(),
            Some(("v1", hex)) => {
                if let Some(bytes) = decode_hex(hex) {
                    signatures.push(bytes);
                }
            }
            _ => {}
        }
    }
    let (Some(t), false) = (timestamp, signatures.is_empty()) else {
        return Err(SignatureError::Malformed);
    };
    if now.abs_diff(t) > TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    let Some(mac) = keyed(secret, t, body) else {
        return Err(SignatureError::Mismatch);
    };
    // Each candidate is checked in constant time; trying them all does not tell which
    // one came close.
    let mut matched = false;
    for sig in &signatures {
        matched |= mac.clone().verify_slice(sig).is_ok();
    }
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The header Stripe would send for `body` at `t` (tests, and tools that replay events).
pub fn sign(body: &[u8], secret: &str, t: u64) -> String {
    let hex: String = keyed(secret, t, body)
        .map(|mac| {
            mac.finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        })
        .unwrap_or_default();
    format!("t={t},v1={hex}")
}

/// The MAC of `"{t}.{body}"` (HMAC takes a key of any length: never `None` in practice).
fn keyed(secret: &str, t: u64, body: &[u8]) -> Option<Hmac<Sha256>> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"invoice.payment_succeeded"}"#;

    #[test]
    fn a_signature_of_the_body_within_the_tolerance_passes() {
        let header = sign(BODY, SECRET, 1_000_000);
        assert_eq!(
            verify(&header, BODY, SECRET, 1_000_000 + TOLERANCE_SECS),
            Ok(())
        );
        assert_eq!(verify(&header, BODY, SECRET, 1_000_000 - 10), Ok(()));
    }

    #[test]
    fn any_v1_may_match_and_others_are_ignored() {
        let good = sign(BODY, SECRET, 1_000_000);
        let v1 = good.split_once(",v1=").unwrap().1;
        let header = format!("t=1000000,v0=abc,v1={},v1={v1},x=y", "00".repeat(32));
        assert_eq!(verify(&header, BODY, SECRET, 1_000_000), Ok(()));
    }

    #[test]
    fn what_was_not_signed_so_fails() {
        let header = sign(BODY, SECRET, 1_000_000);
        assert_eq!(
            verify(&header, b"{}", SECRET, 1_000_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&header, BODY, "whsec_other", 1_000_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&header, BODY, SECRET, 1_000_000 + TOLERANCE_SECS + 1),
            Err(SignatureError::Stale),
            "a replay 5 minutes later"
        );
        let moved = header.replacen("t=1000000", "t=1000001", 1);
        assert_eq!(
            verify(&moved, BODY, SECRET, 1_000_000),
            Err(SignatureError::Mismatch)
        );
        for bad in ["", "t=1000000", "v1=00", "t=x,v1=00", "t=1000000,v1=zz"] {
            assert_eq!(
                verify(bad, BODY, SECRET, 1_000_000),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }
}
