//! The dispatcher: turns each recorded event into the work of its consumers: its
//! notifications, made at once, and its webhook deliveries and security mail, queued as
//! jobs. Recording an event puts its
//! id in the outbox ([`crate::events`]); the dispatcher takes ids off it in batches, and
//! makes the batch's notifications and queues its deliveries in the transaction that
//! takes them: each event is dispatched exactly once, whichever instance takes it and
//! however often a process dies on the way.
//!
//! Every instance runs one, woken by its own commits and looking again every second
//! for events another instance recorded and could not dispatch (it died). One
//! transaction per batch, not per event, is what keeps the outbox from falling behind
//! under load: commits are the cost. An event that fails within a batch is tried
//! alone; one that fails alone moves to the job queue as an `events.dispatch` job,
//! retried with backoff and left dead for an operator in the end (`palisade jobs`),
//! so it holds no other event back.

use std::sync::Arc;
use std::time::Duration;

use palisade_auth::ids::UserId;
use palisade_store::background::{Stop, Tasks};
use palisade_store::repo::events::{self, EventRow};
use palisade_store::repo::webhooks::{self, EndpointRow};
use palisade_store::repo::{now, users};
use palisade_store::{Db, StoreError, Tx};
use serde_json::json;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::events::EventLog;
use crate::jobs::{self, Handler, HandlerFuture, Job, JobError, NewJob};
use crate::mail::Mail;
use crate::notifications::{Notifications, notice_of};
use crate::webhooks::Webhooks;

/// The kind of the jobs of events that could not be dispatched in a batch.
pub const KIND: &str = "events.dispatch";

/// Events taken per transaction.
const BATCH: u64 = 100;

/// How often the outbox is looked at when no commit here woke the dispatcher.
const POLL: Duration = Duration::from_secs(1);

pub struct Dispatcher {
    db: Db,
    notifications: Notifications,
    webhooks: Webhooks,
    mail: Mail,
    recorded: Arc<Notify>,
}

impl Dispatcher {
    pub fn new(
        db: Db,
        notifications: Notifications,
        webhooks: Webhooks,
        mail: Mail,
        events: &EventLog,
    ) -> Arc<Dispatcher> {
        Arc::new(Dispatcher {
            db,
            notifications,
            webhooks,
            mail,
            recorded: events.recorded(),
        })
    }

    /// Dispatches until `tasks` stop.
    pub fn start(self: &Arc<Self>, tasks: &mut Tasks) {
        let dispatcher = self.clone();
        tasks.run("event dispatcher", move |stop| dispatcher.serve(stop));
    }

    async fn serve(self: Arc<Self>, mut stop: Stop) {
        loop {
            loop {
                match self.dispatch_pending().await {
                    // A full batch may have left more.
                    Ok(n) if n as u64 == BATCH => {}
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "dispatching events failed; trying again");
                        break;
                    }
                }
            }
            tokio::select! {
                () = stop.requested() => break,
                () = self.recorded.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Dispatches one batch of the outbox, oldest first; how many events it took.
    pub async fn dispatch_pending(&self) -> Result<usize, StoreError> {
        let mut tx = self.db.begin().await?;
        let batch = events::take_pending(&mut tx, BATCH).await?;
        if batch.is_empty() {
            return Ok(0);
        }
        let endpoints = webhooks::endpoints(&mut tx, true).await?;
        let delivered = async {
            for event in &batch {
                self.deliver(&mut tx, event, &endpoints).await?;
            }
            Ok::<_, StoreError>(())
        }
        .await;
        if let Err(e) = delivered {
            tracing::warn!(error = %e, "a batch of events failed; dispatching them one by one");
            drop(tx);
            for event in &batch {
                self.dispatch_alone(event).await?;
            }
        } else {
            tx.commit().await?;
            observe(&batch);
        }
        Ok(batch.len())
    }

    /// Dispatches `event` in a transaction of its own; if that fails, hands it to the
    /// job queue.
    async fn dispatch_alone(&self, event: &EventRow) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        if !events::take(&mut tx, event.id).await? {
            return Ok(()); // Another instance took it meanwhile.
        }
        let error = match self.deliver_alone(&mut tx, event).await {
            Ok(()) => {
                tx.commit().await?;
                observe(std::slice::from_ref(event));
                return Ok(());
            }
            Err(e) => e,
        };
        drop(tx);
        tracing::warn!(event = %event.id, kind = %event.kind, error = %error,
            "event not dispatched; queued as a job to retry");
        let mut tx = self.db.begin().await?;
        if events::take(&mut tx, event.id).await? {
            let job = NewJob::new(KIND, json!({ "event_id": event.id }))
                .dedupe(format!("dispatch:{}", event.id));
            jobs::enqueue(&mut tx, job).await?;
        }
        tx.commit().await
    }

    /// The work of `event`'s consumers, inside `tx`; `endpoints` are the enabled
    /// webhook endpoints.
    async fn deliver(
        &self,
        tx: &mut Tx,
        event: &EventRow,
        endpoints: &[EndpointRow],
    ) -> Result<(), StoreError> {
        self.notifications.make(tx, event).await?;
        self.mail_notice(tx, event).await?;
        self.webhooks.queue_deliveries(tx, endpoints, event).await
    }

    /// A security notice also goes to its user's verified address (within the notices'
    /// hourly cap).
    async fn mail_notice(&self, tx: &mut Tx, event: &EventRow) -> Result<(), StoreError> {
        if !event.kind.starts_with("security.") {
            return Ok(());
        }
        let (Some(owner), Some((_, title, body, _))) = (event.owner_id, notice_of(event)) else {
            return Ok(());
        };
        let Some(user) = users::by_id(&mut *tx, UserId::from(owner)).await? else {
            return Ok(());
        };
        // Only to an address its owner proved: anyone can sign up with anyone's.
        if user.disabled_at.is_some() || user.email_verified_at.is_none() {
            return Ok(());
        }
        self.mail
            .notice(tx, &user.email, &user.name, &title, &body)
            .await
            .map(|_| ())
    }

    async fn deliver_alone(&self, tx: &mut Tx, event: &EventRow) -> Result<(), StoreError> {
        let endpoints = webhooks::endpoints(&mut *tx, true).await?;
        self.deliver(tx, event, &endpoints).await
    }

    /// The job of an event that failed in the outbox.
    async fn dispatch_job(&self, job: &Job) -> Result<(), JobError> {
        let id: Uuid = job
            .payload
            .get("event_id")
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| JobError::Fatal("no event_id in the payload".to_owned()))?;
        let event = events::by_id(&self.db, id)
            .await?
            .ok_or_else(|| JobError::Fatal(format!("event {id} does not exist")))?;
        let mut tx = self.db.begin().await?;
        self.deliver_alone(&mut tx, &event).await?;
        if !job.complete_in(&mut tx).await? {
            // Another worker holds the job now: it dispatches; this run's writes go.
            return Ok(());
        }
        tx.commit().await?;
        observe(std::slice::from_ref(&event));
        Ok(())
    }
}

/// Counts dispatched events, and how long after their recording each was dispatched.
fn observe(batch: &[EventRow]) {
    let at = now();
    metrics::counter!("events_dispatched_total").increment(batch.len() as u64);
    for event in batch {
        metrics::histogram!("event_dispatch_lag_seconds")
            .record((at - event.created_at).as_seconds_f64().max(0.0));
    }
}

impl Handler for Dispatcher {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn run<'a>(&'a self, job: &'a Job) -> HandlerFuture<'a> {
        Box::pin(self.dispatch_job(job))
    }
}
