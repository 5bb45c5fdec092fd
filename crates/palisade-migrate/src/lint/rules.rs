//! The rules that read one parsed statement of an up file against the schema built by
//! the statements before it.

use sqlparser::ast::{
    AlterColumnOperation, AlterTable, AlterTableOperation, CharacterLength, ColumnDef,
    ColumnOption, DataType, ExactNumberInfo, Ident, ObjectType, RenameTableNameKind, Statement,
    TableConstraint, TimezoneInfo,
};

use super::model::{Schema, ident, table_name};
use super::{
    ADDING_REQUIRED_FIELD, BAN_CHAR_FIELD, BAN_CONCURRENT_INDEX_CREATION_IN_TRANSACTION,
    BAN_DROP_COLUMN, BAN_DROP_DATABASE, BAN_DROP_TABLE, CHANGING_COLUMN_TYPE,
    CONSTRAINT_MISSING_NOT_VALID, DISALLOWED_UNIQUE_CONSTRAINT, PREFER_TIMESTAMPTZ,
    RENAMING_COLUMN, RENAMING_TABLE, REQUIRE_CONCURRENT_INDEX_CREATION, Rule,
};

/// A rule broken by a statement, before it is placed in its file.
pub struct Hit {
    pub rule: &'static Rule,
    pub message: String,
}

fn hit(rule: &'static Rule, message: String) -> Hit {
    Hit { rule, message }
}

/// A foreign key a statement adds: whether an index serves it is known only at the end
/// of the file, since the index often comes after the key.
pub struct ForeignKey {
    pub table: String,
    pub columns: Vec<String>,
    pub references: String,
}

/// What `stmt` breaks, `schema` being the schema before it.
pub fn check(stmt: &Statement, schema: &Schema, no_transaction: bool) -> Vec<Hit> {
    let mut hits = Vec::new();
    match stmt {
        Statement::CreateTable(ct) => {
            let table = table_name(&ct.name);
            for column in &ct.columns {
                check_type(&table, &column.name, &column.data_type, &mut hits);
            }
        }
        Statement::AlterTable(at) => check_alter(at, schema, &mut hits),
        Statement::CreateIndex(ci) => {
            let table = table_name(&ci.table_name);
            let index = ci.name.as_ref().map_or("(unnamed)".into(), table_name);
            if ci.concurrently && !no_transaction {
                hits.push(hit(
                    &BAN_CONCURRENT_INDEX_CREATION_IN_TRANSACTION,
                    format!(
                        "CREATE INDEX CONCURRENTLY `{index}` cannot run in the migration's \
                         transaction: put `-- palisade:no-transaction` at the top of the file"
                    ),
                ));
            }
            if !ci.concurrently && !schema.is_new(&table) {
                hits.push(hit(
                    &REQUIRE_CONCURRENT_INDEX_CREATION,
                    format!(
                        "index `{index}` on existing table `{table}` is built without \
                         CONCURRENTLY: use CREATE INDEX CONCURRENTLY in a \
                         `-- palisade:no-transaction` file"
                    ),
                ));
            }
        }
        Statement::Drop {
            object_type: ObjectType::Table,
            names,
            ..
        } => {
            for table in names.iter().map(table_name) {
                if !schema.is_new(&table) {
                    hits.push(hit(
                        &BAN_DROP_TABLE,
                        format!(
                            "table `{table}` is dropped: first stop the code using it, \
                             then drop it in a later release"
                        ),
                    ));
                }
            }
        }
        Statement::Drop {
            object_type: ObjectType::Database,
            names,
            ..
        } => {
            for db in names {
                hits.push(hit(
                    &BAN_DROP_DATABASE,
                    format!("database `{db}` is dropped: do that by hand, not in a migration"),
                ));
            }
        }
        _ => {}
    }
    hits
}

/// `DROP INDEX CONCURRENTLY`, read from the statement's words: sqlparser cannot parse it.
pub fn check_words(stmt: &crate::split::Statement, no_transaction: bool) -> Option<Hit> {
    let concurrent_drop = stmt.words().take(3).eq(["DROP", "INDEX", "CONCURRENTLY"]);
    (concurrent_drop && !no_transaction).then(|| {
        hit(
            &BAN_CONCURRENT_INDEX_CREATION_IN_TRANSACTION,
            "DROP INDEX CONCURRENTLY cannot run in the migration's transaction: put \
             `-- palisade:no-transaction` at the top of the file"
                .into(),
        )
    })
}

