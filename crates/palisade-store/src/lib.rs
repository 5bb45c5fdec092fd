//! The database handle behind every Palisade repository.
//!
//! One [`Db`] talks to either an embedded SQLite file or PostgreSQL; the choice is made
//! once, from the URL, and the rest of the code does not care. Statements are built with
//! sea-query and rendered for the backend in hand by [`dialect`], the one place where
//! the two dialects differ, so a repository is written once for both.
//!
//! Around every statement the handle records `database_query_duration_seconds` and
//! `database_errors_total`, and retries transient failures ([`retry`]). A background
//! task ([`health`]) pings the database and keeps the readiness flag and pool gauges
//! current.

pub mod background;
pub mod cache;
mod db;
pub use db::redact_url;
pub mod dialect;
mod error;
mod exec;
pub mod fresh;
pub mod health;
pub mod listen;
pub mod ratelimit;
pub mod redis;
pub mod repo;
pub mod retry;
pub mod schema;
mod settings;
pub mod slots;
mod tx;

pub use db::{Db, PoolStats, Reader};
pub use dialect::{Backend, FromAnyRow};
pub use error::StoreError;
pub use exec::Exec;
pub use health::DbHealth;
pub use retry::RetryPolicy;
pub use settings::StoreSettings;
pub use tx::{MaybeTransient, Tx, TxFuture};

#[cfg(feature = "testing")]
pub mod testing;

/// sea-query, re-exported so repositories build statements with the same version.
pub use sea_query;
