//! `webhook_endpoints` and `webhook_deliveries`: where outbound webhooks go, and the
//! log of every attempt to send one.

use sea_query::{Expr, ExprTrait, Iden, LockType, Order, Query};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Exec, StoreError};

#[derive(Iden)]
enum WebhookEndpoints {
    Table,
    Id,
    Url,
    Events,
    Description,
    Secret,
    PreviousSecret,
    PreviousUntil,
    FailingSince,
    LastFailureAt,
    DisabledAt,
    DisabledReason,
    CreatedAt,
    UpdatedAt,
}

const ENDPOINT_COLUMNS: [WebhookEndpoints; 13] = [
    WebhookEndpoints::Id,
    WebhookEndpoints::Url,
    WebhookEndpoints::Events,
    WebhookEndpoints::Description,
    WebhookEndpoints::Secret,
    WebhookEndpoints::PreviousSecret,
    WebhookEndpoints::PreviousUntil,
    WebhookEndpoints::FailingSince,
    WebhookEndpoints::LastFailureAt,
    WebhookEndpoints::DisabledAt,
    WebhookEndpoints::DisabledReason,
    WebhookEndpoints::CreatedAt,
    WebhookEndpoints::UpdatedAt,
];

/// A `webhook_endpoints` row.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct EndpointRow {
    pub id: Uuid,
    pub url: String,
    /// The JSON list of the event types sent to it.
    pub events: serde_json::Value,
    pub description: Option<String>,
    /// Sealed.
    pub secret: Vec<u8>,
    /// Sealed; signs beside `secret` until `previous_until`.
    pub previous_secret: Option<Vec<u8>>,
    pub previous_until: Option<OffsetDateTime>,
    /// When the current run of failed attempts began.
    pub failing_since: Option<OffsetDateTime>,
    pub last_failure_at: Option<OffsetDateTime>,
    pub disabled_at: Option<OffsetDateTime>,
    pub disabled_reason: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl EndpointRow {
    /// Whether events of type `kind` are sent to it.
    pub fn wants(&self, kind: &str) -> bool {
        self.events
            .as_array()
            .is_some_and(|types| types.iter().any(|t| t.as_str() == Some(kind)))
    }
}

pub async fn insert_endpoint(ex: impl Into<Exec<'_>>, e: &EndpointRow) -> Result<(), StoreError> {
    let stmt = Query::insert()
        .into_table(WebhookEndpoints::Table)
        .columns(ENDPOINT_COLUMNS)
        .values_panic([
            e.id.into(),
            e.url.clone().into(),
            e.events.clone().into(),
            e.description.clone().into(),
            e.secret.clone().into(),
            e.previous_secret.clone().into(),
            e.previous_until.into(),
            e.failing_since.into(),
            e.last_failure_at.into(),
            e.disabled_at.into(),
            e.disabled_reason.clone().into(),
            e.created_at.into(),
            e.updated_at.into(),
        ])
        .to_owned();
    ex.into()
        .execute("webhook_endpoints", &stmt)
        .await
        .map(|_| ())
}

/// Writes `e` whole but for its creation; `false` when it no longer exists. Read it
/// with [`endpoint_locked`] in the same transaction, so that no change made meanwhile is
/// written over.
pub async fn update_endpoint(ex: impl Into<Exec<'_>>, e: &EndpointRow) -> Result<bool, StoreError> {
    let stmt = Query::update()
        .table(WebhookEndpoints::Table)
        .values([
            (WebhookEndpoints::Url, e.url.clone().into()),
            (WebhookEndpoints::Events, e.events.clone().into()),
            (WebhookEndpoints::Description, e.description.clone().into()),
            (WebhookEndpoints::Secret, e.secret.clone().into()),
            (
                WebhookEndpoints::PreviousSecret,
                e.previous_secret.clone().into(),
            ),
            (WebhookEndpoints::PreviousUntil, e.previous_until.into()),
            (WebhookEndpoints::FailingSince, e.failing_since.into()),
            (WebhookEndpoints::LastFailureAt, e.last_failure_at.into()),
            (WebhookEndpoints::DisabledAt, e.disabled_at.into()),
            (
                WebhookEndpoints::DisabledReason,
                e.disabled_reason.clone().into(),
            ),
            (WebhookEndpoints::UpdatedAt, e.updated_at.into()),
        ])
        .and_where(Expr::col(WebhookEndpoints::Id).eq(e.id))
        .to_owned();
    Ok(ex.into().execute("webhook_endpoints", &stmt).await? == 1)
}

