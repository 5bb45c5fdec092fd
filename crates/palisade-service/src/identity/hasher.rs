//! Password hashing off the async runtime, on a few threads of its own.
//!
//! argon2id runs on `permits` dedicated threads ((cores − 1, at least 1) by default), fed
//! by a queue, so a login storm cannot starve other requests. Dedicated threads, not
//! tokio's blocking pool: every argon2 call allocates its 19 MiB work area, and glibc
//! keeps freed blocks of that size in the arena of the thread that freed them, so
//! hashes spread over the blocking pool's many threads left 400 MiB resident after a
//! login benchmark. A fixed set of threads bounds it to about `permits` × 19 MiB.

use std::sync::{Arc, Mutex, mpsc};

use palisade_auth::password::{HashError, Passwords, Verdict};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce(&Passwords) + Send>;

#[derive(Clone)]
pub struct Hasher {
    queue: mpsc::Sender<Job>,
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
                    loop {
                        let next = jobs.lock().map(|rx| rx.recv());
                        match next {
                            Ok(Ok(job)) => job(&passwords),
                            // The queue is closed (every Hasher dropped) or poisoned.
                            _ => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password-hashing thread");
            }
        }
        Hasher { queue }
    }

    /// (cores − 1, at least 1).
    pub fn default_permits() -> usize {
        std::thread::available_parallelism()
            .map(|n| n.get().saturating_sub(1))
            .unwrap_or(1)
            .max(1)
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Passwords) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |p| {
            // The caller may have gone (the request was cancelled): nothing to do.
            let _ = tx.send(f(p));
        });
        self.queue
            .send(job)
            .map_err(|_| HashError::Hash("the hashing threads are gone".into()))?;
        rx.await
            .map_err(|_| HashError::Hash("a hashing thread failed".into()))
    }

    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        self.run(move |p| p.hash(&password)).await?
    }

    pub async fn verify(&self, password: String, stored: String) -> Result<Verdict, HashError> {
        self.run(move |p| p.verify(&password, &stored)).await
    }

    /// A verification that takes as long as a real one and never matches: the answer
    /// for an unknown or locked account.
    pub async fn verify_dummy(&self, password: String) -> Result<Verdict, HashError> {
        self.run(move |p| p.verify_dummy(&password)).await
    }

    /// The first of `stored` that `code` matches, checked one after the other in one
    /// job (backup codes).
    pub async fn find_match(
        &self,
        code: String,
        stored: Vec<String>,
    ) -> Result<Option<usize>, HashError> {
        self.run(move |p| {
            stored
                .iter()
                .position(|h| matches!(p.verify(&code, h), Verdict::Match { .. }))
        })
        .await
    }
}

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
