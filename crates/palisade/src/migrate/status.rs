//! `migrate status | list | pending`: where the database stands.

use std::process::ExitCode;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use palisade_migrate::status::Entry;
use palisade_migrate::{Migrator, State, Status};
use serde::Serialize;

use super::{MigrateCommand, print_json};

pub(super) fn show_status(
    command: &MigrateCommand,
    m: &Migrator,
    status: &Status,
    json: bool,
) -> ExitCode {
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
