//! The migration linter: rules that catch migrations that lock, rewrite or break a live
//! database, or that the engine would refuse or run wrongly.
//!
//! - [`catalog`]: every rule, its id (squawk's where squawk has the rule), default
//!   level and why.
//! - [`postgres`]: PostgreSQL files, parsed by PostgreSQL's own grammar (libpg_query).
//! - [`sqlite`]: SQLite files, parsed by sqlparser.
//! - [`model`]: the schema the up files build, in version order, so that a rule knows
//!   what the statements before it did: whether a table is new (created by this file,
//!   or by a pending one, hence empty), a column's type, which indexes exist, which
//!   `CHECK (col IS NOT NULL)` are validated.
//! - [`report`]: the findings as text, JSON, SARIF or GitHub workflow annotations.
//!
//! A reviewed statement is let through by a comment above it, `-- palisade:ignore
//! rule-id` (or squawk's `-- squawk-ignore rule-id`); a whole file by
//! `-- palisade:ignore-file rule-id` (or `-- squawk-ignore-file`). Each rule's level
//! (off, warning, error) can be set per project ([`LintOptions::set_level`]).

pub mod catalog;
mod model;
mod postgres;
pub mod report;
mod sqlite;

use std::collections::{BTreeMap, BTreeSet};

pub use catalog::{Level, RULES, Rule};

use crate::Dialect;
use crate::source::{self, MigrationSet, ProblemKind, Script};
use crate::split::position;
use catalog::{
    FILE_NAME, FOREIGN_KEY_WITHOUT_INDEX, MISSING_DOWN, UNKNOWN_DIRECTIVE, VERSION_ORDER,
};
use model::Schema;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub why: &'static str,
}

#[derive(Clone, Debug, Default)]
pub struct LintOptions {
    /// Versions already applied on a database, when the caller knows them.
    pub applied: Option<BTreeSet<u64>>,
    /// Levels set by the project, overriding the rules' defaults.
    levels: BTreeMap<&'static str, Level>,
}

impl LintOptions {
    /// Sets a rule's level (`off`, `warning`, `error`); unknown rules and levels are
    /// refused, so a misspelt setting does not silently do nothing.
    pub fn set_level(&mut self, rule: &str, level: &str) -> Result<(), String> {
        let rule = catalog::find(rule).ok_or_else(|| format!("unknown lint rule `{rule}`"))?;
        let level = Level::parse(level).ok_or_else(|| {
            format!(
                "`{}`: unknown level `{level}` (off, warning or error)",
                rule.id
            )
        })?;
        self.levels.insert(rule.id, level);
        Ok(())
    }

    pub fn level(&self, rule: &Rule) -> Level {
        self.levels.get(rule.id).copied().unwrap_or(rule.default)
    }
}

/// A rule broken at a place in a file, before it is placed on a line.
pub struct Hit {
    pub rule: &'static Rule,
    /// Byte offset in the file.
    pub offset: usize,
    pub message: String,
}

impl Hit {
    pub fn at(rule: &'static Rule, offset: usize, message: String) -> Hit {
        Hit {
            rule,
            offset,
            message,
        }
    }
}

/// A foreign key a statement adds: whether an index serves it is known only at the end
/// of the file, since the index often comes after the key.
pub struct ForeignKey {
    pub table: String,
    pub columns: Vec<String>,
    pub references: String,
    pub offset: usize,
}

/// What a dialect's linter found in one file.
#[derive(Default)]
pub struct FileLint {
    pub hits: Vec<Hit>,
    /// For each statement, where its leading comments start and where it starts.
    pub statements: Vec<(usize, usize)>,
    pub foreign_keys: Vec<ForeignKey>,
}

/// Where file-level findings are reported.
const START: (usize, usize) = (1, 1);

