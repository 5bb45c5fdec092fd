//! Splits a migration file into statements, each with the line and column where it
//! starts, so a failure can name the statement and its place in the file.
//!
//! The splitter knows what can hide a `;`: string literals (`'…'`, `E'…'` with
//! backslash escapes), quoted identifiers (`"…"`, and SQLite's `` `…` `` and `[…]`),
//! comments (`--`, nested `/* */`), PostgreSQL dollar quotes (`$$…$$`, `$tag$…$tag$`)
//! and the `BEGIN … END` body of a SQLite `CREATE TRIGGER`.

use crate::Dialect;

/// One statement of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    /// The statement's text, from its first token to the character before its `;`.
    pub sql: String,
    /// 1-based line and column of its first token.
    pub line: usize,
    pub column: usize,
    /// Byte offset of its first token in the file.
    pub offset: usize,
}

impl Statement {
    /// The first word, upper-cased (`CREATE`, `BEGIN`, …).
    pub fn keyword(&self) -> String {
        self.words().next().unwrap_or_default()
    }

    /// The statement's words outside literals and comments, upper-cased, in order.
    pub fn words(&self) -> impl Iterator<Item = String> + '_ {
        words(&self.sql)
    }

    /// Whether it starts, ends or marks a transaction: the engine owns transactions,
    /// so a file may not.
    pub fn is_transaction_control(&self) -> bool {
        let mut w = self.words();
        match w.next().as_deref() {
            Some("BEGIN" | "COMMIT" | "ROLLBACK" | "SAVEPOINT" | "RELEASE") => true,
            Some("START") => w.next().as_deref() == Some("TRANSACTION"),
            // `END` alone (PostgreSQL's COMMIT); `END` inside a trigger is not a statement.
            Some("END") => true,
            _ => false,
        }
    }

    /// The first line of the statement, for messages.
    pub fn summary(&self) -> String {
        let first = self.sql.lines().next().unwrap_or_default().trim();
        if first.len() < self.sql.trim().len() {
            format!("{first} …")
        } else {
            first.to_owned()
        }
    }
}

/// The statements of `sql`, in order; empty statements (only blanks and comments) are
/// left out.
pub fn split(sql: &str, dialect: Dialect) -> Vec<Statement> {
    let mut out = Vec::new();
    let mut scanner = Scanner::new(sql, dialect);
    let mut start: Option<usize> = None;
    // Inside a SQLite trigger body, `;` ends inner statements, not the trigger.
    let mut trigger = TriggerBody::default();
    while let Some((i, token)) = scanner.next_token() {
        match token {
            Token::Semicolon if trigger.depth == 0 => {
                if let Some(s) = start.take() {
                    out.push(statement(sql, s, i));
                }
                trigger = TriggerBody::default();
            }
            Token::Semicolon | Token::Other => {
                start.get_or_insert(i);
            }
            Token::Word(w) => {
                let s = *start.get_or_insert(i);
                trigger.see(&w, s == i, dialect);
            }
        }
    }
    if let Some(s) = start {
        out.push(statement(sql, s, sql.len()));
    }
    out
}

/// 1-based line and column (in characters) of a byte offset of `sql`.
pub fn position(sql: &str, offset: usize) -> (usize, usize) {
    let before = sql.get(..offset.min(sql.len())).unwrap_or(sql);
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.chars().count(), |nl| {
        before[nl + 1..].chars().count()
    }) + 1;
    (line, column)
}

/// The words of `sql` outside literals and comments, upper-cased.
pub fn words(sql: &str) -> impl Iterator<Item = String> + '_ {
    let mut scanner = Scanner::new(sql, Dialect::Postgres);
    std::iter::from_fn(move || {
        loop {
            match scanner.next_token()? {
                (_, Token::Word(w)) => return Some(w),
                _ => continue,
            }
        }
    })
}

fn statement(sql: &str, start: usize, end: usize) -> Statement {
    let (line, column) = position(sql, start);
    Statement {
        sql: sql[start..end].trim_end().to_owned(),
        line,
        column,
        offset: start,
    }
}

