//! `notifications`: what each user is told, one row per user and event at most.

use palisade_auth::ids::UserId;
use sea_query::{Expr, ExprTrait, Iden, OnConflict, Order, Query};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Exec, StoreError};

#[derive(Iden)]
enum Notifications {
    Table,
    Id,
    UserId,
    EventId,
    Kind,
    Title,
    Body,
    Data,
    ReadAt,
    CreatedAt,
}

const COLUMNS: [Notifications; 9] = [
    Notifications::Id,
    Notifications::UserId,
    Notifications::EventId,
    Notifications::Kind,
    Notifications::Title,
    Notifications::Body,
    Notifications::Data,
    Notifications::ReadAt,
    Notifications::CreatedAt,
];

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct NotificationRow {
    /// UUIDv7: ids sort by creation.
    pub id: Uuid,
    #[sqlx(try_from = "Uuid")]
    pub user_id: UserId,
    pub event_id: Uuid,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub data: serde_json::Value,
    pub read_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

/// Stores `n` unless its user was told of its event already; `false` then.
pub async fn insert_if_absent(
    ex: impl Into<Exec<'_>>,
    n: &NotificationRow,
) -> Result<bool, StoreError> {
    let stmt = Query::insert()
        .into_table(Notifications::Table)
        .columns(COLUMNS)
        .values_panic([
            n.id.into(),
            n.user_id.as_uuid().into(),
            n.event_id.into(),
            n.kind.clone().into(),
            n.title.clone().into(),
            n.body.clone().into(),
            n.data.clone().into(),
            n.read_at.into(),
            n.created_at.into(),
        ])
        .on_conflict(
            OnConflict::columns([Notifications::UserId, Notifications::EventId])
                .do_nothing()
                .to_owned(),
        )
        .to_owned();
    Ok(ex.into().execute("notifications", &stmt).await? == 1)
}

/// A page of `user`'s notifications, newest first, before `before`; only unread ones
/// when `unread`.
pub async fn page(
    ex: impl Into<Exec<'_>>,
    user: UserId,
    unread: bool,
    before: Option<Uuid>,
    limit: u64,
) -> Result<Vec<NotificationRow>, StoreError> {
    let mut stmt = Query::select();
    stmt.columns(COLUMNS)
        .from(Notifications::Table)
        .and_where(Expr::col(Notifications::UserId).eq(user.as_uuid()))
        .order_by(Notifications::Id, Order::Desc)
        .limit(limit);
    if unread {
        stmt.and_where(Expr::col(Notifications::ReadAt).is_null());
    }
    if let Some(id) = before {
        stmt.and_where(Expr::col(Notifications::Id).lt(id));
    }
    ex.into().fetch_all("notifications", &stmt).await
}

/// Up to `limit` of `user`'s notifications after `after`, oldest first: what a stream
/// has not sent yet.
pub async fn after(
    ex: impl Into<Exec<'_>>,
    user: UserId,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<NotificationRow>, StoreError> {
    let mut stmt = Query::select();
    stmt.columns(COLUMNS)
        .from(Notifications::Table)
        .and_where(Expr::col(Notifications::UserId).eq(user.as_uuid()))
        .order_by(Notifications::Id, Order::Asc)
        .limit(limit);
    if let Some(id) = after {
        stmt.and_where(Expr::col(Notifications::Id).gt(id));
    }
    ex.into().fetch_all("notifications", &stmt).await
}

pub async fn unread_count(ex: impl Into<Exec<'_>>, user: UserId) -> Result<i64, StoreError> {
    let stmt = Query::select()
        .expr_as(Expr::col(Notifications::Id).count(), "n")
        .from(Notifications::Table)
        .and_where(Expr::col(Notifications::UserId).eq(user.as_uuid()))
        .and_where(Expr::col(Notifications::ReadAt).is_null())
        .to_owned();
    super::number(ex, "notifications", &stmt).await
}

/// Marks `user`'s notification `id` read (if it was not); `false` when they have no
/// such notification.
pub async fn mark_read(
    ex: impl Into<Exec<'_>>,
    user: UserId,
    id: Uuid,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let mut ex = ex.into();
    let stmt = Query::update()
        .table(Notifications::Table)
        .value(
            Notifications::ReadAt,
            Expr::col(Notifications::ReadAt).if_null(at),
        )
        .and_where(Expr::col(Notifications::UserId).eq(user.as_uuid()))
        .and_where(Expr::col(Notifications::Id).eq(id))
        .to_owned();
    Ok(ex.execute("notifications", &stmt).await? == 1)
}

/// Marks every unread notification of `user` read; how many.
pub async fn mark_all_read(
    ex: impl Into<Exec<'_>>,
    user: UserId,
    at: OffsetDateTime,
) -> Result<u64, StoreError> {
    let stmt = Query::update()
        .table(Notifications::Table)
        .value(Notifications::ReadAt, at)
        .and_where(Expr::col(Notifications::UserId).eq(user.as_uuid()))
        .and_where(Expr::col(Notifications::ReadAt).is_null())
        .to_owned();
    ex.into().execute("notifications", &stmt).await
}
