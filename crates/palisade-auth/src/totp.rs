//! TOTP (RFC 6238) as the baseline sets it: SHA-1, 6 digits, 30 s steps, a 160-bit
//! secret, ±1 step accepted, and a code that succeeded once refused afterwards
//! (docs/SECURITY.md § Two-factor authentication). The arithmetic is totp-rs's;
//! this module fixes the parameters and adds the replay rule.

use totp_rs::{Algorithm, Builder, Secret, Totp};

/// Secret length: 160 bits.
pub const SECRET_BYTES: usize = 20;
const DIGITS: u8 = 6;
const STEP_SECONDS: u64 = 30;
const SKEW_STEPS: u16 = 1;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    #[error("a TOTP secret must be {SECRET_BYTES} bytes")]
    SecretLength,
    #[error("cannot build the TOTP: {0}")]
    Build(String),
}

/// One user's authenticator.
pub struct Authenticator {
    totp: Totp,
}

/// A fresh secret from the CSPRNG.
pub fn new_secret() -> [u8; SECRET_BYTES] {
    let mut s = [0u8; SECRET_BYTES];
    rand::fill(&mut s[..]);
    s
}

impl Authenticator {
    /// `issuer` and `account` label the entry in the user's app (`Palisade:alice@…`).
    pub fn new(secret: &[u8], issuer: &str, account: &str) -> Result<Authenticator, TotpError> {
        if secret.len() != SECRET_BYTES {
            return Err(TotpError::SecretLength);
        }
        let totp = Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(DIGITS)
            .with_step_duration(STEP_SECONDS)
            .with_skew(SKEW_STEPS)
            .with_secret(Secret::from(secret.to_vec()))
            // A colon would split the label; it is not allowed in either part.
            .with_issuer(Some(issuer.replace(':', "")))
            .with_account_name(account.replace(':', ""))
            .build()
            .map_err(|e| TotpError::Build(e.to_string()))?;
        Ok(Authenticator { totp })
    }

    /// The `otpauth://totp/…` URI the user's app reads (as text or as a QR code).
    pub fn otpauth_uri(&self) -> Result<String, TotpError> {
        self.totp
            .to_url()
            .map_err(|e| TotpError::Build(e.to_string()))
    }

    /// The otpauth URI as a QR code, an SVG document for the enrolment page.
    pub fn qr_svg(&self) -> Result<String, TotpError> {
        let uri = self.otpauth_uri()?;
        let code = qrcode::QrCode::with_error_correction_level(uri.as_bytes(), qrcode::EcLevel::M)
            .map_err(|e| TotpError::Build(e.to_string()))?;
        Ok(code
            .render::<qrcode::render::svg::Color>()
            .min_dimensions(200, 200)
            .build())
    }

    /// The secret in base32, for typing into an app by hand.
    pub fn secret_base32(&self) -> String {
        self.totp.secret().to_base32()
    }

    /// The time step `code` is valid for at `unix_seconds` (±1 step), unless that step
    /// is not after `last_used`: a code is accepted once. The caller stores the step
    /// it gets back as the new `last_used`.
    pub fn accept(&self, code: &str, unix_seconds: u64, last_used: Option<u64>) -> Option<u64> {
        let step = self.totp.check(code.trim(), unix_seconds)?;
        match last_used {
            Some(last) if step <= last => None,
            _ => Some(step),
        }
    }

    /// The code of `unix_seconds` (for tests and the enrolment check).
    pub fn code_at(&self, unix_seconds: u64) -> String {
        self.totp.generate(unix_seconds).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B's SHA-1 secret ("12345678901234567890").
    const RFC_SECRET: &[u8; 20] = b"12345678901234567890";

    fn rfc() -> Authenticator {
        Authenticator::new(RFC_SECRET, "Palisade", "alice@example.com").expect("totp")
    }

    #[test]
    fn codes_match_the_rfc_test_vectors() {
        // RFC 6238 B: 8-digit codes 94287082 (T=59) and 07081804 (T=1111111109); the
        // 6-digit codes are their last six digits.
        assert_eq!(rfc().code_at(59), "287082");
        assert_eq!(rfc().code_at(1_111_111_109), "081804");
    }

    #[test]
    fn one_step_either_side_is_accepted_and_no_more() {
        let a = rfc();
        let now = 1_111_111_109;
        let code = a.code_at(now);
        assert!(a.accept(&code, now + 30, None).is_some());
        assert!(a.accept(&code, now - 30, None).is_some());
        assert!(a.accept(&code, now + 60, None).is_none());
        // A code of none of the three accepted steps.
        let near: Vec<String> = [now - 30, now, now + 30].map(|t| a.code_at(t)).into();
        assert!(!near.contains(&"123456".to_owned()));
        assert!(a.accept("123456", now, None).is_none());
        assert!(a.accept("12345", now, None).is_none(), "five digits");
    }

    #[test]
    fn a_code_is_accepted_once() {
        let a = rfc();
        let now = 1_700_000_000;
        let code = a.code_at(now);
        let step = a.accept(&code, now, None).expect("first use");
        assert_eq!(a.accept(&code, now, Some(step)), None, "replayed");
        // Nor an older code once a newer one was used.
        let older = a.code_at(now - 30);
        assert_eq!(a.accept(&older, now, Some(step)), None);
        let next = a.code_at(now + 30);
        assert!(a.accept(&next, now + 30, Some(step)).is_some());
    }

    #[test]
    fn the_uri_names_the_issuer_account_and_parameters() {
        let uri = rfc().otpauth_uri().expect("uri");
        assert!(
            uri.starts_with("otpauth://totp/Palisade:alice%40example.com?"),
            "{uri}"
        );
        assert!(
            uri.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
            "{uri}"
        );
        assert!(uri.contains("issuer=Palisade"), "{uri}");
        assert_eq!(rfc().secret_base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(
            Authenticator::new(&[0u8; 16], "P", "a").err(),
            Some(TotpError::SecretLength)
        );
        assert_ne!(new_secret(), new_secret());
    }

    #[test]
    fn the_qr_code_is_an_svg_document() {
        let svg = rfc().qr_svg().expect("qr");
        assert!(svg.starts_with("<?xml"), "{}", &svg[..40]);
        assert!(svg.contains("<svg") && svg.contains("<path"));
    }
}