pub async fn endpoint(
    ex: impl Into<Exec<'_>>,
    id: Uuid,
) -> Result<Option<EndpointRow>, StoreError> {
    let stmt = Query::select()
        .columns(ENDPOINT_COLUMNS)
        .from(WebhookEndpoints::Table)
        .and_where(Expr::col(WebhookEndpoints::Id).eq(id))
        .to_owned();
    ex.into().fetch_optional("webhook_endpoints", &stmt).await
}

/// Endpoint `id`, locked until `tx` ends (PostgreSQL `FOR UPDATE`; SQLite's
/// transactions have the one writer lock already).
pub async fn endpoint_locked(
    tx: &mut crate::Tx,
    id: Uuid,
) -> Result<Option<EndpointRow>, StoreError> {
    let stmt = Query::select()
        .columns(ENDPOINT_COLUMNS)
        .from(WebhookEndpoints::Table)
        .and_where(Expr::col(WebhookEndpoints::Id).eq(id))
        .lock(LockType::Update)
        .to_owned();
    Exec::from(tx)
        .fetch_optional("webhook_endpoints", &stmt)
        .await
}

/// Every endpoint, oldest first; only the enabled ones with `enabled_only`.
pub async fn endpoints(
    ex: impl Into<Exec<'_>>,
    enabled_only: bool,
) -> Result<Vec<EndpointRow>, StoreError> {
    let mut stmt = Query::select();
    stmt.columns(ENDPOINT_COLUMNS)
        .from(WebhookEndpoints::Table)
        .order_by(WebhookEndpoints::Id, Order::Asc);
    if enabled_only {
        stmt.and_where(Expr::col(WebhookEndpoints::DisabledAt).is_null());
    }
    ex.into().fetch_all("webhook_endpoints", &stmt).await
}

pub async fn delete_endpoint(ex: impl Into<Exec<'_>>, id: Uuid) -> Result<bool, StoreError> {
    let stmt = Query::delete()
        .from_table(WebhookEndpoints::Table)
        .and_where(Expr::col(WebhookEndpoints::Id).eq(id))
        .to_owned();
    Ok(ex.into().execute("webhook_endpoints", &stmt).await? == 1)
}

/// Records a failed attempt on endpoint `id` at `at`: starts a run of failures if none
/// is running, or if the last failure came before `quiet_since` (the endpoint was not
/// failing in between, only idle). When the run began, or `None` if the endpoint is
/// gone.
pub async fn failing_since(
    ex: impl Into<Exec<'_>>,
    id: Uuid,
    at: OffsetDateTime,
    quiet_since: OffsetDateTime,
) -> Result<Option<OffsetDateTime>, StoreError> {
    let fresh = Expr::col(WebhookEndpoints::FailingSince)
        .is_null()
        .or(Expr::col(WebhookEndpoints::LastFailureAt).lt(quiet_since));
    let stmt = Query::update()
        .table(WebhookEndpoints::Table)
        .values([
            (
                WebhookEndpoints::FailingSince,
                Expr::case(fresh, at)
                    .finally(Expr::col(WebhookEndpoints::FailingSince))
                    .into(),
            ),
            (WebhookEndpoints::LastFailureAt, at.into()),
        ])
        .and_where(Expr::col(WebhookEndpoints::Id).eq(id))
        .returning_col(WebhookEndpoints::FailingSince)
        .to_owned();
    let rows: Vec<(Option<OffsetDateTime>,)> =
        ex.into().fetch_all("webhook_endpoints", &stmt).await?;
    Ok(rows.into_iter().next().and_then(|(since,)| since))
}

/// Ends endpoint `id`'s run of failures (an attempt succeeded).
pub async fn succeeded(ex: impl Into<Exec<'_>>, id: Uuid) -> Result<(), StoreError> {
    let stmt = Query::update()
        .table(WebhookEndpoints::Table)
        .value(
            WebhookEndpoints::FailingSince,
            Option::<OffsetDateTime>::None,
        )
        .and_where(Expr::col(WebhookEndpoints::Id).eq(id))
        .and_where(Expr::col(WebhookEndpoints::FailingSince).is_not_null())
        .to_owned();
    ex.into()
        .execute("webhook_endpoints", &stmt)
        .await
        .map(|_| ())
}

