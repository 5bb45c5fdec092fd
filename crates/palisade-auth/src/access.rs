//! Access tokens: JWTs per docs/SECURITY.md § Tokens and sessions (RFC 9068, RFC 8725).
//!
//! One key, one algorithm: EdDSA (Ed25519) by default, HS256 with a secret of at least
//! 32 bytes as the option. Verification allows exactly the configured algorithm (so
//! `none`, or HS256 signed with the public key, is refused before anything else), checks
//! the signature before the claims are read, then `exp`, `nbf`, `iss`, `aud` and
//! `typ: at+jwt`, and that `iat` is not in the future. `jku`, `x5u` and `jwk` headers
//! are ignored; `kid` must name our key. Clocks may differ by [`LEEWAY_SECONDS`].

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `typ` header of an access token (RFC 9068 §2.1).
pub const TYP: &str = "at+jwt";
/// Clock skew tolerated on `exp`, `nbf` and `iat` between the instances that issue
/// and verify tokens (RFC 8725 § 3.10 leaves it to the verifier; 30 s at most).
pub const LEEWAY_SECONDS: u64 = 30;
const _: () = assert!(LEEWAY_SECONDS <= 30, "the baseline allows at most 30 s");

/// The signing key.
#[derive(Clone)]
pub enum SigningKey {
    /// Ed25519, from its 32-byte seed.
    Ed25519(Box<ed25519_dalek::SigningKey>),
    /// A shared HS256 secret.
    Hs256(Vec<u8>),
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the HS256 secret must be at least 32 bytes")]
    ShortSecret,
    #[error("not an Ed25519 private key in PKCS#8 PEM: {0}")]
    BadPem(String),
}

