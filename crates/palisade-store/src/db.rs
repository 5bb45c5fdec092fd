use std::future::Future;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use sea_query::SelectStatement;
use sea_query_sqlx::SqlxBinder;
use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::dialect::{Backend, FromAnyRow, Operation, Target, run};
use crate::{RetryPolicy, StoreError, StoreSettings};

/// How long a SQLite connection waits on a locked database before SQLITE_BUSY.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Statements slower than this are logged at WARN even without `DEBUG_SQL`.
const SLOW_STATEMENT: Duration = Duration::from_secs(1);

/// A connection pool of either backend.
#[derive(Clone, Debug)]
pub(crate) enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Pool {
    pub(crate) fn target(&self) -> Target<'_> {
        match self {
            Pool::Sqlite(p) => Target::SqlitePool(p),
            Pool::Postgres(p) => Target::PgPool(p),
        }
    }

    fn backend(&self) -> Backend {
        match self {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    fn stats(&self, max: u32) -> PoolStats {
        let (size, idle) = match self {
            Pool::Sqlite(p) => (p.size(), p.num_idle()),
            Pool::Postgres(p) => (p.size(), p.num_idle()),
        };
        let idle = u32::try_from(idle).unwrap_or(size).min(size);
        PoolStats {
            size,
            idle,
            in_use: size - idle,
            max,
        }
    }

    async fn close(&self) {
        match self {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }

    async fn open(url: &str, s: &StoreSettings, read_only: bool) -> Result<Pool, StoreError> {
        let invalid = |e: sqlx::Error| StoreError::InvalidUrl(e.to_string());
        let statements = if s.debug_sql {
            log::LevelFilter::Info
        } else {
            log::LevelFilter::Off
        };
        match Backend::from_url(url) {
            Some(Backend::Sqlite) => {
                let opts = SqliteConnectOptions::from_str(url)
                    .map_err(invalid)?
                    .create_if_missing(!read_only)
                    .read_only(read_only)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
                    .foreign_keys(true)
                    .log_statements(statements)
                    .log_slow_statements(log::LevelFilter::Warn, SLOW_STATEMENT);
                create_parent_dir(opts.get_filename())?;
                let pool = SqlitePoolOptions::new()
                    .max_connections(s.pool_max)
                    .idle_timeout(s.idle_timeout)
                    .acquire_timeout(s.connect_timeout)
                    .connect_with(opts)
                    .await?;
                Ok(Pool::Sqlite(pool))
            }
            Some(Backend::Postgres) => {
                let opts = PgConnectOptions::from_str(url)
                    .map_err(invalid)?
                    .application_name("palisade")
                    .log_statements(statements)
                    .log_slow_statements(log::LevelFilter::Warn, SLOW_STATEMENT);
                let mut pool = PgPoolOptions::new()
                    .max_connections(s.pool_max)
                    .idle_timeout(s.idle_timeout)
                    .acquire_timeout(s.connect_timeout);
                if read_only {
                    pool = pool.after_connect(|conn, _| {
                        Box::pin(async move {
                            sqlx::raw_sql("SET default_transaction_read_only = on")
                                .execute(conn)
                                .await
                                .map(|_| ())
                        })
                    });
                }
                Ok(Pool::Postgres(pool.connect_with(opts).await?))
            }
            None => Err(StoreError::InvalidUrl(format!(
                "`{}` is neither sqlite: nor postgres://",
                redact_url(url)
            ))),
        }
    }
}

fn create_parent_dir(file: &Path) -> Result<(), StoreError> {
    let in_memory = file.as_os_str().is_empty() || file.to_string_lossy().starts_with(":memory:");
    match file.parent() {
        Some(dir) if !in_memory && !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir)
            .map_err(|source| StoreError::CreateDir {
                path: dir.display().to_string(),
                source,
            }),
        _ => Ok(()),
    }
}

/// A URL with its password replaced by `***`, fit for logs and error messages.
pub use palisade_migrate::conn::redacted as redact_url;

/// Connections of a pool, as `/health/detailed` and the `db_pool_connections` gauge show them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolStats {
    pub size: u32,
    pub idle: u32,
    pub in_use: u32,
    pub max: u32,
}

impl PoolStats {
    fn record(&self, pool: &'static str) {
        for (state, value) in [
            ("idle", self.idle),
            ("in_use", self.in_use),
            ("total", self.size),
            ("max", self.max),
        ] {
            metrics::gauge!("db_pool_connections", "pool" => pool, "state" => state)
                .set(f64::from(value));
        }
    }
}

/// Times one statement and counts its failure.
pub(crate) async fn observed<T>(
    operation: &'static str,
    table: &'static str,
    fut: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    let start = Instant::now();
    let out = fut.await;
    metrics::histogram!("database_query_duration_seconds", "operation" => operation, "table" => table)
        .record(start.elapsed().as_secs_f64());
    if out.is_err() {
        metrics::counter!("database_errors_total", "operation" => operation, "table" => table)
            .increment(1);
    }
    out
}

/// The database handle: a primary pool, and a read pool when `DATABASE_READ_URL` is set.
/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    primary: Pool,
    replica: Option<Pool>,
    pool_max: u32,
    pub(crate) retry: RetryPolicy,
}

