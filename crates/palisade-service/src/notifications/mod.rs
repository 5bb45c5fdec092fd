//! Notifications (README § Notifications): what a user is told of changes to their
//! records and account. Each is made from an event by the dispatcher
//! ([`crate::dispatch`]), at most once per user and event, then listed, marked read,
//! and streamed live ([`live`]).

pub mod live;

use palisade_auth::ids::UserId;
use palisade_auth::permissions::Role;
use palisade_store::repo::events::EventRow;
use palisade_store::repo::notifications::{self as repo, NotificationRow};
use palisade_store::repo::now;
use palisade_store::repo::users;
use palisade_store::{Db, StoreError, Tx};
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::identity::Principal;
use crate::page::{BadCursor, Cursor, Limit, Page};
use live::Live;

#[derive(Debug, thiserror::Error)]
pub enum NotificationError {
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    BadCursor(#[from] BadCursor),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A notification as clients see it.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = Notification)]
pub struct NotificationView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    /// `payment.succeeded`, `payment.failed`, `payment.refunded`,
    /// `contract.status_changed`, `billing.subscription_changed`, `security.…`,
    /// `webhook.endpoint_disabled` (administrators).
    pub kind: String,
    pub title: String,
    pub body: String,
    #[schema(value_type = Object)]
    pub data: Value,
    #[serde(with = "time::serde::rfc3339::option")]
    pub read_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl NotificationView {
    pub fn of(row: &NotificationRow) -> NotificationView {
        NotificationView {
            id: row.id,
            kind: row.kind.clone(),
            title: row.title.clone(),
            body: row.body.clone(),
            data: row.data.clone(),
            read_at: row.read_at,
            created_at: row.created_at,
        }
    }
}

/// The notice told to every active administrator rather than to an owner.
const ADMINISTRATORS_KIND: &str = "webhook.endpoint_disabled";

/// What the user is told of `event`, if anything: kind, title, body, data.
pub fn notice_of(event: &EventRow) -> Option<(&'static str, String, String, Value)> {
    let d = &event.data;
    let money = || {
        let cents = d.pointer("/amount/amount_cents").and_then(Value::as_i64)?;
        let currency = d.pointer("/amount/currency").and_then(Value::as_str)?;
        Some(format!("{}.{:02} {currency}", cents / 100, cents % 100))
    };
    let amount = money().unwrap_or_else(|| "A payment".to_owned());
    let subject = json!({ "subject_type": event.subject_type, "subject_id": event.subject_id });
    let with = |extra: Value| {
        let mut data = subject.clone();
        if let (Some(to), Value::Object(from)) = (data.as_object_mut(), extra) {
            to.extend(from);
        }
        data
    };
    Some(match event.kind.as_str() {
        "payment.succeeded" => (
            "payment.succeeded",
            "Payment received".to_owned(),
            format!("{amount} was paid."),
            with(json!({"contract_id": d["contract_id"], "amount": d["amount"]})),
        ),
        "payment.failed" => (
            "payment.failed",
            "Payment failed".to_owned(),
            format!(
                "{amount} could not be paid ({}).",
                d["failure_code"].as_str().unwrap_or("declined")
            ),
            with(json!({"contract_id": d["contract_id"], "failure_code": d["failure_code"]})),
        ),
        "payment.refunded" => {
            let cents = d["amount_cents"].as_i64().unwrap_or(0);
            let currency = d["currency"].as_str().unwrap_or("");
            (
                "payment.refunded",
                "Payment refunded".to_owned(),
                format!(
                    "{}.{:02} {currency} was refunded.",
                    cents / 100,
                    cents % 100
                ),
                with(
                    json!({"refund_id": d["refund_id"], "amount_cents": cents, "currency": currency}),
                ),
            )
        }
        "contract.updated" if d["status"] != d["previous_status"] => (
            "contract.status_changed",
            "Contract status changed".to_owned(),
            format!(
                "A contract went from {} to {}.",
                d["previous_status"].as_str().unwrap_or("?"),
                d["status"].as_str().unwrap_or("?")
            ),
            with(json!({"status": d["status"], "previous_status": d["previous_status"]})),
        ),
        "billing.subscription_changed" => (
            "billing.subscription_changed",
            "Subscription changed".to_owned(),
            format!(
                "Your plan is {} ({}).",
                d["plan"].as_str().unwrap_or("?"),
                d["status"].as_str().unwrap_or("?")
            ),
            with(json!({"plan": d["plan"], "status": d["status"],
                        "cancel_at_period_end": d["cancel_at_period_end"]})),
        ),
        "security.new_sign_in" => (
            "security.new_sign_in",
            "New sign-in".to_owned(),
            format!(
                "Your account was signed in to from {} ({}). If this was not you, change your password.",
                d["ip"].as_str().unwrap_or("an unknown address"),
                // The client chose it: shown short, so a notice cannot carry a letter.
                d["user_agent"]
                    .as_str()
                    .map(|ua| ua.chars().take(80).collect::<String>())
                    .unwrap_or_else(|| "an unknown browser".to_owned())
            ),
            with(json!({"ip": d["ip"], "user_agent": d["user_agent"]})),
        ),
        "security.lockout" => (
            "security.lockout",
            "Account locked".to_owned(),
            "Sign-ins to your account are refused for a while after repeated wrong passwords."
                .to_owned(),
            with(json!({"until": d["until"]})),
        ),
        "security.password_changed" => (
            "security.password_changed",
            "Password changed".to_owned(),
            "Your password was changed; your other sessions were ended.".to_owned(),
            subject,
        ),
        "security.2fa_changed" => {
            let on = d["enabled"].as_bool().unwrap_or(false);
            (
                "security.2fa_changed",
                if on {
                    "Two-factor sign-in turned on"
                } else {
                    "Two-factor sign-in turned off"
                }
                .to_owned(),
                format!(
                    "Two-factor authentication is {} for your account.",
                    if on { "on" } else { "off" }
                ),
                with(json!({"enabled": on})),
            )
        }
        "security.email_changed" => (
            "security.email_changed",
            "E-mail address changed".to_owned(),
            format!(
                "Your account's address is now {}.",
                d["email"].as_str().unwrap_or("a new one")
            ),
            with(json!({"email": d["email"]})),
        ),
        "webhook.endpoint_disabled" => (
            "webhook.endpoint_disabled",
            "Webhook endpoint disabled".to_owned(),
            format!(
                "Every delivery to the endpoint at {} failed for {}; it was disabled. Enable it again once it answers.",
                d["host"].as_str().unwrap_or("an unknown host"),
                d["failing_for"].as_str().unwrap_or("days")
            ),
            with(json!({"endpoint_id": d["endpoint_id"], "host": d["host"]})),
        ),
        _ => return None,
    })
}

/// The notifications service. Cheap to clone.
#[derive(Clone)]
pub struct Notifications {
    db: Db,
    live: Live,
}

impl Notifications {
    pub fn new(db: Db, live: Live) -> Notifications {
        Notifications { db, live }
    }

    pub fn live(&self) -> &Live {
        &self.live
    }

    /// Makes the notifications of `event` inside `tx` (the dispatch's transaction), if
    /// the event calls for them: to its owner, or, for a disabled webhook endpoint (no
    /// one's record), to every active administrator. Their streams are woken once `tx`
    /// commits. How many were made.
    pub async fn make(&self, tx: &mut Tx, event: &EventRow) -> Result<usize, StoreError> {
        let Some((kind, title, body, data)) = notice_of(event) else {
            return Ok(0);
        };
        let recipients = match event.owner_id {
            Some(owner) => vec![UserId::from(owner)],
            None if kind == ADMINISTRATORS_KIND => {
                users::active_with_role(&mut *tx, Role::Admin).await?
            }
            None => return Ok(0),
        };
        let mut made = 0;
        for user in recipients {
            let row = NotificationRow {
                id: Uuid::now_v7(),
                user_id: user,
                event_id: event.id,
                kind: kind.to_owned(),
                title: title.clone(),
                body: body.clone(),
                data: data.clone(),
                read_at: None,
                created_at: now(),
            };
            if repo::insert_if_absent(&mut *tx, &row).await? {
                self.live.announce(tx, user).await?;
                metrics::counter!("notifications_total", "kind" => kind).increment(1);
                made += 1;
            }
        }
        Ok(made)
    }

    /// A page of the caller's notifications, newest first, with how many are unread.
    pub async fn list(
        &self,
        who: &Principal,
        unread: bool,
        cursor: Option<&Cursor>,
        limit: Limit,
    ) -> Result<(Page<NotificationView>, i64), NotificationError> {
        let before = Cursor::start::<Uuid>(cursor)?;
        let rows = repo::page(&self.db, who.user_id, unread, before, limit.fetch()).await?;
        let page = Page::of(rows, limit, |r| r.id).map(|r| NotificationView::of(&r));
        let unread_count = repo::unread_count(&self.db, who.user_id).await?;
        Ok((page, unread_count))
    }

    /// The caller's notifications after `after`, oldest first: a stream's next sends.
    pub async fn after(
        &self,
        user: UserId,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<NotificationView>, StoreError> {
        let rows = repo::after(&self.db, user, after, limit).await?;
        Ok(rows.iter().map(NotificationView::of).collect())
    }

    /// The id of `user`'s newest notification: where a stream without
    /// `Last-Event-ID` starts.
    pub async fn after_newest(&self, user: UserId) -> Result<Option<Uuid>, NotificationError> {
        let newest = repo::page(&self.db, user, false, None, 1).await?;
        Ok(newest.first().map(|n| n.id))
    }

    pub async fn read(&self, who: &Principal, id: Uuid) -> Result<(), NotificationError> {
        if repo::mark_read(&self.db, who.user_id, id, now()).await? {
            Ok(())
        } else {
            Err(NotificationError::NotFound)
        }
    }

    pub async fn read_all(&self, who: &Principal) -> Result<u64, NotificationError> {
        Ok(repo::mark_all_read(&self.db, who.user_id, now()).await?)
    }
}
