//! The tracking table: one row per applied migration, with the checksum of the file
//! that was applied, when, how long it took and on which host.

use std::time::Duration;

use crate::conn::Conn;
use crate::source::Migration;

/// The tracking table's name.
pub const TABLE: &str = "palisade_migrations";

/// One applied migration, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct Applied {
    pub version: i64,
    pub name: String,
    pub checksum: String,
    /// RFC 3339, UTC.
    pub applied_at: String,
    pub duration_ms: i64,
    pub applied_by: String,
}

/// Creates the table when it is missing.
pub async fn ensure(conn: &mut Conn) -> Result<(), sqlx::Error> {
    match conn {
        Conn::Sqlite(c) => sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS palisade_migrations (
                version INTEGER PRIMARY KEY,
                name TEXT NOT NULL,
                checksum TEXT NOT NULL,
                applied_at TEXT NOT NULL,
                duration_ms INTEGER NOT NULL,
                applied_by TEXT NOT NULL
            )",
        )
        .execute(c)
        .await
        .map(|_| ()),
        Conn::Postgres(c) => sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS palisade_migrations (
                version BIGINT PRIMARY KEY,
                name TEXT NOT NULL,
                checksum TEXT NOT NULL,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                duration_ms BIGINT NOT NULL,
                applied_by TEXT NOT NULL
            )",
        )
        .execute(c)
        .await
        .map(|_| ()),
    }
}

/// Every applied migration, by version; none when the table does not exist yet (a
/// status query must not create it).
pub async fn applied(conn: &mut Conn) -> Result<Vec<Applied>, sqlx::Error> {
    match conn {
        Conn::Sqlite(c) => {
            let exists: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            )
            .bind(TABLE)
            .fetch_one(&mut *c)
            .await?;
            if exists == 0 {
                return Ok(Vec::new());
            }
            sqlx::query_as(
                "SELECT version, name, checksum, applied_at, duration_ms, applied_by
                 FROM palisade_migrations ORDER BY version",
            )
            .fetch_all(c)
            .await
        }
        Conn::Postgres(c) => {
            let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
                .bind(TABLE)
                .fetch_one(&mut *c)
                .await?;
            if !exists {
                return Ok(Vec::new());
            }
            sqlx::query_as(
                "SELECT version, name, checksum,
                        to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS applied_at,
                        duration_ms, applied_by
                 FROM palisade_migrations ORDER BY version",
            )
            .fetch_all(c)
            .await
        }
    }
}

/// Records `m` as applied (inside the migration's transaction when it has one).
pub async fn record(conn: &mut Conn, m: &Migration, took: Duration) -> Result<(), sqlx::Error> {
    let version = i64::try_from(m.version).unwrap_or(i64::MAX);
    let ms = i64::try_from(took.as_millis()).unwrap_or(i64::MAX);
    let host = host();
    match conn {
        Conn::Sqlite(c) => sqlx::query(
            "INSERT INTO palisade_migrations (version, name, checksum, applied_at, duration_ms, applied_by)
             VALUES (?1, ?2, ?3, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), ?4, ?5)",
        )
        .bind(version)
        .bind(&m.name)
        .bind(&m.checksum)
        .bind(ms)
        .bind(host)
        .execute(c)
        .await
        .map(|_| ()),
        Conn::Postgres(c) => sqlx::query(
            "INSERT INTO palisade_migrations (version, name, checksum, duration_ms, applied_by)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(version)
        .bind(&m.name)
        .bind(&m.checksum)
        .bind(ms)
        .bind(host)
        .execute(c)
        .await
        .map(|_| ()),
    }
}

/// Removes the record of `version` (its down has run).
pub async fn forget(conn: &mut Conn, version: u64) -> Result<(), sqlx::Error> {
    let version = i64::try_from(version).unwrap_or(i64::MAX);
    match conn {
        Conn::Sqlite(c) => sqlx::query("DELETE FROM palisade_migrations WHERE version = ?1")
            .bind(version)
            .execute(c)
            .await
            .map(|_| ()),
        Conn::Postgres(c) => sqlx::query("DELETE FROM palisade_migrations WHERE version = $1")
            .bind(version)
            .execute(c)
            .await
            .map(|_| ()),
    }
}

/// This machine's name, for `applied_by`.
pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}
