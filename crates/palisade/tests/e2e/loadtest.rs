//! `palisade loadtest` against the real binary: the built-in scenarios' smoke profile
//! passes on a fresh server, a threshold that cannot hold exits 99, `abortOnFail`
//! stops the run early, a failed setup exits 107, and the HTML report renders in
//! headless Chromium.

use std::{
    path::Path,
    process::{Command, Output},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::backends::{Env, start_with};

/// What the built-in scenarios need of a target: the load generator exempt from rate
/// limits and the per-address connection cap, and exports on the plan of new accounts.
const TARGET: &[(&str, &str)] = &[
    ("PALISADE_RATE_LIMIT_ALLOW", "127.0.0.1/32"),
    ("PALISADE_MAX_CONNECTIONS_PER_CLIENT", "1024"),
    (
        "PALISADE_BILLING_PLANS",
        r#"[{"id":"free","name":"Free","features":["exports"],"limits":{}}]"#,
    ),
];

fn loadtest(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .arg("loadtest")
        .args(args)
        .output()
        .expect("run palisade loadtest")
}

fn shown(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn base(env: &Env) -> String {
    env.server().url("")
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("summary written"))
        .expect("summary is JSON")
}

fn values<'a>(summary: &'a Value, metric: &str) -> &'a Value {
    &summary["metrics"][metric]["values"]
}

async fn the_smoke_profile_passes_against_a_fresh_server(postgres: bool) {
    let env = start_with(postgres, TARGET).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let summary = dir.path().join("summary.json");
    let out = loadtest(&[
        "--base-url",
        &base(&env),
        "--profile",
        "smoke",
        "--quiet",
        "--summary-export",
        summary.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", shown(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("█ THRESHOLDS") && text.contains("✓ 'p(95)<900'"),
        "{text}"
    );
    assert!(!text.contains('✗'), "{text}");
    // No request, template or teardown error (the accounts were deleted).
    assert!(!text.contains("█ ERRORS"), "{text}");

    let s = read_json(&summary);
    // Every scenario ran, every request answered as expected, every check passed.
    for name in ["payments", "dashboard", "exports", "notifications", "spike"] {
        assert!(
            text.contains(&format!("    {name} (")),
            "{name} missing from {text}"
        );
    }
    assert_eq!(values(&s, "http_req_failed")["rate"], 0.0, "{text}");
    assert_eq!(values(&s, "checks")["fails"], 0, "{text}");
    assert!(values(&s, "successful_payments")["count"].as_f64().unwrap() > 10.0);
    assert_eq!(values(&s, "payment_failures")["rate"], 0.0);
    // The notification scenario saw its notices arrive on the stream.
    let delivered = values(&s, "notification_delivery");
    assert!(delivered["max"].as_f64().unwrap() > 0.0, "{delivered}");
    assert!(
        delivered["p(95)"].as_f64().unwrap() < 10_000.0,
        "{delivered}"
    );
    // k6's summary shape.
    let d = &s["metrics"]["http_req_duration"];
    assert_eq!(d["type"], "trend");
    assert_eq!(d["contains"], "time");
    for stat in ["avg", "min", "med", "max", "p(90)", "p(95)", "p(99)"] {
        assert!(d["values"][stat].is_number(), "{stat}: {d}");
    }
    assert_eq!(d["thresholds"]["p(95)<1000"]["ok"], true);
    assert_eq!(
        s["metrics"]["http_req_duration{scenario:payments}"]["thresholds"]["p(95)<900"]["ok"],
        true
    );
    assert_eq!(s["metrics"]["http_reqs"]["type"], "counter");
    assert!(values(&s, "http_reqs")["rate"].as_f64().unwrap() > 0.0);
    assert_eq!(s["metrics"]["checks"]["type"], "rate");
    assert!(s["metrics"]["vus_max"]["values"]["max"].as_f64().unwrap() >= 25.0);
    assert!(s["state"]["testRunDurationMs"].as_f64().unwrap() > 30_000.0);
    assert!(
        s["root_group"]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "payment succeeded")
    );
}

/// A one-scenario file against `/health`, with `thresholds` (TOML) added.
fn health_file(dir: &Path, executor: &str, thresholds: &str) -> String {
    let path = dir.join("scenario.toml");
    std::fs::write(
        &path,
        format!(
            "[thresholds]\n{thresholds}\n[scenarios.health]\n{executor}\nsteps = [{{ path = \"/health\", checks = [{{ name = \"up\", status = 200 }}] }}]\n"
        ),
    )
    .expect("write scenario");
    path.display().to_string()
}

