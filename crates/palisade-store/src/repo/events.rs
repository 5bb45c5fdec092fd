//! `events`: the domain-event log (the transactional outbox). A row is appended in the
//! transaction of the change it describes, so it exists exactly when the change does;
//! consumers read the log in id order. `event_outbox` holds the ids of the events not
//! yet dispatched to their consumers.

use sea_query::{Expr, ExprTrait, Iden, LockBehavior, LockType, Order, Query};
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

#[derive(Iden)]
enum EventOutbox {
    Table,
    EventId,
}

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

/// Marks event `id` as still to dispatch (in its transaction).
pub async fn pend(ex: impl Into<Exec<'_>>, id: Uuid) -> Result<(), StoreError> {
    let stmt = Query::insert()
        .into_table(EventOutbox::Table)
        .columns([EventOutbox::EventId])
        .values_panic([id.into()])
        .to_owned();
    ex.into().execute("event_outbox", &stmt).await.map(|_| ())
}

/// Takes up to `limit` events still to dispatch, oldest first, off the outbox, inside
/// the dispatching transaction `ex`: they are gone when it commits, back if it rolls
/// back. Concurrent takers on PostgreSQL skip each other's (`FOR UPDATE SKIP
/// LOCKED`); SQLite has one writer at a time.
pub async fn take_pending(
    ex: impl Into<Exec<'_>>,
    limit: u64,
) -> Result<Vec<EventRow>, StoreError> {
    let mut ex = ex.into();
    let chosen = Query::select()
        .column(EventOutbox::EventId)
        .from(EventOutbox::Table)
        .order_by(EventOutbox::EventId, Order::Asc)
        .limit(limit)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .to_owned();
    let taken = Query::delete()
        .from_table(EventOutbox::Table)
        .and_where(Expr::col(EventOutbox::EventId).in_subquery(chosen))
        .returning_col(EventOutbox::EventId)
        .to_owned();
    let ids: Vec<(Uuid,)> = ex.reborrow().fetch_all("event_outbox", &taken).await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let stmt = Query::select()
        .columns(COLUMNS)
        .from(Events::Table)
        .and_where(Expr::col(Events::Id).is_in(ids.into_iter().map(|(id,)| id)))
        .order_by(Events::Id, Order::Asc)
        .to_owned();
    ex.fetch_all("events", &stmt).await
}

/// Takes event `id` off the outbox inside `ex`; `false` when it was not there (already
/// taken).
pub async fn take(ex: impl Into<Exec<'_>>, id: Uuid) -> Result<bool, StoreError> {
    let stmt = Query::delete()
        .from_table(EventOutbox::Table)
        .and_where(Expr::col(EventOutbox::EventId).eq(id))
        .to_owned();
    Ok(ex.into().execute("event_outbox", &stmt).await? == 1)
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
