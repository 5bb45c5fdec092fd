//! Outbound webhooks (README § Outbound webhooks): administrators register endpoints
//! (`webhooks:manage`) with the event types they want; the dispatcher queues one
//! `webhook.deliver` job per event and endpoint ([`Webhooks::queue_deliveries`]), and
//! [`deliver`] sends it, signed as Standard Webhooks specifies
//! (`palisade_auth::standard_webhooks`), through the SSRF [`guard`], retried on a fixed
//! schedule, each attempt logged. An endpoint that fails for three days (by default) is disabled
//! and the administrators are told.

pub mod deliver;
pub mod guard;

use std::sync::Arc;
use std::time::Duration;

use palisade_auth::secretbox::SecretBox;
use palisade_auth::standard_webhooks::WebhookSecret;
use palisade_store::repo::events::EventRow;
use palisade_store::repo::now;
use palisade_store::repo::webhooks::{self as repo, DeliveryRow, EndpointRow};
use palisade_store::{Db, StoreError, Tx};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::{Action, Entry, Outcome};
use crate::contracts::fields::{Problems, check_description_up_to};
use crate::events::EventLog;
use crate::identity::{Principal, Provenance};
use crate::jobs;
use crate::page::{BadCursor, Cursor, Limit, Page};

/// The event types an endpoint can ask for.
pub const TYPES: [&str; 8] = [
    "contract.created",
    "contract.updated",
    "contract.deleted",
    "payment.succeeded",
    "payment.failed",
    "payment.refunded",
    "user.registered",
    "subscription.updated",
];

/// The webhook type of an event of the log, if it is sent to webhooks at all.
pub fn type_of(event_kind: &str) -> Option<&'static str> {
    match event_kind {
        "billing.subscription_changed" => Some("subscription.updated"),
        kind => TYPES.iter().find(|t| **t == kind).copied(),
    }
}

/// How long the secret replaced by a rotation keeps signing beside the new one.
pub const ROTATION_OVERLAP: Duration = Duration::from_secs(24 * 3600);

const URL_MAX: usize = 2048;
const DESCRIPTION_MAX: usize = 500;

