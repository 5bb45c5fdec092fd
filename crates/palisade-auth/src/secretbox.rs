//! Secrets at rest (TOTP secrets): AES-256-GCM under `ENCRYPTION_KEY`. A sealed value is
//! `nonce (12 bytes) ‖ ciphertext ‖ tag`; the nonce is random per value. The row's
//! purpose is bound in as associated data, so a sealed value copied into another
//! column or row does not open there.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

const NONCE_BYTES: usize = 12;

#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BoxError {
    #[error("the encryption key must be 32 bytes (64 hex digits)")]
    BadKey,
    #[error("the sealed value was changed, or sealed under another key or purpose")]
    Open,
}

impl SecretBox {
    pub fn new(key: &[u8]) -> Result<SecretBox, BoxError> {
        if key.len() != 32 {
            return Err(BoxError::BadKey);
        }
        let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| BoxError::BadKey)?;
        Ok(SecretBox { cipher })
    }

    /// From 64 hex digits, as `ENCRYPTION_KEY` holds it.
    pub fn from_hex(hex: &str) -> Result<SecretBox, BoxError> {
        let bytes = decode_hex(hex.trim()).ok_or(BoxError::BadKey)?;
        SecretBox::new(&bytes)
    }

    pub fn seal(&self, plaintext: &[u8], purpose: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::fill(&mut nonce[..]);
        let payload = Payload {
            msg: plaintext,
            aad: purpose,
        };
        // Encryption fails only for messages beyond GCM's 64 GiB limit.
        let sealed = self
            .cipher
            .encrypt(&Nonce::from(nonce), payload)
            .unwrap_or_default();
        let mut out = Vec::with_capacity(NONCE_BYTES + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    pub fn open(&self, sealed: &[u8], purpose: &[u8]) -> Result<Vec<u8>, BoxError> {
        if sealed.len() < NONCE_BYTES + 16 {
            return Err(BoxError::Open);
        }
        let (nonce, body) = sealed.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| BoxError::Open)?;
        self.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: body,
                    aad: purpose,
                },
            )
            .map_err(|_| BoxError::Open)
    }
}

/// A fresh random key as 64 hex digits (development key files).
pub fn generate_hex_key() -> String {
    let mut key = [0u8; 32];
    rand::fill(&mut key[..]);
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes from hexadecimal digits (either case); `None` for anything else.
pub(crate) fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sb() -> SecretBox {
        SecretBox::from_hex(&generate_hex_key()).expect("key")
    }

    #[test]
    fn sealed_values_open_with_the_same_key_and_purpose_only() {
        let b = sb();
        let sealed = b.seal(b"totp secret", b"totp:user-1");
        assert!(!sealed.windows(11).any(|w| w == b"totp secret"));
        assert_eq!(
            b.open(&sealed, b"totp:user-1").expect("open"),
            b"totp secret"
        );
        assert_eq!(b.open(&sealed, b"totp:user-2"), Err(BoxError::Open));
        assert_eq!(sb().open(&sealed, b"totp:user-1"), Err(BoxError::Open));
    }

    #[test]
    fn a_flipped_bit_is_detected() {
        let b = sb();
        let mut sealed = b.seal(b"x", b"p");
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(b.open(&sealed, b"p"), Err(BoxError::Open));
        assert_eq!(b.open(&sealed[..5], b"p"), Err(BoxError::Open));
    }

    #[test]
    fn the_same_value_seals_differently_each_time() {
        let b = sb();
        assert_ne!(b.seal(b"x", b"p"), b.seal(b"x", b"p"));
    }

    #[test]
    fn keys_must_be_32_bytes_of_hex() {
        assert!(SecretBox::from_hex("00").is_err());
        assert!(SecretBox::from_hex(&"zz".repeat(32)).is_err());
        assert!(SecretBox::from_hex(&"ab".repeat(32)).is_ok());
    }
}
