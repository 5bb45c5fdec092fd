//! Refresh tokens: opaque, 256-bit, stored only as their SHA-256, rotated on every use
//! (RFC 9700 §4.14.2; docs/SECURITY.md § Tokens and sessions).
//!
//! A token's successor is derived, not drawn: HMAC-SHA256(key, token ‖ session ‖
//! generation). Two refreshes with the same token that race (several tabs) therefore
//! both hand out the same successor without the successor ever being stored in clear;
//! the store keeps hashes only. [`decide`] says what a presented token is worth.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// A token to hand to the client, and what to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issued {
    pub token: String,
    pub hash: [u8; 32],
}

#[derive(Clone)]
pub struct RefreshTokens {
    keyed: Hmac<Sha256>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("the refresh-token key must be at least 32 bytes")]
pub struct ShortKey;

impl RefreshTokens {
    pub fn new(key: &[u8]) -> Result<RefreshTokens, ShortKey> {
        if key.len() < 32 {
            return Err(ShortKey);
        }
        let keyed = <Hmac<Sha256> as KeyInit>::new_from_slice(key).map_err(|_| ShortKey)?;
        Ok(RefreshTokens { keyed })
    }

    /// The first token of a new session: 256 random bits.
    pub fn first(&self) -> Issued {
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes[..]);
        issued(bytes)
    }

    /// The successor of `token`, the `generation`-th of `session_id`: the same inputs
    /// always give the same successor.
    pub fn successor(&self, token: &str, session_id: &str, generation: u64) -> Issued {
        let mut mac = self.keyed.clone();
        for part in [token.as_bytes(), session_id.as_bytes()] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.update(&generation.to_be_bytes());
        issued(mac.finalize().into_bytes().into())
    }
}

fn issued(bytes: [u8; 32]) -> Issued {
    let token = URL_SAFE_NO_PAD.encode(bytes);
    Issued {
        hash: hash(&token),
        token,
    }
}

/// What the store keeps of a token: its SHA-256.
pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A presented token's stored row and its session, as the store reads them.
#[derive(Clone, Copy, Debug)]
pub struct Stored {
    /// The token's idle expiry.
    pub expires_at: OffsetDateTime,
    /// When its successor was handed out, if it was.
    pub rotated_at: Option<OffsetDateTime>,
    /// The session's absolute expiry.
    pub session_expires_at: OffsetDateTime,
    pub session_revoked: bool,
}

/// What to do with a presented refresh token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Hand out its successor and mark it rotated.
    Rotate,
    /// It was rotated moments ago (a racing tab): hand out the same successor again.
    SameSuccessor,
    /// It was rotated long ago and comes back: someone holds a copy. Revoke the whole
    /// session and record a security event.
    Reused,
    /// Unknown, expired, or of an ended session: 401, nothing else.
    Refused,
}

/// Decides for `stored` (`None`: no such token) at `now`, with the grace window `grace`.
pub fn decide(stored: Option<&Stored>, now: OffsetDateTime, grace: Duration) -> Decision {
    let Some(s) = stored else {
        return Decision::Refused;
    };
    if s.session_revoked || now >= s.session_expires_at {
        return Decision::Refused;
    }
    match s.rotated_at {
        None if now >= s.expires_at => Decision::Refused,
        None => Decision::Rotate,
        Some(at) if now - at <= grace => Decision::SameSuccessor,
        Some(_) => Decision::Reused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> RefreshTokens {
        RefreshTokens::new(&[3u8; 32]).expect("key")
    }

    #[test]
    fn tokens_are_256_bit_and_stored_as_their_hash() {
        let t = tokens().first();
        assert_eq!(URL_SAFE_NO_PAD.decode(&t.token).expect("b64").len(), 32);
        assert_eq!(t.hash, hash(&t.token));
        assert_ne!(t, tokens().first());
    }

    #[test]
    fn racing_refreshes_derive_the_same_successor_and_nothing_else_does() {
        let r = tokens();
        let first = r.first();
        let a = r.successor(&first.token, "s1", 1);
        assert_eq!(a, r.successor(&first.token, "s1", 1));
        assert_ne!(a, r.successor(&first.token, "s2", 1));
        assert_ne!(a, r.successor(&first.token, "s1", 2));
        assert_ne!(
            a,
            RefreshTokens::new(&[4u8; 32])
                .expect("key")
                .successor(&first.token, "s1", 1)
        );
        assert_eq!(RefreshTokens::new(&[0u8; 31]).err(), Some(ShortKey));
    }

    #[test]
    fn decisions_follow_the_grace_window_and_expiries() {
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        let grace = Duration::from_secs(10);
        let live = Stored {
            expires_at: now + time::Duration::days(7),
            rotated_at: None,
            session_expires_at: now + time::Duration::days(30),
            session_revoked: false,
        };
        assert_eq!(decide(Some(&live), now, grace), Decision::Rotate);
        assert_eq!(decide(None, now, grace), Decision::Refused);
        let just_rotated = Stored {
            rotated_at: Some(now - time::Duration::seconds(3)),
            ..live
        };
        assert_eq!(
            decide(Some(&just_rotated), now, grace),
            Decision::SameSuccessor
        );
        let long_rotated = Stored {
            rotated_at: Some(now - time::Duration::seconds(11)),
            ..live
        };
        assert_eq!(decide(Some(&long_rotated), now, grace), Decision::Reused);
        let idle = Stored {
            expires_at: now,
            ..live
        };
        assert_eq!(decide(Some(&idle), now, grace), Decision::Refused);
        let old_session = Stored {
            session_expires_at: now - time::Duration::seconds(1),
            ..live
        };
        assert_eq!(decide(Some(&old_session), now, grace), Decision::Refused);
        let revoked = Stored {
            session_revoked: true,
            ..just_rotated
        };
        assert_eq!(decide(Some(&revoked), now, grace), Decision::Refused);
    }
}
