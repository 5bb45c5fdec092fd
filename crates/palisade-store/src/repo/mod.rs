//! Repositories: the SQL of each table, built with sea-query once for both dialects.
//! Every function takes an [`Exec`](crate::Exec), so it runs on the pool or inside a
//! transaction alike. Rules (who may do what, when a token is valid) are not here: they
//! are the services'.

pub mod audit;
pub mod cache_scopes;
pub mod contracts;
pub mod dashboard;
pub mod events;
pub mod fixes;
pub mod idempotency_keys;
pub mod lockout;
pub mod payments;
pub mod sessions;
pub mod stats;
pub mod stripe_events;
pub mod subscriptions;
pub mod users;

use sea_query::SelectStatement;
use time::OffsetDateTime;

use crate::{Exec, StoreError};

#[derive(sqlx::FromRow)]
struct Number {
    n: i64,
}

/// The `n` of a one-row `SELECT … AS n` (a count, a size); 0 without a row.
pub(crate) async fn number(
    ex: impl Into<Exec<'_>>,
    table: &'static str,
    stmt: &SelectStatement,
) -> Result<i64, StoreError> {
    let row: Option<Number> = ex.into().fetch_optional(table, stmt).await?;
    Ok(row.map_or(0, |r| r.n))
}

/// The current time as stored: UTC, whole microseconds (PostgreSQL's precision), so a
/// value read back equals the value written on both backends.
pub fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .unwrap_or(t)
}