/// Every finding for the set, sorted by file then line then column.
pub fn lint(set: &MigrationSet, opts: &LintOptions) -> Vec<Finding> {
    let mut out = Findings {
        dialect: set.dialect,
        opts,
        list: Vec::new(),
    };
    for p in &set.problems {
        let (rule, advice) = problem_rule(p.kind);
        out.push(rule, &p.file, START, format!("{}: {advice}", p.problem));
    }
    let mut schema = Schema::default();
    let mut previous_pending = false;
    for m in &set.migrations {
        if m.down.is_none() {
            let message = format!(
                "migration {} has no down file: add {}.down.sql that undoes it",
                m.id(),
                m.id()
            );
            out.push(&MISSING_DOWN, &m.up.file, START, message);
        }
        let pending = opts
            .applied
            .as_ref()
            .is_some_and(|a| !a.contains(&m.version));
        if let Some(applied) = &opts.applied
            && let Some(&highest) = applied.last()
            && m.version < highest
            && pending
        {
            let message = format!(
                "migration {} is not applied but version {highest} is, so it would run after \
                 later migrations: give it a version above {highest}",
                m.id()
            );
            out.push(&VERSION_ORDER, &m.up.file, START, message);
        }
        schema.start_file(previous_pending);
        previous_pending = pending;
        let up = lint_file(&m.up, &mut schema, set.dialect, true);
        out.place(&m.up, up, &schema);
        if let Some(down) = &m.down {
            // The down file is parsed only: its schema changes are not the model's.
            let down_lint = lint_file(down, &mut Schema::default(), set.dialect, false);
            out.place(down, down_lint, &schema);
        }
    }
    let mut list = out.list;
    list.sort_by(|a, b| {
        (&a.file, a.line, a.column, a.rule).cmp(&(&b.file, b.line, b.column, b.rule))
    });
    list
}

fn lint_file(script: &Script, schema: &mut Schema, dialect: Dialect, up: bool) -> FileLint {
    match dialect {
        Dialect::Postgres => postgres::lint_file(script, schema, up),
        Dialect::Sqlite => sqlite::lint_file(script, schema, up),
    }
}

/// The findings so far: only the set's dialect's rules, at their configured levels.
struct Findings<'a> {
    dialect: Dialect,
    opts: &'a LintOptions,
    list: Vec<Finding>,
}

impl Findings<'_> {
    fn push(
        &mut self,
        rule: &'static Rule,
        file: &str,
        (line, column): (usize, usize),
        message: String,
    ) {
        let severity = match self.opts.level(rule) {
            Level::Off => return,
            Level::Warning => Severity::Warning,
            Level::Error => Severity::Error,
        };
        if rule.dialects.contains(&self.dialect) {
            self.list.push(Finding {
                rule: rule.id,
                severity,
                file: file.to_owned(),
                line,
                column,
                message,
                why: rule.why,
            });
        }
    }

    /// Places a file's hits on their lines, leaving out those an ignore comment lets
    /// through, and judges its foreign keys against the schema at the end of the file.
    fn place(&mut self, script: &Script, lint: FileLint, schema: &Schema) {
        let sql = &script.sql;
        let mut hits = lint.hits;
        for fk in lint.foreign_keys {
            // A table dropped later in the file has no index to want.
            if schema.has_table(&fk.table) && !schema.covers(&fk.table, &fk.columns) {
                let key = format!("{} ({})", fk.table, fk.columns.join(", "));
                let message = format!(
                    "foreign key `{key}` → `{}` has no index starting with its columns: add an \
                     index on `{key}`",
                    fk.references
                );
                hits.push(Hit::at(&FOREIGN_KEY_WITHOUT_INDEX, fk.offset, message));
            }
        }
        let file_ignores = ignores(sql.lines(), true);
        for bad in &file_ignores.unknown {
            self.push(&UNKNOWN_DIRECTIVE, &script.file, START, bad.clone());
        }
        // Each statement's ignore comments, read once: (where its comments start, them).
        let mut statements = Vec::with_capacity(lint.statements.len());
        for &(leading, offset) in &lint.statements {
            let mut before = ignores(sql.get(leading..offset).unwrap_or_default().lines(), false);
            for bad in std::mem::take(&mut before.unknown) {
                self.push(&UNKNOWN_DIRECTIVE, &script.file, position(sql, offset), bad);
            }
            statements.push((leading, before));
        }
        for hit in hits {
            let ignored_here = statements
                .iter()
                .rev()
                .find(|(leading, _)| *leading <= hit.offset)
                .is_some_and(|(_, before)| before.covers(hit.rule.id));
            if ignored_here || file_ignores.covers(hit.rule.id) {
                continue;
            }
            self.push(
                hit.rule,
                &script.file,
                position(sql, hit.offset),
                hit.message,
            );
        }
    }
}

