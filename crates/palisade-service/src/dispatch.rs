//! The dispatcher: turns each event into the work of its consumers. Recording an event
//! queues one `events.dispatch` job in the event's transaction ([`queue`]); the job
//! makes the event's notification and queues its other deliveries, and deletes itself,
//! all in one transaction: each event is dispatched exactly once, whichever instance
//! runs it and however often a worker dies on the way.

use std::sync::Arc;

use palisade_store::repo::events;
use palisade_store::{Db, Exec, StoreError};
use serde_json::json;
use uuid::Uuid;

use crate::jobs::{self, Handler, HandlerFuture, Job, JobError, NewJob};
use crate::notifications::Notifications;

/// The kind of the dispatch jobs.
pub const KIND: &str = "events.dispatch";

/// Queues the dispatch of event `id` where `ex` runs (the event's transaction).
pub async fn queue(ex: impl Into<Exec<'_>>, id: Uuid) -> Result<(), StoreError> {
    let job = NewJob::new(KIND, json!({ "event_id": id })).dedupe(format!("dispatch:{id}"));
    jobs::enqueue(ex, job).await.map(|_| ())
}

pub struct Dispatcher {
    db: Db,
    notifications: Notifications,
}

impl Dispatcher {
    pub fn new(db: Db, notifications: Notifications) -> Arc<Dispatcher> {
        Arc::new(Dispatcher { db, notifications })
    }

    async fn dispatch(&self, job: &Job) -> Result<(), JobError> {
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
        self.notifications.make(&mut tx, &event).await?;
        if !job.complete_in(&mut tx).await? {
            // Another worker holds the job now: it dispatches; this run's writes go.
            return Ok(());
        }
        tx.commit().await?;
        Ok(())
    }
}

impl Handler for Dispatcher {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn run<'a>(&'a self, job: &'a Job) -> HandlerFuture<'a> {
        Box::pin(self.dispatch(job))
    }
}