async fn a_threshold_that_fails_exits_99(postgres: bool) {
    let env = start_with(postgres, TARGET).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = health_file(
        dir.path(),
        "executor = \"shared-iterations\"\nvus = 2\niterations = 20",
        "http_req_duration = [\"p(95)<0.0001\", \"max<60000\"]\nhttp_reqs = [\"count==20\"]",
    );
    let summary = dir.path().join("summary.json");
    let out = loadtest(&[
        &file,
        "--base-url",
        &base(&env),
        "--quiet",
        "--summary-export",
        summary.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(99), "{}", shown(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("✗ 'p(95)<0.0001'"), "{text}");
    assert!(
        text.contains("✓ 'max<60000'") && text.contains("✓ 'count==20'"),
        "{text}"
    );
    let s = read_json(&summary);
    assert_eq!(
        s["metrics"]["http_req_duration"]["thresholds"]["p(95)<0.0001"]["ok"],
        false
    );
    assert_eq!(
        s["metrics"]["http_reqs"]["thresholds"]["count==20"]["ok"],
        true
    );
}

async fn abort_on_fail_stops_the_run_early(postgres: bool) {
    let env = start_with(postgres, TARGET).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = health_file(
        dir.path(),
        "executor = \"constant-vus\"\nvus = 2\nduration = \"60s\"",
        "http_reqs = [{ threshold = \"count<50\", abortOnFail = true }]",
    );
    let started = Instant::now();
    let out = loadtest(&[&file, "--base-url", &base(&env), "--quiet"]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(99), "{}", shown(&out));
    assert!(took < Duration::from_secs(15), "ran {took:?} of 60 s");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("stopped early: threshold http_reqs: count<50 failed (abortOnFail)"),
        "{text}"
    );
}

async fn a_failed_setup_exits_107_before_any_load(postgres: bool) {
    let env = start_with(postgres, &[]).await;
    // Without the exemption the target's rate limit refuses the accounts' logins…
    // here, simpler and certain: a setup step the target answers 404.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("scenario.toml");
    std::fs::write(
        &path,
        r#"[setup]
steps = [{ name = "sign up", method = "POST", path = "/api/v1/nowhere", json = {}, expect = [201] }]
[scenarios.x]
executor = "constant-vus"
duration = "30s"
steps = [{ path = "/health" }]
"#,
    )
    .expect("write");
    let started = Instant::now();
    let out = loadtest(&[path.to_str().unwrap(), "--base-url", &base(&env), "--quiet"]);
    assert_eq!(out.status.code(), Some(107), "{}", shown(&out));
    assert!(started.elapsed() < Duration::from_secs(10));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("setup `sign up` answered 404"), "{err}");
}

on_both_backends!(
    the_smoke_profile_passes_against_a_fresh_server,
    a_threshold_that_fails_exits_99,
    abort_on_fail_stops_the_run_early,
    a_failed_setup_exits_107_before_any_load,
);

/// The HTML report, rendered by headless Chromium (Debian's `chromium`, which `.ci/run`
/// installs) and looked at: the page has its four charts, each line drawn in its
/// colour, and the verdict in green.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_renders_in_headless_chromium() {
    let env = start_with(false, TARGET).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = health_file(
        dir.path(),
        "executor = \"ramping-vus\"\nstartVUs = 1\nstages = [{ duration = \"3s\", target = 6 }]",
        "http_req_duration = [\"p(95)<5000\"]",
    );
    let report = dir.path().join("report.html");
    let out = loadtest(&[
        &file,
        "--base-url",
        &base(&env),
        "--quiet",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", shown(&out));
    let html = std::fs::read_to_string(&report).expect("report written");
    assert_eq!(html.matches("<svg").count(), 4, "four charts");
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "self-contained"
    );

    let shot = dir.path().join("shot.png");
    let chromium = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1100,1900",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", report.display()))
        .output()
        .unwrap_or_else(|e| {
            panic!("chromium could not start ({e}): apt-get install chromium, as .ci/run does")
        });
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&chromium.stderr)
    );

    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&shot).expect("png"),
    ));
    let mut reader = decoder.read_info().expect("png header");
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).expect("png frame");
    assert_eq!((info.width, info.height), (1100, 1900));
    let channels = info.color_type.samples();
    let near = |rgb: (u8, u8, u8)| {
        pixels
            .chunks(channels)
            .filter(|p| {
                p[0].abs_diff(rgb.0) < 24 && p[1].abs_diff(rgb.1) < 24 && p[2].abs_diff(rgb.2) < 24
            })
            .count()
    };
    // The charts' lines: p50 and requests (blue), p95 (orange), p99 (red), VUs (green);
    // and the page is not blank.
    for (name, rgb) in [
        ("blue", (31, 119, 180)),
        ("orange", (255, 127, 14)),
        ("red", (214, 39, 40)),
        ("green", (44, 160, 44)),
    ] {
        assert!(near(rgb) > 150, "{name} lines: {} pixels", near(rgb));
    }
    let white = near((255, 255, 255));
    assert!(
        white < pixels.len() / channels * 97 / 100,
        "the page is blank"
    );
}