impl SigningKey {
    /// A new random Ed25519 key.
    pub fn generate_ed25519() -> SigningKey {
        let mut seed = [0u8; 32];
        rand::fill(&mut seed[..]);
        SigningKey::Ed25519(Box::new(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    pub fn ed25519_from_pem(pem: &str) -> Result<SigningKey, KeyError> {
        ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
            .map(|k| SigningKey::Ed25519(Box::new(k)))
            .map_err(|e| KeyError::BadPem(e.to_string()))
    }

    /// The key as PKCS#8 v1 PEM (RFC 8410 § 7: the private key alone), to store it
    /// (Ed25519 only). v1 is what OpenSSL and Python's `cryptography` read; the v2 form
    /// with the public key beside it is refused by some of them.
    pub fn to_pem(&self) -> Option<String> {
        match self {
            SigningKey::Ed25519(k) => {
                let v1 = ed25519_dalek::pkcs8::KeypairBytes {
                    secret_key: k.to_bytes(),
                    public_key: None,
                };
                v1.to_pkcs8_pem(Default::default())
                    .ok()
                    .map(|pem| pem.to_string())
            }
            SigningKey::Hs256(_) => None,
        }
    }

    pub fn hs256(secret: &[u8]) -> Result<SigningKey, KeyError> {
        if secret.len() < 32 {
            return Err(KeyError::ShortSecret);
        }
        Ok(SigningKey::Hs256(secret.to_vec()))
    }

    /// A 256-bit key for another purpose (refresh-token derivation, CSRF), derived from
    /// this key's secret as HMAC-SHA256(secret, label): an operator manages one secret,
    /// and no derived key reveals it or another derived key.
    pub fn derive(&self, label: &str) -> [u8; 32] {
        use hmac::{Hmac, KeyInit, Mac};
        let secret = match self {
            SigningKey::Ed25519(k) => k.to_bytes().to_vec(),
            SigningKey::Hs256(s) => s.clone(),
        };
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&secret).unwrap_or_else(|_| {
            <Hmac<Sha256> as KeyInit>::new_from_slice(&[0u8; 32]).expect("32-byte key")
        });
        mac.update(label.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// The claims of an access token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The user id.
    pub sub: String,
    pub exp: u64,
    pub nbf: u64,
    pub iat: u64,
    pub jti: String,
    /// The session id.
    pub sid: String,
    pub roles: Vec<String>,
    pub perms: Vec<String>,
    /// How the user authenticated: `pwd`, and `otp` after a second factor.
    pub amr: Vec<String>,
    /// When the user last authenticated (unix seconds).
    pub auth_time: u64,
}

/// What an access token is issued for.
pub struct Subject<'a> {
    pub user_id: &'a str,
    pub session_id: &'a str,
    pub roles: Vec<String>,
    pub perms: Vec<String>,
    pub amr: Vec<String>,
    pub auth_time: u64,
}

/// Why a token was refused. The HTTP layer answers 401 for all of them alike.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("algorithm or key not accepted")]
    WrongKey,
    #[error("bad signature")]
    Signature,
    #[error("expired")]
    Expired,
    #[error("not yet valid, or issued in the future")]
    NotYetValid,
    #[error("wrong issuer, audience or type")]
    WrongClaims,
}

/// Issues and verifies access tokens with one key.
#[derive(Clone)]
pub struct AccessTokens {
    algorithm: Algorithm,
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    lifetime: Duration,
    /// The public key as a JWK (EdDSA only).
    jwk: Option<serde_json::Value>,
}

impl AccessTokens {
    pub fn new(key: &SigningKey, issuer: &str, audience: &str, lifetime: Duration) -> Self {
        let (algorithm, encoding, decoding, jwk_x, kid_source) = match key {
            SigningKey::Ed25519(k) => {
                let der = k.to_pkcs8_der().map(|d| d.as_bytes().to_vec());
                let public = k.verifying_key().to_bytes();
                let x = URL_SAFE_NO_PAD.encode(public);
                (
                    Algorithm::EdDSA,
                    EncodingKey::from_ed_der(&der.unwrap_or_default()),
                    DecodingKey::from_ed_der(&public),
                    Some(x),
                    public.to_vec(),
                )
            }
            SigningKey::Hs256(secret) => (
                Algorithm::HS256,
                EncodingKey::from_secret(secret),
                DecodingKey::from_secret(secret),
                None,
                // The kid of a shared secret must not reveal it: a hash of a hash.
                Sha256::digest(Sha256::digest(secret)).to_vec(),
            ),
        };
        let kid = URL_SAFE_NO_PAD.encode(&Sha256::digest(&kid_source)[..12]);
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_audience(&[audience]);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        let jwk = jwk_x.map(|x| {
            serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "x": x,
                "kid": kid, "alg": "EdDSA", "use": "sig",
            })
        });
        AccessTokens {
            algorithm,
            kid,
            encoding,
            decoding,
            validation,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            lifetime,
            jwk,
        }
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// `{"keys": [...]}` for `/.well-known/jwks.json`; empty with HS256, whose key is secret.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": self.jwk.iter().collect::<Vec<_>>() })
    }

    /// Signs a token for `subject`, valid from `now` (unix seconds) for the lifetime.
    pub fn issue(&self, subject: Subject<'_>, now: u64) -> String {
        let mut header = Header::new(self.algorithm);
        header.typ = Some(TYP.to_owned());
        header.kid = Some(self.kid.clone());
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: subject.user_id.to_owned(),
            exp: now + self.lifetime.as_secs(),
            nbf: now,
            iat: now,
            jti: uuid_like(),
            sid: subject.session_id.to_owned(),
            roles: subject.roles,
            perms: subject.perms,
            amr: subject.amr,
            auth_time: subject.auth_time,
        };
        // Signing with a key this type built itself cannot fail; an empty token (refused
        // by every verifier) is the safe answer if the library ever says otherwise.
        jsonwebtoken::encode(&header, &claims, &self.encoding).unwrap_or_default()
    }

    /// Verifies `token` at the current time and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = self.verify_signed(token)?;
        if claims.iat > now + LEEWAY_SECONDS {
            return Err(TokenError::NotYetValid);
        }
        Ok(claims)
    }

    /// The signature, `exp`, `nbf`, `iss`, `aud` and `typ` checks.
    fn verify_signed(&self, token: &str) -> Result<Claims, TokenError> {
        use jsonwebtoken::errors::ErrorKind as K;
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != self.algorithm || header.kid.as_deref().is_some_and(|k| k != self.kid) {
            return Err(TokenError::WrongKey);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                K::InvalidSignature => TokenError::Signature,
                K::ExpiredSignature => TokenError::Expired,
                K::ImmatureSignature => TokenError::NotYetValid,
                K::InvalidAudience | K::InvalidIssuer | K::MissingRequiredClaim(_) => {
                    TokenError::WrongClaims
                }
                K::InvalidAlgorithm | K::InvalidAlgorithmName | K::InvalidKeyFormat => {
                    TokenError::WrongKey
                }
                _ => TokenError::Malformed,
            })?;
        if data.header.typ.as_deref() != Some(TYP) {
            return Err(TokenError::WrongClaims);
        }
        Ok(data.claims)
    }
}

