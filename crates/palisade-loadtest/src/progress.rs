//! The live display on stderr: one line per scenario (its VUs, iterations, requests
//! per second and errors) with a bar across its planned time, redrawn every second on
//! a terminal; elsewhere (CI logs) a plain line every ten seconds.

use crate::{duration, plan::ScenarioPlan, run::ScenarioStats};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::{
    io::IsTerminal,
    sync::{Arc, Mutex, atomic::Ordering::Relaxed},
    time::Duration,
};

#[derive(Clone)]
pub struct Progress {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    mode: Mode,
    bars: Vec<(ProgressBar, Duration, Duration, String)>,
    multi: MultiProgress,
    last_requests: Vec<u64>,
    last_line: Duration,
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Quiet,
    Lines,
    Bars,
}

impl Progress {
    /// Bars on a terminal, lines elsewhere, nothing when `quiet`.
    pub fn new(quiet: bool) -> Progress {
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Lines
        };
        Progress {
            inner: Arc::new(Mutex::new(Inner {
                mode,
                bars: Vec::new(),
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                last_requests: Vec::new(),
                last_line: Duration::ZERO,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn note(&self, line: &str) {
        let inner = self.lock();
        match inner.mode {
            Mode::Quiet => {}
            Mode::Lines => eprintln!("{line}"),
            Mode::Bars => {
                let _ = inner.multi.println(line);
            }
        }
    }

    pub fn start(&self, scenarios: &[Arc<ScenarioPlan>]) {
        let mut inner = self.lock();
        if inner.mode == Mode::Quiet {
            return;
        }
        let width = scenarios.iter().map(|s| s.name.len()).max().unwrap_or(8);
        // The plan itself is printed by the command; here, one bar per scenario.
        for s in scenarios {
            let total = s.executor.duration();
            let bar = if inner.mode == Mode::Bars {
                let b = inner.multi.add(ProgressBar::new(total.as_millis() as u64));
                b.set_style(
                    ProgressStyle::with_template("{prefix} [{bar:30}] {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                );
                b.set_prefix(format!("{:width$}", s.name));
                b
            } else {
                ProgressBar::hidden()
            };
            inner
                .bars
                .push((bar, s.start_time, total, s.name.to_string()));
            inner.last_requests.push(0);
        }
    }

    pub fn tick(&self, elapsed: Duration, stats: &[Arc<ScenarioStats>], active: i64) {
        let mut inner = self.lock();
        if inner.mode == Mode::Quiet {
            return;
        }
        let lines =
            inner.mode == Mode::Lines && elapsed >= inner.last_line + Duration::from_secs(10);
        if lines {
            inner.last_line = elapsed;
            eprintln!(
                "running ({}), {active} VUs active",
                duration::show(Duration::from_secs(elapsed.as_secs()))
            );
        }
        for (i, st) in stats.iter().enumerate() {
            let requests = st.requests.load(Relaxed);
            let per_second = requests - inner.last_requests[i];
            inner.last_requests[i] = requests;
            let failed = st.failed.load(Relaxed);
            let (bar, start, total, name) = &inner.bars[i];
            let state = if st.done.load(Relaxed) {
                "done"
            } else if st.started.load(Relaxed) {
                "running"
            } else {
                "waiting"
            };
            let msg = format!(
                "{state}, {} VUs, {} iterations, {per_second} req/s, {} errors ({:.1} %)",
                st.vus.load(Relaxed),
                st.iterations.load(Relaxed),
                failed,
                if requests == 0 {
                    0.0
                } else {
                    failed as f64 * 100.0 / requests as f64
                }
            );
            // A scenario that ended early (its iterations done) shows a full bar.
            let into = if st.done.load(Relaxed) && st.started.load(Relaxed) {
                *total
            } else {
                elapsed.saturating_sub(*start).min(*total)
            };
            bar.set_position(into.as_millis() as u64);
            if lines {
                eprintln!("  {name}: {msg}");
            }
            bar.set_message(msg);
        }
    }

    pub fn finish(&self) {
        let inner = self.lock();
        for (bar, ..) in &inner.bars {
            bar.finish();
        }
    }
}
