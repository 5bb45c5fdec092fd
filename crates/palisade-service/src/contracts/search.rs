//! Search text: what a client types, reduced to plain words before it reaches the
//! database, so quotes, `*`, `OR`, `NEAR(`, `-` and SQL are searched for as words (or
//! dropped as separators), never interpreted.

use palisade_auth::ids::ContractId;
use serde::Serialize;
use utoipa::ToSchema;

/// The longest `q`, in characters.
pub const MAX_CHARS: usize = 200;
/// Words beyond this many are ignored.
pub const MAX_WORDS: usize = 16;

/// A parsed `q`: its words, lower-cased. Anything that is not a letter or a digit
/// separates words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchText {
    words: Vec<String>,
}

impl SearchText {
    /// `q` of 1..=200 characters of any text.
    pub fn parse(q: &str) -> Result<SearchText, String> {
        let n = q.chars().count();
        if n == 0 || n > MAX_CHARS {
            return Err(format!("1..={MAX_CHARS} characters"));
        }
        let words = q
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .take(MAX_WORDS)
            .collect();
        Ok(SearchText { words })
    }

    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// Nothing to look for (only separators): matches nothing.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }
}

/// What `GET /api/v1/search` can look through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SearchType {
    Contracts,
}

/// One result of `GET /api/v1/search`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SearchHit {
    #[serde(rename = "type")]
    pub kind: SearchType,
    #[schema(value_type = String, format = Uuid)]
    pub id: ContractId,
    pub title: String,
    /// Plain text around the best match.
    pub snippet: String,
    /// Relevance; higher is better, comparable within one answer only.
    pub score: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_and_punctuation_are_separators() {
        let t = SearchText::parse("\"Acme\" OR NEAR(x) -y * ') ; DROP TABLE x; --").unwrap();
        assert_eq!(
            t.words(),
            ["acme", "or", "near", "x", "y", "drop", "table", "x"]
        );
        assert!(SearchText::parse("*** ( ) \u{0} -").unwrap().is_empty());
        assert!(SearchText::parse(&"🦀".repeat(200)).unwrap().is_empty());
        assert!(SearchText::parse("").is_err());
        assert!(SearchText::parse(&"a".repeat(201)).is_err());
        assert_eq!(
            SearchText::parse(&"w ".repeat(100)).unwrap().words().len(),
            MAX_WORDS
        );
    }
}
