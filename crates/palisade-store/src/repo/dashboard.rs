//! The dashboard's aggregates, one query per block, each served by an index:
//! contracts by status (`contracts_owner_status`, or `contracts_status` for everyone's),
//! payments by status and currency (`payments_contract` through the owner's contracts),
//! and succeeded payments per day (`payments_created`).

use palisade_auth::ids::UserId;
use sea_query::{Alias, Expr, ExprTrait, Iden, Order, Query, SelectStatement};
use time::OffsetDateTime;

use crate::{Backend, Exec, StoreError};

#[derive(Iden)]
enum Contracts {
    Table,
    Id,
    OwnerId,
    Status,
}

#[derive(Iden)]
enum Payments {
    Table,
    ContractId,
    Status,
    Currency,
    CreatedAt,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct StatusCount {
    pub status: String,
    pub n: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct PaymentTotals {
    pub status: String,
    pub currency: String,
    pub n: i64,
    pub amount_cents: i64,
    pub refunded_cents: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct DayTotals {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    pub currency: String,
    pub n: i64,
    pub amount_cents: i64,
}

/// `owner`'s contracts (everyone's without one), counted by status.
pub async fn contracts_by_status(
    ex: impl Into<Exec<'_>>,
    owner: Option<UserId>,
) -> Result<Vec<StatusCount>, StoreError> {
    let mut stmt = Query::select();
    stmt.column(Contracts::Status)
        .expr_as(Expr::cust("COUNT(*)"), "n")
        .from(Contracts::Table)
        .group_by_col(Contracts::Status);
    if let Some(owner) = owner {
        stmt.and_where(Expr::col(Contracts::OwnerId).eq(owner.as_uuid()));
    }
    ex.into().fetch_all("contracts", &stmt).await
}

/// Only the payments on `owner`'s contracts, when given.
fn of_owner(stmt: &mut SelectStatement, owner: Option<UserId>) {
    if let Some(owner) = owner {
        stmt.and_where(
            Expr::col((Payments::Table, Payments::ContractId)).in_subquery(
                Query::select()
                    .column(Contracts::Id)
                    .from(Contracts::Table)
                    .and_where(Expr::col(Contracts::OwnerId).eq(owner.as_uuid()))
                    .to_owned(),
            ),
        );
    }
}

/// Payments on `owner`'s contracts (everyone's without one): count, amount and
/// refunds per status and currency.
pub async fn payments_by_status(
    ex: impl Into<Exec<'_>>,
    owner: Option<UserId>,
) -> Result<Vec<PaymentTotals>, StoreError> {
    let mut stmt = Query::select();
    stmt.column(Payments::Status)
        .column(Payments::Currency)
        .expr_as(Expr::cust("COUNT(*)"), "n")
        // SUM of a BIGINT is NUMERIC on PostgreSQL: cast back.
        .expr_as(
            Expr::cust("CAST(SUM(amount_cents) AS BIGINT)"),
            "amount_cents",
        )
        .expr_as(
            Expr::cust("CAST(SUM(refunded_cents) AS BIGINT)"),
            "refunded_cents",
        )
        .from(Payments::Table)
        .group_by_col(Payments::Status)
        .group_by_col(Payments::Currency)
        .order_by(Payments::Currency, Order::Asc);
    of_owner(&mut stmt, owner);
    ex.into().fetch_all("payments", &stmt).await
}

/// Succeeded payments on `owner`'s contracts (everyone's without one) since `since`:
/// count and amount per UTC day and currency.
pub async fn succeeded_by_day(
    ex: impl Into<Exec<'_>>,
    owner: Option<UserId>,
    since: OffsetDateTime,
) -> Result<Vec<DayTotals>, StoreError> {
    let mut ex = ex.into();
    // Timestamps are stored in UTC: on SQLite as text that starts with the date.
    let day = match ex.backend() {
        Backend::Sqlite => "substr(payments.created_at, 1, 10)",
        Backend::Postgres => "to_char(payments.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    };
    let mut stmt = Query::select();
    stmt.expr_as(Expr::cust(day), "day")
        .column(Payments::Currency)
        .expr_as(Expr::cust("COUNT(*)"), "n")
        .expr_as(
            Expr::cust("CAST(SUM(amount_cents) AS BIGINT)"),
            "amount_cents",
        )
        .from(Payments::Table)
        .and_where(Expr::col((Payments::Table, Payments::Status)).eq("succeeded"))
        .and_where(Expr::col((Payments::Table, Payments::CreatedAt)).gte(since))
        .group_by_col(Alias::new("day"))
        .group_by_col(Payments::Currency)
        .order_by(Alias::new("day"), Order::Asc)
        .order_by(Payments::Currency, Order::Asc);
    of_owner(&mut stmt, owner);
    ex.fetch_all("payments", &stmt).await
}
