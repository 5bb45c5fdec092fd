//! Signatures of outbound webhooks, as Standard Webhooks specifies them
//! (https://www.standardwebhooks.com, docs/SECURITY.md § Webhooks): headers
//! `webhook-id`, `webhook-timestamp` (unix seconds) and `webhook-signature`, a
//! space-separated list of `v1,<base64 HMAC-SHA256>` over `"{id}.{timestamp}.{body}"`,
//! keyed with the secret's bytes (`whsec_` followed by their base64). While a secret
//! is being rotated the body is signed with both, and a receiver accepts either.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The prefix of a secret's text.
pub const PREFIX: &str = "whsec_";
/// How old (or how far ahead) a timestamp a receiver accepts.
pub const TOLERANCE_SECS: u64 = 300;

/// An endpoint's signing secret.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum WebhookSignatureError {
    #[error("not a whsec_ secret")]
    BadSecret,
    #[error("the timestamp is outside the tolerance")]
    Stale,
    #[error("no v1 signature matches")]
    Mismatch,
}

impl WebhookSecret {
    /// A new secret of 32 random bytes.
    pub fn generate() -> WebhookSecret {
        let mut key = vec![0u8; 32];
        rand::fill(&mut key[..]);
        WebhookSecret(key)
    }

    /// `whsec_<base64>`.
    pub fn parse(text: &str) -> Result<WebhookSecret, WebhookSignatureError> {
        let encoded = text
            .strip_prefix(PREFIX)
            .ok_or(WebhookSignatureError::BadSecret)?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| WebhookSignatureError::BadSecret)?;
        if key.is_empty() {
            return Err(WebhookSignatureError::BadSecret);
        }
        Ok(WebhookSecret(key))
    }

    /// The secret's text, shown to its owner once.
    pub fn expose(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.0))
    }

    fn mac(&self, id: &str, timestamp: u64, body: &[u8]) -> Option<Hmac<Sha256>> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).ok()?;
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        Some(mac)
    }
}

/// The `webhook-signature` header of message `id` sent at `timestamp` with `body`,
/// signed with each of `secrets`.
pub fn sign(id: &str, timestamp: u64, body: &[u8], secrets: &[&WebhookSecret]) -> String {
    secrets
        .iter()
        .filter_map(|s| s.mac(id, timestamp, body))
        .map(|mac| format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A receiver's check of a delivery: any `v1` signature in `header` made with `secret`,
/// compared in constant time, and a timestamp within the tolerance of `now`.
pub fn verify(
    id: &str,
    timestamp: u64,
    header: &str,
    body: &[u8],
    secret: &WebhookSecret,
    now: u64,
) -> Result<(), WebhookSignatureError> {
    if now.abs_diff(timestamp) > TOLERANCE_SECS {
        return Err(WebhookSignatureError::Stale);
    }
    let mut matched = false;
    for part in header.split(' ') {
        let Some(("v1", encoded)) = part.split_once(',') else {
            continue;
        };
        let (Ok(sig), Some(mac)) = (STANDARD.decode(encoded), secret.mac(id, timestamp, body))
        else {
            continue;
        };
        matched |= mac.verify_slice(&sig).is_ok();
    }
    if matched {
        Ok(())
    } else {
        Err(WebhookSignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification.
    #[test]
    fn the_specifications_example_signs_alike() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let header = sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, &[&secret]);
        assert_eq!(header, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert_eq!(
            verify(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                &header,
                body,
                &secret,
                1614265400
            ),
            Ok(())
        );
    }

    #[test]
    fn a_rotation_signs_with_both_and_either_verifies() {
        let (old, new) = (WebhookSecret::generate(), WebhookSecret::generate());
        let header = sign("msg_1", 1000, b"{}", &[&new, &old]);
        assert_eq!(header.split(' ').count(), 2);
        for s in [&old, &new] {
            assert_eq!(verify("msg_1", 1000, &header, b"{}", s, 1000), Ok(()));
        }
        let other = WebhookSecret::generate();
        assert_eq!(
            verify("msg_1", 1000, &header, b"{}", &other, 1000),
            Err(WebhookSignatureError::Mismatch)
        );
        assert_eq!(
            verify("msg_1", 1000, &header, b"{ }", &new, 1000),
            Err(WebhookSignatureError::Mismatch)
        );
        assert_eq!(
            verify("msg_2", 1000, &header, b"{}", &new, 1000),
            Err(WebhookSignatureError::Mismatch)
        );
        assert_eq!(
            verify("msg_1", 1000, &header, b"{}", &new, 1301),
            Err(WebhookSignatureError::Stale)
        );
    }

    #[test]
    fn secrets_round_trip_and_bad_ones_are_refused() {
        let s = WebhookSecret::generate();
        assert!(s.expose().starts_with("whsec_"));
        assert_eq!(WebhookSecret::parse(&s.expose()).unwrap(), s);
        for bad in [
            "",
            "whsec_",
            "whsec_!!",
            "sk_abc",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ] {
            assert_eq!(
                WebhookSecret::parse(bad),
                Err(WebhookSignatureError::BadSecret),
                "{bad}"
            );
        }
        assert_eq!(format!("{s:?}"), "WebhookSecret(…)");
    }
}
