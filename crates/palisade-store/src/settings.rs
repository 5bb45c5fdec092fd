use std::time::Duration;

use crate::RetryPolicy;

/// How to reach the database; built by the binary's configuration loader.
#[derive(Clone, Debug)]
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

impl StoreSettings {
    /// Defaults for `url`, as the reference backends configure their pools.
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
