//! The `webhook.deliver` job: sends one event to one endpoint. The body is
//! `{id, type, created_at, data}`; the headers `webhook-id` (the message's, the same
//! on every attempt), `webhook-timestamp` and `webhook-signature` (with the current
//! secret, and the previous one while a rotation's overlap lasts). A 2xx answer is a
//! success; anything else, or no answer within [`TIMEOUT`], is retried after about
//! 5 s, 30 s, 2 min, 10 min, 1 h, 6 h and 24 h (by default: [`SCHEDULE`], ±20 %). Every
//! attempt is logged. Redirects are not followed, and at most [`ANSWER_READ_MAX`] of an answer is
//! read.

use std::sync::Arc;
use std::time::{Duration, Instant};

use palisade_auth::standard_webhooks::{self, WebhookSecret};
use palisade_store::repo::events::{self, EventRow};
use palisade_store::repo::now;
use palisade_store::repo::webhooks::{self as repo, DeliveryRow, EndpointRow};
use serde::Deserialize;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::{WebhookSettings, Webhooks, guard, type_of};
use crate::jobs::{Handler, HandlerFuture, Job, JobError, NewJob, jitter};

/// The kind of the delivery jobs.
pub const KIND: &str = "webhook.deliver";

/// The default waits before the second to the eighth (last) attempt.
pub const SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(2 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(3600),
    Duration::from_secs(6 * 3600),
    Duration::from_secs(24 * 3600),
];

/// How long a receiver has to answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// How much of an answer is read; the rest is never downloaded.
pub const ANSWER_READ_MAX: usize = 64 * 1024;

#[derive(Deserialize)]
struct Payload {
    endpoint_id: Uuid,
    event_id: Uuid,
    message_id: String,
}

/// The job that sends event `event` to endpoint `endpoint` as message `message`, in
/// `attempts` attempts at most: one per event and endpoint while it waits.
pub fn job(endpoint: Uuid, event: Uuid, message: &str, attempts: u32) -> NewJob {
    NewJob::new(
        KIND,
        json!({"endpoint_id": endpoint, "event_id": event, "message_id": message}),
    )
    .dedupe(format!("webhook:{endpoint}:{event}"))
    .attempts(attempts)
}

/// The client deliveries go through: no redirects, no proxy from the environment (it
/// would bypass the address check), [`TIMEOUT`], and the SSRF guard's resolver unless
/// private addresses are allowed.
pub fn client(settings: &WebhookSettings) -> Result<reqwest::Client, reqwest::Error> {
    // sqlx's TLS uses ring too; whichever installs it first, the other finds it.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .user_agent(concat!("palisade-webhooks/", env!("CARGO_PKG_VERSION")));
    if settings.allow_private {
        builder.build()
    } else {
        builder.dns_resolver(guard::GuardedResolver).build()
    }
}

