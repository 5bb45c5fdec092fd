//! Every rule the linter knows: its id (squawk's id where squawk has the same rule, so
//! that `-- squawk-ignore` comments and habits carry over), its default level, the
//! dialects it applies to and why it matters. The README's rules table is this list.

use crate::Dialect;

/// How a rule's findings count: `Off` rules are not checked, `Warning`s fail the run
/// only under `--deny-warnings`, `Error`s always do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Off,
    Warning,
    Error,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "off" => Some(Level::Off),
            "warning" | "warn" => Some(Level::Warning),
            "error" => Some(Level::Error),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Off => "off",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

/// A rule: a stable id, its default level, the dialects it applies to, a one-line why.
#[derive(Debug)]
pub struct Rule {
    pub id: &'static str,
    pub default: Level,
    pub dialects: &'static [Dialect],
    pub why: &'static str,
}

const BOTH: &[Dialect] = &[Dialect::Sqlite, Dialect::Postgres];
const POSTGRES: &[Dialect] = &[Dialect::Postgres];
const SQLITE: &[Dialect] = &[Dialect::Sqlite];

const fn rule(
    id: &'static str,
    default: Level,
    dialects: &'static [Dialect],
    why: &'static str,
) -> Rule {
    Rule {
        id,
        default,
        dialects,
        why,
    }
}

use Level::{Error, Off, Warning};

// Files and the engine's own rules.
pub const MISSING_DOWN: Rule = rule(
    "missing-down",
    Error,
    BOTH,
    "without a down file the migration can be neither rolled back nor verified",
);
pub const FILE_NAME: Rule = rule(
    "file-name",
    Error,
    BOTH,
    "a file off the naming pattern, or a down file without its up file, is never run",
);
pub const VERSION_ORDER: Rule = rule(
    "version-order",
    Error,
    BOTH,
    "migrations sharing a version, or older than one already applied, run in an order nobody tested",
);
pub const UNKNOWN_DIRECTIVE: Rule = rule(
    "unknown-directive",
    Error,
    BOTH,
    "a misspelt directive or ignored rule would silently not apply, so it is refused",
);
pub const TRANSACTION_NESTING: Rule = rule(
    "transaction-nesting",
    Error,
    BOTH,
    "the engine runs each migration in its own transaction; BEGIN or COMMIT in the file breaks its atomicity and its rollback",
);
pub const SYNTAX_ERROR: Rule = rule(
    "syntax-error",
    Error,
    POSTGRES,
    "PostgreSQL's own parser rejects the statement, so the migration fails",
);
pub const UNPARSABLE_STATEMENT: Rule = rule(
    "unparsable-statement",
    Warning,
    SQLITE,
    "a statement the parser cannot read is not checked by the other rules",
);

