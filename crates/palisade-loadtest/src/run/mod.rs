//! The run: the setup's accounts, every scenario's executor from its start time, a
//! once-a-second sampler (the `vus` gauges, the `abortOnFail` thresholds, the live
//! display), then the teardown. Samples reach one registry behind a mutex, a VU's
//! whole iteration at a time.

mod executors;
mod http;
pub mod vu;

use crate::{
    metrics::{Registry, Sample, Tags, id},
    plan::{Plan, StepPlan},
    progress::Progress,
    template::Vars,
    threshold::Threshold,
};
use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};
use tokio::{sync::watch, task::JoinSet};
use vu::Vu;

/// What every VU of the run shares.
pub struct Shared {
    registry: Mutex<Registry>,
    pub run_id: String,
    pub timeout: Duration,
    pub vars: Vars,
    /// Each account's variables, from the setup.
    pub accounts: std::sync::OnceLock<Vec<Vars>>,
    pub next_vu: AtomicU64,
    /// VUs running or waiting for their next iteration, across scenarios.
    pub active: AtomicI64,
    /// VUs made so far.
    pub allocated: AtomicU64,
    /// Set once to stop everything at once (a threshold with `abortOnFail`, Ctrl-C).
    pub abort: watch::Sender<bool>,
    errors: Mutex<Errors>,
}

/// Request and template errors: how many, and the first few distinct ones.
#[derive(Default)]
pub struct Errors {
    pub count: u64,
    pub first: Vec<String>,
}

impl Shared {
    pub fn record(&self, samples: &[Sample]) {
        // A panic elsewhere cannot leave the registry half-written: `add` has no await.
        let mut r = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        r.add_all(samples);
    }

    pub fn note_error(&self, message: &str) {
        let mut e = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        e.count += 1;
        if e.first.len() < 5 && !e.first.iter().any(|m| m == message) {
            e.first.push(message.to_owned());
        }
    }

    pub fn aborted(&self) -> bool {
        *self.abort.borrow()
    }

    /// Resolves when the run is aborted.
    pub async fn until_aborted(&self) {
        let mut rx = self.abort.subscribe();
        let _ = rx.wait_for(|a| *a).await;
    }
}

/// One scenario's live counters, for the display and the summary.
#[derive(Default)]
pub struct ScenarioStats {
    pub iterations: AtomicU64,
    pub interrupted: AtomicU64,
    pub dropped: AtomicU64,
    pub requests: AtomicU64,
    pub failed: AtomicU64,
    pub vus: AtomicI64,
    pub started: AtomicBool,
    pub done: AtomicBool,
}

/// What a finished run hands to the summary and the report.
pub struct Finished {
    pub registry: Registry,
    /// From the first scenario's start to the last one's end.
    pub elapsed: Duration,
    pub thresholds: Vec<(Threshold, bool, f64)>,
    /// The threshold that stopped the run early, if one did.
    pub aborted_by: Option<String>,
    pub interrupted_by_user: bool,
    pub scenarios: Vec<(String, String, ScenarioCounts)>,
    pub errors: Errors,
}