/// The body of `event` as `type`.
fn body_of(event: &EventRow, kind: &str) -> String {
    let mut data = json!({ "subject_type": event.subject_type, "subject_id": event.subject_id });
    if let (Some(to), Value::Object(from)) = (data.as_object_mut(), &event.data) {
        for (k, v) in from {
            to.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    json!({
        "id": event.id,
        "type": kind,
        "created_at": event.created_at.format(&Rfc3339).unwrap_or_default(),
        "data": data,
    })
    .to_string()
}

/// What an attempt came to.
struct Attempt {
    status: Option<u16>,
    error: Option<String>,
}

impl Attempt {
    /// No answer: `error` says why.
    fn failed(error: String) -> Attempt {
        Attempt {
            status: None,
            error: Some(error),
        }
    }

    fn succeeded(&self) -> bool {
        self.error.is_none()
    }
}

impl Webhooks {
    async fn deliver(&self, job: &Job) -> Result<(), JobError> {
        let p: Payload = serde_json::from_value(job.payload.clone())
            .map_err(|e| JobError::Fatal(format!("not a delivery: {e}")))?;
        let db = &self.0.db;
        // Deleted: nothing to send, and no log to write.
        let Some(endpoint) = repo::endpoint(db, p.endpoint_id).await? else {
            return Ok(());
        };
        let event = events::by_id(db, p.event_id)
            .await?
            .ok_or_else(|| JobError::Fatal(format!("event {} does not exist", p.event_id)))?;
        let kind = type_of(&event.kind)
            .ok_or_else(|| JobError::Fatal(format!("{} is not sent to webhooks", event.kind)))?;
        let started = Instant::now();
        // Logged either way, so that it can be sent by hand once that is mended.
        let (attempt, hopeless) = if endpoint.disabled_at.is_some() {
            let why = "the endpoint is disabled; not sent".to_owned();
            (Attempt::failed(why), true)
        } else {
            match self.signing_secrets(&endpoint) {
                Ok(secrets) => {
                    let body = body_of(&event, kind);
                    let sent = self.send(&endpoint, &p.message_id, &body, &secrets);
                    (sent.await, false)
                }
                Err(e) => (Attempt::failed(format!("not sent: {e}")), true),
            }
        };
        let elapsed = started.elapsed();
        let again = (!attempt.succeeded() && !hopeless && job.attempt < job.max_attempts)
            .then(|| self.backoff(job.attempt));
        self.settle(
            &endpoint,
            &p,
            &event,
            kind,
            job.attempt,
            &attempt,
            elapsed,
            again,
        )
        .await?;
        let outcome = if attempt.succeeded() { "ok" } else { "failed" };
        metrics::counter!("webhook_deliveries_total", "outcome" => outcome).increment(1);
        match (attempt.error, again) {
            (None, _) => Ok(()),
            (Some(error), Some(after)) => Err(JobError::RetryAfter { error, after }),
            (Some(error), None) if hopeless && endpoint.disabled_at.is_none() => {
                Err(JobError::Fatal(error))
            }
            // The last attempt, or a disabled endpoint: logged, nothing more to do.
            (Some(_), None) => Ok(()),
        }
    }

    /// Sends the message; what came of it.
    async fn send(
        &self,
        endpoint: &EndpointRow,
        message: &str,
        body: &str,
        secrets: &[WebhookSecret],
    ) -> Attempt {
        let url = match reqwest::Url::parse(&endpoint.url) {
            Ok(url) => url,
            Err(e) => return Attempt::failed(format!("not a URL: {e}")),
        };
        // A name is checked by the resolver at connect time; an address literal here.
        if !self.0.settings.allow_private
            && let Err(refused) = guard::check_url(&url)
        {
            return Attempt::failed(format!("refused: {refused}"));
        }
        let timestamp = now().unix_timestamp().max(0) as u64;
        let keys: Vec<&WebhookSecret> = secrets.iter().collect();
        let signature = standard_webhooks::sign(message, timestamp, body.as_bytes(), &keys);
        let sent = self
            .0
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", message)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.to_owned())
            .send()
            .await;
        let mut answer = match sent {
            Ok(answer) => answer,
            // Without the URL: a receiver's URL may carry a token in its query.
            Err(e) => return Attempt::failed(describe(&e.without_url())),
        };
        let status = answer.status();
        // Read the answer up to the limit, so the connection can be reused when it is
        // short; a longer one is cut off.
        let mut read = 0;
        while read < ANSWER_READ_MAX {
            match answer.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                _ => break,
            }
        }
        let error = if status.is_success() {
            None
        } else if status.is_redirection() {
            Some(format!("answered {status}; redirects are not followed"))
        } else {
            Some(format!("answered {status}"))
        };
        Attempt {
            status: Some(status.as_u16()),
            error,
        }
    }

    /// Logs the attempt and keeps the endpoint's run of failures, in one transaction;
    /// disables an endpoint failing for longer than allowed.
    #[allow(clippy::too_many_arguments)]
    async fn settle(
        &self,
        endpoint: &EndpointRow,
        p: &Payload,
        event: &EventRow,
        kind: &str,
        attempt_no: u32,
        attempt: &Attempt,
        elapsed: Duration,
        again: Option<Duration>,
    ) -> Result<(), JobError> {
        let at = now();
        let row = DeliveryRow {
            id: Uuid::now_v7(),
            endpoint_id: endpoint.id,
            message_id: p.message_id.clone(),
            event_id: event.id,
            event_type: kind.to_owned(),
            attempt: i32::try_from(attempt_no).unwrap_or(i32::MAX),
            status_code: attempt.status.map(i32::from),
            duration_ms: i32::try_from(elapsed.as_millis()).unwrap_or(i32::MAX),
            error: attempt.error.clone(),
            next_retry_at: again.map(|d| at + d),
            created_at: at,
        };
        let mut tx = self.0.db.begin().await?;
        repo::log_attempt(&mut tx, &row).await?;
        if attempt.succeeded() {
            repo::succeeded(&mut tx, endpoint.id).await?;
        } else if endpoint.disabled_at.is_none()
            && let Some(since) =
                repo::failing_since(&mut tx, endpoint.id, at, at - self.quiet_gap()).await?
            && at - since >= self.0.settings.disable_after
        {
            self.disable_failing(&mut tx, endpoint, since).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

impl Webhooks {
    /// A pause between failures longer than any retry wait: the endpoint was idle, not
    /// failing, so its run of failures starts again.
    fn quiet_gap(&self) -> Duration {
        let longest = self.0.settings.retries.iter().max().copied();
        longest.unwrap_or(SCHEDULE[0]).mul_f64(1.25) + TIMEOUT
    }
}

/// A transport error in words, with its causes (the timeout, the refused address).
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        format!("no answer within {} s", TIMEOUT.as_secs())
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl Handler for Webhooks {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn run<'a>(&'a self, job: &'a Job) -> HandlerFuture<'a> {
        Box::pin(self.deliver(job))
    }

    /// The configured waits, each moved by up to ±20 %.
    fn backoff(&self, attempt: u32) -> Duration {
        let retries = &self.0.settings.retries;
        let i = (attempt.max(1) as usize - 1).min(retries.len().saturating_sub(1));
        jitter(retries.get(i).copied().unwrap_or(SCHEDULE[0]))
    }
}

/// The handler, for the worker.
pub fn handler(webhooks: &Webhooks) -> Arc<dyn Handler> {
    Arc::new(webhooks.clone())
}
