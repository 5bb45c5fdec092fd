//! Palisade's identity primitives, free of I/O: what a password hash, a token or a code
//! is and how it is checked. The services decide when; the store keeps the results.
//!
//! The identity domain's types: [`ids`] (user and session ids), [`email`] (addresses in
//! their canonical form), [`display_name`], [`amr`] (how a session authenticated) and
//! [`permissions`] (roles and what they grant).
//!
//! Primitives: [`access`] (JWT access tokens and the JWKS), [`secretbox`] (AES-256-GCM
//! for secrets at rest), [`backup`] (2FA backup codes), [`password`] (argon2id hashing,
//! the dummy verification for unknown accounts, the policy for new passwords), [`csrf`]
//! (the signed double-submit token), [`refresh`] (refresh tokens: derivation, hashing,
//! the rotation decision) and [`totp`] (codes, the otpauth URI, the replay rule).

pub mod access;
pub mod amr;
pub mod backup;
pub mod csrf;
pub mod display_name;
pub mod email;
pub mod ids;
pub mod password;
pub mod permissions;
pub mod refresh;
pub mod secretbox;
pub mod standard_webhooks;
pub mod stripe_signature;
pub mod totp;
