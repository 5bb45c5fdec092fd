//! A contract's fields and their rules (README § Contracts): what a create or a change
//! may carry, checked once here, and the status machine.

use iso_currency::Currency;
use serde::{Deserialize, Serialize};
use time::Date;
use utoipa::ToSchema;

/// The most a contract may be for, in minor units.
pub const MAX_AMOUNT_CENTS: i64 = 1_000_000_000_000;
const MAX_TEXT: usize = 200;
const MAX_DESCRIPTION: usize = 10_000;
const MAX_TAGS: usize = 10;
const MAX_TAG: usize = 32;

/// Money: an amount in the minor unit of an ISO 4217 currency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Money {
    /// In the currency's minor unit (cents for EUR, yen for JPY); 1..=10^12.
    #[schema(minimum = 1, maximum = 1_000_000_000_000_i64)]
    pub amount_cents: i64,
    /// An ISO 4217 code with a minor unit (`EUR`, `JPY`, `KWD`).
    #[schema(pattern = "^[A-Z]{3}$", example = "EUR")]
    pub currency: String,
}

/// Where a contract stands. `draft` → `active` | `cancelled`; `active` → `completed` |
/// `cancelled`; no other move.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = ContractStatus)]
pub enum Status {
    Draft,
    Active,
    Completed,
    Cancelled,
}

impl Status {
    pub const ALL: [Status; 4] = [
        Status::Draft,
        Status::Active,
        Status::Completed,
        Status::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Active => "active",
            Status::Completed => "completed",
            Status::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether a contract may move from `self` to `to`.
    pub fn may_become(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (Draft, Active) | (Draft, Cancelled) | (Active, Completed) | (Active, Cancelled)
        )
    }
}

/// `POST /api/v1/contracts`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContract {
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
    #[schema(min_length = 1, max_length = 200)]
    pub counterparty: String,
    pub amount: Money,
    #[serde(default, with = "date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub starts_on: Option<Date>,
    #[serde(default, with = "date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub ends_on: Option<Date>,
    /// Plain text, stored as sent.
    #[schema(max_length = 10000)]
    pub description: Option<String>,
    /// At most 10, each `[a-z0-9-]{1,32}`; repeats are kept once.
    #[schema(max_items = 10)]
    pub tags: Option<Vec<Tag>>,
}

/// `PATCH /api/v1/contracts/{id}`: each field present is changed; `null` clears a
/// date.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContractPatch {
    #[schema(min_length = 1, max_length = 200)]
    pub title: Option<String>,
    #[schema(min_length = 1, max_length = 200)]
    pub counterparty: Option<String>,
    pub amount: Option<Money>,
    #[serde(default, deserialize_with = "date::present")]
    #[schema(value_type = Option<String>, format = Date)]
    pub starts_on: Option<Option<Date>>,
    #[serde(default, deserialize_with = "date::present")]
    #[schema(value_type = Option<String>, format = Date)]
    pub ends_on: Option<Option<Date>>,
    #[schema(max_length = 10000)]
    pub description: Option<String>,
    #[schema(max_items = 10)]
    pub tags: Option<Vec<Tag>>,
    pub status: Option<Status>,
}

/// A tag: `[a-z0-9-]{1,32}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String")]
#[schema(value_type = String, pattern = "^[a-z0-9-]{1,32}$")]
#[schema(as = ContractTag)]
pub struct Tag(String);

impl Tag {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Tag {
    type Error = String;

    fn try_from(s: String) -> Result<Tag, String> {
        let ok = (1..=MAX_TAG).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Tag(s))
        } else {
            Err(format!("a tag is 1..={MAX_TAG} of a-z, 0-9 and -"))
        }
    }
}

