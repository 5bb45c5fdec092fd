//! `/api/v1/notifications*` (`/openapi.json`, tag notifications): the caller's
//! notifications, marked read one by one or all at once, and a live stream of them
//! (server-sent events) that resumes after `Last-Event-ID`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use palisade_auth::ids::UserId;
use palisade_service::notifications::live::{MAX_STREAMS, Wake};
use palisade_service::notifications::{NotificationError, NotificationView, Notifications};
use palisade_service::page::{Cursor, Limit};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, watch};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::Authed;
use crate::extract::{ApiPath, ApiQuery};
use crate::layers::rate_limit::Tier;
use crate::problem::Problem;
use crate::routes::{Guard, Routes};
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::default().group(
        Guard::Limited(Tier::General),
        [
            routes!(list_notifications),
            routes!(read_notification),
            routes!(read_all_notifications),
            routes!(stream_notifications),
        ],
    )
}

/// How often an idle stream sends a comment line, so proxies keep it open.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// Notifications read from the table per query while a stream catches up.
const BATCH: u64 = 100;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NotificationsQuery {
    /// Only those not read yet.
    unread: Option<bool>,
    /// Items per page, 1..=100 (default 20).
    #[param(inline)]
    limit: Option<Limit>,
    /// The `next_cursor` of the page before.
    #[param(inline)]
    cursor: Option<Cursor>,
}

/// A page of notifications, and how many of all are unread.
#[derive(Serialize, ToSchema)]
pub struct NotificationList {
    items: Vec<NotificationView>,
    /// Where the next page starts; `null` on the last page.
    next_cursor: Option<String>,
    unread_count: i64,
}

/// The caller's notifications, newest first.
#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications", security(("bearer" = [])),
    params(NotificationsQuery),
    responses((status = 200, body = NotificationList)))]
pub async fn list_notifications(
    State(state): State<AppState>,
    Authed(who): Authed,
    ApiQuery(q): ApiQuery<NotificationsQuery>,
) -> Result<Json<NotificationList>, Problem> {
    let (page, unread_count) = state
        .notifications
        .list(
            &who,
            q.unread.unwrap_or(false),
            q.cursor.as_ref(),
            q.limit.unwrap_or_default(),
        )
        .await?;
    Ok(Json(NotificationList {
        items: page.items,
        next_cursor: page.next.map(|c| c.as_str().to_owned()),
        unread_count,
    }))
}

/// Marks one of the caller's notifications read (again: no change).
#[utoipa::path(post, path = "/api/v1/notifications/{id}/read", tag = "notifications", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204, description = "Read"),
              (status = 404, description = "not_found: no such notification of the caller's")))]
pub async fn read_notification(
    State(state): State<AppState>,
    Authed(who): Authed,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, Problem> {
    state.notifications.read(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Marks every notification of the caller's read.
#[utoipa::path(post, path = "/api/v1/notifications/read-all", tag = "notifications", security(("bearer" = [])),
    responses((status = 204, description = "All read")))]
pub async fn read_all_notifications(
    State(state): State<AppState>,
    Authed(who): Authed,
) -> Result<StatusCode, Problem> {
    state.notifications.read_all(&who).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's notifications as they are made, on any instance, as server-sent
/// events (`id:` the notification's id, `event:` its kind, `data:` the notification),
/// with a comment line every 15 s. With `Last-Event-ID`, every notification after
/// that one is sent first. At most 5 streams per user; a shutdown ends the stream
/// (reconnect with `Last-Event-ID`).
#[utoipa::path(get, path = "/api/v1/notifications/stream", tag = "notifications", security(("bearer" = [])),
    params(("Last-Event-ID" = Option<String>, Header, description = "The id of the last notification received")),
    responses((status = 200, description = "The stream", content_type = "text/event-stream", body = String),
              (status = 429, description = "notifications.too_many_streams: 5 are open")))]
pub async fn stream_notifications(
    State(state): State<AppState>,
    Authed(who): Authed,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let user = who.user_id;
    let live = state.notifications.live().clone();
    let Some(slot) = live.open(user).await else {
        return Err(Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "notifications.too_many_streams",
            "Too many notification streams",
        )
        .with_detail(format!(
            "at most {MAX_STREAMS} streams per user are open at once"
        )));
    };
    // Subscribed before the first read, so nothing made meanwhile is missed.
    let wakes = live.subscribe();
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<Uuid>().ok());
    let start = match resume {
        Some(id) => Some(id),
        // Without one, only what is made from now on.
        None => state
            .notifications
            .after_newest(user)
            .await
            .map_err(Problem::from)?,
    };
    let (sender, receiver) = mpsc::channel(16);
    let feed = Feed {
        notifications: state.notifications.clone(),
        user,
        floor: start,
        sent: start,
        recent: VecDeque::new(),
        strict: false,
        wakes,
        shutdown: state.health.shutting_down(),
        sender,
    };
    tokio::spawn(async move {
        feed.run().await;
        drop(slot);
    });
    Ok(Sse::new(Events(receiver))
        .keep_alive(KeepAlive::new().interval(HEARTBEAT))
        .into_response())
}