/// A random 128-bit token id, hex.
fn uuid_like() -> String {
    let mut b = [0u8; 16];
    rand::fill(&mut b[..]);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISS: &str = "https://palisade.test";
    const AUD: &str = "palisade";

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    fn subject() -> Subject<'static> {
        Subject {
            user_id: "u1",
            session_id: "s1",
            roles: vec!["member".into()],
            perms: vec!["audit:read".into()],
            amr: vec!["pwd".into()],
            auth_time: now(),
        }
    }

    fn ed() -> AccessTokens {
        AccessTokens::new(
            &SigningKey::generate_ed25519(),
            ISS,
            AUD,
            Duration::from_secs(900),
        )
    }

    fn b64(v: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    #[test]
    fn issued_tokens_verify_with_their_claims() {
        let t = ed();
        let c = t.verify(&t.issue(subject(), now())).expect("valid");
        assert_eq!((c.sub.as_str(), c.sid.as_str()), ("u1", "s1"));
        assert_eq!(c.exp - c.iat, 900);
        assert_eq!(c.perms, vec!["audit:read"]);
    }

    #[test]
    fn a_key_round_trips_through_pem() {
        let key = SigningKey::generate_ed25519();
        let again = SigningKey::ed25519_from_pem(&key.to_pem().expect("pem")).expect("parse");
        let a = AccessTokens::new(&key, ISS, AUD, Duration::from_secs(60));
        let b = AccessTokens::new(&again, ISS, AUD, Duration::from_secs(60));
        assert!(b.verify(&a.issue(subject(), now())).is_ok());
        assert!(SigningKey::ed25519_from_pem("-----BEGIN PRIVATE KEY-----\nAA==\n").is_err());
    }

    #[test]
    fn another_key_is_refused() {
        let token = ed().issue(subject(), now());
        assert!(ed().verify(&token).is_err());
    }

    #[test]
    fn alg_none_is_refused() {
        let t = ed();
        let good = t.issue(subject(), now());
        let payload = good.split('.').nth(1).expect("payload");
        let header = b64(&serde_json::json!({"alg":"none","typ":"at+jwt"}));
        assert!(t.verify(&format!("{header}.{payload}.")).is_err());
    }

    #[test]
    fn hs256_signed_with_the_public_key_is_refused() {
        let t = ed();
        let x = t.jwks()["keys"][0]["x"].as_str().expect("x").to_owned();
        let public = URL_SAFE_NO_PAD.decode(x).expect("b64");
        let forger = AccessTokens::new(
            &SigningKey::Hs256(public),
            ISS,
            AUD,
            Duration::from_secs(900),
        );
        let forged = forger.issue(subject(), now());
        assert_eq!(t.verify(&forged), Err(TokenError::WrongKey));
    }

    #[test]
    fn wrong_audience_issuer_or_type_is_refused() {
        let key = SigningKey::generate_ed25519();
        let t = AccessTokens::new(&key, ISS, AUD, Duration::from_secs(900));
        let other_aud = AccessTokens::new(&key, ISS, "other", Duration::from_secs(900));
        let other_iss = AccessTokens::new(&key, "https://evil", AUD, Duration::from_secs(900));
        assert_eq!(
            t.verify(&other_aud.issue(subject(), now())),
            Err(TokenError::WrongClaims)
        );
        assert_eq!(
            t.verify(&other_iss.issue(subject(), now())),
            Err(TokenError::WrongClaims)
        );
        // Same key, same claims, but typ JWT: an ID token or another kind of JWT.
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some("JWT".into());
        let claims = t.verify(&t.issue(subject(), now())).expect("valid");
        let der = match &key {
            SigningKey::Ed25519(k) => k.to_pkcs8_der().expect("der").as_bytes().to_vec(),
            SigningKey::Hs256(_) => unreachable!(),
        };
        let jwt =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(&der)).expect("sign");
        assert_eq!(t.verify(&jwt), Err(TokenError::WrongClaims));
    }

    #[test]
    fn expired_and_future_tokens_are_refused() {
        let t = ed();
        let old = t.issue(subject(), now() - 900 - LEEWAY_SECONDS - 5);
        assert_eq!(t.verify(&old), Err(TokenError::Expired));
        let future = t.issue(subject(), now() + LEEWAY_SECONDS + 60);
        assert_eq!(t.verify(&future), Err(TokenError::NotYetValid));
    }

    #[test]
    fn a_token_issued_in_the_future_is_refused_beyond_the_leeway() {
        let key = SigningKey::generate_ed25519();
        let t = AccessTokens::new(&key, ISS, AUD, Duration::from_secs(900));
        let der = match &key {
            SigningKey::Ed25519(k) => k.to_pkcs8_der().expect("der").as_bytes().to_vec(),
            SigningKey::Hs256(_) => unreachable!(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(TYP.into());
        header.kid = Some(t.kid.clone());
        let mut claims = t.verify(&t.issue(subject(), now())).expect("valid");
        let sign = |c: &Claims| {
            jsonwebtoken::encode(&header, c, &EncodingKey::from_ed_der(&der)).expect("sign")
        };
        claims.iat = now() + LEEWAY_SECONDS + 60;
        assert_eq!(t.verify(&sign(&claims)), Err(TokenError::NotYetValid));
        claims.iat = now() + LEEWAY_SECONDS - 10;
        assert!(t.verify(&sign(&claims)).is_ok(), "within the leeway");
    }

    #[test]
    fn keys_are_stored_as_pkcs8_v1() {
        let pem = SigningKey::generate_ed25519().to_pem().expect("pem");
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .expect("base64");
        // SEQUENCE { INTEGER 0 (v1), AlgorithmIdentifier { id-Ed25519 }, OCTET STRING }
        // and nothing after: RFC 8410 § 7's first example.
        assert_eq!(der.len(), 48);
        assert_eq!(
            &der[..16],
            &[
                0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
                0x04, 0x20
            ]
        );
    }

    #[test]
    fn a_tampered_payload_is_refused() {
        let t = ed();
        let good = t.issue(subject(), now());
        let parts: Vec<&str> = good.split('.').collect();
        let mut claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
        claims["roles"] = serde_json::json!(["admin"]);
        let forged = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
        assert_eq!(t.verify(&forged), Err(TokenError::Signature));
    }

    #[test]
    fn derived_keys_differ_by_label_and_key() {
        let k = SigningKey::generate_ed25519();
        assert_ne!(k.derive("a"), k.derive("b"));
        assert_eq!(k.derive("a"), k.derive("a"));
        assert_ne!(k.derive("a"), SigningKey::generate_ed25519().derive("a"));
    }

    #[test]
    fn hs256_works_and_publishes_no_key() {
        let key = SigningKey::hs256(&[7u8; 32]).expect("key");
        let t = AccessTokens::new(&key, ISS, AUD, Duration::from_secs(900));
        assert!(t.verify(&t.issue(subject(), now())).is_ok());
        assert_eq!(t.jwks(), serde_json::json!({"keys": []}));
        assert!(SigningKey::hs256(&[7u8; 31]).is_err());
    }
}
