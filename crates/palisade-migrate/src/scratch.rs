//! Throw-away databases: a fresh PostgreSQL database on the server of a target, or a
//! temporary SQLite file. `verify` runs on one; tests use them too.

use std::path::PathBuf;

use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgConnection};

use crate::conn::Target;

/// A database that exists until [`Scratch::remove`] (or, as a fallback, drop).
pub struct Scratch {
    target: Target,
    place: Place,
}

enum Place {
    File(PathBuf),
    Postgres {
        admin: Box<PgConnectOptions>,
        name: String,
    },
    Gone,
}

impl Scratch {
    /// A new, empty database of the same kind as `like`: on PostgreSQL, a database
    /// named `{prefix}_{uuid}` on the same server (the role needs CREATEDB); on SQLite,
    /// a file in the temporary directory.
    pub async fn create(like: &Target, prefix: &str) -> Result<Scratch, sqlx::Error> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        match like {
            Target::Sqlite(_) => {
                let path = std::env::temp_dir().join(format!("{prefix}-{id}.db"));
                let opts = SqliteConnectOptions::new()
                    .filename(&path)
                    .create_if_missing(true);
                Ok(Scratch {
                    target: Target::Sqlite(opts),
                    place: Place::File(path),
                })
            }
            Target::Postgres(admin) => {
                let name = format!("{prefix}_{id}");
                let mut conn =
                    PgConnection::connect_with(&admin.clone().disable_statement_logging()).await?;
                // A database name cannot be a bound parameter; this one is the caller's
                // prefix and hex digits, quoted.
                sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {}", quote(&name))))
                    .execute(&mut conn)
                    .await?;
                let _ = conn.close().await;
                Ok(Scratch {
                    target: Target::Postgres(admin.clone().database(&name)),
                    place: Place::Postgres {
                        admin: Box::new(admin.clone()),
                        name,
                    },
                })
            }
        }
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The database's name (PostgreSQL) or file (SQLite).
    pub fn name(&self) -> String {
        match &self.place {
            Place::File(p) => p.display().to_string(),
            Place::Postgres { name, .. } => name.clone(),
            Place::Gone => String::new(),
        }
    }

    /// Removes the database, even if connections to it linger.
    pub async fn remove(mut self) -> Result<(), sqlx::Error> {
        match std::mem::replace(&mut self.place, Place::Gone) {
            Place::File(path) => {
                remove_sqlite_files(&path);
                Ok(())
            }
            Place::Postgres { admin, name } => drop_database(&admin, &name).await,
            Place::Gone => Ok(()),
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.place, Place::Gone) {
            Place::File(path) => remove_sqlite_files(&path),
            Place::Postgres { admin, name } => {
                // Drop may run inside or outside a runtime; a thread with its own works in both.
                let dropped = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    rt.block_on(drop_database(&admin, &name))
                        .map_err(std::io::Error::other)
                })
                .join();
                if !matches!(dropped, Ok(Ok(()))) {
                    tracing::warn!("could not drop a scratch database");
                }
            }
            Place::Gone => {}
        }
    }
}

async fn drop_database(admin: &PgConnectOptions, name: &str) -> Result<(), sqlx::Error> {
    let mut conn = PgConnection::connect_with(&admin.clone().disable_statement_logging()).await?;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        quote(name)
    )))
    .execute(&mut conn)
    .await?;
    let _ = conn.close().await;
    Ok(())
}

fn remove_sqlite_files(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm", ".migrate-lock"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

/// A double-quoted identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
