//! `payments` and `refunds`: payments against contracts, their settlement and
//! refunds, and what the contracts read of them (balances, whether any exist).

use palisade_auth::ids::{ContractId, PaymentId, RefundId, UserId};
use sea_query::{Alias, Expr, ExprTrait, Iden, Order, Query, SimpleExpr};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Backend, Exec, StoreError};

#[derive(Iden)]
enum Payments {
    Table,
    Id,
    ContractId,
    PayerId,
    AmountCents,
    Currency,
    Status,
    PaymentMethod,
    FailureCode,
    RefundedCents,
    Provider,
    ProviderRef,
    Description,
    CreatedAt,
    UpdatedAt,
}

#[derive(Iden)]
enum Refunds {
    Table,
    Id,
    PaymentId,
    AmountCents,
    RequestedBy,
    ProviderRef,
    CreatedAt,
}

const COLUMNS: [Payments; 14] = [
    Payments::Id,
    Payments::ContractId,
    Payments::PayerId,
    Payments::AmountCents,
    Payments::Currency,
    Payments::Status,
    Payments::PaymentMethod,
    Payments::FailureCode,
    Payments::RefundedCents,
    Payments::Provider,
    Payments::ProviderRef,
    Payments::Description,
    Payments::CreatedAt,
    Payments::UpdatedAt,
];

const REFUND_COLUMNS: [Refunds; 6] = [
    Refunds::Id,
    Refunds::PaymentId,
    Refunds::AmountCents,
    Refunds::RequestedBy,
    Refunds::ProviderRef,
    Refunds::CreatedAt,
];

/// The status of a payment the provider has not answered for yet.
pub const PENDING: &str = "pending";
/// The status of a payment the provider refused.
pub const FAILED: &str = "failed";

/// A `payments` row.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct PaymentRow {
    #[sqlx(try_from = "Uuid")]
    pub id: PaymentId,
    #[sqlx(try_from = "Uuid")]
    pub contract_id: ContractId,
    pub payer_id: Option<Uuid>,
    pub amount_cents: i64,
    pub currency: String,
    pub status: String,
    pub payment_method: String,
    pub failure_code: Option<String>,
    pub refunded_cents: i64,
    pub provider: String,
    pub provider_ref: Option<String>,
    pub description: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

pub async fn insert(ex: impl Into<Exec<'_>>, p: &PaymentRow) -> Result<(), StoreError> {
    let values: [SimpleExpr; 14] = [
        p.id.as_uuid().into(),
        p.contract_id.as_uuid().into(),
        p.payer_id.into(),
        p.amount_cents.into(),
        p.currency.clone().into(),
        p.status.clone().into(),
        p.payment_method.clone().into(),
        p.failure_code.clone().into(),
        p.refunded_cents.into(),
        p.provider.clone().into(),
        p.provider_ref.clone().into(),
        p.description.clone().into(),
        p.created_at.into(),
        p.updated_at.into(),
    ];
    let stmt = Query::insert()
        .into_table(Payments::Table)
        .columns(COLUMNS)
        .values_panic(values)
        .to_owned();
    ex.into().execute("payments", &stmt).await.map(|_| ())
}

pub async fn by_id(
    ex: impl Into<Exec<'_>>,
    id: PaymentId,
) -> Result<Option<PaymentRow>, StoreError> {
    let stmt = Query::select()
        .columns(COLUMNS)
        .from(Payments::Table)
        .and_where(Expr::col(Payments::Id).eq(id.as_uuid()))
        .to_owned();
    ex.into().fetch_optional("payments", &stmt).await
}

/// The payment the provider knows as `reference` (served by `payments_provider_ref`).
pub async fn by_provider_ref(
    ex: impl Into<Exec<'_>>,
    reference: &str,
) -> Result<Option<PaymentRow>, StoreError> {
    let stmt = Query::select()
        .columns(COLUMNS)
        .from(Payments::Table)
        .and_where(Expr::col(Payments::ProviderRef).eq(reference))
        .limit(1)
        .to_owned();
    ex.into().fetch_optional("payments", &stmt).await
}

/// Which payments a list reads. Every field narrows.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub payer: Option<UserId>,
    pub contract: Option<ContractId>,
    pub status: Option<&'static str>,
}

/// A page of the payments `filter` selects, newest first (ids are UUIDv7), older than
/// `before` when given.
pub async fn page(
    ex: impl Into<Exec<'_>>,
    filter: &Filter,
    before: Option<PaymentId>,
    limit: u64,
) -> Result<Vec<PaymentRow>, StoreError> {
    let mut stmt = select(filter);
    stmt.limit(limit);
    if let Some(id) = before {
        stmt.and_where(Expr::col(Payments::Id).lt(id.as_uuid()));
    }
    ex.into().fetch_all("payments", &stmt).await
}