impl Finished {
    pub fn thresholds_failed(&self) -> bool {
        self.thresholds.iter().any(|(_, ok, _)| !ok)
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct ScenarioCounts {
    pub iterations: u64,
    pub interrupted: u64,
    pub dropped: u64,
}

/// Runs a plan. `Err` is a setup that failed: nothing was measured.
pub async fn run(plan: Plan, progress: Progress) -> Result<Finished, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (abort, _) = watch::channel(false);
    let Plan {
        setup,
        teardown,
        scenarios,
        thresholds,
        registry,
        accounts,
        ..
    } = plan;
    let shared = Arc::new(Shared {
        registry: Mutex::new(registry),
        run_id: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
        timeout: plan.timeout,
        vars: plan.vars.clone(),
        accounts: std::sync::OnceLock::new(),
        next_vu: AtomicU64::new(0),
        active: AtomicI64::new(0),
        allocated: AtomicU64::new(0),
        abort,
        errors: Mutex::new(Errors::default()),
    });

    progress.note(&format!("setup: {accounts} account(s)"));
    let made = run_setup(&shared, Arc::new(setup), accounts).await?;
    let _ = shared.accounts.set(made);

    // The run's clock starts after the setup, which is not measured.
    let started = Instant::now();
    shared
        .registry
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .started = started;
    let scenarios: Vec<Arc<crate::plan::ScenarioPlan>> =
        scenarios.into_iter().map(Arc::new).collect();
    let stats: Vec<Arc<ScenarioStats>> = scenarios.iter().map(|_| Arc::default()).collect();
    progress.start(&scenarios);

    // Ctrl-C stops the run as an abort would, and the summary is still printed.
    let user_stop = Arc::new(AtomicBool::new(false));
    let ctrl_c = {
        let (shared, user_stop) = (shared.clone(), user_stop.clone());
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                user_stop.store(true, Relaxed);
                shared.abort.send_replace(true);
            }
        })
    };

    let mut drivers = JoinSet::new();
    for (sc, st) in scenarios.iter().zip(&stats) {
        let (shared, sc, st) = (shared.clone(), sc.clone(), st.clone());
        drivers.spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep_until((started + sc.start_time).into()) => {}
                _ = shared.until_aborted() => { st.done.store(true, Relaxed); return; }
            }
            st.started.store(true, Relaxed);
            executors::drive(&shared, &sc, &st).await;
            st.done.store(true, Relaxed);
        });
    }

    let aborted_by = Arc::new(Mutex::new(None::<String>));
    let sampler = {
        let (shared, aborted_by, progress) = (shared.clone(), aborted_by.clone(), progress.clone());
        let abortable: Vec<Threshold> = thresholds
            .iter()
            .filter(|t| t.abort_on_fail)
            .cloned()
            .collect();
        let stats = stats.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                sample_vus(&shared);
                let elapsed = started.elapsed();
                if !shared.aborted() {
                    let r = shared.registry.lock().unwrap_or_else(|p| p.into_inner());
                    let failing = abortable
                        .iter()
                        .filter(|t| elapsed >= t.delay_abort_eval)
                        .find(|t| !evaluate(&r, t, elapsed).0);
                    if let Some(t) = failing {
                        *aborted_by.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some(format!("{}: {}", t.key, t.expr.source));
                        drop(r);
                        shared.abort.send_replace(true);
                    }
                }
                progress.tick(elapsed, &stats, shared.active.load(Relaxed));
            }
        })
    };
    while drivers.join_next().await.is_some() {}
    let elapsed = started.elapsed();
    sampler.abort();
    ctrl_c.abort();
    sample_vus(&shared);
    progress.finish();

    if !teardown.is_empty() {
        for (i, vars) in shared.accounts.get().into_iter().flatten().enumerate() {
            let mut vu = Vu::for_account(&shared, i as u64, merged(&shared.vars, vars));
            // A failed teardown is reported with the run's errors; the next account's
            // still runs.
            if let Err(e) = vu.unmeasured(&teardown, &shared, "teardown").await {
                shared.note_error(&e);
            }
        }
    }

    // Tasks being cancelled may still hold the shared state: take its contents.
    let registry = std::mem::replace(
        &mut *shared.registry.lock().unwrap_or_else(|p| p.into_inner()),
        Registry::new(started),
    );
    let results = thresholds
        .into_iter()
        .map(|t| {
            let (ok, observed) = evaluate(&registry, &t, elapsed);
            (t, ok, observed)
        })
        .collect();
    let aborted_by = aborted_by.lock().unwrap_or_else(|p| p.into_inner()).take();
    Ok(Finished {
        registry,
        elapsed,
        thresholds: results,
        aborted_by,
        interrupted_by_user: user_stop.load(Relaxed),
        scenarios: scenarios
            .iter()
            .zip(&stats)
            .map(|(sc, st)| {
                (
                    sc.name.to_string(),
                    sc.executor.name().to_owned(),
                    ScenarioCounts {
                        iterations: st.iterations.load(Relaxed),
                        interrupted: st.interrupted.load(Relaxed),
                        dropped: st.dropped.load(Relaxed),
                    },
                )
            })
            .collect(),
        errors: std::mem::take(&mut *shared.errors.lock().unwrap_or_else(|p| p.into_inner())),
    })
}

/// Whether `t` holds on the registry now, and the value it compared.
pub fn evaluate(r: &Registry, t: &Threshold, elapsed: Duration) -> (bool, f64) {
    match r.sink(&t.key) {
        Some((_, sink)) => {
            let values = sink.values(elapsed);
            (t.expr.holds(&values), t.expr.observed(&values))
        }
        None => (false, 0.0),
    }
}

fn sample_vus(shared: &Shared) {
    let now = Instant::now();
    let tags = Tags::of(&Arc::default());
    let active = shared.active.load(Relaxed).max(0) as f64;
    let allocated = shared.allocated.load(Relaxed) as f64;
    shared.record(&[
        Sample {
            metric: id::VUS,
            value: active,
            tags: tags.clone(),
            at: now,
        },
        Sample {
            metric: id::VUS_MAX,
            value: allocated,
            tags,
            at: now,
        },
    ]);
}

fn merged(globals: &Vars, account: &Vars) -> Vars {
    let mut v = globals.clone();
    v.extend(account.iter().map(|(k, x)| (k.clone(), x.clone())));
    v
}

/// Each account's setup, four at a time; the first failure stops the run before it
/// starts.
async fn run_setup(
    shared: &Arc<Shared>,
    steps: Arc<Vec<StepPlan>>,
    accounts: u64,
) -> Result<Vec<Vars>, String> {
    if steps.is_empty() {
        return Ok(vec![Vars::new()]);
    }
    let mut made: Vec<Option<Vars>> = vec![None; accounts as usize];
    let all: Vec<u64> = (0..accounts).collect();
    for batch in all.chunks(4) {
        let mut set = JoinSet::new();
        for &a in batch {
            let (shared, steps) = (shared.clone(), steps.clone());
            set.spawn(async move {
                let mut vu = Vu::for_account(&shared, a, shared.vars.clone());
                vu.unmeasured(&steps, &shared, "setup").await?;
                // Only what the setup captured goes to the account; globals stay global.
                let mut vars = vu.into_vars();
                vars.retain(|k, v| shared.vars.get(k) != Some(v));
                Ok::<(u64, Vars), String>((a, vars))
            });
        }
        while let Some(joined) = set.join_next().await {
            let (a, vars) = joined.map_err(|e| format!("setup: {e}"))??;
            made[a as usize] = Some(vars);
        }
    }
    Ok(made.into_iter().flatten().collect())
}
