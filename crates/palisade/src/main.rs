//! `palisade`: the command line. Each subcommand is wiring over the `palisade`
//! library ([`palisade::app`], [`palisade::config`]) and the crates below it.

mod audit;
mod cli_context;
mod db;
mod jobs;
mod loadtest;
mod migrate;
mod serve;
mod user;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use palisade::{config, telemetry};

/// A production-hardened JSON API backend.
#[derive(Parser)]
#[command(name = "palisade", version, about)]
struct Cli {
    /// Configuration file (TOML); default `palisade.toml` when it exists.
    #[arg(long, global = true, env = "PALISADE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API until SIGTERM or SIGINT.
    Serve,
    /// Apply, roll back, inspect, lint and verify database migrations.
    Migrate(migrate::MigrateArgs),
    /// Create and administer accounts.
    User(user::UserArgs),
    /// Check the audit log's hash chain.
    Audit(audit::AuditArgs),
    /// Fill the database with demo data.
    Db(db::DbArgs),
    /// Inspect the job queue; retry or purge dead jobs.
    Jobs(jobs::JobsArgs),
    /// Run load-test scenarios (k6's vocabulary) against a palisade or any HTTP API.
    Loadtest(loadtest::LoadtestArgs),
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Print the effective configuration (secrets redacted) and every problem in it.
    Check,
}

/// Exit code of a bad configuration (clap uses the same for bad arguments).
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let file = cli.config.as_deref();
    match cli.command {
        Command::Migrate(args) => migrate::run(args, file),
        Command::User(args) => user::run(args, file),
        Command::Audit(args) => audit::run(args, file),
        Command::Db(args) => db::run(args, file),
        Command::Jobs(args) => jobs::run(args, file),
        Command::Loadtest(args) => loadtest::run(args),
        Command::Config {
            action: ConfigAction::Check,
        } => config_check(config::load(file)),
        Command::Serve => serve(config::load(file)),
    }
}

fn serve(loaded: config::Loaded) -> ExitCode {
    let config = match loaded.into_result() {
        Ok(c) => c,
        Err(e) => {
            eprint!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let _log_writer = match telemetry::init(&config.log_level) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("error: cannot start the log writer: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(runtime) = runtime(tokio::runtime::Builder::new_multi_thread()) else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(serve::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "palisade stopped with an error");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The async runtime, or `None` after saying why it could not start.
fn runtime(mut builder: tokio::runtime::Builder) -> Option<tokio::runtime::Runtime> {
    builder
        .enable_all()
        .build()
        .map_err(|e| eprintln!("error: cannot start the async runtime: {e}"))
        .ok()
}

fn config_check(loaded: config::Loaded) -> ExitCode {
    let width = config::KEYS.iter().map(|k| k.env.len()).max().unwrap_or(0);
    for e in &loaded.entries {
        println!("{:width$}  {}  ({}; {})", e.key, e.shown, e.source, e.help);
    }
    println!();
    if loaded.problems.is_empty() {
        println!("configuration OK");
        ExitCode::SUCCESS
    } else {
        eprint!("{}", config::ConfigError(loaded.problems));
        ExitCode::from(EXIT_CONFIG)
    }
}
