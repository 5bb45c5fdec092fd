//! Each executor drives its scenario's VUs as k6's does. Iterations still running at
//! the scenario's end have `gracefulStop` to finish; then they are interrupted (not
//! counted in `iterations`, their finished requests kept). Under ramping-vus a VU
//! the stages no longer want finishes its iteration within `gracefulRampDown`.

use super::{ScenarioStats, Shared, vu::Vu};
use crate::{
    metrics::{Sample, Tags, id},
    plan::{ExecutorPlan, ScenarioPlan},
    schedule,
};
use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Instant,
};
use tokio::{
    sync::{mpsc, watch},
    task::JoinSet,
    time::sleep_until,
};

pub async fn drive(shared: &Arc<Shared>, sc: &Arc<ScenarioPlan>, stats: &Arc<ScenarioStats>) {
    let start = Instant::now();
    let stop = start + sc.executor.duration();
    let hard_stop = stop + sc.graceful_stop;
    match &sc.executor {
        ExecutorPlan::SharedIterations {
            vus, iterations, ..
        } => {
            let left = Arc::new(AtomicU64::new(*iterations));
            looping(shared, sc, stats, *vus, hard_stop, move |_| {
                Instant::now() < stop
                    && left
                        .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1))
                        .is_ok()
            })
            .await
        }
        ExecutorPlan::PerVuIterations {
            vus, iterations, ..
        } => {
            let each = *iterations;
            looping(shared, sc, stats, *vus, hard_stop, move |done| {
                Instant::now() < stop && done < each
            })
            .await
        }
        ExecutorPlan::ConstantVus { vus, .. } => {
            looping(shared, sc, stats, *vus, hard_stop, move |_| {
                Instant::now() < stop
            })
            .await
        }
        ExecutorPlan::RampingVus {
            changes,
            graceful_ramp_down,
            ..
        } => {
            ramping(
                shared,
                sc,
                stats,
                changes,
                start,
                stop,
                hard_stop,
                *graceful_ramp_down,
            )
            .await
        }
        ExecutorPlan::ArrivalRate {
            arrivals,
            pre_allocated,
            max_vus,
            ..
        } => {
            arrival_rate(
                shared,
                sc,
                stats,
                arrivals.clone(),
                *pre_allocated,
                *max_vus,
                start,
                stop,
                hard_stop,
            )
            .await
        }
    }
}

/// Runs one iteration, cut at `hard_stop`, at an abort, or when `cut` resolves; hands
/// its samples over either way. False when it was cut.
async fn one(
    shared: &Shared,
    sc: &ScenarioPlan,
    stats: &ScenarioStats,
    vu: &mut Vu,
    scheduled: Instant,
    hard_stop: Instant,
    cut: impl Future<Output = ()>,
) -> bool {
    let finished = tokio::select! {
        r = vu.iteration(sc, shared, scheduled) => {
            if let Err(super::vu::Broken(e)) = r {
                shared.note_error(&format!("{}: {e}", sc.name));
            }
            true
        }
        _ = sleep_until(hard_stop.into()) => false,
        _ = shared.until_aborted() => false,
        _ = cut => false,
    };
    if !finished {
        stats.interrupted.fetch_add(1, Relaxed);
    }
    vu.iter += 1;
    vu.flush(shared, Some(stats));
    finished
}

/// `vus` VUs, each iterating while `more(iterations it finished)` says so.
async fn looping(
    shared: &Arc<Shared>,
    sc: &Arc<ScenarioPlan>,
    stats: &Arc<ScenarioStats>,
    vus: u64,
    hard_stop: Instant,
    more: impl Fn(u64) -> bool + Send + Sync + 'static,
) {
    let more = Arc::new(more);
    let mut set = JoinSet::new();
    for index in 0..vus {
        let (shared, sc, stats, more) = (shared.clone(), sc.clone(), stats.clone(), more.clone());
        set.spawn(async move {
            let mut vu = Vu::new(&shared, index);
            shared.allocated.fetch_add(1, Relaxed);
            enter(&shared, &stats);
            let mut done = 0;
            while !shared.aborted() && more(done) {
                if !one(
                    &shared,
                    &sc,
                    &stats,
                    &mut vu,
                    Instant::now(),
                    hard_stop,
                    std::future::pending(),
                )
                .await
                {
                    break;
                }
                done += 1;
            }
            leave(&shared, &stats);
        });
    }
    while set.join_next().await.is_some() {}
}

/// A VU starts running (or waiting for its next iteration) in the scenario.
fn enter(shared: &Shared, stats: &ScenarioStats) {
    shared.active.fetch_add(1, Relaxed);
    stats.vus.fetch_add(1, Relaxed);
}

fn leave(shared: &Shared, stats: &ScenarioStats) {
    shared.active.fetch_sub(1, Relaxed);
    stats.vus.fetch_sub(1, Relaxed);
}

