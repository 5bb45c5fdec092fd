//! `palisade db seed`: realistic members and contracts for demos, benchmarks and load
//! tests, with a progress bar on a terminal.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use palisade_service::seed::{self, Plan};

use crate::cli_context::{self, CliContext};

#[derive(Args)]
pub struct DbArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Add members, each with contracts; every seeded member gets the same passphrase,
    /// printed once at the end.
    Seed {
        /// Members to create (1..=100000).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        users: u32,
        /// Contracts per member (0..=100000).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(0..=100_000))]
        contracts_per_user: u32,
    },
}

pub fn run(args: DbArgs, config_file: Option<&Path>) -> ExitCode {
    let CliContext {
        runtime,
        services,
        production,
    } = match cli_context::open(config_file) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // Seeded members share one passphrase, printed on the terminal: demo data only.
    if production {
        eprintln!("error: palisade db seed refuses to run with PALISADE_ENV=production");
        return ExitCode::FAILURE;
    }
    let Action::Seed {
        users,
        contracts_per_user,
    } = args.action;
    let plan = Plan {
        users,
        contracts_per_user,
    };
    let total = u64::from(users) * u64::from(contracts_per_user);
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(total)
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} contracts {per_sec} {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    let start = Instant::now();
    let result = runtime.block_on(seed::seed(&services.db, &services.identity, plan, |n| {
        bar.set_position(n)
    }));
    bar.finish_and_clear();
    match result {
        Ok(s) => {
            println!(
                "seeded {} members and {} contracts in {:.1} s",
                s.users,
                s.contracts,
                start.elapsed().as_secs_f64()
            );
            println!(
                "every seeded member signs in with the passphrase: {}",
                s.passphrase
            );
            println!("for example: {}", s.first_email);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
