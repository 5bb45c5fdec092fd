//! Retry with exponential backoff and full jitter, for transient errors only.
//!
//! A transient error is one where the same statement may succeed a moment later: the
//! connection was lost or could not be had, PostgreSQL aborted a transaction for a
//! serialization failure or deadlock, or SQLite reported its database busy or locked.
//! Constraint violations, syntax errors and decoding errors are never retried: running
//! them again gives the same answer.

use std::future::Future;
use std::time::Duration;

/// How often and how patiently to retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 1 disables retrying.
    pub max_attempts: u32,
    /// Ceiling of the first backoff; doubles per attempt.
    pub base_delay: Duration,
    /// No backoff is longer than this.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(25),
            max_delay: Duration::from_millis(500),
        }
    }
}

impl RetryPolicy {
    /// The backoff before attempt `attempt + 1` (`attempt` counts from 1): a random
    /// duration in `0..=min(max_delay, base_delay * 2^(attempt-1))` ("full jitter"), so
    /// instances that failed together do not retry together.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let ceiling = exp.min(self.max_delay);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::random_range(0..=nanos))
    }

    /// Runs `op` until it succeeds, fails with a non-transient error, or the attempts
    /// are used up; returns the last result.
    pub async fn run<T, F, Fut>(&self, mut op: F) -> Result<T, sqlx::Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        let mut attempt = 1;
        loop {
            match op().await {
                Err(e) if attempt < self.max_attempts && is_transient(&e) => {
                    let delay = self.backoff(attempt);
                    tracing::warn!(attempt, delay_ms = delay.as_millis() as u64, error = %e, "transient database error; retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }
}

/// PostgreSQL SQLSTATEs worth retrying: serialization failure, deadlock, and the
/// connection-exception and operator-intervention classes.
const PG_TRANSIENT: &[&str] = &[
    "40001", "40P01", "08000", "08003", "08006", "08001", "08004", "57P01", "57P02", "57P03",
];

/// SQLite extended result codes worth retrying: SQLITE_BUSY and SQLITE_LOCKED with
/// their extended variants (BUSY_RECOVERY, BUSY_SNAPSHOT, BUSY_TIMEOUT, LOCKED_SHAREDCACHE).
const SQLITE_TRANSIENT: &[&str] = &["5", "6", "261", "517", "773", "262"];

/// Whether `e` may succeed if tried again; see the module documentation.
pub fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            PG_TRANSIENT.contains(&&*code) || SQLITE_TRANSIENT.contains(&&*code)
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn fast() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        }
    }

    fn io_reset() -> sqlx::Error {
        sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset))
    }

    #[test]
    fn backoff_stays_under_the_exponential_ceiling() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(60),
        };
        for _ in 0..200 {
            assert!(p.backoff(1) <= Duration::from_millis(10));
            assert!(p.backoff(2) <= Duration::from_millis(20));
            assert!(p.backoff(3) <= Duration::from_millis(40));
            assert!(p.backoff(9) <= Duration::from_millis(60));
        }
        // Full jitter: over many draws the delays are not all equal.
        let draws: std::collections::HashSet<_> = (0..50).map(|_| p.backoff(3)).collect();
        assert!(draws.len() > 1);
    }

    #[tokio::test]
    async fn retries_a_connection_reset_until_it_succeeds() {
        let calls = AtomicU32::new(0);
        let out = fast()
            .run(|| async {
                if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(io_reset())
                } else {
                    Ok(7)
                }
            })
            .await;
        assert_eq!(out.ok(), Some(7));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn gives_up_after_max_attempts() {
        let calls = AtomicU32::new(0);
        let out: Result<(), _> = fast()
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(io_reset())
            })
            .await;
        assert!(out.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn never_retries_a_non_transient_error() {
        let calls = AtomicU32::new(0);
        let out: Result<(), _> = fast()
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(sqlx::Error::RowNotFound)
            })
            .await;
        assert!(out.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn classifies_io_and_pool_errors_as_transient() {
        assert!(is_transient(&io_reset()));
        assert!(is_transient(&sqlx::Error::PoolTimedOut));
        assert!(!is_transient(&sqlx::Error::RowNotFound));
        assert!(!is_transient(&sqlx::Error::PoolClosed));
    }
}
