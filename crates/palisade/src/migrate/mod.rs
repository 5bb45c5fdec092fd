//! `palisade migrate …`: the migration engine from the command line, on this build's
//! embedded migrations or on a directory of one's own (`--dir`). One module per
//! subcommand: [`status`] (status, list, pending), [`apply`] (up, down, run, redo),
//! [`lint`], [`verify`], [`new`].

mod apply;
mod lint;
mod new;
mod status;
mod verify;

use apply::{Bar, print_report};
use lint::{LintFormat, LintRun, lint_command};
use new::new_migration;
use status::show_status;
use verify::verify_command;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand};
use palisade_migrate::engine::Plan;
use palisade_migrate::{Dialect, MigrationSet, Migrator, Target};
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
pub(super) enum MigrateCommand {
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
    /// Check the migrations against the lint rules; exit 1 on errors (or on any finding
    /// with --deny-warnings). Rule levels come from `[lint.rules]` in palisade.toml.
    Lint {
        /// The dialect to lint; default: the database's.
        #[arg(long, value_parser = parse_dialect)]
        dialect: Option<Dialect>,
        /// Exit 1 on warnings too.
        #[arg(long)]
        deny_warnings: bool,
        /// Output: text, json, sarif (GitHub code scanning) or github (workflow
        /// annotations); --json is --format json.
        #[arg(long, value_enum, default_value_t = LintFormat::Text)]
        format: LintFormat,
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
    if let MigrateCommand::Lint {
        dialect,
        deny_warnings,
        format,
    } = &args.command
    {
        let dialect = dialect.unwrap_or(target.dialect());
        let set = migrations(args.dir.as_deref(), dialect)?;
        let format = if args.json { LintFormat::Json } else { *format };
        let opts = LintRun {
            dir: args.dir.as_deref(),
            config_file,
            deny_warnings: *deny_warnings,
            format,
        };
        return lint_command(&set, target, &opts).await;
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

pub(super) fn print_json(value: &impl Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("error: cannot write JSON: {e}"),
    }
}