// Locks and rewrites of live tables.
pub const ADDING_REQUIRED_FIELD: Rule = rule(
    "adding-required-field",
    Error,
    BOTH,
    "rows already in the table have no value for it: the ALTER fails, or every row is rewritten under an exclusive lock",
);
pub const ADDING_FIELD_WITH_DEFAULT: Rule = rule(
    "adding-field-with-default",
    Error,
    POSTGRES,
    "a volatile default or a stored generated column computes every row anew: the table is rewritten under an exclusive lock",
);
pub const ADDING_NOT_NULLABLE_FIELD: Rule = rule(
    "adding-not-nullable-field",
    Error,
    POSTGRES,
    "SET NOT NULL scans the whole table under an exclusive lock, unless a validated CHECK (col IS NOT NULL) already proves it",
);
pub const ADDING_SERIAL_PRIMARY_KEY_FIELD: Rule = rule(
    "adding-serial-primary-key-field",
    Error,
    POSTGRES,
    "adding a primary key builds its index under an exclusive lock that blocks reads and writes",
);
pub const ADDING_FOREIGN_KEY_CONSTRAINT: Rule = rule(
    "adding-foreign-key-constraint",
    Warning,
    POSTGRES,
    "a validated foreign key scans the table while it locks writes on both tables",
);
pub const CONSTRAINT_MISSING_NOT_VALID: Rule = rule(
    "constraint-missing-not-valid",
    Warning,
    POSTGRES,
    "a validated CHECK scans the whole table under a lock that blocks writes; VALIDATE in the same transaction as the NOT VALID add still runs under the add's lock",
);
pub const DISALLOWED_UNIQUE_CONSTRAINT: Rule = rule(
    "disallowed-unique-constraint",
    Error,
    POSTGRES,
    "adding a UNIQUE constraint builds its index under a lock that blocks writes",
);
pub const REQUIRE_CONCURRENT_INDEX_CREATION: Rule = rule(
    "require-concurrent-index-creation",
    Error,
    POSTGRES,
    "CREATE INDEX without CONCURRENTLY blocks writes to the table until the index is built",
);
pub const REQUIRE_CONCURRENT_INDEX_DELETION: Rule = rule(
    "require-concurrent-index-deletion",
    Error,
    POSTGRES,
    "DROP INDEX without CONCURRENTLY takes an exclusive lock on the table, blocking reads and writes",
);
pub const BAN_CONCURRENT_INDEX_CREATION_IN_TRANSACTION: Rule = rule(
    "ban-concurrent-index-creation-in-transaction",
    Error,
    POSTGRES,
    "PostgreSQL refuses CONCURRENTLY operations (and VACUUM) inside a transaction, so the migration fails",
);
pub const REQUIRE_CONCURRENT_REINDEX: Rule = rule(
    "require-concurrent-reindex",
    Error,
    POSTGRES,
    "REINDEX without CONCURRENTLY blocks writes, and reads that would use the index, until it ends",
);
pub const REQUIRE_CONCURRENT_PARTITION_DETACH: Rule = rule(
    "require-concurrent-partition-detach",
    Error,
    POSTGRES,
    "DETACH PARTITION without CONCURRENTLY locks the parent table exclusively",
);
pub const PREFER_REPACK: Rule = rule(
    "prefer-repack",
    Error,
    POSTGRES,
    "CLUSTER and VACUUM FULL rewrite the table under an exclusive lock; pg_repack does it online",
);
pub const CHANGING_COLUMN_TYPE: Rule = rule(
    "changing-column-type",
    Error,
    POSTGRES,
    "most type changes rewrite the table and its indexes under an exclusive lock that blocks reads and writes",
);
pub const BAN_ALTER_DOMAIN_WITH_ADD_CONSTRAINT: Rule = rule(
    "ban-alter-domain-with-add-constraint",
    Error,
    POSTGRES,
    "a validated domain constraint checks every column of the domain in every table, under lock",
);
pub const BAN_CREATE_DOMAIN_WITH_CONSTRAINT: Rule = rule(
    "ban-create-domain-with-constraint",
    Warning,
    POSTGRES,
    "a domain's constraint cannot be changed later without checking every table that uses it",
);
// Opt-in: palisade's engine gives transactional PostgreSQL migrations a lock_timeout
// (`conn::LOCK_TIMEOUT`), and teams often set timeouts where no linter sees them (the
// role, the connection); on by default, these would flag every migration touching a
// live table. They are for files another tool runs, or a policy of per-file timeouts.
pub const REQUIRE_LOCK_TIMEOUT: Rule = rule(
    "require-lock-timeout",
    Off,
    POSTGRES,
    "a lock waiting behind a long query queues every later query behind it; lock_timeout bounds the wait",
);
pub const REQUIRE_STATEMENT_TIMEOUT: Rule = rule(
    "require-statement-timeout",
    Off,
    POSTGRES,
    "a statement holding a lock for long blocks the application; statement_timeout bounds it",
);

