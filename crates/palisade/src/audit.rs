//! `palisade audit verify`: walks the audit chain and names the first row that was
//! changed, deleted or inserted; with `--anchor SEQ:HASH` (the head an earlier run
//! printed, kept elsewhere) also whether rows were cut off the end or the chain was
//! rewritten. Exit code 0 when intact, 1 when not.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use palisade_service::audit::{Anchor, Verdict};

use crate::cli_context;

#[derive(Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Check every row's link to the one before and its hash.
    Verify {
        /// Print the verdict as JSON.
        #[arg(long)]
        json: bool,
        /// A head an earlier run printed (`SEQ:HASH`): that row must still be there,
        /// unchanged.
        #[arg(long, value_name = "SEQ:HASH")]
        anchor: Option<Anchor>,
    },
}

pub fn run(args: AuditArgs, config_file: Option<&Path>) -> ExitCode {
    let Action::Verify { json, anchor } = args.action;
    let ctx = match cli_context::open(config_file) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let bar = if std::io::stderr().is_terminal() && !json {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {pos} rows checked ({per_sec})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let verdict = ctx.runtime.block_on(
        ctx.services
            .identity
            .audit()
            .verify(anchor.as_ref(), |rows| bar.set_position(rows)),
    );
    bar.finish_and_clear();
    let verdict = match verdict {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: cannot read the audit log: {e}");
            return ExitCode::FAILURE;
        }
    };
    if json {
        println!("{}", serde_json::to_string(&verdict).unwrap_or_default());
    } else {
        match &verdict {
            Verdict::Intact { rows, head: None } => println!("audit log intact: {rows} rows"),
            Verdict::Intact {
                rows,
                head: Some(head),
            } => {
                println!("audit log intact: {rows} rows");
                println!(
                    "head: {head} (keep it elsewhere; `--anchor {head}` later shows whether rows were cut off or the chain rewritten)"
                );
            }
            Verdict::Changed { seq } => println!("audit log TAMPERED: row {seq} was changed"),
            Verdict::Deleted { seq } => {
                println!("audit log TAMPERED: rows before row {seq} were deleted")
            }
            Verdict::Inserted { seq } => {
                println!("audit log TAMPERED: a row was inserted before row {seq}")
            }
            Verdict::Truncated { seq } => {
                println!(
                    "audit log TAMPERED: the anchored row {seq} and those after it were removed"
                )
            }
            Verdict::Rewritten { seq } => {
                println!(
                    "audit log TAMPERED: the anchored row {seq} has another hash: the chain was rewritten"
                )
            }
        }
    }
    match verdict {
        Verdict::Intact { .. } => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}
