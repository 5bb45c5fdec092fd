//! Everything that differs between SQLite and PostgreSQL, in one place.
//!
//! Repositories build sea-query statements and hand them to [`crate::Db`] or
//! [`crate::Tx`]; the [`dispatch!`] macro below picks the query builder and the sqlx
//! driver of the backend in hand. Nothing outside this module matches on the backend
//! to run SQL.

use sea_query::{DeleteStatement, InsertStatement, SelectStatement, UpdateStatement};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

/// Which database a handle talks to: the migration engine's dialect, so the two never
/// disagree.
pub use palisade_migrate::Dialect as Backend;

/// A row type readable from both backends; `#[derive(sqlx::FromRow)]` gives both impls.
pub trait FromAnyRow:
    for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin
{
}
impl<T> FromAnyRow for T where
    T: for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin
{
}

/// The metric label of a statement kind.
pub trait Operation {
    const OPERATION: &'static str;
}
impl Operation for SelectStatement {
    const OPERATION: &'static str = "select";
}
impl Operation for InsertStatement {
    const OPERATION: &'static str = "insert";
}
impl Operation for UpdateStatement {
    const OPERATION: &'static str = "update";
}
impl Operation for DeleteStatement {
    const OPERATION: &'static str = "delete";
}

/// Where a statement runs: a pool, or the connection of an open transaction.
pub(crate) enum Target<'a> {
    SqlitePool(&'a sqlx::SqlitePool),
    PgPool(&'a sqlx::PgPool),
    SqliteConn(&'a mut sqlx::SqliteConnection),
    PgConn(&'a mut sqlx::PgConnection),
}

/// Runs `$body` with `$exec` bound to the sqlx executor of `$target` and `$qb` to the
/// matching sea-query builder. The body is written once and compiled per backend.
macro_rules! dispatch {
    ($target:expr, |$exec:ident, $qb:ident| $body:expr) => {
        match $target {
            $crate::dialect::Target::SqlitePool($exec) => {
                let $qb = ::sea_query::SqliteQueryBuilder;
                $body
            }
            $crate::dialect::Target::SqliteConn($exec) => {
                let $qb = ::sea_query::SqliteQueryBuilder;
                $body
            }
            $crate::dialect::Target::PgPool($exec) => {
                let $qb = ::sea_query::PostgresQueryBuilder;
                $body
            }
            $crate::dialect::Target::PgConn($exec) => {
                let $qb = ::sea_query::PostgresQueryBuilder;
                $body
            }
        }
    };
}

/// Runs a statement on `target`; the shared body of every `fetch_*`/`execute` method of
/// [`crate::Db`] and [`crate::Tx`].
pub(crate) mod run {
    use sea_query_sqlx::SqlxBinder;
    use sqlx::AssertSqlSafe;

    use super::{FromAnyRow, Target};

    // sea-query renders values as placeholders and returns them separately, so the SQL
    // text holds no values: that is what makes it safe to assert.

    pub async fn fetch_all<T: FromAnyRow>(
        target: Target<'_>,
        stmt: &impl SqlxBinder,
    ) -> Result<Vec<T>, sqlx::Error> {
        dispatch!(target, |exec, qb| {
            let (sql, values) = stmt.build_sqlx(qb);
            sqlx::query_as_with(AssertSqlSafe(sql), values)
                .fetch_all(exec)
                .await
        })
    }

    pub async fn fetch_optional<T: FromAnyRow>(
        target: Target<'_>,
        stmt: &impl SqlxBinder,
    ) -> Result<Option<T>, sqlx::Error> {
        dispatch!(target, |exec, qb| {
            let (sql, values) = stmt.build_sqlx(qb);
            sqlx::query_as_with(AssertSqlSafe(sql), values)
                .fetch_optional(exec)
                .await
        })
    }

    pub async fn execute(target: Target<'_>, stmt: &impl SqlxBinder) -> Result<u64, sqlx::Error> {
        dispatch!(target, |exec, qb| {
            let (sql, values) = stmt.build_sqlx(qb);
            sqlx::query_with(AssertSqlSafe(sql), values)
                .execute(exec)
                .await
                .map(|r| r.rows_affected())
        })
    }

    /// Sends the rows of `stmt` to `rows` as the database returns them (one query, read
    /// through the driver's cursor), in batches of up to `batch` rows so the hand-off
    /// between tasks is paid per batch, not per row; until the rows end, `rows` is
    /// closed, or a send waits longer than `idle` (nobody reads). Returns how many rows
    /// were sent and whether that was all of them.
    pub async fn stream<T: FromAnyRow>(
        target: Target<'_>,
        stmt: &impl SqlxBinder,
        rows: &tokio::sync::mpsc::Sender<Vec<T>>,
        batch: usize,
        idle: std::time::Duration,
    ) -> Result<(u64, bool), sqlx::Error> {
        use futures_core::Stream;
        dispatch!(target, |exec, qb| {
            let (sql, values) = stmt.build_sqlx(qb);
            let mut cursor = sqlx::query_as_with(AssertSqlSafe(sql), values).fetch(exec);
            let mut sent = 0;
            let mut pending = Vec::with_capacity(batch);
            loop {
                let next =
                    std::future::poll_fn(|cx| std::pin::Pin::new(&mut cursor).poll_next(cx)).await;
                let ended = match next.transpose()? {
                    Some(row) => {
                        pending.push(row);
                        false
                    }
                    None => true,
                };
                if pending.len() >= batch || (ended && !pending.is_empty()) {
                    let n = pending.len() as u64;
                    let full = std::mem::replace(&mut pending, Vec::with_capacity(batch));
                    match tokio::time::timeout(idle, rows.send(full)).await {
                        Ok(Ok(())) => sent += n,
                        // The reader is gone, or stopped reading: stop.
                        _ => return Ok((sent, false)),
                    }
                }
                if ended {
                    return Ok((sent, true));
                }
            }
        })
    }

    /// Runs value-free SQL (DDL, `SELECT 1`) as it is.
    pub async fn raw(target: Target<'_>, sql: &'static str) -> Result<(), sqlx::Error> {
        dispatch!(target, |exec, _qb| sqlx::raw_sql(sql)
            .execute(exec)
            .await
            .map(|_| ()))
    }
}