// Breaking code still running against the old schema.
pub const BAN_DROP_COLUMN: Rule = rule(
    "ban-drop-column",
    Warning,
    BOTH,
    "code still running against the old schema fails when it reads or writes the column",
);
pub const BAN_DROP_TABLE: Rule = rule(
    "ban-drop-table",
    Warning,
    BOTH,
    "code still running against the old schema fails, and the data is gone",
);
pub const BAN_DROP_DATABASE: Rule = rule(
    "ban-drop-database",
    Error,
    BOTH,
    "a migration must not destroy a whole database",
);
pub const BAN_DROP_NOT_NULL: Rule = rule(
    "ban-drop-not-null",
    Warning,
    POSTGRES,
    "code still running may rely on the column never being NULL",
);
pub const BAN_DROP_VIEW: Rule = rule(
    "ban-drop-view",
    Warning,
    POSTGRES,
    "code still querying the view fails",
);
pub const BAN_DROP_FUNCTION: Rule = rule(
    "ban-drop-function",
    Warning,
    POSTGRES,
    "code, triggers and defaults still calling the function fail",
);
pub const BAN_DROP_TYPE: Rule = rule(
    "ban-drop-type",
    Warning,
    POSTGRES,
    "code still using the type fails",
);
pub const BAN_DROP_SCHEMA: Rule = rule(
    "ban-drop-schema",
    Warning,
    POSTGRES,
    "everything in the schema is gone for code still using it",
);
pub const BAN_DROP_SEQUENCE: Rule = rule(
    "ban-drop-sequence",
    Warning,
    POSTGRES,
    "defaults and code still calling nextval on it fail",
);
pub const BAN_DROP_DOMAIN: Rule = rule(
    "ban-drop-domain",
    Warning,
    POSTGRES,
    "code still casting to the domain fails",
);
pub const BAN_DROP_CONSTRAINT: Rule = rule(
    "ban-drop-constraint",
    Warning,
    POSTGRES,
    "data the constraint kept out can now come in, and code relying on it breaks",
);
pub const BAN_DROP_EXTENSION: Rule = rule(
    "ban-drop-extension",
    Warning,
    POSTGRES,
    "the extension's functions and types are gone for code still using them",
);
pub const BAN_DROP_DEFAULT: Rule = rule(
    "ban-drop-default",
    Warning,
    POSTGRES,
    "inserts from code that relied on the default now store NULL or fail",
);
pub const BAN_TRUNCATE_CASCADE: Rule = rule(
    "ban-truncate-cascade",
    Error,
    POSTGRES,
    "CASCADE empties every table that references this one, however far the chain goes",
);
pub const RENAMING_COLUMN: Rule = rule(
    "renaming-column",
    Error,
    BOTH,
    "code still running against the old schema uses the old name and fails",
);
pub const RENAMING_TABLE: Rule = rule(
    "renaming-table",
    Error,
    BOTH,
    "code still running against the old schema uses the old name and fails",
);
pub const RENAMING_OBJECT: Rule = rule(
    "renaming-object",
    Warning,
    POSTGRES,
    "code still using the old name of the view, type, function, sequence or value fails",
);
pub const BAN_SET_SCHEMA: Rule = rule(
    "ban-set-schema",
    Warning,
    POSTGRES,
    "code still naming the object by its old schema fails",
);
pub const BAN_ALTER_IDENTITY: Rule = rule(
    "ban-alter-identity",
    Off,
    POSTGRES,
    "changing an identity can make inserts with explicit or omitted values fail",
);
pub const BAN_DUPLICATE_COLUMN_ASSIGNMENTS: Rule = rule(
    "ban-duplicate-column-assignments",
    Error,
    POSTGRES,
    "a column declared or assigned twice is an error when the migration runs",
);
pub const REQUIRE_ENUM_VALUE_ORDERING: Rule = rule(
    "require-enum-value-ordering",
    Warning,
    POSTGRES,
    "a value appended at the end changes what comparisons of the enum mean; say BEFORE or AFTER",
);
pub const IDENTIFIER_TOO_LONG: Rule = rule(
    "identifier-too-long",
    Error,
    POSTGRES,
    "PostgreSQL silently cuts names at 63 bytes, so two long names can collide and code using the full name fails",
);

// Schema choices.
pub const FOREIGN_KEY_WITHOUT_INDEX: Rule = rule(
    "foreign-key-without-index",
    Warning,
    BOTH,
    "each delete or key update in the referenced table scans the referencing table, and joins on the key are slow",
);
pub const PREFER_TIMESTAMPTZ: Rule = rule(
    "prefer-timestamptz",
    Warning,
    POSTGRES,
    "timestamp without time zone stores wall-clock time without its zone, so values shift or compare wrongly across time zones",
);
pub const BAN_CHAR_FIELD: Rule = rule(
    "ban-char-field",
    Warning,
    POSTGRES,
    "char(n) pads values with spaces and is no faster than text or varchar",
);
pub const PREFER_BIGINT_OVER_INT: Rule = rule(
    "prefer-bigint-over-int",
    Warning,
    POSTGRES,
    "an integer key runs out at 2^31, and widening it later rewrites the table and every table that references it",
);
pub const PREFER_BIGINT_OVER_SMALLINT: Rule = rule(
    "prefer-bigint-over-smallint",
    Warning,
    POSTGRES,
    "a smallint key runs out at 32,767, and widening it later rewrites the table and every table that references it",
);
pub const PREFER_IDENTITY: Rule = rule(
    "prefer-identity",
    Warning,
    POSTGRES,
    "serial makes a sequence the table does not own by the standard, with surprising permissions and copy behaviour; identity columns are the standard form",
);
pub const PREFER_TEXT_FIELD: Rule = rule(
    "prefer-text-field",
    Off,
    POSTGRES,
    "varchar(n) is no faster than text, and narrowing its limit later rewrites the table",
);
pub const PREFER_ROBUST_STMTS: Rule = rule(
    "prefer-robust-stmts",
    Off,
    POSTGRES,
    "a no-transaction migration that stops half-way must be re-runnable: IF [NOT] EXISTS makes each statement safe to repeat",
);