/// What feeds one stream: reads the table whenever a wake concerns its user, until
/// the client leaves or the server shuts down.
///
/// Ids are given when a notification is made, and two made at once may commit in the
/// other order: one with a smaller id can appear after a larger one was sent. So each
/// read looks back [`LOOKBACK`] before the last id sent and skips what it sent already;
/// never before `floor`, where the stream began (the client's `Last-Event-ID`).
struct Feed {
    notifications: Notifications,
    user: UserId,
    floor: Option<Uuid>,
    /// The largest id sent.
    sent: Option<Uuid>,
    /// The ids sent within the look-back, oldest first.
    recent: VecDeque<Uuid>,
    /// The next read starts at the last id sent, without looking back.
    strict: bool,
    wakes: broadcast::Receiver<Wake>,
    shutdown: watch::Receiver<bool>,
    sender: mpsc::Sender<Event>,
}

impl Feed {
    async fn run(mut self) {
        loop {
            match self.send_new().await {
                Ok(true) => continue,
                Ok(false) => {}
                // The database is away: wait for the next wake (a reconnect wakes all).
                Err(e) => tracing::warn!(error = %e, "notification stream: reading failed"),
            }
            tokio::select! {
                wake = self.wakes.recv() => match wake {
                    Ok(w) if !w.concerns(self.user) => {}
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                () = self.sender.closed() => return,
                _ = self.shutdown.wait_for(|s| *s) => return,
            }
        }
    }

    /// Sends what was made since the look-back and not sent; `true` when there may be
    /// more.
    async fn send_new(&mut self) -> Result<bool, palisade_store::StoreError> {
        let back = self.sent.map(|id| {
            if self.strict {
                id
            } else {
                earlier(id, LOOKBACK)
            }
        });
        let from = match (back, self.floor) {
            (Some(back), Some(floor)) => Some(back.max(floor)),
            (back, floor) => back.or(floor),
        };
        self.strict = false;
        if let Some(from) = from {
            while self.recent.front().is_some_and(|id| *id <= from) {
                self.recent.pop_front();
            }
        }
        let batch = self.notifications.after(self.user, from, BATCH).await?;
        let full = batch.len() as u64 == BATCH;
        let before = self.sent;
        for n in batch {
            if self.recent.contains(&n.id) {
                continue;
            }
            let event = Event::default()
                .id(n.id.to_string())
                .event(n.kind.clone())
                .json_data(&n)
                .unwrap_or_default();
            if self.sender.send(event).await.is_err() {
                return Ok(false);
            }
            self.recent.push_back(n.id);
            self.sent = self.sent.max(Some(n.id));
        }
        // A full batch of what was sent already: read on from the last id sent.
        self.strict = full && self.sent == before;
        Ok(full)
    }
}

/// How long a notification may take from its id to its commit and still be streamed.
const LOOKBACK: Duration = Duration::from_secs(5);

/// The smallest UUIDv7 of `by` before `id`'s time.
fn earlier(id: Uuid, by: Duration) -> Uuid {
    let ms = id
        .get_timestamp()
        .map(|t| {
            let (secs, nanos) = t.to_unix();
            secs * 1000 + u64::from(nanos) / 1_000_000
        })
        .unwrap_or(0);
    let back = ms.saturating_sub(by.as_millis() as u64);
    Uuid::from_u128(u128::from(back) << 80)
}

/// The events of a stream as a body stream.
struct Events(mpsc::Receiver<Event>);

impl futures_core::Stream for Events {
    type Item = Result<Event, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|e| e.map(Ok))
    }
}

impl From<NotificationError> for Problem {
    fn from(e: NotificationError) -> Problem {
        match e {
            NotificationError::NotFound => Problem::not_found(),
            NotificationError::BadCursor(e) => {
                crate::extract::invalid_query(&format!("cursor: {e}"))
            }
            NotificationError::Store(e) => e.into(),
        }
    }
}
