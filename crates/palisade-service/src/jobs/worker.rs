//! The worker of one instance: claims due jobs of the kinds it has handlers for, runs
//! up to `concurrency` at once, renews each lease while its job runs, and settles each
//! job by its outcome. At shutdown it stops claiming, lets running jobs finish within
//! the grace, and puts back the others, their attempt not counted.
//!
//! Metrics: `jobs_total{kind,outcome}` (outcome `done`, `retry`, `dead`, `released`,
//! `lost`: the lease lapsed under a slow run), `job_duration_seconds{kind}`,
//! `jobs_queue_depth{kind}`.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use palisade_store::Db;
use palisade_store::background::{Stop, Tasks};
use palisade_store::listen::Subscriptions;
use palisade_store::repo::jobs::{self as repo, JobRow};
use palisade_store::repo::now;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use uuid::Uuid;

use super::{CHANNEL, Handler, Job, JobError};

/// Wakes this process's workers: a job was queued here, or announced by another
/// instance.
static WAKE: LazyLock<Notify> = LazyLock::new(Notify::new);

pub(super) fn wake_local() {
    WAKE.notify_waiters();
}

#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// Jobs run at once by this instance.
    pub concurrency: usize,
    /// How long a claim holds a job; renewed every third of it while the job runs.
    pub lease: Duration,
    /// How often the queue is looked at when nothing announced a job.
    pub poll: Duration,
    /// How long running jobs may take to finish at shutdown.
    pub grace: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            concurrency: 8,
            lease: Duration::from_secs(30),
            poll: Duration::from_secs(1),
            grace: Duration::from_secs(3),
        }
    }
}

/// The worker. Cheap to clone.
#[derive(Clone)]
pub struct Worker(Arc<Inner>);

struct Inner {
    db: Db,
    handlers: HashMap<&'static str, Arc<dyn Handler>>,
    settings: WorkerSettings,
    /// Jobs running here, by id, with their lease and kind: what shutdown puts back.
    running: Mutex<HashMap<Uuid, (Uuid, &'static str)>>,
}

impl Worker {
    pub fn new(db: Db, settings: WorkerSettings, handlers: Vec<Arc<dyn Handler>>) -> Worker {
        Worker(Arc::new(Inner {
            db,
            handlers: handlers.into_iter().map(|h| (h.kind(), h)).collect(),
            settings,
            running: Mutex::new(HashMap::new()),
        }))
    }

    /// Runs the worker until `tasks` stop, woken by this process's enqueues and, on
    /// PostgreSQL, by other instances' (`subscriptions`); keeps the depth gauge.
    pub fn start(&self, tasks: &mut Tasks, subscriptions: &mut Subscriptions) {
        subscriptions.on(CHANNEL, |_| wake_local());
        let worker = self.clone();
        tasks.run("job worker", move |stop| worker.serve(stop));
        let worker = self.clone();
        tasks.every("job queue depth", Duration::from_secs(5), move || {
            let worker = worker.clone();
            async move { worker.report_depth().await }
        });
    }

