//! Repositories: the SQL of each table, built with sea-query once for both dialects.
//! Every function takes an [`Exec`](crate::Exec), so it runs on the pool or inside a
//! transaction alike. Rules (who may do what, when a token is valid) are not here: they
//! are the services'.

pub mod account_tokens;
pub mod audit;
pub mod cache_scopes;
pub mod contracts;
pub mod dashboard;
pub mod events;
pub mod fixes;
pub mod idempotency_keys;
pub mod jobs;
pub mod lockout;
pub mod mail_sent;
pub mod notifications;
pub mod payments;
pub mod sessions;
pub mod stats;
pub mod stripe_events;
pub mod subscriptions;
pub mod users;
pub mod webhooks;

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

/// Sends `payload` on the PostgreSQL channel `channel` (`pg_notify`), delivered when
/// the transaction `ex` runs in commits. PostgreSQL only.
pub async fn notify(
    ex: impl Into<Exec<'_>>,
    channel: &str,
    payload: &str,
) -> Result<(), StoreError> {
    let stmt = sea_query::Query::select()
        .expr(sea_query::Expr::cust_with_values(
            "pg_notify($1, $2)",
            [channel, payload],
        ))
        .to_owned();
    ex.into().execute("notify", &stmt).await.map(|_| ())
}

/// The current time as stored: UTC, whole microseconds (PostgreSQL's precision), so a
/// value read back equals the value written on both backends.
pub fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .unwrap_or(t)
}
