//! Each rule against its fixtures: `tests/fixtures/lint/<rule>/trip/<dialect>/` must
//! break it, `…/pass/<dialect>/` (the nearest correct way to do the same) must not.

use std::collections::BTreeSet;
use std::path::Path;

use palisade_migrate::Dialect;
use palisade_migrate::lint::{Finding, LintOptions, RULES, Severity, lint};
use palisade_migrate::source::MigrationSet;

fn lint_dir(dir: &Path, dialect: Dialect, opts: &LintOptions) -> Vec<Finding> {
    let set = MigrationSet::from_dir(dir, dialect).expect("fixture directory reads");
    lint(&set, opts)
}

#[test]
fn every_rule_trips_on_its_trip_fixtures_and_not_on_its_pass_fixtures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lint");
    let mut failures = Vec::new();
    for rule in RULES {
        for &dialect in rule.dialects {
            for (kind, should_trip) in [("trip", true), ("pass", false)] {
                let dir = root.join(rule.id).join(kind).join(dialect.as_str());
                if !dir.is_dir() {
                    failures.push(format!("{}: no fixture directory", dir.display()));
                    continue;
                }
                let findings = lint_dir(&dir, dialect, &LintOptions::default());
                let hits: Vec<_> = findings.iter().filter(|f| f.rule == rule.id).collect();
                if hits.is_empty() == should_trip {
                    failures.push(format!(
                        "{}: {} finding(s): {hits:#?}",
                        dir.display(),
                        hits.len()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn findings_carry_their_rule_place_and_order() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/lint/foreign-key-without-index/trip/postgres");
    let findings = lint_dir(&dir, Dialect::Postgres, &LintOptions::default());
    let fk: Vec<_> = findings
        .iter()
        .filter(|f| f.rule == "foreign-key-without-index")
        .map(|f| (f.file.as_str(), f.line, f.column, f.severity))
        .collect();
    // orders (user_id), order_lines (order_id) and order_lines (sku, region): the
    // primary key (order_id, line) covers order_id, so only two are reported.
    assert_eq!(
        fk,
        [
            ("0002_create_orders.up.sql", 1, 1, Severity::Warning),
            ("0002_create_orders.up.sql", 14, 1, Severity::Warning),
        ],
        "{findings:#?}"
    );
    let places: Vec<_> = findings
        .iter()
        .map(|f| (&f.file, f.line, f.column))
        .collect();
    assert!(places.is_sorted(), "{places:?}");
}

#[test]
fn a_migration_below_the_highest_applied_version_would_run_out_of_order() {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lint/version-order/pass/sqlite");
    let out_of_order = |applied: &[u64]| {
        let opts = LintOptions {
            applied: Some(applied.iter().copied().collect::<BTreeSet<_>>()),
        };
        lint_dir(&dir, Dialect::Sqlite, &opts)
            .into_iter()
            .filter(|f| f.rule == "version-order")
            .map(|f| f.file)
            .collect::<Vec<_>>()
    };
    assert_eq!(out_of_order(&[1, 3]), ["0002_add_note.up.sql"]);
    assert!(out_of_order(&[1, 2]).is_empty());
    assert!(out_of_order(&[]).is_empty());
}
