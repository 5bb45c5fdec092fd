//! `palisade jobs …`: the job queue, for an operator: what waits, runs or died, a dead
//! job queued again, the dead purged.

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use comfy_table::Table;
use palisade_store::repo::jobs as repo;
use palisade_store::repo::now;
use uuid::Uuid;

use crate::cli_context::{self, CliContext};

#[derive(Args)]
pub struct JobsArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// List jobs, oldest first.
    List {
        /// Only jobs in this state: queued, running or dead.
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
    /// Queue a dead job again, with a fresh count of attempts.
    Retry { id: Uuid },
    /// Delete jobs.
    Purge {
        /// The dead ones (the only ones that can be purged).
        #[arg(long, required = true)]
        dead: bool,
    },
}

pub fn run(args: JobsArgs, config_file: Option<&Path>) -> ExitCode {
    let ctx = match cli_context::open(config_file) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let CliContext {
        runtime, services, ..
    } = ctx;
    let db = services.db;
    let result: Result<(), String> = runtime.block_on(async {
        match args.action {
            Action::List { state, limit } => {
                if let Some(s) = &state
                    && ![repo::QUEUED, repo::RUNNING, repo::DEAD].contains(&s.as_str())
                {
                    return Err(format!("no state `{s}`: queued, running or dead"));
                }
                let rows = repo::list(&db, state.as_deref(), limit)
                    .await
                    .map_err(|e| e.to_string())?;
                let mut table = Table::new();
                table.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
                table.set_header(["id", "kind", "state", "attempts", "run at", "last error"]);
                for j in &rows {
                    table.add_row([
                        j.id.to_string(),
                        j.kind.clone(),
                        j.state.clone(),
                        format!("{}/{}", j.attempts, j.max_attempts),
                        j.run_at.to_string(),
                        j.last_error.clone().unwrap_or_default(),
                    ]);
                }
                println!("{table}");
                Ok(())
            }
            Action::Retry { id } => {
                if repo::retry(&db, id, now())
                    .await
                    .map_err(|e| e.to_string())?
                {
                    println!("job {id} queued again");
                    Ok(())
                } else {
                    Err(format!("no dead job {id}"))
                }
            }
            Action::Purge { dead } => {
                debug_assert!(dead);
                let n = repo::purge_dead(&db).await.map_err(|e| e.to_string())?;
                println!("{n} dead jobs deleted");
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
