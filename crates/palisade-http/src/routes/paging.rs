//! The list conventions of API.md: `?limit=` (1..=100, default 20) and `?cursor=`, and
//! the 400 for a query parameter that breaks them.

use axum::http::StatusCode;
use serde::Deserialize;

use crate::problem::Problem;

const DEFAULT_LIMIT: u64 = 20;
const MAX_LIMIT: u64 = 100;

/// `?limit=&cursor=` of a list endpoint.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

/// The page size asked for, or the default.
pub fn limit(l: Option<u64>) -> Result<u64, Problem> {
    match l.unwrap_or(DEFAULT_LIMIT) {
        n @ 1..=MAX_LIMIT => Ok(n),
        _ => Err(bad_query("limit", "must be 1..=100")),
    }
}

pub fn bad_query(field: &str, message: &str) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "request.invalid_query",
        "Invalid query parameter",
    )
    .with_detail(format!("{field}: {message}"))
}
