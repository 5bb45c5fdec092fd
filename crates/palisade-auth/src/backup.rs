//! 2FA backup codes: 10 per enrolment, 60 random bits each (the baseline asks ≥ 50),
//! written as three groups of four base32 characters. Stored argon2id-hashed like
//! passwords; each is single use.

/// Codes handed out per enrolment.
pub const COUNT: usize = 10;
/// RFC 4648 base32 without the padding: no 0/1/8/9, so no O/I/B/g confusion.
const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const CHARS: usize = 12;
// 12 characters of 5 bits each: the baseline asks at least 50 bits.
const _: () = assert!(CHARS * 5 >= 50);

/// A fresh set of codes, as shown to the user.
pub fn generate() -> Vec<String> {
    (0..COUNT).map(|_| one()).collect()
}

fn one() -> String {
    let mut bytes = [0u8; CHARS];
    rand::fill(&mut bytes[..]);
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// The canonical form of a code as typed: upper case, without spaces or dashes. `None`
/// when it cannot be a backup code, so the caller need not verify it against hashes.
pub fn normalise(typed: &str) -> Option<String> {
    let s: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (s.len() == CHARS && s.bytes().all(|b| ALPHABET.contains(&b))).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ten_distinct_codes_of_sixty_bits() {
        let codes = generate();
        assert_eq!(codes.len(), COUNT);
        assert_eq!(codes.iter().collect::<HashSet<_>>().len(), COUNT);
        for c in &codes {
            assert_eq!(c.len(), 14, "{c}");
            assert!(normalise(c).is_some(), "{c}");
        }
    }

    #[test]
    fn typed_codes_are_normalised() {
        assert_eq!(
            normalise(" abcd-efgh-2345 ").as_deref(),
            Some("ABCDEFGH2345")
        );
        assert_eq!(normalise("abcd efgh 2345").as_deref(), Some("ABCDEFGH2345"));
        assert_eq!(normalise("123456"), None);
        assert_eq!(normalise("ABCD-EFGH-2340"), None);
    }
}
