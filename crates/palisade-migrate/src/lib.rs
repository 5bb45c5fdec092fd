//! A migration engine for SQLite and PostgreSQL, usable on its own: it depends on sqlx,
//! not on the application around it.
//!
//! - [`source`]: the files (`NNNN_name.up.sql` / `.down.sql`), from a directory or
//!   embedded, with their SHA-256 checksums and directives.
//! - [`split`]: a file's statements and where each starts, so a failure names its place.
//! - [`engine`]: applies and rolls back, each migration in its own transaction, under a
//!   lock that makes concurrent runners apply each migration exactly once; records
//!   each in a tracking table ([`history`]) and reports drift ([`status`]).
//! - [`verify`]: on a scratch database, checks that each down restores the schema its
//!   up changed ([`snapshot`]).
//! - [`lint`]: rules that catch migrations that lock, rewrite or break a live database.

pub mod conn;
pub mod engine;
pub mod history;
pub mod lint;
pub mod scratch;
pub mod snapshot;
pub mod source;
pub mod split;
pub mod status;
pub mod verify;

pub use conn::Target;
pub use engine::{Direction, MigrateError, Migrator, Progress, Quiet, Report};
pub use source::{Migration, MigrationSet};
pub use status::{State, Status};

/// The SQL dialect of a set of migrations and of the database they run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The dialect a database URL names: `sqlite:` or `postgres(ql)://`.
    pub fn from_url(url: &str) -> Option<Dialect> {
        if url.starts_with("sqlite:") {
            Some(Dialect::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Dialect::Postgres)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }
}