/// Tracks `CREATE TRIGGER … BEGIN … END` (SQLite): `BEGIN`/`CASE` open a level,
/// `END` closes one.
#[derive(Default)]
struct TriggerBody {
    words_seen: usize,
    is_trigger: bool,
    depth: usize,
}

impl TriggerBody {
    fn see(&mut self, word: &str, first: bool, dialect: Dialect) {
        if first {
            *self = TriggerBody::default();
        }
        self.words_seen += 1;
        if dialect == Dialect::Sqlite && self.words_seen <= 4 && word == "TRIGGER" {
            // CREATE [TEMP|TEMPORARY] TRIGGER [IF NOT EXISTS] …
            self.is_trigger = true;
        }
        if !self.is_trigger {
            return;
        }
        match word {
            "BEGIN" | "CASE" => self.depth += 1,
            "END" => self.depth = self.depth.saturating_sub(1),
            _ => {}
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Token {
    Semicolon,
    /// A keyword or bare identifier, upper-cased.
    Word(String),
    /// Anything else that is not blank or a comment (a literal, an operator, …).
    Other,
}

struct Scanner<'a> {
    src: &'a str,
    pos: usize,
    dialect: Dialect,
}

impl<'a> Scanner<'a> {
    fn new(src: &'a str, dialect: Dialect) -> Self {
        Scanner {
            src,
            pos: 0,
            dialect,
        }
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    /// The next token and its byte offset, skipping blanks and comments.
    fn next_token(&mut self) -> Option<(usize, Token)> {
        loop {
            let rest = self.rest();
            let c = rest.chars().next()?;
            let start = self.pos;
            if c.is_whitespace() {
                self.pos += c.len_utf8();
            } else if rest.starts_with("--") {
                self.pos += rest.find('\n').unwrap_or(rest.len());
            } else if rest.starts_with("/*") {
                self.skip_block_comment();
            } else if c == ';' {
                self.pos += 1;
                return Some((start, Token::Semicolon));
            } else if c == '\'' {
                self.skip_quoted('\'', false);
                return Some((start, Token::Other));
            } else if (c == 'E' || c == 'e') && rest[1..].starts_with('\'') {
                self.pos += 1;
                self.skip_quoted('\'', true);
                return Some((start, Token::Other));
            } else if c == '"' {
                self.skip_quoted('"', false);
                return Some((start, Token::Other));
            } else if c == '`' && self.dialect == Dialect::Sqlite {
                self.skip_quoted('`', false);
                return Some((start, Token::Other));
            } else if c == '[' && self.dialect == Dialect::Sqlite {
                self.pos += rest.find(']').map_or(rest.len(), |i| i + 1);
                return Some((start, Token::Other));
            } else if c == '$' && self.dialect == Dialect::Postgres {
                if let Some(tag) = dollar_tag(rest) {
                    self.pos += tag.len();
                    let body = self.rest();
                    self.pos += body.find(tag).map_or(body.len(), |i| i + tag.len());
                } else {
                    self.pos += 1;
                }
                return Some((start, Token::Other));
            } else if c.is_alphabetic() || c == '_' {
                let len = rest
                    .find(|ch: char| !(ch.is_alphanumeric() || ch == '_' || ch == '$'))
                    .unwrap_or(rest.len());
                self.pos += len;
                return Some((start, Token::Word(rest[..len].to_ascii_uppercase())));
            } else {
                self.pos += c.len_utf8();
                return Some((start, Token::Other));
            }
        }
    }

    /// Past a quoted literal or identifier; a doubled quote is the quote itself.
    fn skip_quoted(&mut self, quote: char, backslash_escapes: bool) {
        self.pos += quote.len_utf8();
        let mut chars = self.rest().char_indices();
        while let Some((i, ch)) = chars.next() {
            if backslash_escapes && ch == '\\' {
                chars.next();
            } else if ch == quote {
                if self.rest()[i + 1..].starts_with(quote) {
                    chars.next();
                } else {
                    self.pos += i + 1;
                    return;
                }
            }
        }
        self.pos = self.src.len();
    }

    /// Past a `/* … */` comment, nested ones included (PostgreSQL nests them).
    fn skip_block_comment(&mut self) {
        let mut depth = 0usize;
        while !self.rest().is_empty() {
            let rest = self.rest();
            if rest.starts_with("/*") {
                depth += 1;
                self.pos += 2;
            } else if rest.starts_with("*/") {
                depth -= 1;
                self.pos += 2;
                if depth == 0 {
                    return;
                }
            } else {
                self.pos += rest.chars().next().map_or(1, char::len_utf8);
            }
        }
    }
}

/// `$$` or `$tag$` at the start of `s`.
fn dollar_tag(s: &str) -> Option<&str> {
    let end = s[1..].find('$')? + 1;
    let tag = &s[1..end];
    let valid = tag.is_empty()
        || (tag.starts_with(|c: char| c.is_alphabetic() || c == '_')
            && tag.chars().all(|c| c.is_alphanumeric() || c == '_'));
    valid.then(|| &s[..=end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqls(sql: &str, dialect: Dialect) -> Vec<String> {
        split(sql, dialect).into_iter().map(|s| s.sql).collect()
    }

    #[test]
    fn splits_on_semicolons_and_keeps_positions() {
        let got = split(
            "-- header\nCREATE TABLE a (id int);\n\n  INSERT INTO a VALUES (1);",
            Dialect::Postgres,
        );
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].sql, "CREATE TABLE a (id int)");
        assert_eq!((got[0].line, got[0].column), (2, 1));
        assert_eq!(got[1].sql, "INSERT INTO a VALUES (1)");
        assert_eq!((got[1].line, got[1].column), (4, 3));
    }

    #[test]
    fn semicolons_inside_literals_and_comments_do_not_split() {
        let sql = "INSERT INTO t VALUES ('a;b', 'it''s;', E'x\\';y');\n\
                   SELECT \"odd;name\" FROM t; -- trailing; comment\n\
                   /* block; /* nested; */ still; */ SELECT 2;";
        assert_eq!(
            sqls(sql, Dialect::Postgres),
            vec![
                "INSERT INTO t VALUES ('a;b', 'it''s;', E'x\\';y')",
                "SELECT \"odd;name\" FROM t",
                "SELECT 2",
            ]
        );
    }

    #[test]
    fn dollar_quoted_bodies_are_one_statement() {
        let sql = "CREATE FUNCTION f() RETURNS int AS $body$ BEGIN RETURN 1; END; $body$ LANGUAGE plpgsql;\n\
                   DO $$ BEGIN PERFORM 1; END $$;";
        let got = sqls(sql, Dialect::Postgres);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].ends_with("LANGUAGE plpgsql"));
    }

    #[test]
    fn a_sqlite_trigger_body_is_one_statement() {
        let sql = "CREATE TRIGGER t AFTER INSERT ON a BEGIN\n\
                     UPDATE a SET n = CASE WHEN n > 1 THEN 1 ELSE 2 END;\n\
                     DELETE FROM b;\n\
                   END;\n\
                   CREATE INDEX i ON a (n);";
        let got = sqls(sql, Dialect::Sqlite);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].ends_with("END"));
        assert_eq!(got[1], "CREATE INDEX i ON a (n)");
    }

    #[test]
    fn a_last_statement_without_semicolon_counts_and_blank_ones_do_not() {
        assert_eq!(
            sqls(";;\n-- only a comment;\nSELECT 1", Dialect::Sqlite),
            vec!["SELECT 1"]
        );
        assert!(split("  -- nothing\n", Dialect::Postgres).is_empty());
    }

    #[test]
    fn transaction_control_is_recognised() {
        for sql in [
            "BEGIN",
            "begin transaction",
            "COMMIT",
            "START TRANSACTION",
            "END",
            "ROLLBACK",
        ] {
            assert!(
                split(sql, Dialect::Postgres)[0].is_transaction_control(),
                "{sql}"
            );
        }
        for sql in ["CREATE TABLE begin_x (id int)", "SELECT 'BEGIN'"] {
            assert!(
                !split(sql, Dialect::Postgres)[0].is_transaction_control(),
                "{sql}"
            );
        }
    }
}