/// The rules that ignore comments let through.
#[derive(Default)]
struct Ignores {
    all: bool,
    rules: BTreeSet<String>,
    /// Messages for `-- palisade:ignore` comments that name no rule or an unknown one.
    unknown: Vec<String>,
}

impl Ignores {
    fn covers(&self, rule: &str) -> bool {
        self.all || self.rules.contains(rule)
    }
}

/// The ignore comments among `lines`: statement ones (`palisade:ignore`,
/// `squawk-ignore`), or with `file`, file ones (`palisade:ignore-file`,
/// `squawk-ignore-file`). squawk's comments may name rules this linter lacks, and
/// without a rule they ignore every rule, as squawk reads them; palisade's must name
/// rules it knows. The file scan also reports `-- palisade:` comments that are no
/// directive at all, past the file's leading comments (which the engine checks).
fn ignores<'a>(lines: impl Iterator<Item = &'a str>, file: bool) -> Ignores {
    let mut out = Ignores::default();
    let mut header = file;
    for line in lines {
        let line = line.trim();
        let Some(comment) = line.strip_prefix("--") else {
            header &= line.is_empty();
            continue;
        };
        let comment = comment.trim();
        let (ours, rest) = if let Some(rest) = comment.strip_prefix("palisade:") {
            (true, rest.trim_start())
        } else if let Some(rest) = comment.strip_prefix("squawk-") {
            (false, rest)
        } else {
            continue;
        };
        let (word, list) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let known = ["ignore", "ignore-file", source::NO_TRANSACTION];
        if file && ours && !header && !known.contains(&word) {
            out.unknown.push(format!(
                "unknown directive `-- palisade:{word}` (known: ignore, ignore-file, {})",
                source::NO_TRANSACTION
            ));
        }
        if word != if file { "ignore-file" } else { "ignore" } {
            continue;
        }
        let rules: Vec<&str> = list
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|r| !r.is_empty())
            .collect();
        if rules.is_empty() {
            if ours {
                out.unknown.push(format!(
                    "`-- palisade:{word}` names no rule: name the rules the reviewed statement \
                     may break"
                ));
            } else {
                out.all = true;
            }
        }
        for rule in rules {
            if ours && catalog::find(rule).is_none() {
                out.unknown.push(format!(
                    "`-- palisade:{word}` names an unknown rule `{rule}`"
                ));
            }
            out.rules.insert(rule.to_owned());
        }
    }
    out
}

/// The rule of a problem `MigrationSet` found with a file, and what to do about it.
fn problem_rule(kind: ProblemKind) -> (&'static Rule, &'static str) {
    match kind {
        ProblemKind::UnknownDirective => (&UNKNOWN_DIRECTIVE, "fix its spelling or remove it"),
        ProblemKind::DuplicateVersion => (&VERSION_ORDER, "give one of them the next free version"),
        ProblemKind::OrphanDown => (&FILE_NAME, "name it like its up file, or remove it"),
        ProblemKind::Name => (
            &FILE_NAME,
            "rename it to the pattern, or move it out of the directory",
        ),
    }
}

