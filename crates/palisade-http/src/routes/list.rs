//! The list conventions (README § The HTTP API): `?limit=` (1..=100, default 20) and
//! `?cursor=` in, `{"items": [...], "next_cursor": "…" | null}` out.

use palisade_service::page::{Cursor, Limit, Page};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// `?limit=&cursor=` of a list that takes nothing else.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1..=100 (default 20).
    #[param(inline)]
    pub limit: Option<Limit>,
    /// The `next_cursor` of the page before.
    #[param(inline)]
    pub cursor: Option<Cursor>,
}

/// A page of a list.
#[derive(Serialize, ToSchema)]
pub struct List<T> {
    pub items: Vec<T>,
    /// Where the next page starts; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> From<Page<T>> for List<T> {
    fn from(page: Page<T>) -> Self {
        List {
            items: page.items,
            next_cursor: page.next.map(|c| c.as_str().to_owned()),
        }
    }
}
