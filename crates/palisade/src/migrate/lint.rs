//! `migrate lint`: the linter's findings, as a table or JSON.

use std::process::ExitCode;

use palisade_migrate::lint::{LintOptions, Severity, lint};
use palisade_migrate::{MigrationSet, Migrator, Target};

use super::print_json;

pub(super) async fn lint_command(
    set: &MigrationSet,
    target: Target,
    json: bool,
) -> anyhow::Result<ExitCode> {
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
