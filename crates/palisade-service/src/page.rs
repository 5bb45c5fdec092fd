//! Lists, a page at a time: every list takes a [`Limit`] and an optional [`Cursor`] and
//! returns a [`Page`]. Pages are keyset pages (the cursor is the position of the last
//! row shown, not an offset), so a row inserted meanwhile neither repeats nor hides
//! another.

use std::fmt::Display;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use utoipa::ToSchema;

/// A page size: 1..=100, 20 when the client names none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(try_from = "u64")]
#[schema(value_type = u64, minimum = 1, maximum = 100, default = 20)]
pub struct Limit(u64);

impl Limit {
    pub const MAX: u64 = 100;

    pub fn get(self) -> u64 {
        self.0
    }

    /// The rows to fetch: one more than the page shows tells whether another follows.
    pub fn fetch(self) -> u64 {
        self.0 + 1
    }
}

impl Default for Limit {
    fn default() -> Self {
        Limit(20)
    }
}

impl TryFrom<u64> for Limit {
    type Error = String;

    fn try_from(n: u64) -> Result<Self, String> {
        if (1..=Self::MAX).contains(&n) {
            Ok(Limit(n))
        } else {
            Err(format!("must be 1..={}", Self::MAX))
        }
    }
}

/// Where the next page starts. Opaque to clients: the position of the last row shown,
/// in base64url; each list reads back the position type it wrote.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(try_from = "String")]
#[schema(value_type = String, min_length = 1, max_length = 200, pattern = "^[A-Za-z0-9_-]+$")]
pub struct Cursor(String);

impl Cursor {
    /// The cursor of a row at `position`.
    pub fn at(position: impl Display) -> Cursor {
        Cursor(URL_SAFE_NO_PAD.encode(position.to_string()))
    }

    /// The position this cursor names, if it is one of type `K`.
    pub fn position<K: FromStr>(&self) -> Result<K, BadCursor> {
        let bytes = URL_SAFE_NO_PAD.decode(&self.0).map_err(|_| BadCursor)?;
        let text = String::from_utf8(bytes).map_err(|_| BadCursor)?;
        text.parse().map_err(|_| BadCursor)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The position `cursor` names, when a list was given one.
    pub fn start<K: FromStr>(cursor: Option<&Cursor>) -> Result<Option<K>, BadCursor> {
        cursor.map(Cursor::position).transpose()
    }
}

impl TryFrom<String> for Cursor {
    type Error = &'static str;

    fn try_from(s: String) -> Result<Self, &'static str> {
        let ok = (1..=200).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Cursor(s))
        } else {
            Err("not a cursor")
        }
    }
}

/// A cursor that does not name a position of the list it was given to.
#[derive(Debug, thiserror::Error)]
#[error("not a cursor of this list")]
pub struct BadCursor;

/// Rows of a list, and the cursor of the next page when there is one.
#[derive(Clone, Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

impl<T> Page<T> {
    /// The page of `rows`, fetched with [`Limit::fetch`]: a row beyond `limit` means
    /// another page follows, starting after the last row shown.
    pub fn of<P: Display>(mut rows: Vec<T>, limit: Limit, position: impl Fn(&T) -> P) -> Page<T> {
        let more = rows.len() as u64 > limit.get();
        rows.truncate(limit.get() as usize);
        let next = if more {
            rows.last().map(|r| Cursor::at(position(r)))
        } else {
            None
        };
        Page { items: rows, next }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_last_page_has_no_next() {
        let limit = Limit::try_from(2).unwrap();
        let page = Page::of(vec![1, 2], limit, |n| *n);
        assert_eq!(page.items, vec![1, 2]);
        assert!(page.next.is_none());
        let page = Page::of(vec![1, 2, 3], limit, |n| *n);
        assert_eq!(page.items, vec![1, 2]);
        assert_eq!(page.next.unwrap().position::<i32>().unwrap(), 2);
    }

    #[test]
    fn cursors_are_opaque_and_checked() {
        let c = Cursor::at("1700000000_0190a0d6-0000-7000-8000-000000000000");
        assert!(
            c.as_str()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert!(c.position::<i64>().is_err());
        assert!(Cursor::try_from("not a cursor!".to_owned()).is_err());
        assert!(Cursor::try_from(String::new()).is_err());
        assert!(Limit::try_from(0).is_err());
        assert!(Limit::try_from(101).is_err());
        assert_eq!(Limit::default().get(), 20);
    }
}
