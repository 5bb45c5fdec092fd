//! The migration linter: rules that catch migrations that lock, rewrite or break a live
//! database, or that the engine would refuse or run wrongly.
//!
//! Each statement is parsed with sqlparser; the up files, in version order, build a
//! schema model ([`model`]) so that a rule knows whether a table is new (created earlier
//! in the same file, hence empty) and what a column's type was. Rule ids are squawk's
//! where squawk has the same rule.

mod model;
mod rules;

use std::collections::BTreeSet;

use sqlparser::parser::{Parser, ParserError};

use crate::Dialect;
use crate::source::{MigrationSet, ProblemKind, Script};
use crate::split::Statement;
use model::Schema;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// A rule: a stable id (squawk's id where squawk has the same rule), its severity, a
/// one-line why, the dialects it applies to.
pub struct Rule {
    pub id: &'static str,
    pub severity: Severity,
    pub why: &'static str,
    pub dialects: &'static [Dialect],
}

const BOTH: &[Dialect] = &[Dialect::Sqlite, Dialect::Postgres];
const POSTGRES: &[Dialect] = &[Dialect::Postgres];

const ADDING_REQUIRED_FIELD: Rule = Rule {
    id: "adding-required-field",
    severity: Severity::Error,
    why: "rows already in the table have no value for it: the ALTER fails, or every row is \
          rewritten under an exclusive lock",
    dialects: BOTH,
};
const REQUIRE_CONCURRENT_INDEX_CREATION: Rule = Rule {
    id: "require-concurrent-index-creation",
    severity: Severity::Error,
    why: "CREATE INDEX without CONCURRENTLY blocks writes to the table until the index is built",
    dialects: POSTGRES,
};
const BAN_CONCURRENT_INDEX_CREATION_IN_TRANSACTION: Rule = Rule {
    id: "ban-concurrent-index-creation-in-transaction",
    severity: Severity::Error,
    why: "PostgreSQL refuses CREATE/DROP INDEX CONCURRENTLY inside a transaction, so the \
          migration fails",
    dialects: POSTGRES,
};
const CHANGING_COLUMN_TYPE: Rule = Rule {
    id: "changing-column-type",
    severity: Severity::Error,
    why: "most type changes rewrite the table and its indexes under an exclusive lock that \
          blocks reads and writes",
    dialects: POSTGRES,
};
const BAN_DROP_COLUMN: Rule = Rule {
    id: "ban-drop-column",
    severity: Severity::Warning,
    why: "code still running against the old schema fails when it reads or writes the column",
    dialects: BOTH,
};
const BAN_DROP_TABLE: Rule = Rule {
    id: "ban-drop-table",
    severity: Severity::Warning,
    why: "code still running against the old schema fails, and the data is gone",
    dialects: BOTH,
};
const RENAMING_COLUMN: Rule = Rule {
    id: "renaming-column",
    severity: Severity::Error,
    why: "code still running against the old schema uses the old name and fails",
    dialects: BOTH,
};
const RENAMING_TABLE: Rule = Rule {
    id: "renaming-table",
    severity: Severity::Error,
    why: "code still running against the old schema uses the old name and fails",
    dialects: BOTH,
};
const FOREIGN_KEY_WITHOUT_INDEX: Rule = Rule {
    id: "foreign-key-without-index",
    severity: Severity::Warning,
    why: "each delete or key update in the referenced table scans the referencing table, \
          and joins on the key are slow",
    dialects: BOTH,
};
const MISSING_DOWN: Rule = Rule {
    id: "missing-down",
    severity: Severity::Error,
    why: "without a down file the migration can be neither rolled back nor verified",
    dialects: BOTH,
};
const FILE_NAME: Rule = Rule {
    id: "file-name",
    severity: Severity::Error,
    why: "a file off the naming pattern, or a down file without its up file, is never run",
    dialects: BOTH,
};
const VERSION_ORDER: Rule = Rule {
    id: "version-order",
    severity: Severity::Error,
    why: "migrations sharing a version, or older than one already applied, run in an order \
          nobody tested",
    dialects: BOTH,
};
const UNKNOWN_DIRECTIVE: Rule = Rule {
    id: "unknown-directive",
    severity: Severity::Error,
    why: "a misspelt directive would silently not apply, so the engine refuses the file",
    dialects: BOTH,
};
const TRANSACTION_NESTING: Rule = Rule {
    id: "transaction-nesting",
    severity: Severity::Error,
    why: "the engine runs each migration in its own transaction; BEGIN or COMMIT in the file \
          breaks its atomicity and its rollback",
    dialects: BOTH,
};
const BAN_DROP_DATABASE: Rule = Rule {
    id: "ban-drop-database",
    severity: Severity::Error,
    why: "a migration must not destroy a whole database",
    dialects: BOTH,
};
const PREFER_TIMESTAMPTZ: Rule = Rule {
    id: "prefer-timestamptz",
    severity: Severity::Warning,
    why: "timestamp without time zone stores wall-clock time without its zone, so values \
          shift or compare wrongly across time zones",
    dialects: POSTGRES,
};
const BAN_CHAR_FIELD: Rule = Rule {
    id: "ban-char-field",
    severity: Severity::Warning,
    why: "char(n) pads values with spaces and is no faster than text or varchar",
    dialects: POSTGRES,
};
const CONSTRAINT_MISSING_NOT_VALID: Rule = Rule {
    id: "constraint-missing-not-valid",
    severity: Severity::Warning,
    why: "adding a validated constraint scans the whole table under a lock that blocks writes",
    dialects: POSTGRES,
};
const DISALLOWED_UNIQUE_CONSTRAINT: Rule = Rule {
    id: "disallowed-unique-constraint",
    severity: Severity::Error,
    why: "adding a UNIQUE constraint builds its index under a lock that blocks writes",
    dialects: POSTGRES,
};
const UNPARSABLE_STATEMENT: Rule = Rule {
    id: "unparsable-statement",
    severity: Severity::Warning,
    why: "a statement the parser cannot read is not checked by the other rules",
    dialects: BOTH,
};