fn check_alter(at: &AlterTable, schema: &Schema, hits: &mut Vec<Hit>) {
    let table = table_name(&at.name);
    let new = schema.is_new(&table);
    for op in &at.operations {
        match op {
            AlterTableOperation::AddColumn { column_def, .. } => {
                let c = column_def;
                check_type(&table, &c.name, &c.data_type, hits);
                let options = || c.options.iter().map(|o| &o.option);
                // A generated (or identity) column fills existing rows itself.
                let filled = options().any(|o| {
                    matches!(o, ColumnOption::Default(_) | ColumnOption::Generated { .. })
                });
                let required = options().any(|o| matches!(o, ColumnOption::NotNull)) && !filled;
                if required && !new {
                    hits.push(hit(
                        &ADDING_REQUIRED_FIELD,
                        format!(
                            "column `{table}.{}` is added NOT NULL without a DEFAULT: add it \
                             with a DEFAULT, or nullable, backfill, then SET NOT NULL",
                            c.name
                        ),
                    ));
                }
            }
            AlterTableOperation::AlterColumn {
                column_name,
                op:
                    AlterColumnOperation::SetDataType {
                        data_type, using, ..
                    },
            } => {
                check_type(&table, column_name, data_type, hits);
                let old = schema.column_type(&table, &ident(column_name));
                // A USING expression computes every value anew.
                let rewrites = using.is_some() || old.is_none_or(|old| rewrites(old, data_type));
                if rewrites {
                    let from = old
                        .map_or("a type the earlier migrations do not show".into(), |t| {
                            format!("`{t}`")
                        });
                    hits.push(hit(
                        &CHANGING_COLUMN_TYPE,
                        format!(
                            "column `{table}.{column_name}` changes from {from} to `{data_type}`, \
                             which rewrites the table: add a new column, backfill it, and switch \
                             the code over"
                        ),
                    ));
                }
            }
            AlterTableOperation::DropColumn { column_names, .. } => {
                for column in column_names {
                    hits.push(hit(
                        &BAN_DROP_COLUMN,
                        format!(
                            "column `{table}.{column}` is dropped: first stop the code using \
                             it, then drop it in a later release"
                        ),
                    ));
                }
            }
            AlterTableOperation::RenameColumn {
                old_column_name,
                new_column_name,
            } => hits.push(hit(
                &RENAMING_COLUMN,
                format!(
                    "column `{table}.{old_column_name}` is renamed to `{new_column_name}`: add \
                     the new column, write both, backfill, and drop the old one later"
                ),
            )),
            AlterTableOperation::RenameTable {
                table_name: RenameTableNameKind::As(to) | RenameTableNameKind::To(to),
            } => hits.push(hit(
                &RENAMING_TABLE,
                format!(
                    "table `{table}` is renamed to `{to}`: create the new table (or a view), \
                     move the code over, and drop the old one later"
                ),
            )),
            AlterTableOperation::AddConstraint {
                constraint,
                not_valid,
            } if !new => check_constraint(&table, constraint, *not_valid, hits),
            _ => {}
        }
    }
}

fn check_constraint(
    table: &str,
    constraint: &TableConstraint,
    not_valid: bool,
    hits: &mut Vec<Hit>,
) {
    let name = |n: &Option<Ident>| n.as_ref().map_or("(unnamed)".into(), ident);
    match constraint {
        TableConstraint::ForeignKey(c) if !not_valid => hits.push(hit(
            &CONSTRAINT_MISSING_NOT_VALID,
            format!(
                "foreign key `{}` on existing table `{table}` is validated under a lock: add it \
                 NOT VALID, then VALIDATE CONSTRAINT in a later migration",
                name(&c.name)
            ),
        )),
        TableConstraint::Check(c) if !not_valid => hits.push(hit(
            &CONSTRAINT_MISSING_NOT_VALID,
            format!(
                "check `{}` on existing table `{table}` is validated under a lock: add it NOT \
                 VALID, then VALIDATE CONSTRAINT in a later migration",
                name(&c.name)
            ),
        )),
        TableConstraint::Unique(c) => hits.push(hit(
            &DISALLOWED_UNIQUE_CONSTRAINT,
            format!(
                "unique constraint `{}` on existing table `{table}` builds its index under a \
                 lock: CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT … UNIQUE USING INDEX",
                name(&c.name)
            ),
        )),
        _ => {}
    }
}

