//! The linter on real-world migrations: four open-source projects' PostgreSQL
//! migrations (fetched from their registries by `scripts/lint-corpus.sh`, pinned
//! versions, nothing of theirs kept here). Every statement must parse, and every
//! finding was reviewed once and recorded in `tests/corpus/findings.txt`, so that any
//! change in the linter's output shows up here. After reviewing a deliberate change,
//! `PALISADE_BLESS=1 cargo test -p palisade-migrate --test corpus` records the new one.

use std::path::{Path, PathBuf};
use std::process::Command;

use palisade_migrate::Dialect;
use palisade_migrate::lint::{LintOptions, lint};
use palisade_migrate::source::MigrationSet;

/// The corpus directory, fetched on first use (it needs pip, npm and cargo, with their
/// registries); a failure says why instead of passing.
fn corpus() -> PathBuf {
    let dir = std::env::var("PALISADE_LINT_CORPUS")
        .unwrap_or_else(|_| "/var/tmp/palisade-tools/lint-corpus".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/lint-corpus.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(&dir)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{} could not fetch the corpus:\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(dir)
}

/// One line per finding: `project/file:line:column severity rule`. The projects have
/// no down files, so `missing-down` is left out.
fn findings(root: &Path) -> (String, usize) {
    let mut projects: Vec<_> = std::fs::read_dir(root)
        .expect("corpus reads")
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    projects.sort();
    assert_eq!(
        projects,
        ["apalis", "graphile-worker", "procrastinate", "sqlxmq"]
    );
    let mut out = String::new();
    let mut statements = 0;
    for project in &projects {
        let set =
            MigrationSet::from_dir(&root.join(project), Dialect::Postgres).expect("project reads");
        statements += set
            .migrations
            .iter()
            .map(|m| m.up.statements(Dialect::Postgres).len())
            .sum::<usize>();
        for f in lint(&set, &LintOptions::default()) {
            if f.rule == "missing-down" {
                continue;
            }
            out.push_str(&format!(
                "{project}/{}:{}:{} {:?} {}\n",
                f.file, f.line, f.column, f.severity, f.rule
            ));
        }
    }
    (out.to_lowercase(), statements)
}

#[test]
fn the_corpus_parses_and_its_findings_are_the_reviewed_ones() {
    let (found, statements) = findings(&corpus());
    // The pinned versions hold 71 up files with 378 statements.
    assert_eq!(statements, 378, "is the corpus whole?");
    assert!(
        !found.contains("syntax-error"),
        "PostgreSQL accepts every statement of the corpus:\n{found}"
    );
    let expected_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/findings.txt");
    if std::env::var_os("PALISADE_BLESS").is_some() {
        std::fs::write(&expected_file, &found).expect("write the findings");
        return;
    }
    let expected = std::fs::read_to_string(&expected_file).expect("recorded findings");
    if found != expected {
        let gone: Vec<_> = expected.lines().filter(|l| !found.contains(l)).collect();
        let new: Vec<_> = found.lines().filter(|l| !expected.contains(l)).collect();
        panic!(
            "the linter's findings on the corpus changed.\nno longer found:\n{}\nnewly found:\n{}\n\
             Review them; if the change is right, record it with PALISADE_BLESS=1.",
            gone.join("\n"),
            new.join("\n")
        );
    }
}
