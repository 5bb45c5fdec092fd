//! The PostgreSQL dialect: each file is parsed by PostgreSQL's own grammar (libpg_query,
//! through `pg_query`), so every statement the server accepts is read, and one it
//! rejects is reported where the server would stop.

mod rules;
mod types;

use pg_query::NodeEnum;
use pg_query::protobuf::Node;

use super::catalog::SYNTAX_ERROR;
use super::model::Schema;
use super::{FileLint, Hit, first_token};
use crate::Dialect;
use crate::source::Script;
use crate::split::split;

/// One statement of a file as PostgreSQL parsed it.
pub struct PgStatement {
    /// Byte offset of its first token in the file.
    pub offset: usize,
    /// Where its leading comments start (after the previous statement).
    pub leading: usize,
    /// What node locations are relative to: 0 when the whole file parsed at once.
    pub base: usize,
    /// The parsed statement; `None` when PostgreSQL rejects it.
    pub node: Option<NodeEnum>,
}

/// Lints one file. An up file is checked against the schema so far, which it then
/// updates; a down file is parsed only (its statements undo, they do not ship).
pub fn lint_file(script: &Script, schema: &mut Schema, up: bool) -> FileLint {
    let (statements, mut hits) = parse(&script.sql);
    let mut file = rules::File::new(script.no_transaction);
    let mut foreign_keys = Vec::new();
    for stmt in &statements {
        let Some(node) = &stmt.node else { continue };
        let at = rules::Place {
            offset: stmt.offset,
            base: stmt.base,
        };
        if let Some(hit) = rules::transaction_control(node, at) {
            hits.push(hit);
            continue;
        }
        if up {
            hits.extend(rules::check(node, at, schema, &mut file));
            foreign_keys.extend(rules::foreign_keys(node, at));
            rules::apply(node, schema);
        }
    }
    hits.extend(file.finish());
    hits.extend(rules::identifiers_too_long(&script.sql, &statements));
    FileLint {
        hits,
        statements: statements.iter().map(|s| (s.leading, s.offset)).collect(),
        foreign_keys,
    }
}

/// The statements of a file, and a syntax error for each one PostgreSQL rejects.
/// The whole file is parsed at once; only when that fails is it split, so that each
/// statement is parsed alone and the others are still checked.
pub fn parse(sql: &str) -> (Vec<PgStatement>, Vec<Hit>) {
    if let Ok(parsed) = pg_query::parse(sql, 0) {
        // A statement's location is its first token's (the first one's is 0); its
        // leading comments follow the previous statement's end, its `;`.
        let mut leading = 0;
        let statements = parsed
            .protobuf
            .stmts
            .into_iter()
            .map(|raw| {
                let start = usize::try_from(raw.stmt_location).unwrap_or(0);
                let end = start + usize::try_from(raw.stmt_len).unwrap_or(0);
                let stmt = PgStatement {
                    offset: first_token(sql, start),
                    leading: leading.min(start),
                    base: 0,
                    node: raw.stmt.and_then(|n| n.node),
                };
                leading = end;
                stmt
            })
            .collect();
        return (statements, Vec::new());
    }
    let mut statements = Vec::new();
    let mut hits = Vec::new();
    let mut leading = 0;
    for s in split(sql, Dialect::Postgres) {
        match pg_query::parse(&s.sql, 0) {
            Ok(parsed) => {
                for (i, raw) in parsed.protobuf.stmts.into_iter().enumerate() {
                    let start = s.offset + usize::try_from(raw.stmt_location).unwrap_or(0);
                    statements.push(PgStatement {
                        offset: first_token(sql, start),
                        leading: if i == 0 { leading } else { start },
                        base: s.offset,
                        node: raw.stmt.and_then(|n| n.node),
                    });
                }
            }
            Err(e) => {
                let message = match e {
                    pg_query::Error::Parse(m) => m,
                    other => other.to_string(),
                };
                let offset = s.offset + error_offset(&s.sql);
                hits.push(Hit::at(
                    &SYNTAX_ERROR,
                    offset,
                    format!("PostgreSQL rejects this statement: {message}"),
                ));
                statements.push(PgStatement {
                    offset: s.offset,
                    leading,
                    base: s.offset,
                    node: None,
                });
            }
        }
        leading = s.offset + s.sql.len();
    }
    (statements, hits)
}