/// `ramping-vus`: VU n (from 1) iterates while the stages want n or more VUs.
#[allow(clippy::too_many_arguments)]
async fn ramping(
    shared: &Arc<Shared>,
    sc: &Arc<ScenarioPlan>,
    stats: &Arc<ScenarioStats>,
    changes: &[(std::time::Duration, u64)],
    start: Instant,
    stop: Instant,
    hard_stop: Instant,
    grace: std::time::Duration,
) {
    let (target_tx, target_rx) = watch::channel(0u64);
    let most = changes.iter().map(|c| c.1).max().unwrap_or(0);
    let mut set = JoinSet::new();
    for n in 1..=most {
        let (shared, sc, stats, mut target) =
            (shared.clone(), sc.clone(), stats.clone(), target_rx.clone());
        set.spawn(async move {
            let mut vu: Option<Vu> = None;
            loop {
                // Wait to be wanted (or for the end).
                if target.wait_for(|t| *t >= n).await.is_err()
                    || shared.aborted()
                    || Instant::now() >= stop
                {
                    break;
                }
                let v = match &mut vu {
                    Some(v) => v,
                    None => {
                        shared.allocated.fetch_add(1, Relaxed);
                        vu.insert(Vu::new(&shared, n - 1))
                    }
                };
                enter(&shared, &stats);
                while *target.borrow() >= n && Instant::now() < stop && !shared.aborted() {
                    let mut watch = target.clone();
                    let unwanted = async move {
                        if watch.wait_for(|t| *t < n).await.is_ok() {
                            tokio::time::sleep(grace).await;
                        } else {
                            std::future::pending::<()>().await;
                        }
                    };
                    if !one(&shared, &sc, &stats, v, Instant::now(), hard_stop, unwanted).await {
                        break;
                    }
                }
                leave(&shared, &stats);
                if Instant::now() >= stop || shared.aborted() {
                    break;
                }
            }
        });
    }
    // The schedule: set each change's VU count at its time; at the end, none.
    for &(at, count) in changes {
        tokio::select! {
            _ = sleep_until((start + at).into()) => {}
            _ = shared.until_aborted() => break,
        }
        target_tx.send_replace(count);
    }
    tokio::select! {
        _ = sleep_until(stop.into()) => {}
        _ = shared.until_aborted() => {}
    }
    // Dropping the sender ends the waits of VUs not wanted again.
    target_tx.send_replace(0);
    drop(target_tx);
    while set.join_next().await.is_some() {}
}

/// Arrival rates: each iteration starts at its due time on an idle VU; with none idle
/// a VU is added up to `max_vus`, beyond that the iteration is dropped and counted in
/// `dropped_iterations`. `iteration_duration` runs from the due time.
#[allow(clippy::too_many_arguments)]
async fn arrival_rate(
    shared: &Arc<Shared>,
    sc: &Arc<ScenarioPlan>,
    stats: &Arc<ScenarioStats>,
    arrivals: schedule::Arrivals,
    pre_allocated: u64,
    max_vus: u64,
    start: Instant,
    stop: Instant,
    hard_stop: Instant,
) {
    let (idle_tx, mut idle_rx) = mpsc::unbounded_channel::<Vu>();
    let mut allocated = 0u64;
    let new_vu = |allocated: &mut u64| {
        *allocated += 1;
        shared.allocated.fetch_add(1, Relaxed);
        Vu::new(shared, *allocated - 1)
    };
    for _ in 0..pre_allocated {
        let _ = idle_tx.send(new_vu(&mut allocated));
    }
    let mut set = JoinSet::new();
    for due in arrivals {
        let at = start + due;
        if at >= stop {
            break;
        }
        tokio::select! {
            _ = sleep_until(at.into()) => {}
            _ = shared.until_aborted() => break,
        }
        let vu = match idle_rx.try_recv() {
            Ok(v) => Some(v),
            Err(_) if allocated < max_vus => Some(new_vu(&mut allocated)),
            Err(_) => None,
        };
        let Some(mut vu) = vu else {
            stats.dropped.fetch_add(1, Relaxed);
            let tags = Tags::of(&sc.steps[0].tags);
            shared.record(&[Sample {
                metric: id::DROPPED_ITERATIONS,
                value: 1.0,
                tags,
                at: Instant::now(),
            }]);
            continue;
        };
        let (shared, sc, stats, idle) =
            (shared.clone(), sc.clone(), stats.clone(), idle_tx.clone());
        set.spawn(async move {
            enter(&shared, &stats);
            one(
                &shared,
                &sc,
                &stats,
                &mut vu,
                at,
                hard_stop,
                std::future::pending(),
            )
            .await;
            leave(&shared, &stats);
            let _ = idle.send(vu);
        });
        // Reap finished tasks as we go, so a long run holds no finished handles.
        while set.try_join_next().is_some() {}
    }
    while set.join_next().await.is_some() {}
}
