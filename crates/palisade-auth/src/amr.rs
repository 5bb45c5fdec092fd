//! How a session's user authenticated (`amr`, RFC 8176): a password, and a one-time
//! code once a second factor was given. One type owns the two encodings: the access
//! token's claim (`["pwd", "otp"]`) and the session column (`"pwd otp"`).

/// The methods of a sign-in: always the password, and maybe a one-time code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthMethods {
    otp: bool,
}

impl AuthMethods {
    /// A password alone.
    pub const PASSWORD: AuthMethods = AuthMethods { otp: false };
    /// A password and a one-time code (TOTP or a backup code).
    pub const PASSWORD_AND_CODE: AuthMethods = AuthMethods { otp: true };

    /// Whether a second factor was given.
    pub fn has_otp(self) -> bool {
        self.otp
    }

    /// The session column's form.
    pub fn to_column(self) -> &'static str {
        if self.otp { "pwd otp" } else { "pwd" }
    }

    /// From the session column; `None` for what this build never writes.
    pub fn from_column(s: &str) -> Option<AuthMethods> {
        Self::from_names(s.split(' '))
    }

    /// The token claim's form.
    pub fn to_claim(self) -> Vec<String> {
        self.names().iter().map(|m| (*m).to_owned()).collect()
    }

    /// From the token claim; `None` for what this build never issues.
    pub fn from_claim(claim: &[String]) -> Option<AuthMethods> {
        Self::from_names(claim.iter().map(String::as_str))
    }

    fn names(self) -> &'static [&'static str] {
        if self.otp { &["pwd", "otp"] } else { &["pwd"] }
    }

    fn from_names<'a>(names: impl Iterator<Item = &'a str>) -> Option<AuthMethods> {
        let mut names: Vec<&str> = names.collect();
        names.sort_unstable();
        match names.as_slice() {
            ["pwd"] => Some(Self::PASSWORD),
            ["otp", "pwd"] => Some(Self::PASSWORD_AND_CODE),
            _ => None,
        }
    }
}

impl TryFrom<String> for AuthMethods {
    type Error = String;

    fn try_from(column: String) -> Result<Self, String> {
        Self::from_column(&column).ok_or_else(|| format!("unknown auth methods `{column}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_encodings_round_trip_and_strangers_are_refused() {
        for m in [AuthMethods::PASSWORD, AuthMethods::PASSWORD_AND_CODE] {
            assert_eq!(AuthMethods::from_column(m.to_column()), Some(m));
            assert_eq!(AuthMethods::from_claim(&m.to_claim()), Some(m));
        }
        assert_eq!(
            AuthMethods::from_column("pwd otp"),
            Some(AuthMethods::PASSWORD_AND_CODE)
        );
        assert_eq!(
            AuthMethods::from_column("otp"),
            None,
            "a code alone is no sign-in"
        );
        assert_eq!(AuthMethods::from_column("pwd hwk"), None);
        assert!(AuthMethods::PASSWORD_AND_CODE.has_otp());
        assert!(!AuthMethods::PASSWORD.has_otp());
    }
}
