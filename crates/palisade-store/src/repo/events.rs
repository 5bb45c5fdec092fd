//! `events`: the domain-event log (the transactional outbox). A row is appended in the
//! transaction of the change it describes, so it exists exactly when the change does;
//! consumers read the log in id order.

use sea_query::{Expr, ExprTrait, Iden, Order, Query};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Exec, StoreError};

#[derive(Iden)]
enum Events {
    Table,
    Id,
    Type,
    SubjectType,
    SubjectId,
    ActorId,
    OwnerId,
    Data,
    CreatedAt,
}

const COLUMNS: [Events; 8] = [
    Events::Id,
    Events::Type,
    Events::SubjectType,
    Events::SubjectId,
    Events::ActorId,
    Events::OwnerId,
    Events::Data,
    Events::CreatedAt,
];

/// An `events` row.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct EventRow {
    /// UUIDv7: ids sort by creation.
    pub id: Uuid,
    /// `contract.created`, `contract.updated`, …
    #[sqlx(rename = "type")]
    pub kind: String,
    pub subject_type: String,
    pub subject_id: String,
    pub actor_id: Option<Uuid>,
    /// Whose record (or account) it is about: who is notified.
    pub owner_id: Option<Uuid>,
    pub data: serde_json::Value,
    pub created_at: OffsetDateTime,
}

pub async fn append(ex: impl Into<Exec<'_>>, e: &EventRow) -> Result<(), StoreError> {
    let stmt = Query::insert()
        .into_table(Events::Table)
        .columns(COLUMNS)
        .values_panic([
            e.id.into(),
            e.kind.clone().into(),
            e.subject_type.clone().into(),
            e.subject_id.clone().into(),
            e.actor_id.into(),
            e.owner_id.into(),
            e.data.clone().into(),
            e.created_at.into(),
        ])
        .to_owned();
    ex.into().execute("events", &stmt).await.map(|_| ())
}

pub async fn by_id(ex: impl Into<Exec<'_>>, id: Uuid) -> Result<Option<EventRow>, StoreError> {
    let stmt = Query::select()
        .columns(COLUMNS)
        .from(Events::Table)
        .and_where(Expr::col(Events::Id).eq(id))
        .to_owned();
    ex.into().fetch_optional("events", &stmt).await
}

/// Up to `limit` events after `after` (all from the start without it), oldest first.
pub async fn after(
    ex: impl Into<Exec<'_>>,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<EventRow>, StoreError> {
    let mut stmt = Query::select();
    stmt.columns(COLUMNS)
        .from(Events::Table)
        .order_by(Events::Id, Order::Asc)
        .limit(limit);
    if let Some(id) = after {
        stmt.and_where(Expr::col(Events::Id).gt(id));
    }
    ex.into().fetch_all("events", &stmt).await
}

/// The events of one subject, oldest first.
pub async fn of_subject(
    ex: impl Into<Exec<'_>>,
    subject_type: &str,
    subject_id: &str,
) -> Result<Vec<EventRow>, StoreError> {
    let stmt = Query::select()
        .columns(COLUMNS)
        .from(Events::Table)
        .and_where(Expr::col(Events::SubjectType).eq(subject_type))
        .and_where(Expr::col(Events::SubjectId).eq(subject_id))
        .order_by(Events::Id, Order::Asc)
        .to_owned();
    ex.into().fetch_all("events", &stmt).await
}
