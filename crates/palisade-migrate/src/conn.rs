//! The one place that knows the two databases apart: how to connect, how to lock out
//! other runners, how to start and end a transaction, and the SQL of the tracking table.

use std::fs::File;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};

use crate::Dialect;

/// How long a SQLite connection of the engine waits for another writer: migrations can
/// be long, and a runner waiting for another's lock must not fail early.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(600);

/// How long a statement of a PostgreSQL migration run in a transaction waits for a
/// lock before the migration fails and rolls back. A DDL statement waiting behind a long
/// query makes every later query on the table wait behind it; failing after a few
/// seconds (run it again later) keeps the application answering. A file may set its own
/// `lock_timeout`, which comes after. Files run outside a transaction get none: a
/// concurrent index build waits for every older transaction of the database, blocking
/// nobody meanwhile, and a timeout would leave an invalid index and a half-run file.
pub const LOCK_TIMEOUT: &str = "5s";

/// How often a runner asks for the PostgreSQL advisory lock while another holds it.
const LOCK_POLL: Duration = Duration::from_millis(100);

/// Arbitrary, fixed: the PostgreSQL advisory lock every runner takes ("palisade").
const ADVISORY_LOCK_KEY: i64 = 0x7061_6c69_7361_6465;

/// The database migrations run on.
#[derive(Clone, Debug)]
pub enum Target {
    Sqlite(SqliteConnectOptions),
    Postgres(PgConnectOptions),
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("`{0}` is neither a sqlite: nor a postgres:// URL")]
    UnknownScheme(String),
    #[error("invalid database URL: {0}")]
    Invalid(sqlx::Error),
}

impl Target {
    pub fn from_url(url: &str) -> Result<Target, TargetError> {
        match Dialect::from_url(url) {
            Some(Dialect::Sqlite) => SqliteConnectOptions::from_str(url)
                .map(|o| Target::Sqlite(o.create_if_missing(true)))
                .map_err(TargetError::Invalid),
            Some(Dialect::Postgres) => PgConnectOptions::from_str(url)
                .map(Target::Postgres)
                .map_err(TargetError::Invalid),
            None => Err(TargetError::UnknownScheme(redacted(url))),
        }
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Target::Sqlite(_) => Dialect::Sqlite,
            Target::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Where the database is, for messages (never a password).
    pub fn describe(&self) -> String {
        match self {
            Target::Sqlite(o) => format!("sqlite {}", o.get_filename().display()),
            Target::Postgres(o) => format!(
                "postgres {}:{}/{}",
                o.get_host(),
                o.get_port(),
                o.get_database().unwrap_or_default()
            ),
        }
    }

    /// A connection of its own (not from a pool): the engine holds its lock on it.
    pub async fn connect(&self) -> Result<Conn, sqlx::Error> {
        Ok(match self {
            Target::Sqlite(o) => {
                let o = o
                    .clone()
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
                    .foreign_keys(true)
                    .disable_statement_logging();
                let dir = sqlite_file(o.get_filename()).and_then(|f| f.parent().map(PathBuf::from));
                if let Some(dir) = dir.filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(&dir).map_err(sqlx::Error::Io)?;
                }
                Conn::Sqlite(SqliteConnection::connect_with(&o).await?)
            }
            Target::Postgres(o) => Conn::Postgres(
                PgConnection::connect_with(&o.clone().disable_statement_logging()).await?,
            ),
        })
    }

    /// The file that serialises SQLite runners, next to the database file; `None` for an
    /// in-memory database, which only one process can see anyway.
    fn lock_file(&self) -> Option<PathBuf> {
        let Target::Sqlite(o) = self else {
            return None;
        };
        let db = sqlite_file(o.get_filename())?;
        let mut name = db.file_name()?.to_os_string();
        name.push(".migrate-lock");
        Some(db.with_file_name(name))
    }
}

/// The file of a SQLite database, unless it lives in memory.
fn sqlite_file(filename: &std::path::Path) -> Option<PathBuf> {
    let s = filename.to_string_lossy();
    let in_memory =
        s.is_empty() || s.starts_with(":memory:") || s.starts_with("file:sqlx-in-memory");
    (!in_memory).then(|| filename.to_path_buf())
}

/// A URL with its password replaced by `***`.
pub fn redacted(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[start..];
    match (rest.find('@'), rest.find(':')) {
        (Some(at), Some(colon)) if colon < at => {
            format!("{}{}:***{}", &url[..start], &rest[..colon], &rest[at..])
        }
        _ => url.to_owned(),
    }
}

/// An open connection of either kind.
pub enum Conn {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// Runs the same sqlx call on whichever connection is inside.
macro_rules! on {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            Conn::Sqlite($c) => $body,
            Conn::Postgres($c) => $body,
        }
    };
}

