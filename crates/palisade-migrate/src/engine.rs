//! Applies and rolls back migrations.
//!
//! A run connects, takes the runner lock (other runners wait), reads the tracking
//! table, refuses to start when anything is wrong (drift, a missing file, a file that
//! is not a migration, a missing down), then runs each step in its own transaction:
//! the statements one by one, then the tracking row, then `COMMIT`. A failing
//! statement rolls its migration back whole and stops the run, naming the statement
//! and where it is in the file. Several instances starting at once therefore apply
//! each migration exactly once: the second waits for the lock, then finds it applied.

use std::fmt;
use std::time::{Duration, Instant};

use crate::conn::{Conn, RunnerLock, Target};
use crate::history;
use crate::source::{Migration, MigrationSet, Script};
use crate::split::Statement;
use crate::status::{State, Status};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Up,
    Down,
}

/// What to do.
#[derive(Clone, Debug)]
pub enum Plan {
    /// Every pending migration, or those up to and including a version.
    Up { to: Option<u64> },
    /// Roll back the last `steps` applied migrations (1 by default), or every one
    /// above version `to`.
    Down {
        steps: Option<usize>,
        to: Option<u64>,
    },
    /// Apply one migration by name or version, even out of order.
    Run(String),
    /// Roll back the last applied migration and apply it again.
    Redo,
}

/// One migration to run in one direction.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Step {
    pub version: u64,
    pub id: String,
    pub direction: Direction,
    pub file: String,
    pub in_transaction: bool,
    /// The statements, for `--dry-run`.
    pub statements: Vec<String>,
    /// How long it took, once run.
    pub duration_ms: Option<u64>,
}

/// What a run did (or, dry, would do).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    pub dry_run: bool,
    pub steps: Vec<Step>,
}

/// Told about a run as it goes, e.g. to draw a progress bar.
pub trait Progress: Sync {
    fn planned(&self, _steps: &[Step]) {}
    fn started(&self, _step: &Step) {}
    fn finished(&self, _step: &Step) {}
    /// `verify` moved on to the migration `id`.
    fn verifying(&self, _id: &str) {}
    fn note(&self, _message: &str) {}
}

/// Tells nobody.
pub struct Quiet;
impl Progress for Quiet {}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    // The database's error is part of the message, not a `source`: printed as a
    // chain it would be said twice.
    #[error("cannot connect to {target}: {error}")]
    Connect { target: String, error: sqlx::Error },
    #[error("{context}: {error}")]
    Database { context: String, error: sqlx::Error },
    #[error("{0}")]
    Statement(Box<StatementFailure>),
    #[error("{0}")]
    Refused(String),
}

/// A statement that failed, and where.
#[derive(Debug)]
pub struct StatementFailure {
    pub id: String,
    pub file: String,
    /// 1-based position of the statement in its file.
    pub index: usize,
    pub line: usize,
    pub column: usize,
    pub summary: String,
    pub error: sqlx::Error,
    pub in_transaction: bool,
}

impl fmt::Display for StatementFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: statement {} (line {}, column {}) failed: {}",
            self.file, self.index, self.line, self.column, self.error
        )?;
        writeln!(f, "  {}", self.summary)?;
        if self.in_transaction {
            write!(f, "{} was rolled back: none of it is applied", self.id)
        } else if self.index > 1 {
            write!(
                f,
                "{} runs outside a transaction: its statements before number {} stay applied; \
                 repair by hand (or make them idempotent) before running it again",
                self.id, self.index
            )
        } else {
            write!(f, "{}: nothing of it was applied", self.id)
        }
    }
}

