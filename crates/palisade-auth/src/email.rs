//! E-mail addresses in one canonical form, so that two spellings of one address are one
//! account and look-alikes cannot be registered beside each other.
//!
//! An address is accepted when, after trimming, it
//! - holds no control, format (Unicode Cf: zero-width and bidirectional marks) or other
//!   invisible character, and no white space;
//! - is `local@domain` with exactly one `@`, the local part an RFC 5322 dot-atom (no
//!   quoted strings) of at most 64 bytes, the whole at most 254 (RFC 5321 § 4.5.3.1);
//! - has a domain of at least two labels that UTS 46 (IDNA, STD3 rules) turns into
//!   ASCII, with no trailing dot, and not under `.invalid` (RFC 6761: it receives no
//!   mail; erased accounts use it).
//!
//! Its canonical form is the local part in lower case and Unicode NFC, `@`, and the
//! domain as its A-label (`bücher.example` → `xn--bcher-kva.example`).

use std::fmt;

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

/// The longest address (RFC 5321's path limit less the angle brackets).
pub const MAX_LEN: usize = 254;
/// The longest local part, in bytes (RFC 5321 § 4.5.3.1.1).
pub const MAX_LOCAL_LEN: usize = 64;

/// An address in its canonical form.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Email(String);

/// Why an address is refused; each says what to fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("must be an email address (name@example.com)")]
    Format,
    #[error("must not contain spaces, control characters or invisible formatting characters")]
    Invisible,
    #[error("the part before @ must be at most 64 bytes")]
    LocalTooLong,
    #[error("must be at most 254 characters")]
    TooLong,
    #[error("the domain must be a valid domain name (no trailing dot)")]
    Domain,
    #[error("addresses under .invalid receive no mail")]
    Reserved,
}

impl Email {
    /// Checks `raw` and returns its canonical form.
    pub fn parse(raw: &str) -> Result<Email, EmailError> {
        let raw = raw.trim();
        if raw.chars().any(invisible) {
            return Err(EmailError::Invisible);
        }
        let mut parts = raw.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(EmailError::Format);
        };
        let local: String = local.to_lowercase().nfc().collect();
        if local.len() > MAX_LOCAL_LEN {
            return Err(EmailError::LocalTooLong);
        }
        if local.contains('"') || !email_address::EmailAddress::is_valid_local_part(&local) {
            return Err(EmailError::Format);
        }
        if domain.ends_with('.') {
            return Err(EmailError::Domain);
        }
        let domain = idna::domain_to_ascii_strict(domain).map_err(|_| EmailError::Domain)?;
        if !domain.contains('.') || !email_address::EmailAddress::is_valid_domain(&domain) {
            return Err(EmailError::Domain);
        }
        if domain == "invalid" || domain.ends_with(".invalid") {
            return Err(EmailError::Reserved);
        }
        let canonical = format!("{local}@{domain}");
        if canonical.chars().count() > MAX_LEN {
            return Err(EmailError::TooLong);
        }
        Ok(Email(canonical))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Characters that are not seen, or not seen as what they are: white space and the
/// Unicode categories of controls, formats, separators and unassigned or private code
/// points.
fn invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c.general_category_group(),
            GeneralCategoryGroup::Other | GeneralCategoryGroup::Separator
        )
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(raw: &str) -> String {
        Email::parse(raw)
            .unwrap_or_else(|e| panic!("{raw:?}: {e}"))
            .as_str()
            .to_owned()
    }

    #[test]
    fn ordinary_addresses_are_accepted_and_folded() {
        assert_eq!(canonical(" Ada@Example.COM "), "ada@example.com");
        assert_eq!(
            canonical("o'hara+news@mail.example.co.uk"),
            "o'hara+news@mail.example.co.uk"
        );
        assert_eq!(
            canonical("a.b-c_d@sub.example.org"),
            "a.b-c_d@sub.example.org"
        );
    }

    #[test]
    fn spellings_of_one_address_are_one_address() {
        // NFD (e + combining acute) and NFC (é) spell the same local part.
        assert_eq!(
            canonical("re\u{301}ne@example.com"),
            canonical("r\u{e9}ne@example.com")
        );
        // The U-label and the A-label of one domain.
        assert_eq!(canonical("ana@bücher.example"), "ana@xn--bcher-kva.example");
        assert_eq!(
            canonical("ana@XN--BCHER-KVA.example"),
            "ana@xn--bcher-kva.example"
        );
    }

    #[test]
    fn look_alikes_and_malformed_addresses_are_refused() {
        for (raw, why) in [
            ("eve@x@example.com", EmailError::Format),
            ("<script>@example.com", EmailError::Format),
            ("\"quoted\"@example.com", EmailError::Format),
            ("eve\u{200b}@example.com", EmailError::Invisible),
            ("e\u{202e}ve@example.com", EmailError::Invisible),
            ("eve\u{0}@example.com", EmailError::Invisible),
            ("e ve@example.com", EmailError::Invisible),
            ("eve@example.com.", EmailError::Domain),
            ("eve@localhost", EmailError::Domain),
            ("eve@exa_mple.com", EmailError::Domain),
            ("eve@[192.0.2.1]", EmailError::Domain),
            ("eve@.com", EmailError::Domain),
            ("x@erased.invalid", EmailError::Reserved),
            ("x@foo.invalid", EmailError::Reserved),
            ("@example.com", EmailError::Format),
            ("eve", EmailError::Format),
            ("", EmailError::Format),
        ] {
            assert_eq!(Email::parse(raw), Err(why), "{raw:?}");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert_eq!(Email::parse(&long_local), Err(EmailError::LocalTooLong));
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(64))).is_ok());
        let long = format!("a@{}.com", "b.".repeat(130));
        assert!(Email::parse(&long).is_err());
    }
}
