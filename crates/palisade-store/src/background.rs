//! Periodic work that runs while the server does and stops with it: the database
//! health check, metric upkeep, the removal of expired sessions.
//!
//! [`Tasks::stop`] is called once the server has drained: a task waiting for its next
//! run stops at once, one in the middle of a run finishes it (within a grace period).
//! Only `stop` stops them: dropping [`Tasks`] (a moved-out field, an early return)
//! leaves them running, rather than ending the health check or the clean-up unseen.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

pub struct Tasks {
    /// Shared with every task, so the channel lives as long as any of them: a
    /// receiver sees a change only when `stop` sends one, never a closed channel.
    stop: Arc<watch::Sender<bool>>,
    running: Vec<(&'static str, JoinHandle<()>)>,
}

impl Default for Tasks {
    fn default() -> Self {
        Tasks {
            stop: Arc::new(watch::Sender::new(false)),
            running: Vec::new(),
        }
    }
}

impl Tasks {
    /// Runs `work` every `period`, the first time one period from now, until
    /// [`Tasks::stop`].
    pub fn every<F, Fut>(&mut self, name: &'static str, period: Duration, mut work: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let sender = Arc::clone(&self.stop);
        let mut stop = sender.subscribe();
        let handle = tokio::spawn(async move {
            let _sender = sender;
            let mut ticker = tokio::time::interval(period);
            ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                tokio::select! {
                    _ = ticker.tick() => work().await,
                    _ = stop.changed() => return,
                }
            }
        });
        self.running.push((name, handle));
    }

    /// Runs `work` until it returns or [`Tasks::stop`] is called: for a task that waits
    /// on something else than a clock (a database connection's notifications). It is
    /// handed a [`Stop`] to wait on beside its own work, and must end soon after.
    pub fn run<F, Fut>(&mut self, name: &'static str, work: F)
    where
        F: FnOnce(Stop) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let stop = Stop {
            receiver: self.stop.subscribe(),
            _sender: Arc::clone(&self.stop),
        };
        self.running.push((name, tokio::spawn(work(stop))));
    }

    /// Stops every task; a run in progress gets `grace` to finish, then is abandoned.
    pub async fn stop(self, grace: Duration) {
        self.stop.send_replace(true);
        let deadline = tokio::time::Instant::now() + grace;
        for (name, mut handle) in self.running {
            if tokio::time::timeout_at(deadline, &mut handle)
                .await
                .is_err()
            {
                tracing::warn!(
                    task = name,
                    "background task still running at shutdown; abandoned"
                );
                handle.abort();
            }
        }
    }
}

/// The stop signal, as [`Tasks::run`] hands it to its task.
pub struct Stop {
    receiver: watch::Receiver<bool>,
    /// Keeps the channel open while the task runs (see [`Tasks::stop`]).
    _sender: Arc<watch::Sender<bool>>,
}

impl Stop {
    /// Returns once [`Tasks::stop`] was called.
    pub async fn requested(&mut self) {
        // The sender lives in `self`: the channel cannot close under the wait.
        let _ = self.receiver.wait_for(|stopped| *stopped).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Tasks with one that counts its runs, every 10 s.
    fn counting() -> (Tasks, Arc<AtomicUsize>) {
        let runs = Arc::new(AtomicUsize::new(0));
        let mut tasks = Tasks::default();
        let counter = runs.clone();
        tasks.every("count", Duration::from_secs(10), move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        (tasks, runs)
    }

    #[tokio::test(start_paused = true)]
    async fn tasks_run_periodically_and_stop_when_told() {
        let (tasks, runs) = counting();
        tokio::time::sleep(Duration::from_secs(35)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        tasks.stop(Duration::from_secs(1)).await;
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3, "no run after stop");
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_tasks_does_not_stop_them() {
        let (tasks, runs) = counting();
        drop(tasks);
        tokio::time::sleep(Duration::from_secs(35)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_running_task_sees_the_stop() {
        let mut tasks = Tasks::default();
        let ended = Arc::new(AtomicUsize::new(0));
        let seen = ended.clone();
        tasks.run("wait", move |mut stop| async move {
            stop.requested().await;
            seen.fetch_add(1, Ordering::SeqCst);
        });
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(ended.load(Ordering::SeqCst), 0, "it waits until told");
        tasks.stop(Duration::from_secs(1)).await;
        assert_eq!(ended.load(Ordering::SeqCst), 1);
    }
}