/// `prefer-timestamptz` and `ban-char-field`, for a column declared or retyped.
fn check_type(table: &str, column: &Ident, ty: &DataType, hits: &mut Vec<Hit>) {
    match ty {
        DataType::Timestamp(_, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => {
            hits.push(hit(
                &PREFER_TIMESTAMPTZ,
                format!("column `{table}.{column}` is `{ty}`: use `timestamptz`"),
            ));
        }
        DataType::Char(_) | DataType::Character(_) => hits.push(hit(
            &BAN_CHAR_FIELD,
            format!("column `{table}.{column}` is `{ty}`: use `text` (with a CHECK on its length if needed)"),
        )),
        _ => {}
    }
}

/// The foreign keys `stmt` adds.
pub fn foreign_keys(stmt: &Statement) -> Vec<ForeignKey> {
    let mut out = Vec::new();
    match stmt {
        Statement::CreateTable(ct) => {
            let table = table_name(&ct.name);
            for column in &ct.columns {
                inline_foreign_keys(&table, column, &mut out);
            }
            for constraint in &ct.constraints {
                table_foreign_key(&table, constraint, &mut out);
            }
        }
        Statement::AlterTable(at) => {
            let table = table_name(&at.name);
            for op in &at.operations {
                match op {
                    AlterTableOperation::AddColumn { column_def, .. } => {
                        inline_foreign_keys(&table, column_def, &mut out);
                    }
                    AlterTableOperation::AddConstraint { constraint, .. } => {
                        table_foreign_key(&table, constraint, &mut out);
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
    out
}

fn inline_foreign_keys(table: &str, column: &ColumnDef, out: &mut Vec<ForeignKey>) {
    for option in &column.options {
        if let ColumnOption::ForeignKey(fk) = &option.option {
            out.push(ForeignKey {
                table: table.to_owned(),
                columns: vec![ident(&column.name)],
                references: table_name(&fk.foreign_table),
            });
        }
    }
}

fn table_foreign_key(table: &str, constraint: &TableConstraint, out: &mut Vec<ForeignKey>) {
    if let TableConstraint::ForeignKey(fk) = constraint {
        out.push(ForeignKey {
            table: table.to_owned(),
            columns: fk.columns.iter().map(ident).collect(),
            references: table_name(&fk.foreign_table),
        });
    }
}

/// The families of types whose changes PostgreSQL can make without a rewrite.
#[derive(PartialEq)]
enum Family {
    /// `varchar(n)`; `None` for an unbounded one.
    Varchar(Option<u64>),
    Text,
    /// `numeric(p, s)`; `None` for an unconstrained one.
    Numeric(Option<(u64, i64)>),
    Other,
}

fn family(ty: &DataType) -> Family {
    match ty {
        DataType::Varchar(len) | DataType::CharacterVarying(len) | DataType::CharVarying(len) => {
            Family::Varchar(match len {
                Some(CharacterLength::IntegerLength { length, .. }) => Some(*length),
                _ => None,
            })
        }
        DataType::Text => Family::Text,
        DataType::Numeric(info) | DataType::Decimal(info) | DataType::Dec(info) => {
            Family::Numeric(match info {
                ExactNumberInfo::None => None,
                ExactNumberInfo::Precision(p) => Some((*p, 0)),
                ExactNumberInfo::PrecisionAndScale(p, s) => Some((*p, *s)),
            })
        }
        _ => Family::Other,
    }
}

/// Whether changing a column from `old` to `new` rewrites the table: everything but
/// widening a varchar or a numeric's precision, or lifting its limit, does.
fn rewrites(old: &DataType, new: &DataType) -> bool {
    use Family::*;
    match (family(old), family(new)) {
        (Varchar(_) | Text, Text) | (Varchar(_), Varchar(None)) | (Numeric(_), Numeric(None)) => {
            false
        }
        (Varchar(Some(n)), Varchar(Some(m))) => m < n,
        (Numeric(Some((p, s))), Numeric(Some((p2, s2)))) => p2 < p || s2 != s,
        _ => old != new,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;

    fn ty(sql: &str) -> DataType {
        Parser::new(&PostgreSqlDialect {})
            .try_with_sql(sql)
            .and_then(|mut p| p.parse_data_type())
            .expect("test type parses")
    }

    #[test]
    fn widening_varchar_or_numeric_does_not_rewrite() {
        for (old, new) in [
            ("varchar(10)", "varchar(20)"),
            ("varchar(10)", "varchar(10)"),
            ("character varying(10)", "varchar(10)"),
            ("varchar(10)", "varchar"),
            ("varchar(10)", "text"),
            ("varchar", "text"),
            ("numeric(10,2)", "numeric(12,2)"),
            ("numeric(10,2)", "decimal(12,2)"),
            ("numeric(10)", "numeric"),
            ("numeric(10,2)", "numeric"),
            ("integer", "integer"),
        ] {
            assert!(!rewrites(&ty(old), &ty(new)), "{old} → {new}");
        }
    }

    #[test]
    fn narrowing_or_changing_family_rewrites() {
        for (old, new) in [
            ("varchar(20)", "varchar(10)"),
            ("varchar", "varchar(10)"),
            ("text", "varchar(10)"),
            ("numeric(10,2)", "numeric(10,3)"),
            ("numeric(10,2)", "numeric(8,2)"),
            ("numeric", "numeric(10,2)"),
            ("integer", "bigint"),
            ("varchar(10)", "integer"),
        ] {
            assert!(rewrites(&ty(old), &ty(new)), "{old} → {new}");
        }
    }
}
