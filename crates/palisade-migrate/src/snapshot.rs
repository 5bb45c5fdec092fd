//! A database's schema as comparable text: one entry per table, column (position,
//! type, nullability, default), index, constraint, view, trigger and (PostgreSQL)
//! enum type, function and sequence. The tracking table is left out.
//!
//! On SQLite, columns, indexes and foreign keys come from the `pragma_*` functions
//! rather than from the stored `CREATE TABLE` text, which `ALTER TABLE` edits in place
//! and which would differ after an add-then-drop of a column although the schema does
//! not. CHECK constraints live only in that text, so they are not compared on SQLite.

use std::collections::BTreeMap;

use crate::conn::Conn;

/// Object → definition, ordered by object.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Schema(pub BTreeMap<String, String>);

const POSTGRES: &[&str] = &[
    "SELECT 'table ' || c.relname, ''
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND c.relname <> 'palisade_migrations'",
    "SELECT 'column ' || c.relname || '.' || a.attname,
            '#' || row_number() OVER (PARTITION BY c.relname ORDER BY a.attnum) || ' '
            || format_type(a.atttypid, a.atttypmod)
            || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
            || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
     FROM pg_attribute a
     JOIN pg_class c ON c.oid = a.attrelid
     JOIN pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND a.attnum > 0
       AND NOT a.attisdropped AND c.relname <> 'palisade_migrations'",
    "SELECT 'index ' || indexname, indexdef FROM pg_indexes
     WHERE schemaname = current_schema() AND tablename <> 'palisade_migrations'",
    "SELECT 'constraint ' || cl.relname || '.' || co.conname, pg_get_constraintdef(co.oid)
     FROM pg_constraint co
     JOIN pg_class cl ON cl.oid = co.conrelid
     JOIN pg_namespace n ON n.oid = co.connamespace
     WHERE n.nspname = current_schema() AND cl.relname <> 'palisade_migrations'",
    "SELECT 'view ' || viewname, definition FROM pg_views WHERE schemaname = current_schema()",
    "SELECT 'trigger ' || c.relname || '.' || t.tgname, pg_get_triggerdef(t.oid)
     FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE NOT t.tgisinternal AND n.nspname = current_schema()",
    "SELECT 'type ' || t.typname, string_agg(e.enumlabel, ', ' ORDER BY e.enumsortorder)
     FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace
     WHERE n.nspname = current_schema() GROUP BY t.typname",
    "SELECT 'function ' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
            pg_get_functiondef(p.oid)
     FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = current_schema() AND p.prokind IN ('f', 'p')",
    "SELECT 'sequence ' || sequencename, data_type::text || ' increment ' || increment_by
     FROM pg_sequences WHERE schemaname = current_schema()",
];

const SQLITE: &[&str] = &[
    "SELECT 'table ' || name, '' FROM sqlite_master
     WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'palisade_migrations'",
    "SELECT 'column ' || m.name || '.' || p.name,
            '#' || (p.cid + 1) || ' ' || p.type
            || CASE WHEN p.\"notnull\" THEN ' NOT NULL' ELSE '' END
            || coalesce(' DEFAULT ' || p.dflt_value, '')
            || CASE WHEN p.pk > 0 THEN ' PRIMARY KEY #' || p.pk ELSE '' END
     FROM sqlite_master m JOIN pragma_table_info(m.name) p
     WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> 'palisade_migrations'",
    "SELECT 'index ' || m.name || '.' || il.name,
            CASE WHEN il.\"unique\" THEN 'UNIQUE ' ELSE '' END || il.origin || ' ('
            || (SELECT group_concat(coalesce(name, 'expr'), ', ')
                FROM (SELECT name FROM pragma_index_info(il.name) ORDER BY seqno)) || ')'
            || CASE WHEN il.partial THEN ' ' || coalesce(
                   (SELECT sql FROM sqlite_master WHERE type = 'index' AND name = il.name), '')
               ELSE '' END
     FROM sqlite_master m JOIN pragma_index_list(m.name) il
     WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> 'palisade_migrations'",
    "SELECT 'foreign key ' || m.name || '(' || group_concat(fk.\"from\", ', ') || ')',
            fk.\"table\" || '(' || group_concat(coalesce(fk.\"to\", ''), ', ') || ') ON UPDATE '
            || fk.on_update || ' ON DELETE ' || fk.on_delete
     FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) fk
     WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'
     GROUP BY m.name, fk.id",
    "SELECT type || ' ' || name, sql FROM sqlite_master WHERE type IN ('view', 'trigger')",
];

impl Schema {
    pub async fn read(conn: &mut Conn) -> Result<Schema, sqlx::Error> {
        let mut out = BTreeMap::new();
        match conn {
            Conn::Sqlite(c) => {
                for q in SQLITE {
                    let rows: Vec<(String, Option<String>)> =
                        sqlx::query_as(*q).fetch_all(&mut *c).await?;
                    out.extend(rows.into_iter().map(normalise));
                }
            }
            Conn::Postgres(c) => {
                for q in POSTGRES {
                    let rows: Vec<(String, Option<String>)> =
                        sqlx::query_as(*q).fetch_all(&mut *c).await?;
                    out.extend(rows.into_iter().map(normalise));
                }
            }
        }
        Ok(Schema(out))
    }

    /// What changed from `self` to `other`, one line each.
    pub fn diff(&self, other: &Schema) -> Vec<String> {
        let mut out = Vec::new();
        for (k, v) in &self.0 {
            match other.0.get(k) {
                None => out.push(format!("- {k}: {v}")),
                Some(w) if w != v => out.push(format!("~ {k}: {v} → {w}")),
                Some(_) => {}
            }
        }
        for (k, w) in &other.0 {
            if !self.0.contains_key(k) {
                out.push(format!("+ {k}: {w}"));
            }
        }
        out
    }
}

/// Definitions with runs of blanks collapsed: stored SQL keeps the author's layout.
fn normalise((key, def): (String, Option<String>)) -> (String, String) {
    let def = def
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    (key, def)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_what_was_added_removed_and_changed() {
        let a = Schema(BTreeMap::from([
            ("table t".into(), String::new()),
            ("column t.a".into(), "#1 integer".into()),
        ]));
        let b = Schema(BTreeMap::from([
            ("column t.a".into(), "#1 bigint".into()),
            ("table u".into(), String::new()),
        ]));
        assert_eq!(
            a.diff(&b),
            [
                "~ column t.a: #1 integer → #1 bigint",
                "- table t: ",
                "+ table u: "
            ]
        );
        assert!(a.diff(&a).is_empty());
    }
}
