//! The client of bench/delivery.sh. Three measurements, each against a baseline taken
//! in the same run:
//!
//! - `queue`: jobs per second through the job queue (enqueued one per transaction while
//!   the worker claims, runs a no-op and deletes them) against a bare loop that inserts
//!   the same row into the same table and deletes it, on the database of
//!   `DATABASE_URL`;
//! - `latency`: from a payment's request to its notification on a live stream (on the
//!   same instance or another), against the payment request's own round trip;
//! - `streams`: the server's memory per idle notification stream, or per idle
//!   keep-alive connection (the baseline; bench/delivery.sh prints the ratio).
//!
//! Every figure is a median over rounds or a percentile over samples; the machine is
//! shared, so ratios matter more than absolute numbers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use palisade::config;
use palisade_service::jobs::{self, Handler, HandlerFuture, Job, NewJob, Worker, WorkerSettings};
use palisade_store::Db;
use palisade_store::background::Tasks;
use palisade_store::listen::Subscriptions;
use palisade_store::repo::jobs::{self as repo, JobRow};
use palisade_store::repo::now;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

/// What the `streams` measurement holds open.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Held {
    Connections,
    Streams,
}

#[derive(Subcommand)]
enum Command {
    /// Jobs per second through the queue against a bare insert-then-delete loop.
    Queue {
        #[arg(long, default_value_t = 2000)]
        jobs: usize,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Event-to-stream latency: payments sent to `send`, their notifications read
    /// from a stream held on `stream`.
    Latency {
        #[arg(long)]
        send: String,
        #[arg(long)]
        stream: String,
        #[arg(long)]
        token: String,
        #[arg(long)]
        contract: String,
        #[arg(long, default_value_t = 200)]
        events: usize,
    },
    /// Bytes of RSS each idle stream (or idle keep-alive connection, the baseline)
    /// adds to the server at `api` (process `pid`), `users` × 5 of them; run each on a
    /// fresh server, so that neither reuses memory the other freed.
    Streams {
        #[arg(long)]
        api: String,
        #[arg(long)]
        pid: u32,
        #[arg(long, default_value_t = 200)]
        users: usize,
        #[arg(long, value_enum)]
        kind: Held,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    match Args::parse().command {
        Command::Queue { jobs, rounds } => queue(jobs, rounds).await,
        Command::Latency {
            send,
            stream,
            token,
            contract,
            events,
        } => latency(&send, &stream, &token, &contract, events).await,
        Command::Streams {
            api,
            pid,
            users,
            kind,
        } => streams(&api, pid, users, kind).await,
    }
}

// ---- queue ----------------------------------------------------------------------

const KIND: &str = "bench.noop";

/// Counts its runs; does nothing else.
struct Noop(Arc<AtomicUsize>);

impl Handler for Noop {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn run<'a>(&'a self, _job: &'a Job) -> HandlerFuture<'a> {
        Box::pin(async move {
            self.0.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
    }
}

async fn queue(n: usize, rounds: usize) -> anyhow::Result<()> {
    let config = config::load(None).into_result()?;
    let db = Db::connect(&config.database.store)
        .await
        .context("DATABASE_URL")?;
    println!(
        "{:<6} {:>12} {:>12} {:>8}",
        "round", "bare_rows/s", "jobs/s", "ratio"
    );
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        let bare = bare_loop(&db, n).await?;
        let through = through_queue(&db, n).await?;
        ratios.push(through / bare);
        println!(
            "{round:<6} {bare:>12.0} {through:>12.0} {:>8.3}",
            through / bare
        );
    }
    println!(
        "median ratio jobs through the queue ÷ bare insert-then-delete: {:.3}",
        median(&mut ratios)
    );
    Ok(())
}

/// A job row as the queue stores it, under `lease` so that it can be deleted.
fn row(i: usize, lease: Uuid) -> JobRow {
    let at = now();
    JobRow {
        id: Uuid::now_v7(),
        kind: "bench.bare".to_owned(),
        dedupe_key: None,
        payload: json!({ "i": i }).to_string(),
        state: repo::QUEUED.to_owned(),
        attempts: 0,
        max_attempts: 1,
        run_at: at,
        lease_token: Some(lease),
        locked_until: None,
        last_error: None,
        created_at: at,
        updated_at: at,
    }
}

/// Rows per second of insert, then delete, one after the other.
async fn bare_loop(db: &Db, n: usize) -> anyhow::Result<f64> {
    let lease = Uuid::new_v4();
    let started = Instant::now();
    for i in 0..n {
        let row = row(i, lease);
        repo::insert(db, &row).await?;
        if !repo::complete(db, row.id, lease).await? {
            bail!("the bare row was not deleted");
        }
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// Jobs per second enqueued and run by the worker, from the first enqueue to the last
/// run.
async fn through_queue(db: &Db, n: usize) -> anyhow::Result<f64> {
    let runs = Arc::new(AtomicUsize::new(0));
    let worker = Worker::new(
        db.clone(),
        WorkerSettings::default(),
        vec![Arc::new(Noop(runs.clone()))],
    );
    let mut tasks = Tasks::default();
    let mut subscriptions = Subscriptions::default();
    worker.start(&mut tasks, &mut subscriptions);
    subscriptions.start(db, &mut tasks);
    let started = Instant::now();
    for i in 0..n {
        jobs::enqueue(db, NewJob::new(KIND, json!({ "i": i }))).await?;
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while runs.load(Ordering::Relaxed) < n {
        if Instant::now() > deadline {
            bail!("the queue did not drain in 300 s");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    tasks.stop(Duration::from_secs(5)).await;
    Ok(rate)
}

// ---- latency --------------------------------------------------------------------

async fn latency(
    send: &str,
    stream: &str,
    token: &str,
    contract: &str,
    events: usize,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let mut res = http
        .get(format!("http://{stream}/api/v1/notifications/stream"))
        .bearer_auth(token)
        .send()
        .await?;
    if !res.status().is_success() {
        bail!("the stream answered {}", res.status());
    }
    let (arrived, mut arrivals) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buffer = String::new();
        while let Ok(Some(chunk)) = res.chunk().await {
            let at = Instant::now();
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                if block.contains("payment.succeeded") && arrived.send(at).is_err() {
                    return;
                }
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let run = Uuid::new_v4();
    let (mut delivered, mut round_trips) = (Vec::new(), Vec::new());
    for i in 0..events {
        let sent = Instant::now();
        let answer = http
            .post(format!("http://{send}/api/v1/payments"))
            .bearer_auth(token)
            .header("idempotency-key", format!("{run}-{i}"))
            .json(
                &json!({"contract_id": contract, "payment_method": "pm_card_visa",
                          "amount": {"amount_cents": 1, "currency": "EUR"}}),
            )
            .send()
            .await?;
        round_trips.push(sent.elapsed());
        if answer.status() != reqwest::StatusCode::CREATED {
            bail!("a payment answered {}", answer.status());
        }
        let at = tokio::time::timeout(Duration::from_secs(5), arrivals.recv())
            .await
            .context("no notification within 5 s")?
            .context("the stream ended")?;
        delivered.push(at.duration_since(sent));
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (d50, d99) = (
        percentile(&mut delivered, 50.0),
        percentile(&mut delivered, 99.0),
    );
    let (r50, r99) = (
        percentile(&mut round_trips, 50.0),
        percentile(&mut round_trips, 99.0),
    );
    println!(
        "payment → notification on the stream: p50 {:.1} ms, p99 {:.1} ms ({events} events)",
        ms(d50),
        ms(d99)
    );
    println!(
        "payment request round trip (baseline): p50 {:.1} ms, p99 {:.1} ms",
        ms(r50),
        ms(r99)
    );
    println!(
        "ratio p50 notification ÷ p50 round trip: {:.2}",
        ms(d50) / ms(r50)
    );
    Ok(())
}

// ---- streams --------------------------------------------------------------------

fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS")?;
    Ok(kb * 1024)
}

/// The server's RSS once it has settled (the lowest of a few readings a moment apart).
async fn settled_rss(pid: u32) -> anyhow::Result<u64> {
    let mut lowest = u64::MAX;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        lowest = lowest.min(rss_bytes(pid)?);
    }
    Ok(lowest)
}

/// Registers a user and signs them in; their access token.
async fn signed_up(http: &reqwest::Client, api: &str, email: &str) -> anyhow::Result<String> {
    let password = "a long benchmark passphrase 4711";
    let body = json!({"email": email, "password": password, "name": "Bench"});
    let r = http
        .post(format!("http://{api}/api/v1/auth/register"))
        .json(&body)
        .send()
        .await?;
    if r.status() != reqwest::StatusCode::CREATED {
        bail!("register answered {}", r.status());
    }
    let login: serde_json::Value = http
        .post(format!("http://{api}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await?
        .json()
        .await?;
    login["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("no access token")
}

async fn streams(api: &str, pid: u32, users: usize, kind: Held) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let run = Uuid::new_v4().simple().to_string();
    let mut tokens = Vec::new();
    if kind == Held::Streams {
        for i in 0..users {
            tokens.push(signed_up(&http, api, &format!("s{i}-{run}@example.com")).await?);
        }
    }
    let count = users * 5;
    let before = settled_rss(pid).await?;
    let mut connections = Vec::new();
    let mut streams = Vec::new();
    match kind {
        // Keep-alive connections that each answered one request, then idle.
        Held::Connections => {
            for _ in 0..count {
                let mut c = tokio::net::TcpStream::connect(api).await?;
                c.write_all(b"GET /health HTTP/1.1\r\nHost: bench\r\n\r\n")
                    .await?;
                let mut answer = [0u8; 1024];
                let n = c.read(&mut answer).await?;
                if !answer[..n].starts_with(b"HTTP/1.1 200") {
                    bail!("GET /health: {}", String::from_utf8_lossy(&answer[..n]));
                }
                connections.push(c);
            }
        }
        Held::Streams => {
            for token in &tokens {
                for _ in 0..5 {
                    // A client each: one connection per stream, as browsers hold them.
                    let res = reqwest::Client::new()
                        .get(format!("http://{api}/api/v1/notifications/stream"))
                        .bearer_auth(token)
                        .send()
                        .await?;
                    if !res.status().is_success() {
                        bail!("a stream answered {}", res.status());
                    }
                    streams.push(res);
                }
            }
        }
    }
    let held = settled_rss(pid).await?;
    let each = held.saturating_sub(before) as f64 / count as f64;
    println!("{each:.0}");
    drop((connections, streams));
    Ok(())
}

// ---- statistics -----------------------------------------------------------------

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The nearest-rank percentile `p` of `values`.
fn percentile(values: &mut [Duration], p: f64) -> Duration {
    values.sort();
    if values.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}
