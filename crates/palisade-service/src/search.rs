//! Search (`GET /api/v1/search`): the text a client types, reduced to plain words
//! before it reaches the database, so quotes, `*`, `OR`, `NEAR(`, `-` and SQL are
//! searched for as words (or dropped as separators), never interpreted; what can be
//! searched; and one answer made of each kind's best hits.

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

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
    /// Title, counterparty and description.
    Contracts,
    /// The description.
    Payments,
}

impl SearchType {
    pub const ALL: [SearchType; 2] = [SearchType::Contracts, SearchType::Payments];

    pub fn as_str(self) -> &'static str {
        match self {
            SearchType::Contracts => "contracts",
            SearchType::Payments => "payments",
        }
    }

    /// A comma-separated list of types (`contracts,payments`), each once.
    pub fn parse_list(list: &str) -> Result<Vec<SearchType>, String> {
        let mut types = Vec::new();
        for name in list.split(',') {
            let t = SearchType::ALL
                .into_iter()
                .find(|t| t.as_str() == name)
                .ok_or_else(|| "searchable: contracts, payments".to_owned())?;
            if !types.contains(&t) {
                types.push(t);
            }
        }
        Ok(types)
    }
}

/// The best `limit` of several kinds' hits (each list best first), best first.
pub fn merge(lists: Vec<Vec<SearchHit>>, limit: usize) -> Vec<SearchHit> {
    let mut all: Vec<SearchHit> = lists.into_iter().flatten().collect();
    all.sort_by(|a, b| b.score.total_cmp(&a.score));
    all.truncate(limit);
    all
}

/// One result of `GET /api/v1/search`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SearchHit {
    #[serde(rename = "type")]
    pub kind: SearchType,
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
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

    #[test]
    fn type_lists_name_known_types_once() {
        assert_eq!(
            SearchType::parse_list("payments,contracts,payments").unwrap(),
            [SearchType::Payments, SearchType::Contracts]
        );
        for bad in ["", "invoices", "contracts,", "Contracts"] {
            assert!(SearchType::parse_list(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn merged_hits_are_best_first_and_bounded() {
        let hit = |kind, score| SearchHit {
            kind,
            id: Uuid::nil(),
            title: String::new(),
            snippet: String::new(),
            score,
        };
        let merged = merge(
            vec![
                vec![
                    hit(SearchType::Contracts, 3.0),
                    hit(SearchType::Contracts, 1.0),
                ],
                vec![hit(SearchType::Payments, 2.0)],
            ],
            2,
        );
        let got: Vec<_> = merged.iter().map(|h| (h.kind, h.score)).collect();
        assert_eq!(
            got,
            [(SearchType::Contracts, 3.0), (SearchType::Payments, 2.0)]
        );
    }
}