/// Streams every payment `filter` selects into `rows`, newest first, in batches of up
/// to `batch` (see [`crate::Db::stream`]).
pub async fn stream(
    db: &crate::Db,
    filter: &Filter,
    rows: &tokio::sync::mpsc::Sender<Vec<PaymentRow>>,
    batch: usize,
    idle: std::time::Duration,
) -> Result<(u64, bool), StoreError> {
    db.stream("payments", &select(filter), rows, batch, idle)
        .await
}

/// The `SELECT` of the payments `filter` selects, newest first.
fn select(filter: &Filter) -> sea_query::SelectStatement {
    let mut stmt = Query::select();
    stmt.columns(COLUMNS)
        .from(Payments::Table)
        .order_by(Payments::Id, Order::Desc);
    if let Some(payer) = filter.payer {
        stmt.and_where(Expr::col(Payments::PayerId).eq(payer.as_uuid()));
    }
    if let Some(contract) = filter.contract {
        stmt.and_where(Expr::col(Payments::ContractId).eq(contract.as_uuid()));
    }
    if let Some(status) = filter.status {
        stmt.and_where(Expr::col(Payments::Status).eq(status));
    }
    stmt
}

/// Moves a pending payment to its outcome; `false` when it was no longer pending.
pub async fn settle(ex: impl Into<Exec<'_>>, p: &PaymentRow) -> Result<bool, StoreError> {
    let stmt = Query::update()
        .table(Payments::Table)
        .values([
            (Payments::Status, p.status.clone().into()),
            (Payments::FailureCode, p.failure_code.clone().into()),
            (Payments::ProviderRef, p.provider_ref.clone().into()),
            (Payments::UpdatedAt, p.updated_at.into()),
        ])
        .and_where(Expr::col(Payments::Id).eq(p.id.as_uuid()))
        .and_where(Expr::col(Payments::Status).eq(PENDING))
        .to_owned();
    Ok(ex.into().execute("payments", &stmt).await? == 1)
}

/// The cents a contract has taken or is taking: succeeded and pending payments, less
/// what was refunded of them.
pub async fn committed_cents(
    ex: impl Into<Exec<'_>>,
    contract: ContractId,
) -> Result<i64, StoreError> {
    let stmt = Query::select()
        // SUM of a BIGINT is NUMERIC on PostgreSQL: cast back.
        .expr_as(
            Expr::cust("CAST(COALESCE(SUM(amount_cents - refunded_cents), 0) AS BIGINT)"),
            "n",
        )
        .from(Payments::Table)
        .and_where(Expr::col(Payments::ContractId).eq(contract.as_uuid()))
        .and_where(Expr::col(Payments::Status).is_in([SUCCEEDED, PENDING]))
        .to_owned();
    super::number(ex, "payments", &stmt).await
}

/// A `refunds` row.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct RefundRow {
    #[sqlx(try_from = "Uuid")]
    pub id: RefundId,
    #[sqlx(try_from = "Uuid")]
    pub payment_id: PaymentId,
    pub amount_cents: i64,
    pub requested_by: Option<Uuid>,
    pub provider_ref: Option<String>,
    pub created_at: OffsetDateTime,
}

/// Records a refund and adds it to its payment's `refunded_cents`, if the payment
/// succeeded and that leaves the refunded sum within the amount paid; `false` (and
/// nothing written) otherwise.
pub async fn refund(ex: impl Into<Exec<'_>>, r: &RefundRow) -> Result<bool, StoreError> {
    let mut ex = ex.into();
    let add = Query::update()
        .table(Payments::Table)
        .value(
            Payments::RefundedCents,
            Expr::col(Payments::RefundedCents).add(r.amount_cents),
        )
        .value(Payments::UpdatedAt, r.created_at)
        .and_where(Expr::col(Payments::Id).eq(r.payment_id.as_uuid()))
        .and_where(Expr::col(Payments::Status).eq(SUCCEEDED))
        .and_where(
            Expr::col(Payments::RefundedCents)
                .add(r.amount_cents)
                .lte(Expr::col(Payments::AmountCents)),
        )
        .to_owned();
    if ex.execute("payments", &add).await? == 0 {
        return Ok(false);
    }
    let stmt = Query::insert()
        .into_table(Refunds::Table)
        .columns(REFUND_COLUMNS)
        .values_panic([
            r.id.as_uuid().into(),
            r.payment_id.as_uuid().into(),
            r.amount_cents.into(),
            r.requested_by.into(),
            r.provider_ref.clone().into(),
            r.created_at.into(),
        ])
        .to_owned();
    ex.execute("refunds", &stmt).await?;
    Ok(true)
}

