//! `palisade migrate …`: the migration engine from the command line, on this build's
//! embedded migrations or on a directory of one's own (`--dir`).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressStyle};
use palisade_migrate::engine::{Direction, Plan, Step};
use palisade_migrate::lint::{LintOptions, Severity, lint};
use palisade_migrate::source::FileName;
use palisade_migrate::status::Entry;
use palisade_migrate::verify::{Outcome, verify};
use palisade_migrate::{Dialect, MigrationSet, Migrator, Progress, Report, State, Status, Target};
use serde::Serialize;

use crate::config;

#[derive(Args)]
pub struct MigrateArgs {
    /// Migrations directory (files NNNN_name.up.sql / .down.sql, or sqlite/ and
    /// postgres/ below it); default: the migrations built into palisade.
    #[arg(long, global = true)]
    dir: Option<PathBuf>,
    /// Database to migrate; default: DATABASE_URL from the configuration.
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Machine-readable output (JSON on stdout).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: MigrateCommand,
}

#[derive(Subcommand)]
enum MigrateCommand {
    /// Where the database stands; exit 1 on drift, missing files or out-of-order versions.
    Status,
    /// Every migration and its state.
    List,
    /// The migrations not yet applied.
    Pending,
    /// Apply pending migrations.
    Up {
        /// Stop after this version.
        #[arg(long)]
        to: Option<u64>,
        #[arg(long)]
        dry_run: bool,
    },
    /// Roll back applied migrations (the last one by default).
    Down {
        /// How many to roll back.
        #[arg(long, conflicts_with = "to")]
        steps: Option<usize>,
        /// Roll back every migration above this version.
        #[arg(long)]
        to: Option<u64>,
        #[arg(long)]
        dry_run: bool,
    },
    /// Apply one migration by name or version, even out of order.
    Run {
        name: String,
        #[arg(long)]
        dry_run: bool,
    },
    /// Roll back the last applied migration and apply it again.
    Redo {
        #[arg(long)]
        dry_run: bool,
    },
    /// Create the up and down files of a new migration (in --dir, default ./migrations).
    New {
        name: String,
        #[arg(long)]
        dry_run: bool,
    },
    /// Check the migrations against the lint rules; exit 1 on errors.
    Lint {
        /// The dialect to lint; default: the database's.
        #[arg(long, value_parser = parse_dialect)]
        dialect: Option<Dialect>,
    },
    /// On a scratch database, check that every down restores the schema of before its up.
    Verify,
}

fn parse_dialect(s: &str) -> Result<Dialect, String> {
    match s {
        "sqlite" => Ok(Dialect::Sqlite),
        "postgres" | "postgresql" => Ok(Dialect::Postgres),
        _ => Err(format!("`{s}` is neither sqlite nor postgres")),
    }
}

