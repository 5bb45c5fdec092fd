use crate::retry;

/// What can go wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no backend we speak, or is malformed.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// The primary and the read pool must speak the same dialect.
    #[error("DATABASE_READ_URL must use the same backend as DATABASE_URL")]
    MixedBackends,
    /// Creating the directory of the SQLite file failed.
    #[error("cannot create the database directory {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    /// A row holds what this build never writes (a role it does not know, say).
    #[error("unexpected data in {table}: {what}")]
    Corrupt { table: &'static str, what: String },
    /// A statement or connection failed; see [`StoreError::is_transient`].
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

impl StoreError {
    /// True when trying again may succeed (connection lost, serialization failure,
    /// SQLITE_BUSY); false for constraint, syntax and every other error.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Sql(e) => retry::is_transient(e),
            _ => false,
        }
    }

    /// True for a unique-constraint violation, which callers turn into "already exists".
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Sql(sqlx::Error::Database(e)) => e.is_unique_violation(),
            _ => false,
        }
    }
}
