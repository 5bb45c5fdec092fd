//! Password hashing off the async runtime, on threads of its own.
//!
//! argon2id runs on `threads` dedicated threads (by default one per core on Linux), fed by a
//! queue. They run at a lower priority (niceness 10), so a login storm takes the idle
//! cores without starving other requests: when a request thread is runnable beside a
//! hashing thread, the kernel gives it about nine tenths of the core (CFS weights 1024
//! against 110). Each thread hashes in one 19 MiB [`WorkArea`] of its own, allocated
//! at its first hash and kept, so memory is bounded to `threads` × 19 MiB (plus a
//! passing area for a stored hash of a higher cost than ours) and no hash pays for
//! allocating it.
//! (On tokio's blocking pool, with an allocation per hash, glibc kept the freed areas
//! in the arenas of the pool's many threads: 400 MiB resident after a login benchmark.)

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use palisade_auth::password::{HashError, Passwords, Verdict, WorkArea};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce(&Passwords, &mut WorkArea) + Send>;

#[derive(Clone)]
pub struct Hasher {
    queue: mpsc::Sender<Job>,
    threads: usize,
    /// Jobs sent and not finished: running on a thread or waiting for one.
    pending: Arc<AtomicUsize>,
}

/// What the hashing threads are doing now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashingLoad {
    pub threads: usize,
    /// Threads hashing now.
    pub busy: usize,
    /// Hashes waiting for a thread.
    pub queued: usize,
}

impl Hasher {
    /// Starts `threads` hashing threads; they end when the last `Hasher` clone is dropped.
    pub fn new(passwords: Passwords, threads: usize) -> Hasher {
        let (queue, jobs) = mpsc::channel::<Job>();
        let jobs = Arc::new(Mutex::new(jobs));
        let passwords = Arc::new(passwords);
        for i in 0..threads.max(1) {
            let (jobs, passwords) = (jobs.clone(), passwords.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    yield_to_requests();
                    let mut area = WorkArea::default();
                    loop {
                        let next = jobs.lock().map(|rx| rx.recv());
                        match next {
                            Ok(Ok(job)) => {
                                // A job that panics fails its caller (its answer channel
                                // drops), not the thread: the area is scratch memory.
                                let run = AssertUnwindSafe(|| job(&passwords, &mut area));
                                if std::panic::catch_unwind(run).is_err() {
                                    tracing::error!("a password-hashing job panicked");
                                }
                            }
                            // The queue is closed (every Hasher dropped) or poisoned.
                            _ => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password-hashing thread");
            }
        }
        Hasher {
            queue,
            threads: threads.max(1),
            pending: Arc::default(),
        }
    }

    pub fn load(&self) -> HashingLoad {
        let pending = self.pending.load(Ordering::Relaxed);
        HashingLoad {
            threads: self.threads,
            busy: pending.min(self.threads),
            queued: pending.saturating_sub(self.threads),
        }
    }

    /// One per core where the threads' low priority keeps requests served (Linux);
    /// elsewhere one core is left to requests (cores − 1, at least 1).
    pub fn default_threads() -> usize {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if cfg!(target_os = "linux") {
            cores
        } else {
            cores.saturating_sub(1).max(1)
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Passwords, &mut WorkArea) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let (tx, rx) = oneshot::channel();
        let pending = self.pending.clone();
        pending.fetch_add(1, Ordering::Relaxed);
        let done = Pending(pending);
        let job: Job = Box::new(move |p, area| {
            let out = f(p, area);
            // No longer pending once the caller can see the result: a request that
            // follows its answer reads a load without it.
            drop(done);
            // The caller may have gone (the request was cancelled): nothing to do.
            let _ = tx.send(out);
        });
        self.queue
            .send(job)
            .map_err(|_| HashError::Hash("the hashing threads are gone".into()))?;
        rx.await
            .map_err(|_| HashError::Hash("a hashing thread failed".into()))
    }

    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        self.run(move |p, a| p.hash(&password, a)).await?
    }

    pub async fn verify(&self, password: String, stored: String) -> Result<Verdict, HashError> {
        self.run(move |p, a| p.verify(&password, &stored, a)).await
    }

    /// A verification that takes as long as a real one and never matches: the answer
    /// for an unknown or locked account.
    pub async fn verify_dummy(&self, password: String) -> Result<Verdict, HashError> {
        self.run(move |p, a| p.verify_dummy(&password, a)).await
    }

    /// The first of `stored` that `code` matches, checked one after the other in one
    /// job (backup codes).
    pub async fn find_match(
        &self,
        code: String,
        stored: Vec<String>,
    ) -> Result<Option<usize>, HashError> {
        self.run(move |p, a| {
            stored
                .iter()
                .position(|h| matches!(p.verify(&code, h, a), Verdict::Match { .. }))
        })
        .await
    }
}

/// A job counted in [`Hasher::load`] until it has run (or is dropped unrun).
struct Pending(Arc<AtomicUsize>);

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How much lower than a request thread a hashing thread runs.
const NICENESS: i32 = 10;

/// Lowers the calling thread's priority by [`NICENESS`] (to at most 19, the lowest).
/// On Linux a thread id given to `setpriority` names that one thread, not the process.
#[cfg(target_os = "linux")]
fn yield_to_requests() {
    // SAFETY: plain system calls on this thread's id; no memory is shared with them.
    let rc = unsafe {
        let tid = libc::gettid() as libc::id_t;
        let current = libc::getpriority(libc::PRIO_PROCESS, tid);
        libc::setpriority(libc::PRIO_PROCESS, tid, (current + NICENESS).min(19))
    };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        tracing::warn!(error = %e, "cannot lower the priority of a password-hashing thread");
    }
}

