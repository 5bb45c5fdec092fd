//! `migrate lint`: the linter's findings as text, JSON, SARIF or GitHub annotations,
//! with rule levels from `[lint.rules]` in the configuration file.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use figment::Figment;
use figment::providers::{Format, Toml};
use palisade_migrate::lint::{LintOptions, Severity, lint, report};
use palisade_migrate::{MigrationSet, Migrator, Target};

use super::print_json;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum LintFormat {
    Text,
    Json,
    Sarif,
    Github,
}

pub struct LintRun<'a> {
    /// The migrations directory, to name files by their path.
    pub dir: Option<&'a Path>,
    pub config_file: Option<&'a Path>,
    pub deny_warnings: bool,
    pub format: LintFormat,
}

pub(super) async fn lint_command(
    set: &MigrationSet,
    target: Target,
    run: &LintRun<'_>,
) -> anyhow::Result<ExitCode> {
    let mut opts = rule_levels(run.config_file)?;
    let text = matches!(run.format, LintFormat::Text);
    // With a reachable database of the same dialect, the linter knows which migrations
    // are applied: pending ones numbered below an applied one are caught, and tables
    // a pending migration creates are known to be empty. A database with nothing
    // applied is taken for a scratch one (a CI service): judging every table new there
    // would hide every hazard, so the linter judges as without a database.
    if target.dialect() == set.dialect {
        match Migrator::new(target, set.clone())?.status().await {
            Ok(s) => {
                let applied: std::collections::BTreeSet<u64> = s
                    .entries
                    .iter()
                    .filter(|e| e.applied.is_some())
                    .map(|e| e.version)
                    .collect();
                opts.applied = (!applied.is_empty()).then_some(applied);
            }
            Err(e) => {
                if text {
                    eprintln!("note: applied versions not checked ({e})");
                }
            }
        }
    }
    let findings = lint(set, &opts);
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings.len() - errors;
    let dir = run
        .dir
        .map(|d| palisade_migrate::MigrationSet::dialect_dir(d, set.dialect))
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    match run.format {
        LintFormat::Json => print_json(&serde_json::json!({
            "migrations": set.origin,
            "dialect": set.dialect,
            "errors": errors,
            "warnings": warnings,
            "findings": findings,
        })),
        LintFormat::Sarif => print_json(&report::sarif(&findings, &dir)),
        LintFormat::Github | LintFormat::Text => {
            if matches!(run.format, LintFormat::Github) {
                print!("{}", report::github(&findings, &dir));
            } else {
                print!("{}", report::text(&findings, &dir));
            }
            println!(
                "{} ({}): {} migrations, {errors} errors, {warnings} warnings",
                set.origin,
                set.dialect.as_str(),
                set.migrations.len()
            );
        }
    }
    let fail = errors > 0 || (run.deny_warnings && warnings > 0);
    Ok(if fail {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `[lint.rules]` of the configuration file (`rule-id = "off" | "warning" | "error"`);
/// an unknown rule or level is an error, so a typo does not silently do nothing.
fn rule_levels(config_file: Option<&Path>) -> anyhow::Result<LintOptions> {
    let path = config_file.unwrap_or(Path::new("palisade.toml"));
    let mut opts = LintOptions::default();
    if !path.exists() {
        anyhow::ensure!(
            config_file.is_none(),
            "configuration file {} does not exist",
            path.display()
        );
        return Ok(opts);
    }
    let figment = Figment::from(Toml::file(path));
    if !figment.contains("lint") {
        return Ok(opts);
    }
    let lint: BTreeMap<String, figment::value::Value> = figment
        .extract_inner("lint")
        .with_context(|| format!("{}: [lint]", path.display()))?;
    if let Some(unknown) = lint.keys().find(|k| *k != "rules") {
        anyhow::bail!(
            "{}: unknown key `lint.{unknown}` (known: lint.rules)",
            path.display()
        );
    }
    if !figment.contains("lint.rules") {
        return Ok(opts);
    }
    let levels: BTreeMap<String, String> = figment
        .extract_inner("lint.rules")
        .with_context(|| format!("{}: [lint.rules]", path.display()))?;
    for (rule, level) in levels {
        opts.set_level(&rule, &level)
            .map_err(|e| anyhow::anyhow!("{}: [lint.rules]: {e}", path.display()))?;
    }
    Ok(opts)
}
