//! The job queue: every deferred delivery (notifications, webhook deliveries, mail)
//! is a row in `jobs`, claimed by a worker of any instance, retried with backoff, dead
//! after its last attempt, and never lost when a process dies (docs/ARCHITECTURE.md
//! § The path of an event).
//!
//! Delivery is at least once: a worker that dies after its work but before deleting
//! the job leaves it to run again when its lease lapses. A [`Handler`] is therefore
//! written to be idempotent; one whose work is database writes can make it exactly
//! once by deleting its job in the same transaction ([`Job::complete_in`]).
//!
//! [`enqueue`] takes a transaction, so a change and the jobs it causes commit
//! together; the commit wakes this instance's worker and, on PostgreSQL, the others
//! through `NOTIFY` (else they find the job at their next poll).

mod worker;

use std::time::Duration;

use palisade_store::repo::jobs::{self as repo, JobRow};
use palisade_store::repo::now;
use palisade_store::{Backend, Exec, StoreError};
use serde_json::Value;
use uuid::Uuid;

pub use worker::{Worker, WorkerSettings};

/// The PostgreSQL channel that announces new jobs.
pub const CHANNEL: &str = "palisade_jobs";

/// A job to queue.
#[derive(Clone, Debug)]
pub struct NewJob {
    pub kind: &'static str,
    pub payload: Value,
    /// While a job with this key exists, queuing another is a no-op.
    pub dedupe_key: Option<String>,
    /// Runs no sooner than this from now.
    pub delay: Duration,
    pub max_attempts: u32,
}

impl NewJob {
    pub fn new(kind: &'static str, payload: Value) -> NewJob {
        NewJob {
            kind,
            payload,
            dedupe_key: None,
            delay: Duration::ZERO,
            max_attempts: DEFAULT_ATTEMPTS,
        }
    }

    pub fn dedupe(mut self, key: impl Into<String>) -> NewJob {
        self.dedupe_key = Some(key.into());
        self
    }

    pub fn attempts(mut self, n: u32) -> NewJob {
        self.max_attempts = n.max(1);
        self
    }
}

/// Attempts of a job that names none.
pub const DEFAULT_ATTEMPTS: u32 = 8;

/// Queues `job` where `ex` runs (a transaction: it commits with the change); `false`
/// when its dedupe key is taken.
pub async fn enqueue(ex: impl Into<Exec<'_>>, job: NewJob) -> Result<bool, StoreError> {
    let mut ex = ex.into();
    let at = now();
    let run_at = at + job.delay;
    let row = JobRow {
        id: Uuid::now_v7(),
        kind: job.kind.to_owned(),
        dedupe_key: job.dedupe_key,
        payload: job.payload.to_string(),
        state: repo::QUEUED.to_owned(),
        attempts: 0,
        max_attempts: i32::try_from(job.max_attempts).unwrap_or(i32::MAX),
        run_at,
        lease_token: None,
        locked_until: None,
        last_error: None,
        created_at: at,
        updated_at: at,
    };
    let added = repo::insert(ex.reborrow(), &row).await?;
    if added {
        announce(ex, job.kind).await?;
    }
    Ok(added)
}

/// Runs the waiting or dead job with dedupe key `key` now, with a fresh count of
/// attempts; `false` when there is none (it is running, or gone).
pub async fn run_again(ex: impl Into<Exec<'_>>, key: &str) -> Result<bool, StoreError> {
    let mut ex = ex.into();
    let again = repo::run_again(ex.reborrow(), key, now()).await?;
    if again {
        announce(ex, "").await?;
    }
    Ok(again)
}

/// Queues `job`; when a job holds its dedupe key, runs that one now with a fresh count
/// of attempts instead (one that is running does the work anyway): "do it again, now".
pub async fn enqueue_or_run_again(ex: impl Into<Exec<'_>>, job: NewJob) -> Result<(), StoreError> {
    let mut ex = ex.into();
    let key = job.dedupe_key.clone();
    if !enqueue(ex.reborrow(), job).await?
        && let Some(key) = key
    {
        run_again(ex, &key).await?;
    }
    Ok(())
}

