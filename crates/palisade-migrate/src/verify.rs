//! `verify`: on a scratch database, each migration goes up, down and up again, and the
//! schema is compared at every step. The first migration whose down does not bring
//! back the schema from before its up (or whose second up differs from its first) is
//! named, with the difference.

use crate::conn::{Conn, Target};
use crate::engine::{Direction, MigrateError, Progress, apply};
use crate::history;
use crate::scratch::Scratch;
use crate::snapshot::Schema;
use crate::source::MigrationSet;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Up, down and up again; the down restored the schema.
    Restored,
    /// No down file: applied, not checked.
    NoDown,
    /// After the down the schema is not what it was before the up.
    DownDoesNotRestore { differences: Vec<String> },
    /// The second up left a schema other than the first one did.
    UpNotRepeatable { differences: Vec<String> },
    /// A statement failed.
    Failed { error: String },
}

impl Outcome {
    pub fn is_failure(&self) -> bool {
        !matches!(self, Outcome::Restored | Outcome::NoDown)
    }
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Checked {
    pub id: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Verification {
    /// The scratch database it ran on (dropped since).
    pub scratch: String,
    /// In order, up to and including the first failure.
    pub checked: Vec<Checked>,
}

impl Verification {
    pub fn first_failure(&self) -> Option<&Checked> {
        self.checked.iter().find(|c| c.outcome.is_failure())
    }
}

/// Verifies `set` on a scratch database beside `like` (same PostgreSQL server, or a
/// temporary SQLite file), which is removed afterwards.
pub async fn verify(
    like: &Target,
    set: &MigrationSet,
    progress: &dyn Progress,
) -> Result<Verification, MigrateError> {
    if !set.problems.is_empty() {
        let problems: Vec<String> = set.problems.iter().map(ToString::to_string).collect();
        return Err(MigrateError::Refused(format!(
            "not verified: {}",
            problems.join("; ")
        )));
    }
    let scratch = Scratch::create(like, "palisade_verify")
        .await
        .map_err(|error| MigrateError::Database {
            context: format!(
                "cannot create a scratch database beside {}",
                like.describe()
            ),
            error,
        })?;
    let name = scratch.name();
    let checked = match scratch.target().connect().await {
        Ok(mut conn) => {
            let out = walk(&mut conn, set, progress).await;
            conn.close().await;
            out
        }
        Err(error) => Err(MigrateError::Connect {
            target: scratch.target().describe(),
            error,
        }),
    };
    // Removed whatever happened above; a failure to remove is only worth a warning.
    if let Err(e) = scratch.remove().await {
        tracing::warn!(error = %e, "could not remove the scratch database");
    }
    Ok(Verification {
        scratch: name,
        checked: checked?,
    })
}

async fn walk(
    conn: &mut Conn,
    set: &MigrationSet,
    progress: &dyn Progress,
) -> Result<Vec<Checked>, MigrateError> {
    let read_error = |error| MigrateError::Database {
        context: "cannot read the scratch database's schema".into(),
        error,
    };
    history::ensure(conn)
        .await
        .map_err(|error| MigrateError::Database {
            context: "cannot create the tracking table".into(),
            error,
        })?;
    let mut before = Schema::read(conn).await.map_err(read_error)?;
    let mut checked = Vec::new();
    for m in &set.migrations {
        progress.verifying(&m.id());
        let outcome = match check(conn, m, &before).await {
            Ok((outcome, after)) => {
                before = after;
                outcome
            }
            Err(MigrateError::Statement(f)) => Outcome::Failed {
                error: f.to_string(),
            },
            Err(e) => return Err(e),
        };
        let failed = outcome.is_failure();
        checked.push(Checked {
            id: m.id(),
            outcome,
        });
        if failed {
            break;
        }
    }
    Ok(checked)
}

/// Up, down, up for one migration; returns the outcome and the schema after its up.
async fn check(
    conn: &mut Conn,
    m: &crate::source::Migration,
    before: &Schema,
) -> Result<(Outcome, Schema), MigrateError> {
    let read = |error| MigrateError::Database {
        context: "cannot read the scratch database's schema".into(),
        error,
    };
    apply(conn, m, Direction::Up).await?;
    let after_up = Schema::read(conn).await.map_err(read)?;
    if m.down.is_none() {
        return Ok((Outcome::NoDown, after_up));
    }
    apply(conn, m, Direction::Down).await?;
    let after_down = Schema::read(conn).await.map_err(read)?;
    let differences = before.diff(&after_down);
    if !differences.is_empty() {
        return Ok((Outcome::DownDoesNotRestore { differences }, after_up));
    }
    apply(conn, m, Direction::Up).await?;
    let again = Schema::read(conn).await.map_err(read)?;
    let differences = after_up.diff(&again);
    if !differences.is_empty() {
        return Ok((Outcome::UpNotRepeatable { differences }, after_up));
    }
    Ok((Outcome::Restored, after_up))
}