pub const RULES: &[Rule] = &[
    ADDING_REQUIRED_FIELD,
    REQUIRE_CONCURRENT_INDEX_CREATION,
    BAN_CONCURRENT_INDEX_CREATION_IN_TRANSACTION,
    CHANGING_COLUMN_TYPE,
    BAN_DROP_COLUMN,
    BAN_DROP_TABLE,
    RENAMING_COLUMN,
    RENAMING_TABLE,
    FOREIGN_KEY_WITHOUT_INDEX,
    MISSING_DOWN,
    FILE_NAME,
    VERSION_ORDER,
    UNKNOWN_DIRECTIVE,
    TRANSACTION_NESTING,
    BAN_DROP_DATABASE,
    PREFER_TIMESTAMPTZ,
    BAN_CHAR_FIELD,
    CONSTRAINT_MISSING_NOT_VALID,
    DISALLOWED_UNIQUE_CONSTRAINT,
    UNPARSABLE_STATEMENT,
];

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
}

/// Where file-level findings are reported.
const START: (usize, usize) = (1, 1);

/// Every finding for the set, sorted by file then line then column.
pub fn lint(set: &MigrationSet, opts: &LintOptions) -> Vec<Finding> {
    let mut out = Findings {
        dialect: set.dialect,
        list: Vec::new(),
    };
    for p in &set.problems {
        let (rule, advice) = problem_rule(p.kind);
        out.push(rule, &p.file, START, format!("{}: {advice}", p.problem));
    }
    let mut schema = Schema::default();
    for m in &set.migrations {
        if m.down.is_none() {
            let message = format!(
                "migration {} has no down file: add {}.down.sql that undoes it",
                m.id(),
                m.id()
            );
            out.push(&MISSING_DOWN, &m.up.file, START, message);
        }
        if let Some(applied) = &opts.applied
            && let Some(&highest) = applied.last()
            && m.version < highest
            && !applied.contains(&m.version)
        {
            let message = format!(
                "migration {} is not applied but version {highest} is, so it would run after \
                 later migrations: give it a version above {highest}",
                m.id()
            );
            out.push(&VERSION_ORDER, &m.up.file, START, message);
        }
        lint_up(&m.up, &mut schema, &mut out);
        if let Some(down) = &m.down {
            parse_file(down, &mut out);
        }
    }
    let mut list = out.list;
    list.sort_by(|a, b| {
        (&a.file, a.line, a.column, a.rule).cmp(&(&b.file, b.line, b.column, b.rule))
    });
    list
}

/// The findings so far, keeping only those of rules for the set's dialect.
struct Findings {
    dialect: Dialect,
    list: Vec<Finding>,
}