/// Disables endpoint `id` for `reason`; `false` when it was disabled (or gone)
/// already.
pub async fn disable(
    ex: impl Into<Exec<'_>>,
    id: Uuid,
    reason: &str,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let stmt = Query::update()
        .table(WebhookEndpoints::Table)
        .values([
            (WebhookEndpoints::DisabledAt, at.into()),
            (WebhookEndpoints::DisabledReason, reason.into()),
            (WebhookEndpoints::UpdatedAt, at.into()),
        ])
        .and_where(Expr::col(WebhookEndpoints::Id).eq(id))
        .and_where(Expr::col(WebhookEndpoints::DisabledAt).is_null())
        .to_owned();
    Ok(ex.into().execute("webhook_endpoints", &stmt).await? == 1)
}

#[derive(Iden)]
enum WebhookDeliveries {
    Table,
    Id,
    EndpointId,
    MessageId,
    EventId,
    EventType,
    Attempt,
    StatusCode,
    DurationMs,
    Error,
    NextRetryAt,
    CreatedAt,
}

const DELIVERY_COLUMNS: [WebhookDeliveries; 11] = [
    WebhookDeliveries::Id,
    WebhookDeliveries::EndpointId,
    WebhookDeliveries::MessageId,
    WebhookDeliveries::EventId,
    WebhookDeliveries::EventType,
    WebhookDeliveries::Attempt,
    WebhookDeliveries::StatusCode,
    WebhookDeliveries::DurationMs,
    WebhookDeliveries::Error,
    WebhookDeliveries::NextRetryAt,
    WebhookDeliveries::CreatedAt,
];

/// A `webhook_deliveries` row: one attempt.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct DeliveryRow {
    /// UUIDv7: ids sort by time.
    pub id: Uuid,
    pub endpoint_id: Uuid,
    /// The `webhook-id` header, the same for every attempt of one message.
    pub message_id: String,
    pub event_id: Uuid,
    pub event_type: String,
    /// 1 for the first.
    pub attempt: i32,
    /// The receiver's answer; `None` when none came (refused, timed out).
    pub status_code: Option<i32>,
    pub duration_ms: i32,
    pub error: Option<String>,
    /// When the next attempt is due; `None` after a success or the last attempt.
    pub next_retry_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

pub async fn log_attempt(ex: impl Into<Exec<'_>>, d: &DeliveryRow) -> Result<(), StoreError> {
    let stmt = Query::insert()
        .into_table(WebhookDeliveries::Table)
        .columns(DELIVERY_COLUMNS)
        .values_panic([
            d.id.into(),
            d.endpoint_id.into(),
            d.message_id.clone().into(),
            d.event_id.into(),
            d.event_type.clone().into(),
            d.attempt.into(),
            d.status_code.into(),
            d.duration_ms.into(),
            d.error.clone().into(),
            d.next_retry_at.into(),
            d.created_at.into(),
        ])
        .to_owned();
    ex.into()
        .execute("webhook_deliveries", &stmt)
        .await
        .map(|_| ())
}

/// Endpoint `endpoint`'s attempts before `before` (from the newest without it),
/// newest first.
pub async fn deliveries(
    ex: impl Into<Exec<'_>>,
    endpoint: Uuid,
    before: Option<Uuid>,
    limit: u64,
) -> Result<Vec<DeliveryRow>, StoreError> {
    let mut stmt = Query::select();
    stmt.columns(DELIVERY_COLUMNS)
        .from(WebhookDeliveries::Table)
        .and_where(Expr::col(WebhookDeliveries::EndpointId).eq(endpoint))
        .order_by(WebhookDeliveries::Id, Order::Desc)
        .limit(limit);
    if let Some(id) = before {
        stmt.and_where(Expr::col(WebhookDeliveries::Id).lt(id));
    }
    ex.into().fetch_all("webhook_deliveries", &stmt).await
}

pub async fn delivery(
    ex: impl Into<Exec<'_>>,
    endpoint: Uuid,
    id: Uuid,
) -> Result<Option<DeliveryRow>, StoreError> {
    let stmt = Query::select()
        .columns(DELIVERY_COLUMNS)
        .from(WebhookDeliveries::Table)
        .and_where(Expr::col(WebhookDeliveries::EndpointId).eq(endpoint))
        .and_where(Expr::col(WebhookDeliveries::Id).eq(id))
        .to_owned();
    ex.into().fetch_optional("webhook_deliveries", &stmt).await
}
