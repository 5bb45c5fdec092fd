//! The signed double-submit CSRF token of cookie mode (OWASP CSRF Cheat Sheet,
//! docs/SECURITY.md § Tokens and sessions).
//!
//! A token is `base64url(64 random bytes) "." base64url(HMAC-SHA256(key, session id ‖
//! random))`. It travels twice, in the `__Host-palisade_csrf` cookie and in the
//! `X-CSRF-Token` header: an unsafe request passes only when both are present, equal,
//! and signed for the session the request belongs to. Signing ties the token to the
//! session, so a token planted by a sibling subdomain (cookie tossing) does not pass.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Random bytes per token.
const RANDOM_LEN: usize = 64;

/// Signs and checks tokens with one key (at least 32 bytes).
#[derive(Clone)]
pub struct Csrf {
    /// HMAC keyed once; each token works on a copy.
    keyed: Hmac<Sha256>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CsrfError {
    #[error("the CSRF key must be at least 32 bytes")]
    ShortKey,
    #[error("the CSRF token is missing")]
    Missing,
    #[error("the CSRF header does not match the cookie")]
    Mismatch,
    #[error("the CSRF token is not signed for this session")]
    BadSignature,
}

impl Csrf {
    pub fn new(key: &[u8]) -> Result<Csrf, CsrfError> {
        if key.len() < 32 {
            return Err(CsrfError::ShortKey);
        }
        let keyed =
            <Hmac<Sha256> as KeyInit>::new_from_slice(key).map_err(|_| CsrfError::ShortKey)?;
        Ok(Csrf { keyed })
    }

    /// A fresh token for `session_id`.
    pub fn issue(&self, session_id: &str) -> String {
        let mut random = [0u8; RANDOM_LEN];
        rand::fill(&mut random[..]);
        let tag = self.mac(session_id, &random).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(random),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// Checks an unsafe request's header token against its cookie token and session.
    pub fn check(
        &self,
        session_id: &str,
        cookie: Option<&str>,
        header: Option<&str>,
    ) -> Result<(), CsrfError> {
        let (Some(cookie), Some(header)) = (cookie, header) else {
            return Err(CsrfError::Missing);
        };
        if !bool::from(cookie.as_bytes().ct_eq(header.as_bytes())) {
            return Err(CsrfError::Mismatch);
        }
        let (random, tag) = header.split_once('.').ok_or(CsrfError::BadSignature)?;
        let random = URL_SAFE_NO_PAD
            .decode(random)
            .map_err(|_| CsrfError::BadSignature)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| CsrfError::BadSignature)?;
        if random.len() != RANDOM_LEN {
            return Err(CsrfError::BadSignature);
        }
        // `verify_slice` compares in constant time.
        self.mac(session_id, &random)
            .verify_slice(&tag)
            .map_err(|_| CsrfError::BadSignature)
    }

    fn mac(&self, session_id: &str, random: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.keyed.clone();
        // The length first, so that (id, random) pairs cannot be shifted into each other.
        mac.update(&(session_id.len() as u64).to_be_bytes());
        mac.update(session_id.as_bytes());
        mac.update(random);
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csrf() -> Csrf {
        Csrf::new(&[7u8; 32]).expect("key")
    }

    #[test]
    fn a_token_passes_for_its_session_only() {
        let c = csrf();
        let t = c.issue("session-a");
        assert_eq!(c.check("session-a", Some(&t), Some(&t)), Ok(()));
        assert_eq!(
            c.check("session-b", Some(&t), Some(&t)),
            Err(CsrfError::BadSignature)
        );
        assert_ne!(t, c.issue("session-a"), "fresh randomness each time");
    }

    #[test]
    fn missing_mismatched_forged_and_foreign_tokens_fail() {
        let c = csrf();
        let t = c.issue("s");
        assert_eq!(c.check("s", None, Some(&t)), Err(CsrfError::Missing));
        assert_eq!(c.check("s", Some(&t), None), Err(CsrfError::Missing));
        let other = c.issue("s");
        assert_eq!(
            c.check("s", Some(&t), Some(&other)),
            Err(CsrfError::Mismatch)
        );
        // A token the attacker made up, planted in both places.
        let forged = format!("{}.{}", "A".repeat(86), "B".repeat(43));
        assert_eq!(
            c.check("s", Some(&forged), Some(&forged)),
            Err(CsrfError::BadSignature)
        );
        for junk in ["", ".", "no-dot", "!!!.???"] {
            assert_eq!(
                c.check("s", Some(junk), Some(junk)),
                Err(CsrfError::BadSignature),
                "{junk}"
            );
        }
        // Signed with another key.
        let stranger = Csrf::new(&[8u8; 32]).expect("key").issue("s");
        assert_eq!(
            c.check("s", Some(&stranger), Some(&stranger)),
            Err(CsrfError::BadSignature)
        );
    }

    #[test]
    fn short_keys_are_refused() {
        assert_eq!(Csrf::new(&[1u8; 31]).err(), Some(CsrfError::ShortKey));
    }
}