impl Conn {
    pub fn dialect(&self) -> Dialect {
        match self {
            Conn::Sqlite(_) => Dialect::Sqlite,
            Conn::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs one statement of a migration file (trusted SQL, no bound values).
    pub async fn execute(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        let sql = AssertSqlSafe(sql.to_owned());
        on!(self, c => sqlx::raw_sql(sql).execute(c).await.map(|_| ()))
    }

    /// Starts a transaction. On SQLite it takes the write lock at once, so two
    /// runners cannot both read a migration as pending and then both write.
    pub async fn begin(&mut self) -> Result<(), sqlx::Error> {
        match self {
            Conn::Sqlite(c) => sqlx::raw_sql("BEGIN IMMEDIATE")
                .execute(c)
                .await
                .map(|_| ()),
            Conn::Postgres(c) => sqlx::raw_sql("BEGIN").execute(c).await.map(|_| ()),
        }
    }

    /// PostgreSQL, inside a migration's transaction: bounds how long its statements
    /// wait for a lock ([`LOCK_TIMEOUT`]), unless the connection already has a limit (the
    /// role's, the database's or the URL's `options`), which is kept. A no-op on SQLite,
    /// whose writer lock is taken by `BEGIN IMMEDIATE`.
    pub async fn bound_lock_waits(&mut self) -> Result<(), sqlx::Error> {
        let Conn::Postgres(c) = self else {
            return Ok(());
        };
        sqlx::query(
            "SELECT set_config('lock_timeout', $1, true) \
             WHERE current_setting('lock_timeout') = '0'",
        )
        .bind(LOCK_TIMEOUT)
        .execute(c)
        .await
        .map(|_| ())
    }

    pub async fn commit(&mut self) -> Result<(), sqlx::Error> {
        on!(self, c => sqlx::raw_sql("COMMIT").execute(c).await.map(|_| ()))
    }

    pub async fn rollback(&mut self) -> Result<(), sqlx::Error> {
        on!(self, c => sqlx::raw_sql("ROLLBACK").execute(c).await.map(|_| ()))
    }

    pub async fn close(self) {
        let _ = on!(self, c => c.close().await);
    }
}

/// Held while a runner works: other runners wait for it. Released on drop (the
/// PostgreSQL lock with its connection, which the holder closes).
pub struct RunnerLock {
    _file: Option<File>,
}

impl RunnerLock {
    /// SQLite: waits until no other runner holds the lock file beside the database,
    /// then takes it (`None` for PostgreSQL, and for an in-memory database, which only
    /// one process can see anyway).
    pub async fn file(target: &Target) -> Result<Option<RunnerLock>, sqlx::Error> {
        let Some(path) = target.lock_file() else {
            return Ok(None);
        };
        // An exclusive lock on a file beside the database, for the whole run: SQLite
        // has no session lock that outlives a transaction.
        let file = tokio::task::spawn_blocking(move || {
            let file = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)?;
            file.lock()?;
            Ok::<_, std::io::Error>(file)
        })
        .await
        .map_err(|e| sqlx::Error::Io(std::io::Error::other(e)))?
        .map_err(sqlx::Error::Io)?;
        Ok(Some(RunnerLock { _file: Some(file) }))
    }

    /// PostgreSQL: waits for the advisory lock on `conn`, held until it closes (a
    /// no-op on SQLite, whose runners hold [`RunnerLock::file`]).
    ///
    /// It is polled (`pg_try_advisory_lock`), not waited for in one statement: a
    /// waiting statement is an open transaction, and the holder's `CREATE INDEX
    /// CONCURRENTLY` waits for every open transaction to end: the two would deadlock.
    pub async fn advisory(conn: &mut Conn) -> Result<RunnerLock, sqlx::Error> {
        if let Conn::Postgres(c) = conn {
            loop {
                let (taken,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
                    .bind(ADVISORY_LOCK_KEY)
                    .fetch_one(&mut *c)
                    .await?;
                if taken {
                    break;
                }
                tokio::time::sleep(LOCK_POLL).await;
            }
        }
        Ok(RunnerLock { _file: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_the_password_of_a_url() {
        assert_eq!(
            redacted("postgres://app:s3cret@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        assert_eq!(redacted("postgres://db:5432/x"), "postgres://db:5432/x");
        assert_eq!(
            redacted("sqlite://./data/palisade.db"),
            "sqlite://./data/palisade.db"
        );
    }

    #[test]
    fn urls_choose_the_target_and_never_show_a_password() {
        let t = Target::from_url("postgres://app:s3cret@db:5433/x").expect("url");
        assert_eq!(t.dialect(), Dialect::Postgres);
        assert!(!t.describe().contains("s3cret"), "{}", t.describe());
        let err = Target::from_url("mysql://app:s3cret@db/x").expect_err("scheme");
        assert!(!err.to_string().contains("s3cret"), "{err}");
        assert_eq!(
            Target::from_url("sqlite://data/p.db")
                .expect("url")
                .lock_file()
                .map(|p| p.display().to_string()),
            Some("data/p.db.migrate-lock".into())
        );
        assert!(
            Target::from_url("sqlite::memory:")
                .expect("url")
                .lock_file()
                .is_none()
        );
    }
}
