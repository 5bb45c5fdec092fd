//! The splitter, PostgreSQL's parser and every rule take arbitrary input without a
//! panic: a migration file is user input, and a linter that crashes checks nothing.

use palisade_migrate::Dialect;
use palisade_migrate::lint::{LintOptions, lint};
use palisade_migrate::source::MigrationSet;
use palisade_migrate::split::split;
use proptest::prelude::*;

/// SQL-ish text: keywords, names, quotes, dollar quotes, comments and punctuation in
/// any order, so that inputs reach deep into the grammar instead of failing at once.
fn sqlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("CREATE TABLE ".to_owned()),
        Just("ALTER TABLE ".to_owned()),
        Just("ADD COLUMN ".to_owned()),
        Just("DROP ".to_owned()),
        Just("INDEX CONCURRENTLY ".to_owned()),
        Just("NOT NULL ".to_owned()),
        Just("DEFAULT ".to_owned()),
        Just("REFERENCES ".to_owned()),
        Just("CHECK (".to_owned()),
        Just("NOT VALID ".to_owned()),
        Just("VALIDATE CONSTRAINT ".to_owned()),
        Just("SET ".to_owned()),
        Just("TYPE ".to_owned()),
        Just("RENAME TO ".to_owned()),
        Just("BEGIN; ".to_owned()),
        Just("COMMIT; ".to_owned()),
        Just("$$ ".to_owned()),
        Just("$t$ ".to_owned()),
        Just("'".to_owned()),
        Just("\"".to_owned()),
        Just("-- palisade:ignore ban-drop-column\n".to_owned()),
        Just("-- squawk-ignore\n".to_owned()),
        Just("/* ".to_owned()),
        Just("*/ ".to_owned()),
        Just("; ".to_owned()),
        Just("( ".to_owned()),
        Just(") ".to_owned()),
        Just(", ".to_owned()),
        "[a-z_]{1,70} ",
        "[0-9]{1,4} ",
        "\\PC{0,6}",
    ];
    prop::collection::vec(token, 0..40).prop_map(|t| t.concat())
}

fn lint_both(sql: &str) {
    for dialect in [Dialect::Sqlite, Dialect::Postgres] {
        let _ = split(sql, dialect);
        let files = [
            (
                "0001_a.up.sql".to_owned(),
                "CREATE TABLE a (id bigint, b text);".to_owned(),
            ),
            ("0002_b.up.sql".to_owned(), sql.to_owned()),
            ("0002_b.down.sql".to_owned(), sql.to_owned()),
        ];
        let set = MigrationSet::from_files(dialect, "proptest", files);
        let mut opts = LintOptions::default();
        for rule in palisade_migrate::lint::RULES {
            opts.set_level(rule.id, "warning").expect("a known rule");
        }
        let _ = lint(&set, &opts);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn sqlish_input_never_panics(sql in sqlish()) {
        lint_both(&sql);
    }

    #[test]
    fn arbitrary_text_never_panics(sql in "\\PC{0,300}") {
        lint_both(&sql);
    }

    #[test]
    fn arbitrary_bytes_as_text_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        lint_both(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    // PostgreSQL bounds its parser's recursion ("stack depth limit exceeded").
    let deep = format!("SELECT {}1{};", "(".repeat(100_000), ")".repeat(100_000));
    lint_both(&deep);
    let open = format!("SELECT {}", "(".repeat(100_000));
    lint_both(&open);
}
