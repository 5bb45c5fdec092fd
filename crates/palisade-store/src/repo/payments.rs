//! `payments`: what the contracts read of them (their balances, whether any exist).

use palisade_auth::ids::ContractId;
use sea_query::{Expr, ExprTrait, Iden, Query};
use uuid::Uuid;

use crate::{Exec, StoreError};

#[derive(Iden)]
enum Payments {
    Table,
    ContractId,
    Status,
}

/// The status whose amount counts as paid.
pub const SUCCEEDED: &str = "succeeded";

/// What has been paid on a contract and refunded of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Balance {
    pub paid_cents: i64,
    pub refunded_cents: i64,
}

#[derive(sqlx::FromRow)]
struct BalanceRow {
    contract_id: Uuid,
    paid_cents: i64,
    refunded_cents: i64,
}

/// The balances of `ids`, one grouped query over `payments_contract` (contract, status);
/// a contract without payments is left out.
pub async fn balances(
    ex: impl Into<Exec<'_>>,
    ids: &[ContractId],
) -> Result<Vec<(ContractId, Balance)>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let stmt = Query::select()
        .column(Payments::ContractId)
        // SUM of a BIGINT is NUMERIC on PostgreSQL: cast back.
        .expr_as(
            Expr::cust("CAST(COALESCE(SUM(amount_cents), 0) AS BIGINT)"),
            "paid_cents",
        )
        .expr_as(
            Expr::cust("CAST(COALESCE(SUM(refunded_cents), 0) AS BIGINT)"),
            "refunded_cents",
        )
        .from(Payments::Table)
        .and_where(Expr::col(Payments::ContractId).is_in(ids.iter().map(|id| id.as_uuid())))
        .and_where(Expr::col(Payments::Status).eq(SUCCEEDED))
        .group_by_col(Payments::ContractId)
        .to_owned();
    let rows: Vec<BalanceRow> = ex.into().fetch_all("payments", &stmt).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let balance = Balance {
                paid_cents: r.paid_cents,
                refunded_cents: r.refunded_cents,
            };
            (ContractId::from(r.contract_id), balance)
        })
        .collect())
}

/// Whether any payment was made against the contract, whatever its outcome.
pub async fn any_for(ex: impl Into<Exec<'_>>, contract: ContractId) -> Result<bool, StoreError> {
    let stmt = Query::select()
        .expr_as(Expr::val(1i64), "n")
        .from(Payments::Table)
        .and_where(Expr::col(Payments::ContractId).eq(contract.as_uuid()))
        .limit(1)
        .to_owned();
    Ok(super::number(ex, "payments", &stmt).await? > 0)
}
