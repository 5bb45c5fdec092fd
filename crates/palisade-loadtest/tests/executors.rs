//! Each executor against a small HTTP server of the test's own: how many iterations
//! run, how many are dropped, and what the summary counts.

use palisade_loadtest::{
    metrics::{Sink, Values},
    plan::{self, Settings},
    progress::Progress,
    run::{self, Finished},
    scenario::File,
    threshold::{Aggregation, MetricKey},
};
use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// A keep-alive HTTP/1.1 server answering every request `{"id":"n"}` after `delay`,
/// counting requests and connections.
struct Target {
    url: String,
    requests: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
}

async fn target(delay: Duration) -> Target {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicU64::new(0));
    let connections = Arc::new(AtomicU64::new(0));
    let (r, c) = (requests.clone(), connections.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            c.fetch_add(1, Relaxed);
            let r = r.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    // One request at a time: read to the end of its head (bodies are
                    // small and sized by content-length).
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let body_len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buf.len() < end + 4 + body_len {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buf.drain(..end + 4 + body_len);
                    let n = r.fetch_add(1, Relaxed) + 1;
                    tokio::time::sleep(delay).await;
                    let body = format!("{{\"id\":\"{n}\"}}");
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if sock.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Target {
        url,
        requests,
        connections,
    }
}

async fn run_file(text: &str, url: &str) -> Finished {
    let file = File::parse(text).unwrap();
    let plan = plan::build(
        &file,
        &Settings {
            base_url: Some(url.into()),
            scale: 1.0,
            ..Default::default()
        },
    )
    .unwrap();
    run::run(plan, Progress::new(true)).await.unwrap()
}

fn count(f: &Finished, name: &str) -> f64 {
    match f.registry.sink(&MetricKey::plain(name)) {
        Some((_, Sink::Counter { sum, .. })) => *sum,
        other => panic!("{name}: {:?}", other.map(|o| o.1)),
    }
}

fn trend(f: &Finished, name: &str) -> Values {
    f.registry
        .sink(&MetricKey::plain(name))
        .unwrap()
        .1
        .values(f.elapsed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_iterations_run_exactly_their_count_among_the_vus() {
    let t = target(Duration::from_millis(2)).await;
    let f = run_file(
        r#"[scenarios.s]
           executor = "shared-iterations"
           vus = 4
           iterations = 37
           steps = [{ path = "/a" }]"#,
        &t.url,
    )
    .await;
    assert_eq!(count(&f, "iterations"), 37.0);
    assert_eq!(count(&f, "http_reqs"), 37.0);
    assert_eq!(t.requests.load(Relaxed), 37);
    // Connections are reused: one per VU.
    assert_eq!(t.connections.load(Relaxed), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_vu_iterations_run_their_count_on_each_vu() {
    let t = target(Duration::from_millis(1)).await;
    let f = run_file(
        r#"[scenarios.p]
           executor = "per-vu-iterations"
           vus = 3
           iterations = 5
           steps = [{ path = "/a", capture = { id = "/id" } }, { path = "/b/{{id}}", checks = [{ name = "has id", pointer = "/id" }] }]"#,
        &t.url,
    )
    .await;
    assert_eq!(count(&f, "iterations"), 15.0);
    assert_eq!(count(&f, "http_reqs"), 30.0);
    assert_eq!(f.registry.checks.values().next(), Some(&(15, 0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_constant_arrival_rate_starts_rate_times_duration_iterations() {
    let t = target(Duration::from_millis(1)).await;
    let f = run_file(
        r#"[scenarios.r]
           executor = "constant-arrival-rate"
           rate = 20
           duration = "2s"
           preAllocatedVUs = 2
           maxVUs = 10
           steps = [{ path = "/a" }]"#,
        &t.url,
    )
    .await;
    assert_eq!(count(&f, "iterations"), 40.0);
    assert_eq!(count(&f, "dropped_iterations"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arrival_rate_drops_what_its_vus_cannot_start_and_times_from_the_schedule() {
    // 20 due a second for 2 s on at most 2 VUs, each iteration 400 ms: about 2 × 2.5
    // per second can start; the rest are dropped, not queued.
    let t = target(Duration::from_millis(400)).await;
    let f = run_file(
        r#"[scenarios.r]
           executor = "constant-arrival-rate"
           rate = 20
           duration = "2s"
           preAllocatedVUs = 1
           maxVUs = 2
           steps = [{ path = "/slow" }]"#,
        &t.url,
    )
    .await;
    let done = count(&f, "iterations");
    let dropped = count(&f, "dropped_iterations");
    assert_eq!(
        done + dropped,
        40.0,
        "every due iteration either ran or was dropped"
    );
    assert!((8.0..=12.0).contains(&done), "ran {done}");
    assert!(dropped >= 28.0, "dropped {dropped}");
    // Each ran as soon as due: no iteration waited for a VU beyond a few ms.
    let it = trend(&f, "iteration_duration");
    assert!(
        it.get(Aggregation::Max) < 600.0,
        "max {}",
        it.get(Aggregation::Max)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn constant_vus_stop_at_the_duration_and_cut_what_overruns_the_graceful_stop() {
    let t = target(Duration::from_millis(700)).await;
    let started = Instant::now();
    let f = run_file(
        r#"[scenarios.c]
           executor = "constant-vus"
           vus = 2
           duration = "1s"
           gracefulStop = "0s"
           steps = [{ path = "/slow" }]"#,
        &t.url,
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    // Each VU finished one 700 ms iteration, and the second was cut at 1 s.
    assert_eq!(count(&f, "iterations"), 2.0);
    assert_eq!(f.scenarios[0].2.interrupted, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ramping_vus_follow_the_stages() {
    let t = target(Duration::from_millis(50)).await;
    let f = run_file(
        r#"[scenarios.v]
           executor = "ramping-vus"
           startVUs = 0
           stages = [{ duration = "1s", target = 4 }, { duration = "1s", target = 4 }, { duration = "0s", target = 0 }]
           gracefulRampDown = "0s"
           steps = [{ path = "/a", sleep = "100ms" }]"#,
        &t.url,
    )
    .await;
    // VUs 1..4 start at 0, 0.25, 0.5 and 0.75 s and run until 2 s, each iteration
    // about 150 ms: (2 + 1.75 + 1.5 + 1.25) s / 0.15 s ≈ 43.
    let n = count(&f, "iterations");
    assert!((28.0..=46.0).contains(&n), "{n}");
    match f.registry.sink(&MetricKey::plain("vus_max")).unwrap().1 {
        Sink::Gauge { max, .. } => assert_eq!(*max, 4.0),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thresholds_are_judged_on_tagged_sub_metrics() {
    let t = target(Duration::from_millis(1)).await;
    let f = run_file(
        r#"[thresholds]
           "http_reqs{scenario:a}" = ["count==5"]
           "http_reqs{scenario:b}" = ["count==3"]
           "http_req_duration{name:slow one}" = ["p(95)<0.0001"]
           [scenarios.a]
           executor = "shared-iterations"
           iterations = 5
           steps = [{ path = "/a" }]
           [scenarios.b]
           executor = "shared-iterations"
           iterations = 3
           steps = [{ path = "/b", name = "slow one" }]"#,
        &t.url,
    )
    .await;
    let verdicts: Vec<(String, bool)> = f
        .thresholds
        .iter()
        .map(|(t, ok, _)| (t.key.to_string(), *ok))
        .collect();
    assert_eq!(
        verdicts,
        vec![
            ("http_req_duration{name:slow one}".into(), false),
            ("http_reqs{scenario:a}".into(), true),
            ("http_reqs{scenario:b}".into(), true),
        ]
    );
    assert!(f.thresholds_failed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_and_teardown_run_once_per_account_and_are_not_measured() {
    let t = target(Duration::from_millis(1)).await;
    let f = run_file(
        r#"[setup]
           accounts = 3
           steps = [{ method = "POST", path = "/accounts", json = { n = "{{account}}" }, capture = { me = "/id" } }]
           [teardown]
           steps = [{ method = "DELETE", path = "/accounts/{{me}}" }]
           [scenarios.s]
           executor = "shared-iterations"
           vus = 3
           iterations = 6
           steps = [{ path = "/work/{{me}}" }]"#,
        &t.url,
    )
    .await;
    // 3 setups, 6 iterations, 3 teardowns reached the server; only the 6 are measured.
    assert_eq!(t.requests.load(Relaxed), 12);
    assert_eq!(count(&f, "http_reqs"), 6.0);
    assert_eq!(f.errors.count, 0, "{:?}", f.errors.first);
}