impl Db {
    /// Opens the pools and checks that the primary answers.
    pub async fn connect(settings: &StoreSettings) -> Result<Db, StoreError> {
        let primary = Pool::open(&settings.url, settings, false).await?;
        let replica = match &settings.read_url {
            Some(url) => {
                if Backend::from_url(url) != Some(primary.backend()) {
                    return Err(StoreError::MixedBackends);
                }
                Some(Pool::open(url, settings, true).await?)
            }
            None => None,
        };
        let db = Db {
            primary,
            replica,
            pool_max: settings.pool_max,
            retry: settings.retry,
        };
        db.ping().await?;
        Ok(db)
    }

    pub fn backend(&self) -> Backend {
        self.primary.backend()
    }

    pub(crate) fn primary(&self) -> &Pool {
        &self.primary
    }

    /// The handle for read-only queries: the replica pool when configured, else the primary.
    pub fn reader(&self) -> Reader<'_> {
        Reader {
            pool: self.replica.as_ref().unwrap_or(&self.primary),
            retry: self.retry,
        }
    }

    pub async fn fetch_all<T, S>(&self, table: &'static str, stmt: &S) -> Result<Vec<T>, StoreError>
    where
        T: FromAnyRow,
        S: SqlxBinder + Operation,
    {
        let op = || {
            observed(
                S::OPERATION,
                table,
                run::fetch_all(self.primary.target(), stmt),
            )
        };
        Ok(self.retry.run(op).await?)
    }

    /// Streams the rows of `stmt` into `rows` as they are read, in batches of up to
    /// `batch`, with backpressure: a full channel stops the reading, and a send waiting
    /// longer than `idle` ends it. Not retried (rows may already have been sent).
    /// Returns how many rows were sent and whether that was all of them.
    pub async fn stream<T, S>(
        &self,
        table: &'static str,
        stmt: &S,
        rows: &tokio::sync::mpsc::Sender<Vec<T>>,
        batch: usize,
        idle: std::time::Duration,
    ) -> Result<(u64, bool), StoreError>
    where
        T: FromAnyRow,
        S: SqlxBinder + Operation,
    {
        let fut = run::stream(self.primary.target(), stmt, rows, batch, idle);
        Ok(observed(S::OPERATION, table, fut).await?)
    }

    pub async fn fetch_optional<T, S>(
        &self,
        table: &'static str,
        stmt: &S,
    ) -> Result<Option<T>, StoreError>
    where
        T: FromAnyRow,
        S: SqlxBinder + Operation,
    {
        let op = || {
            observed(
                S::OPERATION,
                table,
                run::fetch_optional(self.primary.target(), stmt),
            )
        };
        Ok(self.retry.run(op).await?)
    }

    /// Runs an insert, update or delete; returns the number of rows it touched.
    pub async fn execute<S: SqlxBinder + Operation>(
        &self,
        table: &'static str,
        stmt: &S,
    ) -> Result<u64, StoreError> {
        let out = self
            .retry
            .run(|| {
                observed(
                    S::OPERATION,
                    table,
                    run::execute(self.primary.target(), stmt),
                )
            })
            .await?;
        Ok(out)
    }

    /// Runs value-free SQL (DDL) on the primary, without retrying.
    pub async fn execute_script(&self, sql: &'static str) -> Result<(), StoreError> {
        Ok(run::raw(self.primary.target(), sql).await?)
    }

    /// Round-trips `SELECT 1` on the primary; returns how long it took.
    pub async fn ping(&self) -> Result<Duration, StoreError> {
        let start = Instant::now();
        observed("ping", "none", run::raw(self.primary.target(), "SELECT 1")).await?;
        Ok(start.elapsed())
    }

    pub fn stats(&self) -> PoolStats {
        self.primary.stats(self.pool_max)
    }

    pub fn replica_stats(&self) -> Option<PoolStats> {
        self.replica.as_ref().map(|p| p.stats(self.pool_max))
    }

    /// Sets the `db_pool_connections` gauges from the pools' current state.
    pub fn record_pool_gauges(&self) {
        self.stats().record("primary");
        if let Some(s) = self.replica_stats() {
            s.record("replica");
        }
    }

    /// Closes the pools, waiting for checked-out connections to come back.
    pub async fn close(&self) {
        self.primary.close().await;
        if let Some(r) = &self.replica {
            r.close().await;
        }
    }
}

/// Read-only access: it takes only `SELECT` statements, and on PostgreSQL its sessions
/// are read-only as well.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    pool: &'a Pool,
    retry: RetryPolicy,
}

impl Reader<'_> {
    pub async fn fetch_all<T: FromAnyRow>(
        &self,
        table: &'static str,
        stmt: &SelectStatement,
    ) -> Result<Vec<T>, StoreError> {
        let op = || observed("select", table, run::fetch_all(self.pool.target(), stmt));
        Ok(self.retry.run(op).await?)
    }

    pub async fn fetch_optional<T: FromAnyRow>(
        &self,
        table: &'static str,
        stmt: &SelectStatement,
    ) -> Result<Option<T>, StoreError> {
        let op = || {
            observed(
                "select",
                table,
                run::fetch_optional(self.pool.target(), stmt),
            )
        };
        Ok(self.retry.run(op).await?)
    }
}