/// Wakes the workers for a job of `kind` made due where `ex` runs: this instance's at
/// its commit, the others' through `NOTIFY` on PostgreSQL.
async fn announce(mut ex: Exec<'_>, kind: &str) -> Result<(), StoreError> {
    if ex.backend() == Backend::Postgres {
        palisade_store::repo::notify(ex.reborrow(), CHANNEL, kind).await?;
    }
    // A worker woken before the job is visible finds nothing and waits a poll.
    match ex {
        Exec::Tx(tx) => tx.on_commit(worker::wake_local),
        Exec::Pool(_) => worker::wake_local(),
    }
    Ok(())
}

/// A claimed job, as its handler sees it.
#[derive(Clone, Debug)]
pub struct Job {
    pub id: Uuid,
    pub kind: String,
    pub payload: Value,
    /// 1 for the first run.
    pub attempt: u32,
    pub max_attempts: u32,
    lease: Uuid,
}

impl Job {
    fn of(row: &JobRow) -> Job {
        Job {
            id: row.id,
            kind: row.kind.clone(),
            payload: serde_json::from_str(&row.payload).unwrap_or(Value::Null),
            attempt: u32::try_from(row.attempts).unwrap_or(1),
            max_attempts: u32::try_from(row.max_attempts).unwrap_or(1),
            lease: row.lease_token.unwrap_or_default(),
        }
    }

    /// Deletes this job in `ex` (the handler's transaction), so its writes and its
    /// completion commit together: done exactly once. `false`: its lease was lost,
    /// and the transaction must not commit.
    pub async fn complete_in(&self, ex: impl Into<Exec<'_>>) -> Result<bool, StoreError> {
        repo::complete(ex, self.id, self.lease).await
    }
}

/// Why a run did not finish the job.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt, after the backoff.
    #[error("{0}")]
    Retry(String),
    /// Worth another attempt after `after`: the handler chose the wait (and told
    /// someone of it, as a delivery log does).
    #[error("{error}")]
    RetryAfter { error: String, after: Duration },
    /// No attempt will do better: the job is dead at once.
    #[error("{0}")]
    Fatal(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The work of one kind of job.
pub trait Handler: Send + Sync + 'static {
    fn kind(&self) -> &'static str;

    /// Runs `job`; called again after a failure or a crash, so it must be idempotent.
    fn run<'a>(&'a self, job: &'a Job) -> HandlerFuture<'a>;

    /// How long to wait before attempt `attempt + 1` after attempt `attempt` failed.
    fn backoff(&self, attempt: u32) -> Duration {
        backoff(attempt)
    }
}

pub type HandlerFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), JobError>> + Send + 'a>>;

/// Exponential backoff from 1 s, doubling, capped at 1 h, with ±20 % jitter so jobs
/// that failed together do not all come back together.
pub fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_secs(1u64 << attempt.saturating_sub(1).min(12))
        .min(Duration::from_secs(3600));
    jitter(base)
}

/// `d` moved by up to ±20 %.
pub fn jitter(d: Duration) -> Duration {
    let mut bytes = [0u8; 8];
    rand::fill(&mut bytes[..]);
    let unit = u64::from_le_bytes(bytes) as f64 / u64::MAX as f64;
    d.mul_f64(0.8 + 0.4 * unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for (attempt, secs) in [
            (1, 1.0),
            (2, 2.0),
            (3, 4.0),
            (6, 32.0),
            (13, 3600.0),
            (40, 3600.0),
        ] {
            let d = backoff(attempt).as_secs_f64();
            assert!(
                d >= secs * 0.8 - 1e-9 && d <= secs * 1.2 + 1e-9,
                "{attempt}: {d}"
            );
        }
        let spread: std::collections::BTreeSet<u128> =
            (0..50).map(|_| backoff(5).as_millis()).collect();
        assert!(spread.len() > 10, "jitter spreads retries: {spread:?}");
    }
}
