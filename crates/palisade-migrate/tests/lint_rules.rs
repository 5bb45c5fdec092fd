//! Each rule against its fixtures: `tests/fixtures/lint/<rule>/trip/<dialect>` must
//! break it, `…/pass/<dialect>` (the nearest correct way to do the same) must not. A
//! fixture is a directory of migration files, or one `<dialect>.sql` file holding
//! several, each after a `-- file: NAME` line, which starts from the files of
//! `base.<dialect>.sql` when there is one.

use std::collections::BTreeSet;
use std::path::Path;

use palisade_migrate::Dialect;
use palisade_migrate::lint::{Finding, Level, LintOptions, RULES, Severity, lint};
use palisade_migrate::source::MigrationSet;

fn lint_dir(dir: &Path, dialect: Dialect, opts: &LintOptions) -> Vec<Finding> {
    let set = MigrationSet::from_dir(dir, dialect).expect("fixture directory reads");
    lint(&set, opts)
}

/// The files of a one-file fixture: each `-- file: NAME` line starts one; lines before
/// the first describe the fixture.
fn files_of(sql: &str) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = Vec::new();
    for line in sql.lines() {
        if let Some(name) = line.strip_prefix("-- file: ") {
            files.push((name.trim().to_owned(), String::new()));
        } else if let Some((_, body)) = files.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    files
}

/// The fixture sets of a rule for one kind and dialect: its directory, its file, or both.
fn fixtures(root: &Path, rule: &str, kind: &str, dialect: Dialect) -> Vec<(String, MigrationSet)> {
    let base = root.join(rule).join(kind);
    let mut sets = Vec::new();
    let dir = base.join(dialect.as_str());
    if dir.is_dir() {
        let set = MigrationSet::from_dir(&dir, dialect).expect("fixture directory reads");
        sets.push((dir.display().to_string(), set));
    }
    let file = base.join(format!("{}.sql", dialect.as_str()));
    if file.is_file() {
        let shared = root.join(format!("base.{}.sql", dialect.as_str()));
        let mut sql = std::fs::read_to_string(&shared).unwrap_or_default();
        sql.push_str(&std::fs::read_to_string(&file).expect("fixture file reads"));
        let set = MigrationSet::from_files(dialect, "fixture", files_of(&sql));
        sets.push((file.display().to_string(), set));
    }
    sets
}

#[test]
fn every_rule_trips_on_its_trip_fixtures_and_not_on_its_pass_fixtures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lint");
    let mut failures = Vec::new();
    for rule in RULES {
        // Opt-in rules are switched on for their own fixtures.
        let mut opts = LintOptions::default();
        if rule.default == Level::Off {
            opts.set_level(rule.id, "warning").expect("a known rule");
        }
        for &dialect in rule.dialects {
            for (kind, should_trip) in [("trip", true), ("pass", false)] {
                let sets = fixtures(&root, rule.id, kind, dialect);
                if sets.is_empty() {
                    failures.push(format!(
                        "{}/{kind}/{}: no fixture",
                        rule.id,
                        dialect.as_str()
                    ));
                }
                for (name, set) in sets {
                    let findings = lint(&set, &opts);
                    let hits: Vec<_> = findings.iter().filter(|f| f.rule == rule.id).collect();
                    if hits.is_empty() == should_trip {
                        failures.push(format!("{name}: {} finding(s): {hits:#?}", hits.len()));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn an_opt_in_rule_is_silent_until_switched_on_and_a_rule_can_be_switched_off() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lint");
    let count = |rule: &str, opts: &LintOptions| {
        let (_, set) = fixtures(&root, rule, "trip", Dialect::Postgres).remove(0);
        lint(&set, opts).iter().filter(|f| f.rule == rule).count()
    };
    assert_eq!(count("prefer-text-field", &LintOptions::default()), 0);
    let mut opts = LintOptions::default();
    opts.set_level("prefer-text-field", "error").expect("known");
    opts.set_level("ban-drop-view", "off").expect("known");
    assert_eq!(count("prefer-text-field", &opts), 1);
    assert_eq!(count("ban-drop-view", &opts), 0);
    assert!(count("ban-drop-view", &LintOptions::default()) > 0);
    assert!(opts.set_level("no-such-rule", "off").is_err());
    assert!(opts.set_level("ban-drop-view", "loud").is_err());
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
        let mut opts = LintOptions::default();
        opts.applied = Some(applied.iter().copied().collect::<BTreeSet<_>>());
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

#[test]
fn the_readme_lists_every_rule_as_the_catalog_has_it() {
    let readme = include_str!("../../../README.md");
    let table = palisade_migrate::lint::catalog::markdown_table();
    assert!(
        readme.contains(&table),
        "README.md's rules table differs from the catalog; it should read:\n{table}"
    );
}
#[test]
fn the_safe_ways_raise_nothing_at_all() {
    // A pass fixture is the safe way to do what its trip fixture does: under the default
    // levels, no rule at all may flag it, or the linter cries wolf.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lint");
    let mut noisy = Vec::new();
    for rule in RULES {
        for &dialect in rule.dialects {
            for (name, set) in fixtures(&root, rule.id, "pass", dialect) {
                for f in lint(&set, &LintOptions::default()) {
                    noisy.push(format!(
                        "{name}: {}:{} {} {}",
                        f.file, f.line, f.rule, f.message
                    ));
                }
            }
        }
    }
    assert!(noisy.is_empty(), "{}", noisy.join("\n"));
}