impl Findings {
    fn push(
        &mut self,
        rule: &'static Rule,
        file: &str,
        (line, column): (usize, usize),
        message: String,
    ) {
        if rule.dialects.contains(&self.dialect) {
            self.list.push(Finding {
                rule: rule.id,
                severity: rule.severity,
                file: file.to_owned(),
                line,
                column,
                message,
                why: rule.why,
            });
        }
    }
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

/// Checks an up file statement by statement against the schema so far, which it then
/// updates; foreign keys are checked at the end of the file, as their index may follow.
fn lint_up(script: &Script, schema: &mut Schema, out: &mut Findings) {
    schema.start_file();
    let mut foreign_keys = Vec::new();
    for (stmt, parsed) in parse_file(script, out) {
        let at = (stmt.line, stmt.column);
        let mut hits = Vec::from_iter(rules::check_words(&stmt, script.no_transaction));
        for ast in &parsed {
            hits.extend(rules::check(ast, schema, script.no_transaction));
            foreign_keys.extend(rules::foreign_keys(ast).into_iter().map(|fk| (at, fk)));
            schema.apply(ast);
        }
        for hit in hits {
            out.push(hit.rule, &script.file, at, hit.message);
        }
    }
    for (at, fk) in foreign_keys {
        // A table dropped later in the file has no index to want.
        if schema.has_table(&fk.table) && !schema.covers(&fk.table, &fk.columns) {
            let key = format!("{} ({})", fk.table, fk.columns.join(", "));
            let message = format!(
                "foreign key `{key}` → `{}` has no index starting with its columns: add an \
                 index on `{key}`",
                fk.references
            );
            out.push(&FOREIGN_KEY_WITHOUT_INDEX, &script.file, at, message);
        }
    }
}

/// The statements of a file with what sqlparser made of them, after reporting those that
/// control transactions (left out) and those it cannot parse (kept, with nothing parsed,
/// for the rules that read words).
fn parse_file(
    script: &Script,
    out: &mut Findings,
) -> Vec<(Statement, Vec<sqlparser::ast::Statement>)> {
    let mut parsed = Vec::new();
    for stmt in script.statements(out.dialect) {
        let at = (stmt.line, stmt.column);
        if stmt.is_transaction_control() {
            let message = format!(
                "`{}` in a migration: remove it; the engine runs each migration in its own \
                 transaction (or none, with `-- palisade:no-transaction`)",
                stmt.summary()
            );
            out.push(&TRANSACTION_NESTING, &script.file, at, message);
            continue;
        }
        let ast = match parse(&stmt.sql, out.dialect).or_else(|e| {
            virtual_table_without_arguments(&stmt, out.dialect)
                .map_or(Err(e), |sql| parse(&sql, out.dialect))
        }) {
            Ok(ast) => ast,
            Err(e) => {
                out.push(&UNPARSABLE_STATEMENT, &script.file, at, e.to_string());
                Vec::new()
            }
        };
        parsed.push((stmt, ast));
    }
    parsed
}

/// A SQLite `CREATE VIRTUAL TABLE … USING module (…)` without its arguments. They are
/// the module's own syntax (FTS5's `content = 'table'`), which sqlparser reads only as
/// a list of names; the rules need the table, not the arguments.
fn virtual_table_without_arguments(stmt: &Statement, dialect: Dialect) -> Option<String> {
    let mut words = stmt.words();
    let creates_virtual = dialect == Dialect::Sqlite
        && words.next().as_deref() == Some("CREATE")
        && words.next().as_deref() == Some("VIRTUAL");
    if !creates_virtual {
        return None;
    }
    let open = stmt.sql.find('(')?;
    Some(stmt.sql[..open].to_owned())
}

fn parse(sql: &str, dialect: Dialect) -> Result<Vec<sqlparser::ast::Statement>, ParserError> {
    match dialect {
        Dialect::Sqlite => Parser::parse_sql(&sqlparser::dialect::SQLiteDialect {}, sql),
        Dialect::Postgres => Parser::parse_sql(&sqlparser::dialect::PostgreSqlDialect {}, sql),
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
                "BEGIN;\nDROP TABLE a;\nALTER SEQUENCE s RESTART;\nCOMMIT;",
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
                ("unparsable-statement", 3),
                ("transaction-nesting", 4)
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
}