/// The problems of one request's fields, as `(field, message)`.
pub type Problems = Vec<(&'static str, String)>;

/// Checks a title or counterparty: 1..=200 characters, not only blanks, no control
/// characters.
pub fn check_text(field: &'static str, value: &str, problems: &mut Problems) {
    let n = value.chars().count();
    if n == 0 || n > MAX_TEXT || value.trim().is_empty() {
        problems.push((field, format!("1..={MAX_TEXT} characters, not only blanks")));
    } else if value.chars().any(char::is_control) {
        problems.push((field, "control characters are not allowed".to_owned()));
    }
}

/// Checks a contract's description: at most 10,000 characters; line breaks and tabs are
/// the only control characters allowed.
pub fn check_description(value: &str, problems: &mut Problems) {
    check_description_up_to(value, MAX_DESCRIPTION, problems);
}

/// Checks a description of at most `max` characters, in which line breaks and tabs are
/// the only control characters allowed.
pub fn check_description_up_to(value: &str, max: usize, problems: &mut Problems) {
    if value.chars().count() > max {
        problems.push(("description", format!("at most {max} characters")));
    } else if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        problems.push((
            "description",
            "control characters other than line breaks and tabs are not allowed".to_owned(),
        ));
    }
}

/// Checks an amount: 1..=10^12 in the minor unit of an ISO 4217 currency that has one.
pub fn check_money(m: &Money, problems: &mut Problems) {
    if !(1..=MAX_AMOUNT_CENTS).contains(&m.amount_cents) {
        problems.push(("amount.amount_cents", format!("1..={MAX_AMOUNT_CENTS}")));
    }
    match Currency::from_code(&m.currency) {
        None => problems.push((
            "amount.currency",
            "not an ISO 4217 currency code".to_owned(),
        )),
        Some(c) if c.exponent().is_none() || c.is_fund() || c.is_superseded().is_some() => problems
            .push((
                "amount.currency",
                "not a currency of payment (no minor unit, a fund, or superseded)".to_owned(),
            )),
        Some(_) => {}
    }
}

/// The tags as stored: at most 10 sent, repeats kept once, in the order sent.
pub fn tag_column(tags: &[Tag], problems: &mut Problems) -> String {
    if tags.len() > MAX_TAGS {
        problems.push(("tags", format!("at most {MAX_TAGS}")));
    }
    let mut seen: Vec<&str> = Vec::new();
    for t in tags {
        if !seen.contains(&t.as_str()) {
            seen.push(t.as_str());
        }
    }
    seen.join(" ")
}

/// Checks that the contract does not end before it starts.
pub fn check_dates(starts_on: Option<Date>, ends_on: Option<Date>, problems: &mut Problems) {
    if let (Some(s), Some(e)) = (starts_on, ends_on)
        && e < s
    {
        problems.push(("ends_on", "must not be before starts_on".to_owned()));
    }
}

/// Dates as `YYYY-MM-DD` (RFC 3339 full-date).
pub mod date {
    use std::sync::LazyLock;

    use serde::{Deserialize, Deserializer, Serializer};
    use time::Date;
    use time::format_description::BorrowedFormatItem;

    static FORMAT: LazyLock<Vec<BorrowedFormatItem<'static>>> = LazyLock::new(|| {
        time::format_description::parse_borrowed::<2>("[year]-[month]-[day]").unwrap_or_default()
    });

    pub fn parse(s: &str) -> Result<Date, String> {
        if s.len() != 10 {
            return Err("a date is YYYY-MM-DD".to_owned());
        }
        Date::parse(s, &FORMAT[..]).map_err(|_| "a date is YYYY-MM-DD".to_owned())
    }

    pub fn format(d: Date) -> String {
        d.format(&FORMAT[..]).unwrap_or_default()
    }

    /// `Option<Date>` fields.
    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(d: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => s.serialize_str(&format(*d)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Date>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|s| parse(&s).map_err(serde::de::Error::custom))
                .transpose()
        }
    }

    /// A field that may be absent (unchanged), `null` (cleared) or a date.
    pub fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<Date>>, D::Error> {
        option::deserialize(d).map(Some)
    }
}
