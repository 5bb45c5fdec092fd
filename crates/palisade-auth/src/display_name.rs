//! A user's display name, as admin views and the audit trail show it: trimmed, 1 to
//! [`MAX_LEN`] characters, and nothing that is not seen as what it is (control and
//! format characters such as the right-to-left override of `Alice\u{202e}gnp.exe`, or
//! zero-width spaces).

use std::fmt;

use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};

pub const MAX_LEN: usize = 100;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisplayName(String);

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("must be 1 to 100 characters, without control or invisible formatting characters")]
pub struct InvalidName;

impl DisplayName {
    pub fn parse(raw: &str) -> Result<DisplayName, InvalidName> {
        let name = raw.trim();
        let n = name.chars().count();
        let hidden = |c: char| {
            c.general_category_group() == GeneralCategoryGroup::Other
                || matches!(
                    c.general_category(),
                    GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator
                )
        };
        if n == 0 || n > MAX_LEN || name.chars().any(hidden) {
            return Err(InvalidName);
        }
        Ok(DisplayName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_checked() {
        assert_eq!(
            DisplayName::parse("  Ada Lovelace ").unwrap().as_str(),
            "Ada Lovelace"
        );
        assert!(DisplayName::parse("Zoë 🦀 O'Brien-Smith").is_ok());
        for bad in [
            "",
            "   ",
            "Alice\u{202e}gnp.exe",
            "Al\u{200b}ice",
            "Bob\u{0}",
            "line\u{2028}break",
            "tab\there",
        ] {
            assert_eq!(DisplayName::parse(bad), Err(InvalidName), "{bad:?}");
        }
        assert!(DisplayName::parse(&"x".repeat(100)).is_ok());
        assert!(DisplayName::parse(&"x".repeat(101)).is_err());
    }
}
