use std::time::Duration;

use crate::RetryPolicy;

/// How to reach the database; built by the binary's configuration loader. Its `Debug`
/// shows the URLs without their passwords.
#[derive(Clone)]
pub struct StoreSettings {
    /// `sqlite://path` or `postgres://…`.
    pub url: String,
    /// Optional second pool for read-only queries (a replica), same backend as `url`.
    pub read_url: Option<String>,
    /// `DB_POOL_MAX`: most connections per pool.
    pub pool_max: u32,
    /// `DB_IDLE_TIMEOUT`: an idle connection is closed after this long.
    pub idle_timeout: Duration,
    /// `DB_CONNECTION_TIMEOUT`: longest wait for a connection (new or from the pool).
    pub connect_timeout: Duration,
    /// `DEBUG_SQL`: log each statement's text (never its bound values).
    pub debug_sql: bool,
    pub retry: RetryPolicy,
}

impl std::fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSettings")
            .field("url", &crate::redact_url(&self.url))
            .field("read_url", &self.read_url.as_deref().map(crate::redact_url))
            .field("pool_max", &self.pool_max)
            .field("idle_timeout", &self.idle_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("debug_sql", &self.debug_sql)
            .field("retry", &self.retry)
            .finish()
    }
}

impl StoreSettings {
    /// `url` with a small pool of modest timeouts: for tests and tools. The server
    /// takes every value from its configuration.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            read_url: None,
            pool_max: 20,
            idle_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(2),
            debug_sql: false,
            retry: RetryPolicy::default(),
        }
    }
}
