//! The job queue, in-process on SQLite and PostgreSQL: retries then success, a dead
//! job after its last attempt (retried and purged by hand), idempotent enqueues,
//! concurrent workers taking each job once, a lapsed lease taken over, and jobs put
//! back at shutdown.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use palisade_service::jobs::{
    self, Handler, HandlerFuture, Job, JobError, NewJob, Worker, WorkerSettings,
};
use palisade_store::Db;
use palisade_store::background::Tasks;
use palisade_store::listen::Subscriptions;
use palisade_store::repo::jobs as repo;
use palisade_store::repo::now;
use serde_json::json;
use uuid::Uuid;

#[allow(dead_code)] // Each test binary uses a part of it.
mod common;

/// Fails the first `failures` runs of each job, then succeeds; records every run.
struct Flaky {
    kind: &'static str,
    failures: u32,
    runs: Mutex<HashMap<Uuid, u32>>,
    delay: Duration,
}

impl Flaky {
    fn new(kind: &'static str, failures: u32) -> Arc<Flaky> {
        Arc::new(Flaky {
            kind,
            failures,
            runs: Mutex::new(HashMap::new()),
            delay: Duration::ZERO,
        })
    }

    fn runs_of(&self, id: Uuid) -> u32 {
        self.runs.lock().unwrap().get(&id).copied().unwrap_or(0)
    }
}

impl Handler for Flaky {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn run<'a>(&'a self, job: &'a Job) -> HandlerFuture<'a> {
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            let n = {
                let mut runs = self.runs.lock().unwrap();
                let n = runs.entry(job.id).or_default();
                *n += 1;
                *n
            };
            if n <= self.failures {
                return Err(JobError::Retry(format!("failure {n}")));
            }
            Ok(())
        })
    }

    /// No wait between attempts, so the test runs them back to back.
    fn backoff(&self, _attempt: u32) -> Duration {
        Duration::ZERO
    }
}

fn worker(db: &Db, handlers: Vec<Arc<dyn Handler>>) -> Worker {
    Worker::new(db.clone(), WorkerSettings::default(), handlers)
}

async fn queued(db: &Db, job: NewJob) -> Uuid {
    assert!(jobs::enqueue(db, job).await.expect("enqueue"));
    repo::list(db, None, 1000)
        .await
        .expect("list")
        .last()
        .expect("job")
        .id
}

async fn jobs_retry_then_succeed_or_die(db: Db) {
    let flaky = Flaky::new("flaky", 2);
    let hopeless = Flaky::new("hopeless", u32::MAX);
    let w = worker(&db, vec![flaky.clone(), hopeless.clone()]);

    let id = queued(&db, NewJob::new("flaky", json!({"n": 1}))).await;
    for _ in 0..3 {
        assert_eq!(w.run_due().await.expect("run"), 1);
    }
    assert_eq!(flaky.runs_of(id), 3);
    assert!(
        repo::list(&db, None, 10).await.unwrap().is_empty(),
        "done jobs are deleted"
    );

    let dead = queued(&db, NewJob::new("hopeless", json!({})).attempts(2)).await;
    w.run_due().await.unwrap();
    let row = &repo::list(&db, None, 10).await.unwrap()[0];
    assert_eq!((row.state.as_str(), row.attempts), ("queued", 1));
    w.run_due().await.unwrap();
    let row = &repo::list(&db, None, 10).await.unwrap()[0];
    assert_eq!((row.state.as_str(), row.attempts), ("dead", 2));
    assert_eq!(row.last_error.as_deref(), Some("failure 2"));
    assert_eq!(w.run_due().await.unwrap(), 0, "a dead job is not claimed");

    // By hand: retried with fresh attempts, then purged once dead again.
    assert!(repo::retry(&db, dead, now()).await.unwrap());
    assert!(!repo::retry(&db, Uuid::now_v7(), now()).await.unwrap());
    w.run_due().await.unwrap();
    w.run_due().await.unwrap();
    assert_eq!(hopeless.runs_of(dead), 4);
    assert_eq!(repo::purge_dead(&db).await.unwrap(), 1);
    assert!(repo::list(&db, None, 10).await.unwrap().is_empty());

    // An enqueue under a key a waiting job holds is a no-op.
    let once = || NewJob::new("flaky", json!({})).dedupe("event-1:notify");
    assert!(jobs::enqueue(&db, once()).await.unwrap());
    assert!(!jobs::enqueue(&db, once()).await.unwrap());
    assert_eq!(repo::list(&db, None, 10).await.unwrap().len(), 1);
}

