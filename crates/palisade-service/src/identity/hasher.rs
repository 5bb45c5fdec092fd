//! Password hashing off the async runtime: argon2id runs on the blocking pool behind a
//! semaphore of (cores − 1, at least 1) permits, so a login storm cannot starve other
//! requests, and memory stays bounded (19 MiB per hash in flight).

use std::sync::Arc;

use palisade_auth::password::{HashError, Passwords, Verdict};
use tokio::sync::Semaphore;

#[derive(Clone)]
pub struct Hasher {
    passwords: Arc<Passwords>,
    permits: Arc<Semaphore>,
}

impl Hasher {
    pub fn new(passwords: Passwords, permits: usize) -> Hasher {
        Hasher {
            passwords: Arc::new(passwords),
            permits: Arc::new(Semaphore::new(permits.max(1))),
        }
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
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| HashError::Hash("the hasher is closed".into()))?;
        let passwords = self.passwords.clone();
        tokio::task::spawn_blocking(move || f(&passwords))
            .await
            .map_err(|e| HashError::Hash(format!("hashing task failed: {e}")))
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
    /// blocking task (backup codes).
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