#[cfg(not(target_os = "linux"))]
fn yield_to_requests() {}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_auth::password::Cost;

    fn cheap() -> Passwords {
        Passwords::new(Cost {
            m_kib: 64,
            t: 1,
            p: 1,
        })
        .expect("params")
    }

    #[tokio::test]
    async fn hashes_verify_and_the_dummy_never_matches() {
        let h = Hasher::new(cheap(), 2);
        let stored = h.hash("a fine passphrase".into()).await.expect("hash");
        assert!(matches!(
            h.verify("a fine passphrase".into(), stored.clone()).await,
            Ok(Verdict::Match { .. })
        ));
        assert!(matches!(
            h.verify("wrong".into(), stored.clone()).await,
            Ok(Verdict::Mismatch)
        ));
        assert!(matches!(
            h.verify_dummy("a fine passphrase".into()).await,
            Ok(Verdict::Mismatch)
        ));
        let other = h.hash("another".into()).await.expect("hash");
        assert_eq!(
            h.find_match("another".into(), vec![stored, other])
                .await
                .expect("ok"),
            Some(1)
        );
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_threads_run_below_request_threads() {
        fn niceness() -> i32 {
            // SAFETY: a plain system call on this thread's id.
            unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
        }
        let h = Hasher::new(cheap(), 2);
        let mine = niceness();
        let theirs = h.run(|_, _| niceness()).await.expect("job");
        assert_eq!(theirs, (mine + NICENESS).min(19));
    }

    #[tokio::test]
    async fn a_panicking_job_fails_its_caller_and_not_the_thread() {
        let h = Hasher::new(cheap(), 1);
        let failed = h.run(|_, _| -> u8 { panic!("a job that panics") }).await;
        assert!(failed.is_err());
        assert!(h.hash("still hashing".into()).await.is_ok());
    }

    #[tokio::test]
    async fn many_concurrent_jobs_all_finish_on_one_thread() {
        let h = Hasher::new(cheap(), 1);
        let jobs: Vec<_> = (0..16)
            .map(|i| {
                let h = h.clone();
                tokio::spawn(async move { h.hash(format!("pw {i}")).await })
            })
            .collect();
        for j in jobs {
            assert!(j.await.expect("join").is_ok());
        }
    }
}