async fn a_job_runs_again_by_its_key(db: Db) {
    let hopeless = Flaky::new("hopeless", u32::MAX);
    let w = worker(&db, vec![hopeless.clone()]);
    let job = || NewJob::new("hopeless", json!({})).dedupe("k").attempts(2);
    assert!(jobs::enqueue(&db, job()).await.unwrap());
    assert!(!jobs::run_again(&db, "other").await.unwrap(), "no such key");
    w.run_due().await.unwrap();
    // Waiting for its retry: due now, attempts counted afresh.
    let waiting = &repo::list(&db, None, 10).await.unwrap()[0];
    assert_eq!((waiting.state.as_str(), waiting.attempts), ("queued", 1));
    assert!(jobs::run_again(&db, "k").await.unwrap());
    let again = &repo::list(&db, None, 10).await.unwrap()[0];
    assert_eq!((again.state.as_str(), again.attempts), ("queued", 0));
    w.run_due().await.unwrap();
    w.run_due().await.unwrap();
    let dead = &repo::list(&db, None, 10).await.unwrap()[0];
    assert_eq!(dead.state, "dead");
    // A dead one is queued again; enqueueing under its key still adds nothing.
    assert!(!jobs::enqueue(&db, job()).await.unwrap());
    assert!(jobs::run_again(&db, "k").await.unwrap());
    assert_eq!(w.run_due().await.unwrap(), 1);
    assert_eq!(hopeless.runs_of(dead.id), 4);
}

async fn each_job_is_taken_once_by_concurrent_workers(db: Db) {
    let handler = Arc::new(Flaky {
        kind: "work",
        failures: 0,
        runs: Mutex::new(HashMap::new()),
        delay: Duration::from_millis(5),
    });
    for i in 0..60 {
        jobs::enqueue(&db, NewJob::new("work", json!({"i": i})))
            .await
            .unwrap();
    }
    let workers: Vec<Worker> = (0..4).map(|_| worker(&db, vec![handler.clone()])).collect();
    let mut tasks = Vec::new();
    for w in workers {
        tasks.push(tokio::spawn(async move {
            while w.run_due().await.expect("run") > 0 {}
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let runs = handler.runs.lock().unwrap();
    assert_eq!(runs.len(), 60);
    assert!(runs.values().all(|n| *n == 1), "{runs:?}");
}

async fn a_lapsed_lease_is_taken_over(db: Db) {
    let handler = Flaky::new("work", 0);
    let id = queued(&db, NewJob::new("work", json!({}))).await;
    // A worker claims it and dies: its lease lapses.
    let dead_worker = Uuid::new_v4();
    let t = now();
    let claimed = repo::claim(
        &db,
        &["work"],
        10,
        dead_worker,
        t + Duration::from_millis(200),
        t,
    )
    .await
    .unwrap();
    assert_eq!(claimed.len(), 1);
    let w = worker(&db, vec![handler.clone()]);
    assert_eq!(w.run_due().await.unwrap(), 0, "held under a live lease");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(w.run_due().await.unwrap(), 1);
    assert_eq!(handler.runs_of(id), 1);
    assert!(repo::list(&db, None, 10).await.unwrap().is_empty());
    // The dead worker's late completion changes nothing.
    assert!(!repo::complete(&db, id, dead_worker).await.unwrap());
}

async fn running_jobs_are_put_back_at_shutdown(db: Db) {
    let started = Arc::new(AtomicU32::new(0));
    struct Slow(Arc<AtomicU32>);
    impl Handler for Slow {
        fn kind(&self) -> &'static str {
            "slow"
        }
        fn run<'a>(&'a self, _job: &'a Job) -> HandlerFuture<'a> {
            Box::pin(async move {
                self.0.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok(())
            })
        }
    }
    let settings = WorkerSettings {
        grace: Duration::from_millis(200),
        ..WorkerSettings::default()
    };
    let w = Worker::new(db.clone(), settings, vec![Arc::new(Slow(started.clone()))]);
    let mut tasks = Tasks::default();
    let mut subscriptions = Subscriptions::default();
    w.start(&mut tasks, &mut subscriptions);
    subscriptions.start(&db, &mut tasks);
    queued(&db, NewJob::new("slow", json!({}))).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while started.load(Ordering::SeqCst) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the worker did not pick the job up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tasks.stop(Duration::from_secs(5)).await;
    let row = &repo::list(&db, None, 10).await.unwrap()[0];
    assert_eq!((row.state.as_str(), row.attempts), ("queued", 0), "{row:?}");
    assert!(row.lease_token.is_none());
}

on_both!(
    jobs_retry_then_succeed_or_die,
    a_job_runs_again_by_its_key,
    each_job_is_taken_once_by_concurrent_workers,
    a_lapsed_lease_is_taken_over,
    running_jobs_are_put_back_at_shutdown,
);