pub fn run(args: MigrateArgs, config_file: Option<&Path>) -> ExitCode {
    let Some(runtime) = crate::runtime(tokio::runtime::Builder::new_current_thread()) else {
        return ExitCode::FAILURE;
    };
    let json = args.json;
    match runtime.block_on(execute(args, config_file)) {
        Ok(code) => code,
        Err(e) => {
            if json {
                print_json(&serde_json::json!({ "error": format!("{e:#}") }));
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}

/// The database URL: `--database-url`/`DATABASE_URL`, else the configuration's.
fn database_url(args: &MigrateArgs, config_file: Option<&Path>) -> anyhow::Result<String> {
    if let Some(url) = &args.database_url {
        return Ok(url.clone());
    }
    let loaded = config::load(config_file);
    match loaded.config {
        Some(c) => Ok(c.database.store.url),
        None => bail!("{}", config::ConfigError(loaded.problems)),
    }
}

fn migrations(dir: Option<&Path>, dialect: Dialect) -> anyhow::Result<MigrationSet> {
    Ok(match dir {
        Some(dir) => MigrationSet::from_dir(dir, dialect)?,
        None => palisade_store::schema::migrations(dialect),
    })
}

async fn execute(args: MigrateArgs, config_file: Option<&Path>) -> anyhow::Result<ExitCode> {
    if let MigrateCommand::New { name, dry_run } = &args.command {
        return new_migration(args.dir.as_deref(), name, *dry_run, args.json);
    }
    let url = database_url(&args, config_file)?;
    let target = Target::from_url(&url)?;
    if let MigrateCommand::Lint { dialect } = &args.command {
        let dialect = dialect.unwrap_or(target.dialect());
        let set = migrations(args.dir.as_deref(), dialect)?;
        return lint_command(&set, target, args.json).await;
    }
    let set = migrations(args.dir.as_deref(), target.dialect())?;
    if let MigrateCommand::Verify = args.command {
        return verify_command(&target, &set, args.json).await;
    }
    let migrator = Migrator::new(target, set)?;
    let (plan, dry_run) = match args.command {
        MigrateCommand::Up { to, dry_run } => (Plan::Up { to }, dry_run),
        MigrateCommand::Down { steps, to, dry_run } => (Plan::Down { steps, to }, dry_run),
        MigrateCommand::Run { name, dry_run } => (Plan::Run(name), dry_run),
        MigrateCommand::Redo { dry_run } => (Plan::Redo, dry_run),
        // Status, list and pending; new, lint and verify returned above.
        command => {
            let status = migrator.status().await?;
            return Ok(show_status(&command, &migrator, &status, args.json));
        }
    };
    let progress = Bar::new(args.json);
    let outcome = migrator.execute(&plan, dry_run, &progress).await;
    progress.clear();
    let report = outcome?;
    if args.json {
        print_json(&report);
    } else {
        print_report(&report, migrator.target());
    }
    Ok(ExitCode::SUCCESS)
}

fn show_status(command: &MigrateCommand, m: &Migrator, status: &Status, json: bool) -> ExitCode {
    let problems = status.problems(true);
    let entries: Vec<&Entry> = match command {
        MigrateCommand::Pending => status
            .entries
            .iter()
            .filter(|e| matches!(e.state, State::Pending | State::OutOfOrder))
            .collect(),
        _ => status.entries.iter().collect(),
    };
    if json {
        #[derive(Serialize)]
        struct Out<'a> {
            database: String,
            migrations: &'a str,
            entries: Vec<&'a Entry>,
            problems: &'a [String],
        }
        print_json(&Out {
            database: m.target().describe(),
            migrations: &m.set().origin,
            entries,
            problems: &problems,
        });
    } else {
        println!("database:   {}", m.target().describe());
        println!("migrations: {}", m.set().origin);
        if matches!(command, MigrateCommand::Status) {
            let count = |s| status.with_state(s).count();
            println!(
                "applied {}, pending {}",
                count(State::Applied),
                count(State::Pending) + count(State::OutOfOrder)
            );
        }
        if !entries.is_empty() {
            println!("{}", status_table(&entries));
        }
        for p in &problems {
            eprintln!("problem: {p}");
        }
    }
    if matches!(command, MigrateCommand::Status) && !problems.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn status_table(entries: &[&Entry]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED).set_header([
        "version",
        "name",
        "state",
        "applied at",
        "by",
        "took",
    ]);
    for e in entries {
        let a = e.applied.as_ref();
        t.add_row([
            format!("{:04}", e.version),
            e.name.clone(),
            e.state.as_str().to_owned(),
            a.map_or(String::new(), |a| a.applied_at.clone()),
            a.map_or(String::new(), |a| a.applied_by.clone()),
            a.map_or(String::new(), |a| format!("{} ms", a.duration_ms)),
        ]);
    }
    t
}

fn print_report(report: &Report, target: &Target) {
    if report.steps.is_empty() {
        println!("nothing to do: {} is up to date", target.describe());
        return;
    }
    if report.dry_run {
        println!(
            "dry run: nothing was changed; this would run on {}:",
            target.describe()
        );
        for s in &report.steps {
            println!(
                "\n-- {} {} ({}{})",
                arrow(s.direction),
                s.id,
                s.file,
                if s.in_transaction {
                    ""
                } else {
                    ", outside a transaction"
                }
            );
            for stmt in &s.statements {
                println!("{stmt};");
            }
        }
        return;
    }
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_header(["", "migration", "took"]);
    for s in &report.steps {
        t.add_row([
            arrow(s.direction).to_owned(),
            s.id.clone(),
            s.duration_ms.map_or(String::new(), |ms| format!("{ms} ms")),
        ]);
    }
    println!("{t}");
}

fn arrow(d: Direction) -> &'static str {
    match d {
        Direction::Up => "up",
        Direction::Down => "down",
    }
}

async fn lint_command(set: &MigrationSet, target: Target, json: bool) -> anyhow::Result<ExitCode> {
    // With a reachable database of the same dialect, pending migrations numbered below an
    // applied one are caught too.
    let applied = if target.dialect() == set.dialect {
        match Migrator::new(target, set.clone())?.status().await {
            Ok(s) => Some(
                s.entries
                    .iter()
                    .filter(|e| e.applied.is_some())
                    .map(|e| e.version)
                    .collect(),
            ),
            Err(e) => {
                if !json {
                    eprintln!("note: applied versions not checked ({e})");
                }
                None
            }
        }
    } else {
        None
    };
    let findings = lint(set, &LintOptions { applied });
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings.len() - errors;
    if json {
        print_json(&serde_json::json!({
            "migrations": set.origin,
            "dialect": set.dialect,
            "errors": errors,
            "warnings": warnings,
            "findings": findings,
        }));
    } else {
        for f in &findings {
            let severity = match f.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            println!(
                "{}:{}:{}: {severity}[{}]: {}\n    why: {}",
                f.file, f.line, f.column, f.rule, f.message, f.why
            );
        }
        println!(
            "{} ({}): {} migrations, {errors} errors, {warnings} warnings",
            set.origin,
            set.dialect.as_str(),
            set.migrations.len()
        );
    }
    Ok(if errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn verify_command(
    target: &Target,
    set: &MigrationSet,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let progress = Bar::new(json);
    progress.start(set.migrations.len());
    let result = verify(target, set, &progress).await;
    progress.clear();
    let v = result?;
    if json {
        print_json(&v);
    } else {
        for c in &v.checked {
            match &c.outcome {
                Outcome::Restored => println!("ok       {}", c.id),
                Outcome::NoDown => println!("no down  {} (applied, not checked)", c.id),
                Outcome::DownDoesNotRestore { differences } => {
                    println!("FAILED   {}: its down does not restore the schema:", c.id);
                    for d in differences {
                        println!("    {d}");
                    }
                }
                Outcome::UpNotRepeatable { differences } => {
                    println!("FAILED   {}: up after down gives another schema:", c.id);
                    for d in differences {
                        println!("    {d}");
                    }
                }
                Outcome::Failed { error } => println!("FAILED   {}: {error}", c.id),
            }
        }
        println!(
            "verified on a scratch database ({}), removed since",
            v.scratch
        );
    }
    Ok(match v.first_failure() {
        Some(_) => ExitCode::FAILURE,
        None => ExitCode::SUCCESS,
    })
}

/// Writes `NNNN_name.up.sql` and `.down.sql` in each dialect directory of `dir` (or in
/// `dir` itself), NNNN one above the highest version there.
fn new_migration(
    dir: Option<&Path>,
    name: &str,
    dry_run: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        bail!("`{name}`: a migration name is made of a-z, 0-9 and _");
    }
    let dir = dir.unwrap_or(Path::new("migrations"));
    let mut dirs: Vec<PathBuf> = ["sqlite", "postgres"]
        .iter()
        .map(|d| dir.join(d))
        .filter(|d| d.is_dir())
        .collect();
    if dirs.is_empty() {
        dirs.push(dir.to_path_buf());
    }
    let mut highest = 0;
    for d in &dirs {
        if !d.exists() {
            continue;
        }
        for entry in std::fs::read_dir(d).with_context(|| format!("cannot read {}", d.display()))? {
            let file = entry?.file_name();
            if let Some(f) = FileName::parse(&file.to_string_lossy()) {
                highest = highest.max(f.version);
            }
        }
    }
    let version = highest + 1;
    let mut created = Vec::new();
    for d in &dirs {
        for (suffix, body) in [
            ("up", "-- What this migration changes.\n"),
            (
                "down",
                "-- Undo the up file exactly: `palisade migrate verify` checks it.\n",
            ),
        ] {
            let path = d.join(format!("{version:04}_{name}.{suffix}.sql"));
            if !dry_run {
                std::fs::create_dir_all(d)
                    .with_context(|| format!("cannot create {}", d.display()))?;
                std::fs::write(&path, body)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            created.push(path.display().to_string());
        }
    }
    if json {
        print_json(&serde_json::json!({ "dry_run": dry_run, "files": created }));
    } else {
        let verb = if dry_run { "would create" } else { "created" };
        for f in &created {
            println!("{verb} {f}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_json(value: &impl Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("error: cannot write JSON: {e}"),
    }
}

/// A progress bar on stderr while more than one migration runs (and stderr is a terminal).
struct Bar {
    bar: Option<ProgressBar>,
}

impl Bar {
    fn new(json: bool) -> Bar {
        let shown = !json && std::io::stderr().is_terminal();
        Bar {
            bar: shown.then(ProgressBar::hidden),
        }
    }

    fn start(&self, total: usize) {
        let Some(bar) = &self.bar else { return };
        if total < 2 {
            return;
        }
        bar.set_length(total as u64);
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {elapsed} {msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.enable_steady_tick(Duration::from_millis(120));
    }

    fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Progress for Bar {
    fn planned(&self, steps: &[Step]) {
        self.start(steps.len());
    }

    fn started(&self, step: &Step) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{} {}", arrow(step.direction), step.id));
        }
    }

    fn finished(&self, _step: &Step) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    fn verifying(&self, id: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(id.to_owned());
            bar.inc(1);
        }
    }

    fn note(&self, message: &str) {
        match &self.bar {
            Some(bar) if !bar.is_hidden() => bar.println(message),
            _ => eprintln!("{message}"),
        }
    }
}