#[derive(Clone, Debug)]
pub struct WebhookSettings {
    /// `PALISADE_WEBHOOK_ALLOW_PRIVATE`: let endpoints reach loopback and private
    /// addresses (tests, receivers on an internal network).
    pub allow_private: bool,
    /// `PALISADE_WEBHOOK_RETRIES`: the waits before the second, third, … attempt
    /// (each moved by up to ±20 %); one attempt more than waits.
    pub retries: Vec<Duration>,
    /// `PALISADE_WEBHOOK_DISABLE_AFTER`: how long an endpoint may fail every attempt
    /// before it is disabled.
    pub disable_after: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            allow_private: false,
            retries: deliver::SCHEDULE.to_vec(),
            disable_after: Duration::from_secs(3 * 24 * 3600),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("not found")]
    NotFound,
    #[error("invalid input")]
    Invalid(Problems),
    /// A list's cursor that is not one of its positions.
    #[error(transparent)]
    BadCursor(#[from] BadCursor),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An endpoint as administrators see it (never its secret).
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = WebhookEndpoint)]
pub struct EndpointView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    pub disabled: bool,
    /// Why it was disabled by the server (too long failing); `null` otherwise.
    pub disabled_reason: Option<String>,
    /// When its current run of failed attempts began; `null` while it answers.
    #[serde(with = "time::serde::rfc3339::option")]
    pub failing_since: Option<OffsetDateTime>,
    /// Until when the secret replaced by the last rotation still signs.
    #[serde(with = "time::serde::rfc3339::option")]
    pub previous_secret_until: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl EndpointView {
    fn of(row: &EndpointRow) -> EndpointView {
        let at = now();
        EndpointView {
            id: row.id,
            url: row.url.clone(),
            events: events_of(row),
            description: row.description.clone(),
            disabled: row.disabled_at.is_some(),
            disabled_reason: row.disabled_reason.clone(),
            failing_since: row.failing_since,
            previous_secret_until: row.previous_until.filter(|until| *until > at),
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

fn events_of(row: &EndpointRow) -> Vec<String> {
    serde_json::from_value(row.events.clone()).unwrap_or_default()
}

/// One attempt to send an event, as the delivery log shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = WebhookDelivery)]
pub struct DeliveryView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    /// The `webhook-id` header: the same for every attempt of one event.
    pub message_id: String,
    #[schema(value_type = String, format = Uuid)]
    pub event_id: Uuid,
    pub event_type: String,
    pub attempt: i32,
    /// The receiver's status; `null` when it gave none (refused, timed out).
    pub status_code: Option<i32>,
    pub duration_ms: i32,
    pub error: Option<String>,
    /// When the next attempt is due; `null` after a success or the last attempt.
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_retry_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl DeliveryView {
    fn of(row: &DeliveryRow) -> DeliveryView {
        DeliveryView {
            id: row.id,
            message_id: row.message_id.clone(),
            event_id: row.event_id,
            event_type: row.event_type.clone(),
            attempt: row.attempt,
            status_code: row.status_code,
            duration_ms: row.duration_ms,
            error: row.error.clone(),
            next_retry_at: row.next_retry_at,
            created_at: row.created_at,
        }
    }
}

/// A new endpoint.
#[derive(Clone, Debug)]
pub struct NewEndpoint {
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
}

/// A change to an endpoint; `None` keeps a field.
#[derive(Clone, Debug, Default)]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    pub disabled: Option<bool>,
}

/// The webhooks service. Cheap to clone.
#[derive(Clone)]
pub struct Webhooks(Arc<Inner>);

struct Inner {
    db: Db,
    secrets: SecretBox,
    events: EventLog,
    settings: WebhookSettings,
    client: reqwest::Client,
}

impl Webhooks {
    pub fn new(
        db: Db,
        secrets: SecretBox,
        events: EventLog,
        settings: WebhookSettings,
    ) -> Result<Webhooks, reqwest::Error> {
        let client = deliver::client(&settings)?;
        Ok(Webhooks(Arc::new(Inner {
            db,
            secrets,
            events,
            settings,
            client,
        })))
    }

    pub async fn create(
        &self,
        who: &Principal,
        from: &Provenance,
        new: NewEndpoint,
    ) -> Result<(EndpointView, String), WebhookError> {
        let mut problems = Problems::new();
        let url = self.check_url(&new.url, &mut problems);
        let events = check_events(&new.events, &mut problems);
        let description = check_description(new.description, &mut problems);
        if !problems.is_empty() {
            return Err(WebhookError::Invalid(problems));
        }
        let at = now();
        let id = Uuid::now_v7();
        let secret = WebhookSecret::generate();
        let row = EndpointRow {
            id,
            url,
            events: json!(events),
            description,
            secret: self.seal(id, &secret),
            previous_secret: None,
            previous_until: None,
            failing_since: None,
            last_failure_at: None,
            disabled_at: None,
            disabled_reason: None,
            created_at: at,
            updated_at: at,
        };
        let mut tx = self.0.db.begin().await?;
        repo::insert_endpoint(&mut tx, &row).await?;
        audited(&mut tx, who, from, Action::WebhookCreated, id).await?;
        tx.commit().await?;
        Ok((EndpointView::of(&row), secret.expose()))
    }

    pub async fn list(&self) -> Result<Vec<EndpointView>, WebhookError> {
        let rows = repo::endpoints(&self.0.db, false).await?;
        Ok(rows.iter().map(EndpointView::of).collect())
    }

    pub async fn get(&self, id: Uuid) -> Result<EndpointView, WebhookError> {
        Ok(EndpointView::of(&self.row(id).await?))
    }

    pub async fn update(
        &self,
        who: &Principal,
        from: &Provenance,
        id: Uuid,
        patch: EndpointPatch,
    ) -> Result<EndpointView, WebhookError> {
        let mut problems = Problems::new();
        let url = patch.url.as_ref().map(|u| self.check_url(u, &mut problems));
        let events = patch
            .events
            .as_ref()
            .map(|e| check_events(e, &mut problems));
        let description = patch
            .description
            .is_some()
            .then(|| check_description(patch.description.clone(), &mut problems));
        if !problems.is_empty() {
            return Err(WebhookError::Invalid(problems));
        }
        let row = self
            .change(who, from, id, Action::WebhookUpdated, |row, at| {
                if let Some(url) = url {
                    row.url = url;
                }
                if let Some(events) = events {
                    row.events = json!(events);
                }
                if let Some(description) = description {
                    row.description = description;
                }
                match patch.disabled {
                    Some(true) if row.disabled_at.is_none() => {
                        row.disabled_at = Some(at);
                        row.disabled_reason = None;
                    }
                    // Enabled again: its failures so far no longer count toward
                    // disabling it.
                    Some(false) => {
                        row.disabled_at = None;
                        row.disabled_reason = None;
                        row.failing_since = None;
                    }
                    _ => {}
                }
            })
            .await?;
        Ok(EndpointView::of(&row))
    }

    /// Deletes the endpoint and its log; its queued deliveries find it gone and end.
    pub async fn delete(
        &self,
        who: &Principal,
        from: &Provenance,
        id: Uuid,
    ) -> Result<(), WebhookError> {
        let mut tx = self.0.db.begin().await?;
        if !repo::delete_endpoint(&mut tx, id).await? {
            return Err(WebhookError::NotFound);
        }
        audited(&mut tx, who, from, Action::WebhookDeleted, id).await?;
        Ok(tx.commit().await?)
    }

    /// A new secret; the current one keeps signing beside it for
    /// [`ROTATION_OVERLAP`], so receivers can switch without losing a message.
    pub async fn rotate_secret(
        &self,
        who: &Principal,
        from: &Provenance,
        id: Uuid,
    ) -> Result<String, WebhookError> {
        let secret = WebhookSecret::generate();
        let sealed = self.seal(id, &secret);
        self.change(who, from, id, Action::WebhookSecretRotated, |row, at| {
            row.previous_secret = Some(std::mem::replace(&mut row.secret, sealed));
            row.previous_until = Some(at + ROTATION_OVERLAP);
        })
        .await?;
        Ok(secret.expose())
    }

    /// A page of the endpoint's delivery log, newest first.
    pub async fn deliveries(
        &self,
        id: Uuid,
        cursor: Option<&Cursor>,
        limit: Limit,
    ) -> Result<Page<DeliveryView>, WebhookError> {
        let before = Cursor::start::<Uuid>(cursor)?;
        self.row(id).await?;
        let rows = repo::deliveries(&self.0.db, id, before, limit.fetch()).await?;
        Ok(Page::of(rows, limit, |r| r.id).map(|r| DeliveryView::of(&r)))
    }

    /// Sends a logged delivery's event to the endpoint again, under the same
    /// `webhook-id`, with a fresh count of attempts.
    pub async fn retry(
        &self,
        who: &Principal,
        from: &Provenance,
        id: Uuid,
        delivery: Uuid,
    ) -> Result<(), WebhookError> {
        let logged = repo::delivery(&self.0.db, id, delivery)
            .await?
            .ok_or(WebhookError::NotFound)?;
        let mut tx = self.0.db.begin().await?;
        let job = deliver::job(id, logged.event_id, &logged.message_id, self.attempts());
        jobs::enqueue_or_run_again(&mut tx, job).await?;
        audited(&mut tx, who, from, Action::WebhookRetried, id).await?;
        Ok(tx.commit().await?)
    }

    /// Queues `event`'s deliveries to the endpoints that want it, inside `tx` (the
    /// dispatch's transaction); `endpoints` are the enabled ones.
    pub async fn queue_deliveries(
        &self,
        tx: &mut Tx,
        endpoints: &[EndpointRow],
        event: &EventRow,
    ) -> Result<(), StoreError> {
        let Some(kind) = type_of(&event.kind) else {
            return Ok(());
        };
        for endpoint in endpoints.iter().filter(|e| e.wants(kind)) {
            let message = format!("msg_{}", Uuid::now_v7().simple());
            jobs::enqueue(
                &mut *tx,
                deliver::job(endpoint.id, event.id, &message, self.attempts()),
            )
            .await?;
        }
        Ok(())
    }

    /// Attempts of one message: the first, and one per configured wait.
    fn attempts(&self) -> u32 {
        self.0.settings.retries.len() as u32 + 1
    }

    async fn row(&self, id: Uuid) -> Result<EndpointRow, WebhookError> {
        repo::endpoint(&self.0.db, id)
            .await?
            .ok_or(WebhookError::NotFound)
    }

    fn seal(&self, id: Uuid, secret: &WebhookSecret) -> Vec<u8> {
        self.0
            .secrets
            .seal(secret.expose().as_bytes(), &purpose(id))
    }

    /// The endpoint's secrets that sign now: the current one, and the one a rotation
    /// replaced while its overlap lasts.
    fn signing_secrets(&self, row: &EndpointRow) -> Result<Vec<WebhookSecret>, StoreError> {
        let open = |sealed: &[u8]| {
            let corrupt = |what: &str| StoreError::Corrupt {
                table: "webhook_endpoints",
                what: format!("endpoint {}: {what}", row.id),
            };
            let text = self
                .0
                .secrets
                .open(sealed, &purpose(row.id))
                .map_err(|_| corrupt("its secret does not open with this server's key"))?;
            let text = String::from_utf8(text).map_err(|_| corrupt("a secret not in UTF-8"))?;
            WebhookSecret::parse(&text).map_err(|_| corrupt("a secret not in whsec_ form"))
        };
        let mut secrets = vec![open(&row.secret)?];
        if let (Some(previous), Some(until)) = (&row.previous_secret, row.previous_until)
            && until > now()
        {
            secrets.push(open(previous)?);
        }
        Ok(secrets)
    }

    fn check_url(&self, url: &str, problems: &mut Problems) -> String {
        let url = url.trim();
        if url.len() > URL_MAX {
            problems.push(("url", format!("at most {URL_MAX} characters")));
            return url.to_owned();
        }
        // The parser would encode or drop them in its copy; the text stored is the
        // one given, and PostgreSQL refuses a NUL in it.
        if url.chars().any(char::is_control) {
            problems.push(("url", "control characters are not allowed".to_owned()));
            return url.to_owned();
        }
        match reqwest::Url::parse(url) {
            Err(_) => problems.push(("url", "not an absolute URL".to_owned())),
            Ok(parsed) if !matches!(parsed.scheme(), "http" | "https") => {
                problems.push(("url", "must be http or https".to_owned()))
            }
            Ok(parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
                problems.push(("url", "must not carry credentials".to_owned()))
            }
            Ok(parsed) if !self.0.settings.allow_private => {
                if let Err(refused) = guard::check_url(&parsed) {
                    problems.push(("url", refused.to_string()));
                }
            }
            Ok(_) => {}
        }
        url.to_owned()
    }

    /// Applies an administrator's change to endpoint `id` (`edit` gets the row and the
    /// time), audited as `action`: read locked and written in one transaction, so that
    /// neither another change nor a delivery's bookkeeping is written over.
    async fn change(
        &self,
        who: &Principal,
        from: &Provenance,
        id: Uuid,
        action: Action,
        edit: impl FnOnce(&mut EndpointRow, OffsetDateTime),
    ) -> Result<EndpointRow, WebhookError> {
        let mut tx = self.0.db.begin().await?;
        let mut row = repo::endpoint_locked(&mut tx, id)
            .await?
            .ok_or(WebhookError::NotFound)?;
        let at = now();
        edit(&mut row, at);
        row.updated_at = at;
        repo::update_endpoint(&mut tx, &row).await?;
        audited(&mut tx, who, from, action, id).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Disables an endpoint that has failed since `since`, and tells the
    /// administrators (an event about no one's record), inside `tx`.
    async fn disable_failing(
        &self,
        tx: &mut Tx,
        row: &EndpointRow,
        since: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let at = now();
        let hours = (at - since).whole_hours();
        let reason = format!("every attempt failed for {hours} hours");
        if !repo::disable(&mut *tx, row.id, &reason, at).await? {
            return Ok(());
        }
        // The host only: a receiver's URL may carry a token, and events are kept.
        let host = reqwest::Url::parse(&row.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        let data = json!({
            "endpoint_id": row.id,
            "host": host,
            "failing_since": since.unix_timestamp(),
            "failing_for": format!("{hours} hours"),
        });
        self.0
            .events
            .record_unowned(tx, crate::events::EventType::WebhookDisabled, row.id, data)
            .await?;
        let entry = Entry::new(Action::WebhookDisabled, Outcome::Success)
            .target("webhook_endpoint", row.id)
            .detail("reason", reason);
        crate::audit::append(tx, &Default::default(), &entry).await
    }
}

/// Records an administrator's `action` on endpoint `id` in the audit trail, in `tx`.
async fn audited(
    tx: &mut Tx,
    who: &Principal,
    from: &Provenance,
    action: Action,
    id: Uuid,
) -> Result<(), StoreError> {
    let entry = Entry::new(action, Outcome::Success).target("webhook_endpoint", id);
    crate::audit::append(tx, &from.actor(Some(who.user_id)), &entry).await
}

/// What binds a sealed secret to its endpoint: a secret copied to another row does not
/// open.
fn purpose(id: Uuid) -> Vec<u8> {
    format!("palisade webhook secret {id}").into_bytes()
}

fn check_events(events: &[String], problems: &mut Problems) -> Vec<String> {
    if events.is_empty() {
        problems.push(("events", "name at least one event type".to_owned()));
    }
    let mut out: Vec<String> = Vec::new();
    for e in events {
        if !TYPES.contains(&e.as_str()) {
            problems.push((
                "events",
                format!("`{e}` is not an event type: {}", TYPES.join(", ")),
            ));
        } else if !out.contains(e) {
            out.push(e.clone());
        }
    }
    out
}

fn check_description(d: Option<String>, problems: &mut Problems) -> Option<String> {
    let d = d.map(|d| d.trim().to_owned()).filter(|d| !d.is_empty());
    if let Some(d) = &d {
        check_description_up_to(d, DESCRIPTION_MAX, problems);
    }
    d
}