pub async fn refund_by_id(
    ex: impl Into<Exec<'_>>,
    id: RefundId,
) -> Result<Option<RefundRow>, StoreError> {
    let stmt = Query::select()
        .columns(REFUND_COLUMNS)
        .from(Refunds::Table)
        .and_where(Expr::col(Refunds::Id).eq(id.as_uuid()))
        .to_owned();
    ex.into().fetch_optional("refunds", &stmt).await
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

/// Notes the provider's reference of a refund.
pub async fn set_refund_ref(
    ex: impl Into<Exec<'_>>,
    id: RefundId,
    reference: &str,
) -> Result<(), StoreError> {
    let stmt = Query::update()
        .table(Refunds::Table)
        .value(Refunds::ProviderRef, reference)
        .and_where(Expr::col(Refunds::Id).eq(id.as_uuid()))
        .to_owned();
    ex.into().execute("refunds", &stmt).await.map(|_| ())
}

/// Notes the provider's reference of a payment that stays pending.
pub async fn set_reference(
    ex: impl Into<Exec<'_>>,
    id: PaymentId,
    reference: Option<&str>,
) -> Result<(), StoreError> {
    let stmt = Query::update()
        .table(Payments::Table)
        .value(Payments::ProviderRef, reference.map(str::to_owned))
        .and_where(Expr::col(Payments::Id).eq(id.as_uuid()))
        .to_owned();
    ex.into().execute("payments", &stmt).await.map(|_| ())
}

/// A payment found by [`search`]: its description is its title.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct PaymentHit {
    #[sqlx(try_from = "Uuid")]
    pub id: PaymentId,
    pub title: String,
    /// Plain text around the best match.
    pub snippet: String,
    /// Higher is better.
    pub score: f64,
}

/// The best `limit` payments whose description holds every word of `words`, best
/// first; only `payer`'s when given (`payments_fts` on SQLite, the `payments_search`
/// expression index on PostgreSQL).
pub async fn search(
    ex: impl Into<Exec<'_>>,
    payer: Option<UserId>,
    words: &[String],
    limit: u64,
) -> Result<Vec<PaymentHit>, StoreError> {
    let mut ex = ex.into();
    let mut stmt = Query::select();
    stmt.column((Payments::Table, Payments::Id)).expr_as(
        Expr::cust("COALESCE(payments.description, '')"),
        Alias::new("title"),
    );
    match ex.backend() {
        Backend::Sqlite => {
            const RANK: &str = "bm25(payments_fts)";
            let fts = Alias::new("payments_fts");
            stmt.expr_as(
                Expr::cust("snippet(payments_fts, 1, '', '', '…', 16)"),
                Alias::new("snippet"),
            )
            .expr_as(Expr::cust(format!("-{RANK}")), Alias::new("score"))
            .from(fts.clone())
            .inner_join(
                Payments::Table,
                Expr::col((Payments::Table, Payments::Id)).equals((fts, Alias::new("payment_id"))),
            )
            .and_where(Expr::cust_with_values(
                "payments_fts MATCH ?",
                [super::contracts::fts5_query(words)],
            ))
            .order_by_expr(Expr::cust(RANK), Order::Asc);
        }
        Backend::Postgres => {
            // The expression of the index `payments_search`, so the index serves it.
            const DOCUMENT: &str = "to_tsvector('simple', COALESCE(payments.description, ''))";
            let query = words.join(" ");
            stmt.expr_as(
                Expr::cust_with_values(
                    "ts_headline('simple', COALESCE(payments.description, ''), \
                     plainto_tsquery('simple', $1), \
                     'StartSel=\"\", StopSel=\"\", MaxWords=24, MinWords=8')",
                    [query.clone()],
                ),
                Alias::new("snippet"),
            )
            .expr_as(
                Expr::cust_with_values(
                    format!("ts_rank({DOCUMENT}, plainto_tsquery('simple', $1))::float8"),
                    [query.clone()],
                ),
                Alias::new("score"),
            )
            .from(Payments::Table)
            .and_where(Expr::cust_with_values(
                format!("{DOCUMENT} @@ plainto_tsquery('simple', $1)"),
                [query],
            ))
            .order_by(Alias::new("score"), Order::Desc);
        }
    }
    if let Some(payer) = payer {
        stmt.and_where(Expr::col((Payments::Table, Payments::PayerId)).eq(payer.as_uuid()));
    }
    stmt.order_by((Payments::Table, Payments::Id), Order::Desc)
        .limit(limit);
    ex.fetch_all("payments", &stmt).await
}