fn db_error(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> MigrateError {
    let context = context.into();
    move |error| MigrateError::Database { context, error }
}

/// Migrations of one set against one database.
pub struct Migrator {
    target: Target,
    set: MigrationSet,
}

impl Migrator {
    pub fn new(target: Target, set: MigrationSet) -> Result<Migrator, MigrateError> {
        if target.dialect() != set.dialect {
            return Err(MigrateError::Refused(format!(
                "the migrations in {} are for {}, the database is {}",
                set.origin,
                set.dialect.as_str(),
                target.dialect().as_str()
            )));
        }
        Ok(Migrator { target, set })
    }

    pub fn set(&self) -> &MigrationSet {
        &self.set
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    async fn connect(&self) -> Result<Conn, MigrateError> {
        self.target
            .connect()
            .await
            .map_err(|error| MigrateError::Connect {
                target: self.target.describe(),
                error,
            })
    }

    /// Where the database stands; changes nothing (not even the tracking table).
    pub async fn status(&self) -> Result<Status, MigrateError> {
        let mut conn = self.connect().await?;
        let applied = history::applied(&mut conn)
            .await
            .map_err(db_error("cannot read the tracking table"));
        conn.close().await;
        Ok(Status::new(&self.set, &applied?))
    }

    /// Carries out `plan`; with `dry_run`, only says what it would run.
    pub async fn execute(
        &self,
        plan: &Plan,
        dry_run: bool,
        progress: &dyn Progress,
    ) -> Result<Report, MigrateError> {
        // SQLite's runner lock is a file, taken before connecting: runners that open a
        // fresh database together race to create it and turn it to WAL, which SQLite
        // answers with SQLITE_BUSY at once, without waiting out the busy timeout.
        let _file_lock = if dry_run {
            None
        } else {
            RunnerLock::file(&self.target)
                .await
                .map_err(db_error("cannot take the migration lock"))?
        };
        let mut conn = self.connect().await?;
        let out = self.execute_on(&mut conn, plan, dry_run, progress).await;
        // Closing the connection also releases the PostgreSQL lock.
        conn.close().await;
        out
    }

    async fn execute_on(
        &self,
        conn: &mut Conn,
        plan: &Plan,
        dry_run: bool,
        progress: &dyn Progress,
    ) -> Result<Report, MigrateError> {
        let _lock = if dry_run {
            None
        } else {
            let lock = RunnerLock::advisory(conn)
                .await
                .map_err(db_error("cannot take the migration lock"))?;
            history::ensure(conn)
                .await
                .map_err(db_error("cannot create the tracking table"))?;
            Some(lock)
        };
        // Read under the lock: what another runner applied meanwhile is not pending.
        let applied = history::applied(conn)
            .await
            .map_err(db_error("cannot read the tracking table"))?;
        let status = Status::new(&self.set, &applied);
        let mut steps = self.plan(plan, &status)?;
        if dry_run {
            return Ok(Report { dry_run, steps });
        }
        progress.planned(&steps);
        for step in &mut steps {
            let Some(m) = self.set.get(step.version) else {
                continue;
            };
            if !step.in_transaction {
                let note = format!(
                    "{} runs alone, outside a transaction (-- palisade:no-transaction)",
                    step.id
                );
                tracing::warn!(migration = %step.id, "runs outside a transaction");
                progress.note(&note);
            }
            progress.started(step);
            let took = apply(conn, m, step.direction).await?;
            step.duration_ms = Some(u64::try_from(took.as_millis()).unwrap_or(u64::MAX));
            tracing::info!(migration = %step.id, direction = ?step.direction, duration_ms = step.duration_ms, "migration applied");
            progress.finished(step);
        }
        Ok(Report { dry_run, steps })
    }

    /// The steps of `plan` from `status`, or why it must not run.
    fn plan(&self, plan: &Plan, status: &Status) -> Result<Vec<Step>, MigrateError> {
        // A pending migration older than an applied one blocks only `up`, which would
        // otherwise leave it behind; `run` applies it on purpose.
        let problems = status.problems(matches!(plan, Plan::Up { .. }));
        if !problems.is_empty() {
            return Err(MigrateError::Refused(format!(
                "nothing was run: {}",
                problems.join("; ")
            )));
        }
        let applied: Vec<&Migration> = status
            .with_state(State::Applied)
            .filter_map(|e| self.set.get(e.version))
            .collect();
        let steps = match plan {
            Plan::Up { to } => {
                if let Some(v) = to.filter(|v| self.set.get(*v).is_none()) {
                    return Err(MigrateError::Refused(format!(
                        "no migration has version {v}"
                    )));
                }
                status
                    .with_state(State::Pending)
                    .filter(|e| to.is_none_or(|to| e.version <= to))
                    .filter_map(|e| self.set.get(e.version))
                    .map(|m| step(m, Direction::Up, self.set.dialect))
                    .collect::<Result<Vec<_>, _>>()?
            }
            Plan::Down { steps, to } => {
                let newest_first = applied.iter().rev();
                let chosen: Vec<&&Migration> = match (steps, to) {
                    (_, Some(to)) => newest_first.take_while(|m| m.version > *to).collect(),
                    (steps, None) => newest_first.take(steps.unwrap_or(1)).collect(),
                };
                chosen
                    .into_iter()
                    .map(|m| step(m, Direction::Down, self.set.dialect))
                    .collect::<Result<Vec<_>, _>>()?
            }
            Plan::Run(name) => {
                let m = self.set.find(name).ok_or_else(|| {
                    MigrateError::Refused(format!("no migration is called {name}"))
                })?;
                if applied.iter().any(|a| a.version == m.version) {
                    return Err(MigrateError::Refused(format!(
                        "{} is already applied",
                        m.id()
                    )));
                }
                vec![step(m, Direction::Up, self.set.dialect)?]
            }
            Plan::Redo => {
                let m = applied.last().ok_or_else(|| {
                    MigrateError::Refused("no migration is applied: nothing to redo".into())
                })?;
                vec![
                    step(m, Direction::Down, self.set.dialect)?,
                    step(m, Direction::Up, self.set.dialect)?,
                ]
            }
        };
        Ok(steps)
    }
}

/// A step, once its file is known fit to run.
fn step(
    m: &Migration,
    direction: Direction,
    dialect: crate::Dialect,
) -> Result<Step, MigrateError> {
    let script = script(m, direction)?;
    let statements = script.statements(dialect);
    if let Some(s) = statements.iter().find(|s| s.is_transaction_control()) {
        return Err(MigrateError::Refused(format!(
            "{} line {}: `{}`: the engine runs each migration in a transaction of its own; \
             remove transaction statements from the file (or use -- palisade:no-transaction)",
            script.file,
            s.line,
            s.summary()
        )));
    }
    Ok(Step {
        version: m.version,
        id: m.id(),
        direction,
        file: script.file.clone(),
        in_transaction: !script.no_transaction,
        statements: statements.into_iter().map(|s| s.sql).collect(),
        duration_ms: None,
    })
}

fn script(m: &Migration, direction: Direction) -> Result<&Script, MigrateError> {
    match direction {
        Direction::Up => Ok(&m.up),
        Direction::Down => m.down.as_ref().ok_or_else(|| {
            MigrateError::Refused(format!(
                "{} has no down file ({:04}_{}.down.sql): it cannot be rolled back",
                m.id(),
                m.version,
                m.name
            ))
        }),
    }
}

/// Runs one migration in one direction and records it; see the module documentation.
pub(crate) async fn apply(
    conn: &mut Conn,
    m: &Migration,
    direction: Direction,
) -> Result<Duration, MigrateError> {
    let script = script(m, direction)?;
    let statements = script.statements(conn.dialect());
    let in_transaction = !script.no_transaction;
    let start = Instant::now();
    if in_transaction {
        conn.begin()
            .await
            .map_err(db_error(format!("{}: cannot begin a transaction", m.id())))?;
    }
    let bounded = if in_transaction {
        conn.bound_lock_waits()
            .await
            .map_err(db_error(format!("{}: cannot set lock_timeout", m.id())))
    } else {
        Ok(())
    };
    let outcome = match bounded {
        Ok(()) => run_statements(conn, m, script, &statements, in_transaction).await,
        Err(e) => Err(e),
    };
    let outcome = match outcome {
        Ok(()) => match direction {
            Direction::Up => history::record(conn, m, start.elapsed()).await,
            Direction::Down => history::forget(conn, m.version).await,
        }
        .map_err(db_error(format!(
            "{}: cannot update the tracking table",
            m.id()
        ))),
        Err(e) => Err(e),
    };
    if !in_transaction {
        return outcome.map(|()| start.elapsed());
    }
    match outcome {
        Ok(()) => {
            conn.commit()
                .await
                .map_err(db_error(format!("{}: cannot commit", m.id())))?;
            Ok(start.elapsed())
        }
        Err(e) => {
            // The failure is what matters; a rollback that fails too (connection lost)
            // leaves nothing committed either.
            let _ = conn.rollback().await;
            Err(e)
        }
    }
}

async fn run_statements(
    conn: &mut Conn,
    m: &Migration,
    script: &Script,
    statements: &[Statement],
    in_transaction: bool,
) -> Result<(), MigrateError> {
    for (i, s) in statements.iter().enumerate() {
        if let Err(error) = conn.execute(&s.sql).await {
            return Err(MigrateError::Statement(Box::new(StatementFailure {
                id: m.id(),
                file: script.file.clone(),
                index: i + 1,
                line: s.line,
                column: s.column,
                summary: s.summary(),
                error,
                in_transaction,
            })));
        }
    }
    Ok(())
}