/// Where in `sql` (one statement PostgreSQL rejects) the parser stops: the first token
/// at which a prefix of the statement fails other than by ending early. The C parser
/// reports only a message, so the place is found by parsing prefixes, a binary search
/// over the tokens; 0 when the statement cannot even be split into tokens.
fn error_offset(sql: &str) -> usize {
    let Ok(tokens) = tokens(sql) else {
        return 0;
    };
    let end = |i: usize| usize::try_from(tokens[i].end).unwrap_or(0).min(sql.len());
    let fails_here = |i: usize| {
        let prefix = sql.get(..end(i)).unwrap_or(sql);
        match pg_query::parse(prefix, 0) {
            Ok(_) => false,
            Err(pg_query::Error::Parse(m)) => !m.ends_with("at end of input"),
            Err(_) => true,
        }
    };
    // The smallest i whose prefix fails; the prefix of every token fails when the
    // error is in the last one.
    let (mut lo, mut hi) = (0, tokens.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if fails_here(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    tokens
        .get(lo.min(tokens.len().saturating_sub(1)))
        .and_then(|t| usize::try_from(t.start).ok())
        .unwrap_or(0)
}

/// The tokens of `sql`. `pg_query::scan_tokens` would be the direct call, but on input
/// without a single token it builds a slice from a null pointer (undefined behaviour,
/// found by this crate's property test); the protobuf form has no such case.
pub fn tokens(sql: &str) -> Result<Vec<pg_query::protobuf::ScanToken>, pg_query::Error> {
    pg_query::scan(sql).map(|r| r.tokens)
}

/// The last part of a qualified name (`public.users` is `users`), or "".
pub fn last_name(nodes: &[Node]) -> String {
    names(nodes).pop().unwrap_or_default()
}

/// The strings of a name list (`[public, users]`), as the parser folded them.
pub fn names(nodes: &[Node]) -> Vec<String> {
    nodes
        .iter()
        .filter_map(|n| match &n.node {
            Some(NodeEnum::String(s)) => Some(s.sval.clone()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_sqlparser_could_not_read_parses() {
        let sql = "DROP INDEX CONCURRENTLY i;
            CLUSTER t USING i;
            REINDEX INDEX CONCURRENTLY i;
            ALTER DOMAIN d ADD CONSTRAINT c CHECK (VALUE > 0);
            ALTER TABLE t SET SCHEMA s;
            ALTER TABLE t ALTER COLUMN c DROP EXPRESSION;
            ALTER DATABASE db SET work_mem = '64MB';
            ALTER TYPE ty ADD ATTRIBUTE a int;
            ALTER SEQUENCE s RESTART;
            ALTER SYSTEM SET work_mem = '64MB';
            ALTER EXTENSION e UPDATE;
            DO $$ BEGIN PERFORM 1; END $$;
            CREATE STATISTICS st ON a, b FROM t;
            ALTER TABLE t ALTER COLUMN c SET STATISTICS 100;";
        let (statements, hits) = parse(sql);
        assert!(
            hits.is_empty(),
            "{:?}",
            hits.iter().map(|h| &h.message).collect::<Vec<_>>()
        );
        assert_eq!(statements.len(), 14);
        assert!(statements.iter().all(|s| s.node.is_some()));
    }

    #[test]
    fn a_rejected_statement_is_placed_at_the_token_where_the_parser_stops() {
        let sql = "SELECT 1;\nALTER TABLE t ADD COLUMNN c int;\nALTER TABLE t ADD COLUMN d int;";
        let (statements, hits) = parse(sql);
        assert_eq!(statements.len(), 3);
        assert!(statements[1].node.is_none() && statements[2].node.is_some());
        assert_eq!(hits.len(), 1);
        assert_eq!(
            &sql[hits[0].offset..hits[0].offset + 3],
            "int",
            "{}",
            hits[0].message
        );
        assert!(
            hits[0].message.contains("syntax error at or near \"int\""),
            "{}",
            hits[0].message
        );
        // Cut short: the error is at the end.
        let (_, hits) = parse("CREATE TABLE t (a int");
        assert!(
            hits[0].message.contains("end of input"),
            "{}",
            hits[0].message
        );
    }

    #[test]
    fn leading_comments_and_first_tokens_are_told_apart() {
        let sql = "-- head\nSELECT 1;\n\n/* why */\n-- palisade:ignore x\nSELECT 2;";
        let (statements, _) = parse(sql);
        assert_eq!(
            &sql[statements[1].offset..statements[1].offset + 8],
            "SELECT 2"
        );
        assert!(sql[statements[1].leading..statements[1].offset].contains("palisade:ignore x"));
        assert_eq!(statements[0].offset, 8);
    }
}