/// The offset of the first token at or after `from`: blanks and comments skipped.
fn first_token(sql: &str, from: usize) -> usize {
    let bytes = sql.as_bytes();
    let mut i = from;
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if bytes[i..].starts_with(b"--") {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
        } else if bytes[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < bytes.len() {
                if bytes[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if bytes[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else {
            return i.min(sql.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The findings of `rule` for the files, as `(file, line)`.
    fn found(dialect: Dialect, rule: &str, files: &[(&str, &str)]) -> Vec<(String, usize)> {
        let files = files
            .iter()
            .map(|(f, s)| ((*f).to_owned(), (*s).to_owned()));
        let set = MigrationSet::from_files(dialect, "test", files);
        lint(&set, &LintOptions::default())
            .into_iter()
            .filter(|f| f.rule == rule)
            .map(|f| (f.file, f.line))
            .collect()
    }

    fn at(file: &str, line: usize) -> (String, usize) {
        (file.to_owned(), line)
    }

    #[test]
    fn a_table_is_new_only_after_its_create_in_the_same_file() {
        let files = [
            ("0001_a.up.sql", "CREATE TABLE a (id int);"),
            ("0001_a.down.sql", "DROP TABLE a;"),
            (
                "0002_b.up.sql",
                "ALTER TABLE b ADD COLUMN x int NOT NULL;\n\
                 CREATE TABLE b (id int);\n\
                 ALTER TABLE b ADD COLUMN y int NOT NULL;\n\
                 ALTER TABLE a ADD COLUMN z int NOT NULL;\n\
                 ALTER TABLE never_created ADD COLUMN z int NOT NULL;",
            ),
            ("0002_b.down.sql", "DROP TABLE b;"),
        ];
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            assert_eq!(
                found(dialect, "adding-required-field", &files),
                [
                    at("0002_b.up.sql", 1),
                    at("0002_b.up.sql", 4),
                    at("0002_b.up.sql", 5)
                ]
            );
        }
    }

    #[test]
    fn indexes_of_earlier_migrations_cover_a_composite_foreign_key() {
        let files = [
            (
                "0001_a.up.sql",
                "CREATE TABLE a (x int, y int, PRIMARY KEY (x, y));\n\
                 CREATE TABLE b (x int, y int, z int, w int);\n\
                 CREATE INDEX b_yxz ON b (y, x, z);\n\
                 CREATE INDEX b_w ON b (w);",
            ),
            ("0001_a.down.sql", "DROP TABLE b; DROP TABLE a;"),
            (
                "0002_fk.up.sql",
                "-- palisade:no-transaction\n\
                 ALTER TABLE b ADD CONSTRAINT b_xy FOREIGN KEY (x, y) REFERENCES a (x, y) NOT VALID;\n\
                 ALTER TABLE b ADD CONSTRAINT b_zx FOREIGN KEY (z, x) REFERENCES a (x, y) NOT VALID;\n\
                 CREATE INDEX CONCURRENTLY b_zx ON b (z, x);\n\
                 ALTER TABLE b ADD CONSTRAINT b_w FOREIGN KEY (w) REFERENCES a (x) NOT VALID;\n\
                 DROP INDEX b_w;\n\
                 ALTER TABLE b ADD CONSTRAINT b_x FOREIGN KEY (x) REFERENCES a (x) NOT VALID;",
            ),
            ("0002_fk.down.sql", "SELECT 1;"),
        ];
        assert_eq!(
            found(Dialect::Postgres, "foreign-key-without-index", &files),
            [at("0002_fk.up.sql", 5), at("0002_fk.up.sql", 7)],
            "(x, y) and (z, x) are covered; (w) loses its index by the end of the file; \
             no index starts with (x)"
        );
    }

    #[test]
    fn a_type_change_is_flagged_when_the_old_type_is_unknown_or_it_narrows() {
        let files = [
            (
                "0001_a.up.sql",
                "CREATE TABLE a (s varchar(10), n numeric(5, 2));",
            ),
            ("0001_a.down.sql", "DROP TABLE a;"),
            (
                "0002_b.up.sql",
                "ALTER TABLE a ALTER COLUMN s TYPE varchar(20);\n\
                 ALTER TABLE a ALTER COLUMN s TYPE varchar(15);\n\
                 ALTER TABLE a ALTER COLUMN n TYPE numeric(7, 2);\n\
                 ALTER TABLE a ALTER COLUMN unknown TYPE text;\n\
                 ALTER TABLE a ALTER COLUMN n TYPE numeric(9, 2) USING round(n, 2);",
            ),
            ("0002_b.down.sql", "SELECT 1;"),
        ];
        assert_eq!(
            found(Dialect::Postgres, "changing-column-type", &files),
            [
                at("0002_b.up.sql", 2),
                at("0002_b.up.sql", 4),
                at("0002_b.up.sql", 5)
            ]
        );
    }

    #[test]
    fn down_files_are_checked_for_transactions_and_parsing_only() {
        let files = [
            ("0001_a.up.sql", "CREATE TABLE a (id int);"),
            (
                "0001_a.down.sql",
                "BEGIN;\nDROP TABLE a;\nALTER SEQUENCE s RESTART;\nALTER TABLE a ADD COLUMNN b int;\nCOMMIT;",
            ),
        ];
        let rules: Vec<_> = {
            let files = files
                .iter()
                .map(|(f, s)| ((*f).to_owned(), (*s).to_owned()));
            let set = MigrationSet::from_files(Dialect::Postgres, "test", files);
            lint(&set, &LintOptions::default())
                .into_iter()
                .map(|f| (f.rule, f.line))
                .collect()
        };
        assert_eq!(
            rules,
            [
                ("transaction-nesting", 1),
                ("syntax-error", 4),
                ("transaction-nesting", 5)
            ]
        );
    }

    #[test]
    fn a_virtual_tables_module_arguments_are_the_modules_own() {
        let fts =
            "CREATE VIRTUAL TABLE t_fts USING fts5 (a, content = 't', content_rowid = 'seq');";
        let files = [
            ("0001_a.up.sql", fts),
            ("0001_a.down.sql", "DROP TABLE t_fts;"),
        ];
        assert!(found(Dialect::Sqlite, "unparsable-statement", &files).is_empty());
        // Only the arguments are let off: a broken statement is still reported.
        let broken = [("0001_a.up.sql", "CREATE VIRTUAL TABLE USING fts5 (a);")];
        assert_eq!(
            found(Dialect::Sqlite, "unparsable-statement", &broken),
            [("0001_a.up.sql".to_owned(), 1)]
        );
    }

    #[test]
    fn postgres_only_rules_stay_quiet_on_sqlite() {
        let files = [
            ("0001_a.up.sql", "CREATE TABLE a (t timestamp, c char(2));"),
            ("0001_a.down.sql", "DROP TABLE a;"),
            ("0002_i.up.sql", "CREATE INDEX a_t ON a (t);"),
            ("0002_i.down.sql", "DROP INDEX a_t;"),
        ];
        let files = files
            .iter()
            .map(|(f, s)| ((*f).to_owned(), (*s).to_owned()));
        let set = MigrationSet::from_files(Dialect::Sqlite, "test", files);
        assert!(lint(&set, &LintOptions::default()).is_empty());
    }

    fn lint_files(dialect: Dialect, files: &[(&str, &str)]) -> Vec<Finding> {
        let files = files
            .iter()
            .map(|(f, s)| ((*f).to_owned(), (*s).to_owned()));
        lint(
            &MigrationSet::from_files(dialect, "test", files),
            &LintOptions::default(),
        )
    }

    #[test]
    fn ignore_comments_let_a_reviewed_statement_through() {
        let files = [
            (
                "0001_a.up.sql",
                "CREATE TABLE a (id bigint, b text, c text, d text);",
            ),
            ("0001_a.down.sql", "DROP TABLE a;"),
            (
                "0002_b.up.sql",
                "-- palisade:ignore ban-drop-column\n\
                 ALTER TABLE a DROP COLUMN b;\n\
                 -- squawk-ignore ban-drop-column, renaming-column\n\
                 ALTER TABLE a DROP COLUMN c;\n\
                 ALTER TABLE a DROP COLUMN d;",
            ),
            ("0002_b.down.sql", "SELECT 1;"),
        ];
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            assert_eq!(
                found(dialect, "ban-drop-column", &files),
                [at("0002_b.up.sql", 5)],
                "{dialect:?}: the comment covers only the statement under it"
            );
        }
    }

    #[test]
    fn a_file_ignore_covers_the_file_and_a_misspelt_ignore_is_an_error() {
        let files = [
            (
                "0001_a.up.sql",
                "CREATE TABLE a (id bigint, b text, c text);",
            ),
            ("0001_a.down.sql", "DROP TABLE a;"),
            (
                "0002_b.up.sql",
                "-- palisade:ignore-file ban-drop-column\n\
                 ALTER TABLE a DROP COLUMN b;\n\
                 -- palisade:ignore ban-drop-colum\n\
                 ALTER TABLE a DROP COLUMN c;",
            ),
            ("0002_b.down.sql", "SELECT 1;"),
            ("0003_c.up.sql", "-- palisade:ignore\nDROP TABLE a;"),
            ("0003_c.down.sql", "SELECT 1;"),
            (
                "0004_d.up.sql",
                "CREATE TABLE d (x bigint);\n-- palisade:ignroe ban-drop-table\n\
                 -- palisade: ignore ban-drop-column\nALTER TABLE b DROP COLUMN c;",
            ),
            ("0004_d.down.sql", "SELECT 1;"),
        ];
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            let findings = lint_files(dialect, &files);
            let rules: Vec<_> = findings
                .iter()
                .filter(|f| f.file != "0001_a.up.sql" && !f.rule.starts_with("require-"))
                .map(|f| (f.file.as_str(), f.line, f.rule))
                .collect();
            assert_eq!(
                rules,
                [
                    ("0002_b.up.sql", 4, "unknown-directive"),
                    ("0003_c.up.sql", 2, "ban-drop-table"),
                    ("0003_c.up.sql", 2, "unknown-directive"),
                    ("0004_d.up.sql", 1, "unknown-directive"),
                ],
                "{dialect:?}: {findings:#?}"
            );
        }
    }

    #[test]
    fn a_composite_types_attribute_change_is_flagged_unless_the_type_is_new() {
        let files = [
            ("0001_a.up.sql", "CREATE TYPE pair AS (a int, b int);"),
            ("0001_a.down.sql", "DROP TYPE pair;"),
            (
                "0002_b.up.sql",
                "ALTER TYPE pair ALTER ATTRIBUTE a TYPE bigint;\n\
                 CREATE TYPE triple AS (a int, b int, c int);\n\
                 ALTER TYPE triple ALTER ATTRIBUTE a TYPE bigint;",
            ),
            ("0002_b.down.sql", "SELECT 1;"),
        ];
        assert_eq!(
            found(Dialect::Postgres, "changing-column-type", &files),
            [at("0002_b.up.sql", 1)]
        );
    }

    #[test]
    fn a_pending_migrations_tables_are_new_to_the_next_one() {
        let files = [
            ("0001_a.up.sql", "CREATE TABLE a (id bigint);"),
            ("0001_a.down.sql", "DROP TABLE a;"),
            ("0002_b.up.sql", "CREATE INDEX a_id ON a (id);"),
            ("0002_b.down.sql", "DROP INDEX a_id;"),
        ];
        let files = files.map(|(f, s)| (f.to_owned(), s.to_owned()));
        let set = MigrationSet::from_files(Dialect::Postgres, "test", files);
        let index_findings = |applied: Option<&[u64]>| {
            let opts = LintOptions {
                applied: applied.map(|a| a.iter().copied().collect()),
                ..LintOptions::default()
            };
            lint(&set, &opts)
                .into_iter()
                .filter(|f| f.rule == "require-concurrent-index-creation")
                .count()
        };
        assert_eq!(index_findings(None), 1, "unknown: the table may be live");
        assert_eq!(
            index_findings(Some(&[1])),
            1,
            "0001 is applied: the table is live"
        );
        assert_eq!(
            index_findings(Some(&[])),
            0,
            "both pending: the table is empty"
        );
    }
}