    fn kinds(&self) -> Vec<&'static str> {
        self.0.handlers.keys().copied().collect()
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, (Uuid, &'static str)>> {
        self.0.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn serve(self, mut stop: Stop) {
        let slots = Arc::new(Semaphore::new(self.0.settings.concurrency.max(1)));
        let mut runs = JoinSet::new();
        loop {
            let free = slots.available_permits();
            let mut full_batch = false;
            if free > 0 {
                match self.claim(free).await {
                    Ok(rows) => {
                        full_batch = rows.len() == free;
                        for row in rows {
                            let Ok(permit) = slots.clone().try_acquire_owned() else {
                                break;
                            };
                            runs.spawn(self.clone().run_one(row, permit));
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "claiming jobs failed"),
                }
            }
            // A full batch may have left more due: claim again once a slot frees.
            if full_batch && slots.available_permits() > 0 {
                continue;
            }
            tokio::select! {
                () = stop.requested() => break,
                () = WAKE.notified() => {}
                () = tokio::time::sleep(self.0.settings.poll) => {}
                Some(_) = runs.join_next(), if !runs.is_empty() => {}
            }
        }
        self.shut_down(runs).await;
    }

    /// Lets running jobs finish within the grace; puts the others back.
    async fn shut_down(&self, mut runs: JoinSet<()>) {
        let deadline = tokio::time::Instant::now() + self.0.settings.grace;
        while !runs.is_empty() {
            if tokio::time::timeout_at(deadline, runs.join_next())
                .await
                .is_err()
            {
                break;
            }
        }
        runs.abort_all();
        let left: Vec<(Uuid, (Uuid, &'static str))> = self.running().drain().collect();
        for (id, (lease, kind)) in left {
            let at = now();
            match repo::put_back(&self.0.db, id, lease, repo::QUEUED, at, None, true, at).await {
                Ok(_) => tracing::info!(job = %id, "job put back at shutdown"),
                Err(e) => {
                    tracing::warn!(job = %id, error = %e, "job not put back; its lease will lapse")
                }
            }
            metrics::counter!("jobs_total", "kind" => kind, "outcome" => "released").increment(1);
        }
    }

    async fn claim(&self, n: usize) -> Result<Vec<JobRow>, palisade_store::StoreError> {
        let kinds = self.kinds();
        if kinds.is_empty() {
            return Ok(Vec::new());
        }
        let at = now();
        let lease = Uuid::new_v4();
        repo::claim(
            &self.0.db,
            &kinds,
            n as u64,
            lease,
            at + self.0.settings.lease,
            at,
        )
        .await
    }

    async fn run_one(self, row: JobRow, _permit: OwnedSemaphorePermit) {
        let job = Job::of(&row);
        let Some(handler) = self.0.handlers.get(row.kind.as_str()).cloned() else {
            return;
        };
        self.running().insert(job.id, (job.lease, handler.kind()));
        let started = Instant::now();
        let outcome = tokio::select! {
            r = handler.run(&job) => Some(r),
            () = self.hold(&job) => None,
        };
        metrics::histogram!("job_duration_seconds", "kind" => handler.kind())
            .record(started.elapsed().as_secs_f64());
        let settled = match outcome {
            None => Settled::Lost,
            Some(result) => self.settle(&job, handler.as_ref(), result).await,
        };
        self.running().remove(&job.id);
        metrics::counter!("jobs_total", "kind" => handler.kind(), "outcome" => settled.as_str())
            .increment(1);
    }

    /// Renews `job`'s lease every third of it; returns when the lease is lost.
    async fn hold(&self, job: &Job) {
        let lease = self.0.settings.lease;
        loop {
            tokio::time::sleep(lease / 3).await;
            match repo::renew(&self.0.db, job.id, job.lease, now() + lease).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(job = %job.id, kind = %job.kind, "job lease lost; another worker may run it");
                    return;
                }
                // The database is away: try again at the next renewal.
                Err(e) => tracing::warn!(job = %job.id, error = %e, "job lease not renewed"),
            }
        }
    }

    async fn settle(
        &self,
        job: &Job,
        handler: &dyn Handler,
        result: Result<(), JobError>,
    ) -> Settled {
        let at = now();
        let db = &self.0.db;
        let written = match &result {
            Ok(()) => repo::complete(db, job.id, job.lease)
                .await
                .map(|_| Settled::Done),
            Err(JobError::Fatal(e)) => {
                repo::put_back(db, job.id, job.lease, repo::DEAD, at, Some(e), false, at)
                    .await
                    .map(|_| Settled::Dead)
            }
            Err(e) if job.attempt >= job.max_attempts => {
                let text = e.to_string();
                repo::put_back(
                    db,
                    job.id,
                    job.lease,
                    repo::DEAD,
                    at,
                    Some(&text),
                    false,
                    at,
                )
                .await
                .map(|_| Settled::Dead)
            }
            Err(e) => {
                let text = e.to_string();
                let wait = match e {
                    JobError::RetryAfter { after, .. } => *after,
                    _ => handler.backoff(job.attempt),
                };
                let next = at + wait;
                repo::put_back(
                    db,
                    job.id,
                    job.lease,
                    repo::QUEUED,
                    next,
                    Some(&text),
                    false,
                    at,
                )
                .await
                .map(|_| Settled::Retry)
            }
        };
        if let Err(e) = &result {
            tracing::warn!(job = %job.id, kind = %job.kind, attempt = job.attempt, error = %e, "job failed");
        }
        written.unwrap_or_else(|e| {
            tracing::warn!(job = %job.id, error = %e, "job outcome not written; its lease will lapse and it runs again");
            Settled::Lost
        })
    }

    async fn report_depth(&self) {
        let Ok(depths) = repo::depths(&self.0.db).await else {
            return;
        };
        for kind in self.kinds() {
            let n = depths.iter().find(|d| d.kind == kind).map_or(0, |d| d.n);
            metrics::gauge!("jobs_queue_depth", "kind" => kind).set(n as f64);
        }
    }

    /// Claims and runs what is due now, one batch, and waits for it: for tests and
    /// one-off runs without the background loop. How many jobs ran.
    pub async fn run_due(&self) -> Result<usize, palisade_store::StoreError> {
        let n = self.0.settings.concurrency.max(1);
        let rows = self.claim(n).await?;
        let count = rows.len();
        let slots = Arc::new(Semaphore::new(n));
        let mut runs = JoinSet::new();
        for row in rows {
            if let Ok(permit) = slots.clone().try_acquire_owned() {
                runs.spawn(self.clone().run_one(row, permit));
            }
        }
        while runs.join_next().await.is_some() {}
        Ok(count)
    }
}

#[derive(Clone, Copy)]
enum Settled {
    Done,
    Retry,
    Dead,
    Lost,
}

impl Settled {
    fn as_str(self) -> &'static str {
        match self {
            Settled::Done => "done",
            Settled::Retry => "retry",
            Settled::Dead => "dead",
            Settled::Lost => "lost",
        }
    }
}
