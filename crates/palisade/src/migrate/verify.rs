//! `migrate verify`: up, down and up each migration on a scratch database.

use std::process::ExitCode;

use palisade_migrate::verify::{Outcome, verify};
use palisade_migrate::{MigrationSet, Target};

use super::apply::Bar;
use super::print_json;

pub(super) async fn verify_command(
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
