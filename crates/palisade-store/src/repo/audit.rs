//! `audit_log`: the hash-chained, append-only audit trail. What a row's hash covers is
//! the audit service's rule; this module stores rows in chain order and reads them back.

use sea_query::{Expr, ExprTrait, Iden, Order, Query};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Backend, Exec, StoreError, Tx};

#[derive(Iden)]
enum AuditLog {
    Table,
    Seq,
    Id,
    OccurredAt,
    ActorId,
    ActorIp,
    Action,
    Outcome,
    TargetType,
    TargetId,
    RequestId,
    Details,
    PrevHash,
    Hash,
}

const COLUMNS: [AuditLog; 13] = [
    AuditLog::Seq,
    AuditLog::Id,
    AuditLog::OccurredAt,
    AuditLog::ActorId,
    AuditLog::ActorIp,
    AuditLog::Action,
    AuditLog::Outcome,
    AuditLog::TargetType,
    AuditLog::TargetId,
    AuditLog::RequestId,
    AuditLog::Details,
    AuditLog::PrevHash,
    AuditLog::Hash,
];

/// An `audit_log` row.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Event {
    pub seq: i64,
    pub id: Uuid,
    pub occurred_at: OffsetDateTime,
    pub actor_id: Option<Uuid>,
    pub actor_ip: Option<String>,
    pub action: String,
    pub outcome: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub request_id: Option<String>,
    /// Canonical JSON.
    pub details: String,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

#[derive(sqlx::FromRow)]
struct Tail {
    seq: i64,
    hash: Vec<u8>,
}

/// Serialises writers of the chain until `tx` ends: on PostgreSQL a transaction-scoped
/// advisory lock; SQLite's `BEGIN IMMEDIATE` already admits one writer at a time.
pub async fn lock_chain(tx: &mut Tx) -> Result<(), StoreError> {
    if tx.backend() == Backend::Postgres {
        // 0x70616c6973616465 is "palisade" in ASCII: the key of this one lock.
        tx.execute_script("SELECT pg_advisory_xact_lock(8097872805151990885)")
            .await?;
    }
    Ok(())
}

/// The last row's sequence number and hash; `None` for an empty log.
pub async fn tail(ex: impl Into<Exec<'_>>) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
    let mut ex = ex.into();
    let stmt = Query::select()
        .columns([AuditLog::Seq, AuditLog::Hash])
        .from(AuditLog::Table)
        .order_by(AuditLog::Seq, Order::Desc)
        .limit(1)
        .to_owned();
    let row: Option<Tail> = ex.fetch_optional("audit_log", &stmt).await?;
    Ok(row.map(|t| (t.seq, t.hash)))
}

pub async fn insert(ex: impl Into<Exec<'_>>, e: &Event) -> Result<(), StoreError> {
    let mut ex = ex.into();
    let stmt = Query::insert()
        .into_table(AuditLog::Table)
        .columns(COLUMNS)
        .values_panic([
            e.seq.into(),
            e.id.into(),
            e.occurred_at.into(),
            e.actor_id.into(),
            e.actor_ip.clone().into(),
            e.action.clone().into(),
            e.outcome.clone().into(),
            e.target_type.clone().into(),
            e.target_id.clone().into(),
            e.request_id.clone().into(),
            e.details.clone().into(),
            e.prev_hash.clone().into(),
            e.hash.clone().into(),
        ])
        .to_owned();
    ex.execute("audit_log", &stmt).await.map(|_| ())
}

/// Filters of `GET /api/v1/audit`.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub actor: Option<Uuid>,
    pub action: Option<String>,
    pub since: Option<OffsetDateTime>,
    /// Rows before this sequence number (the cursor).
    pub before: Option<i64>,
}

/// Newest first.
pub async fn page(
    ex: impl Into<Exec<'_>>,
    f: &Filter,
    limit: u64,
) -> Result<Vec<Event>, StoreError> {
    let mut ex = ex.into();
    let mut stmt = Query::select();
    stmt.columns(COLUMNS)
        .from(AuditLog::Table)
        .order_by(AuditLog::Seq, Order::Desc)
        .limit(limit);
    if let Some(a) = f.actor {
        stmt.and_where(Expr::col(AuditLog::ActorId).eq(a));
    }
    if let Some(a) = &f.action {
        stmt.and_where(Expr::col(AuditLog::Action).eq(a.as_str()));
    }
    if let Some(t) = f.since {
        stmt.and_where(Expr::col(AuditLog::OccurredAt).gte(t));
    }
    if let Some(b) = f.before {
        stmt.and_where(Expr::col(AuditLog::Seq).lt(b));
    }
    ex.fetch_all("audit_log", &stmt).await
}

/// Up to `limit` rows in chain order after sequence number `after`, for walking the chain.
pub async fn chunk_after(
    ex: impl Into<Exec<'_>>,
    after: i64,
    limit: u64,
) -> Result<Vec<Event>, StoreError> {
    let mut ex = ex.into();
    let stmt = Query::select()
        .columns(COLUMNS)
        .from(AuditLog::Table)
        .and_where(Expr::col(AuditLog::Seq).gt(after))
        .order_by(AuditLog::Seq, Order::Asc)
        .limit(limit)
        .to_owned();
    ex.fetch_all("audit_log", &stmt).await
}

/// How many events of each action, outcome and detail (the `reason` of a failure, the
/// `tier` of a rate limit) occurred since `since`.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Tally {
    pub action: String,
    pub outcome: String,
    pub detail: Option<String>,
    pub n: i64,
}

pub async fn tally_since(db: &crate::Db, since: OffsetDateTime) -> Result<Vec<Tally>, StoreError> {
    let detail = match db.backend() {
        Backend::Postgres => "COALESCE(details::jsonb ->> 'reason', details::jsonb ->> 'tier')",
        Backend::Sqlite => {
            "COALESCE(json_extract(details, '$.reason'), json_extract(details, '$.tier'))"
        }
    };
    let stmt = Query::select()
        .columns([AuditLog::Action, AuditLog::Outcome])
        .expr_as(Expr::cust(detail), "detail")
        .expr_as(Expr::col(sea_query::Asterisk).count(), "n")
        .from(AuditLog::Table)
        .and_where(Expr::col(AuditLog::OccurredAt).gte(since))
        .group_by_columns([AuditLog::Action, AuditLog::Outcome])
        .add_group_by([Expr::cust(detail)])
        .order_by(AuditLog::Action, Order::Asc)
        .to_owned();
    Exec::from(db).fetch_all("audit_log", &stmt).await
}