pub const RULES: &[Rule] = &[
    MISSING_DOWN,
    FILE_NAME,
    VERSION_ORDER,
    UNKNOWN_DIRECTIVE,
    TRANSACTION_NESTING,
    SYNTAX_ERROR,
    UNPARSABLE_STATEMENT,
    ADDING_REQUIRED_FIELD,
    ADDING_FIELD_WITH_DEFAULT,
    ADDING_NOT_NULLABLE_FIELD,
    ADDING_SERIAL_PRIMARY_KEY_FIELD,
    ADDING_FOREIGN_KEY_CONSTRAINT,
    CONSTRAINT_MISSING_NOT_VALID,
    DISALLOWED_UNIQUE_CONSTRAINT,
    REQUIRE_CONCURRENT_INDEX_CREATION,
    REQUIRE_CONCURRENT_INDEX_DELETION,
    BAN_CONCURRENT_INDEX_CREATION_IN_TRANSACTION,
    REQUIRE_CONCURRENT_REINDEX,
    REQUIRE_CONCURRENT_PARTITION_DETACH,
    PREFER_REPACK,
    CHANGING_COLUMN_TYPE,
    BAN_ALTER_DOMAIN_WITH_ADD_CONSTRAINT,
    BAN_CREATE_DOMAIN_WITH_CONSTRAINT,
    REQUIRE_LOCK_TIMEOUT,
    REQUIRE_STATEMENT_TIMEOUT,
    BAN_DROP_COLUMN,
    BAN_DROP_TABLE,
    BAN_DROP_DATABASE,
    BAN_DROP_NOT_NULL,
    BAN_DROP_VIEW,
    BAN_DROP_FUNCTION,
    BAN_DROP_TYPE,
    BAN_DROP_SCHEMA,
    BAN_DROP_SEQUENCE,
    BAN_DROP_DOMAIN,
    BAN_DROP_CONSTRAINT,
    BAN_DROP_EXTENSION,
    BAN_DROP_DEFAULT,
    BAN_TRUNCATE_CASCADE,
    RENAMING_COLUMN,
    RENAMING_TABLE,
    RENAMING_OBJECT,
    BAN_SET_SCHEMA,
    BAN_ALTER_IDENTITY,
    BAN_DUPLICATE_COLUMN_ASSIGNMENTS,
    REQUIRE_ENUM_VALUE_ORDERING,
    IDENTIFIER_TOO_LONG,
    FOREIGN_KEY_WITHOUT_INDEX,
    PREFER_TIMESTAMPTZ,
    BAN_CHAR_FIELD,
    PREFER_BIGINT_OVER_INT,
    PREFER_BIGINT_OVER_SMALLINT,
    PREFER_IDENTITY,
    PREFER_TEXT_FIELD,
    PREFER_ROBUST_STMTS,
];

/// The rule with this id.
pub fn find(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

/// The README's rules table, in Markdown.
pub fn markdown_table() -> String {
    let mut out = String::from("| rule | default | dialects | why |\n|---|---|---|---|\n");
    for r in RULES {
        let dialects = r
            .dialects
            .iter()
            .map(|d| d.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        out.push_str(&format!(
            "| `{}` | {} | {dialects} | {} |\n",
            r.id,
            r.default.as_str(),
            r.why
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_kebab_case() {
        let mut seen = std::collections::BTreeSet::new();
        for r in RULES {
            assert!(seen.insert(r.id), "{} twice", r.id);
            assert!(
                r.id.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{}",
                r.id
            );
        }
    }
}
