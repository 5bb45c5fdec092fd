//! The SQLite dialect: statements split by the engine's own splitter and parsed with
//! sqlparser's SQLite dialect. SQLite has no concurrent index builds, long lock queues
//! or type rewrites, so its rules are those about data and running code.

use sqlparser::ast::{
    AlterTableOperation, ColumnDef, ColumnOption, Ident, IndexColumn, ObjectName, ObjectNamePart,
    ObjectType, RenameTableNameKind, Statement, TableConstraint,
};
use sqlparser::dialect::SQLiteDialect;
use sqlparser::parser::Parser;

use super::catalog::{
    ADDING_REQUIRED_FIELD, BAN_DROP_COLUMN, BAN_DROP_DATABASE, BAN_DROP_TABLE, RENAMING_COLUMN,
    RENAMING_TABLE, TRANSACTION_NESTING, UNPARSABLE_STATEMENT,
};
use super::model::Schema;
use super::{FileLint, ForeignKey, Hit};
use crate::Dialect;
use crate::source::Script;

/// Lints one file; see [`super::postgres::lint_file`].
pub fn lint_file(script: &Script, schema: &mut Schema, up: bool) -> FileLint {
    let mut lint = FileLint::default();
    let mut leading = 0;
    for stmt in script.statements(Dialect::Sqlite) {
        lint.statements.push((leading, stmt.offset));
        leading = stmt.offset + stmt.sql.len();
        let hit = |rule, message| Hit::at(rule, stmt.offset, message);
        if stmt.is_transaction_control() {
            lint.hits.push(hit(
                &TRANSACTION_NESTING,
                format!(
                    "`{}` in a migration: remove it; the engine runs each migration in its own \
                     transaction (or none, with `-- palisade:no-transaction`)",
                    stmt.summary()
                ),
            ));
            continue;
        }
        let parsed = Parser::parse_sql(&SQLiteDialect {}, &stmt.sql).or_else(|e| {
            virtual_table_without_arguments(&stmt.sql)
                .map_or(Err(e), |sql| Parser::parse_sql(&SQLiteDialect {}, &sql))
        });
        let ast = match parsed {
            Ok(ast) => ast,
            Err(e) => {
                lint.hits.push(hit(&UNPARSABLE_STATEMENT, e.to_string()));
                continue;
            }
        };
        if !up {
            continue;
        }
        for s in &ast {
            for (rule, message) in check(s, schema) {
                lint.hits.push(hit(rule, message));
            }
            lint.foreign_keys.extend(foreign_keys(s, stmt.offset));
            apply(s, schema);
        }
    }
    lint
}

/// A `CREATE VIRTUAL TABLE … USING module (…)` without its arguments. They are the
/// module's own syntax (FTS5's `content = 'table'`), which sqlparser reads only as a
/// list of names; the rules need the table, not the arguments.
fn virtual_table_without_arguments(sql: &str) -> Option<String> {
    let mut words = crate::split::words(sql);
    let creates_virtual =
        words.next().as_deref() == Some("CREATE") && words.next().as_deref() == Some("VIRTUAL");
    if !creates_virtual {
        return None;
    }
    let open = sql.find('(')?;
    Some(sql[..open].to_owned())
}

type Found = (&'static super::catalog::Rule, String);

/// What `stmt` breaks, `schema` being the schema before it.
fn check(stmt: &Statement, schema: &Schema) -> Vec<Found> {
    let mut hits = Vec::new();
    match stmt {
        Statement::AlterTable(at) => {
            let table = table_name(&at.name);
            let new = schema.is_new(&table);
            for op in &at.operations {
                match op {
                    AlterTableOperation::AddColumn { column_def: c, .. } if !new => {
                        let options = || c.options.iter().map(|o| &o.option);
                        // A generated column fills existing rows itself.
                        let filled = options().any(|o| {
                            matches!(o, ColumnOption::Default(_) | ColumnOption::Generated { .. })
                        });
                        if options().any(|o| matches!(o, ColumnOption::NotNull)) && !filled {
                            hits.push((
                                &ADDING_REQUIRED_FIELD,
                                format!(
                                    "column `{table}.{}` is added NOT NULL without a DEFAULT: \
                                     add it with a DEFAULT, or nullable, backfill, then rebuild \
                                     the table with the constraint",
                                    c.name
                                ),
                            ));
                        }
                    }
                    AlterTableOperation::DropColumn { column_names, .. } if !new => {
                        for column in column_names {
                            hits.push((
                                &BAN_DROP_COLUMN,
                                format!(
                                    "column `{table}.{column}` is dropped: first stop the code \
                                     using it, then drop it in a later release"
                                ),
                            ));
                        }
                    }
                    AlterTableOperation::RenameColumn {
                        old_column_name,
                        new_column_name,
                    } if !new => hits.push((
                        &RENAMING_COLUMN,
                        format!(
                            "column `{table}.{old_column_name}` is renamed to \
                             `{new_column_name}`: add the new column, write both, backfill, and \
                             drop the old one later"
                        ),
                    )),
                    AlterTableOperation::RenameTable {
                        table_name: RenameTableNameKind::As(to) | RenameTableNameKind::To(to),
                    } if !new => hits.push((
                        &RENAMING_TABLE,
                        format!(
                            "table `{table}` is renamed to `{to}`: create the new table (or a \
                             view), move the code over, and drop the old one later"
                        ),
                    )),
                    _ => {}
                }
            }
        }
        Statement::Drop {
            object_type: ObjectType::Table,
            names,
            ..
        } => {
            for table in names.iter().map(table_name) {
                if !schema.is_new(&table) {
                    hits.push((
                        &BAN_DROP_TABLE,
                        format!(
                            "table `{table}` is dropped: first stop the code using it, then \
                             drop it in a later release"
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
                hits.push((
                    &BAN_DROP_DATABASE,
                    format!("database `{db}` is dropped: do that by hand, not in a migration"),
                ));
            }
        }
        _ => {}
    }
    hits
}

/// The foreign keys `stmt`, which starts at `offset` in its file, adds.
fn foreign_keys(stmt: &Statement, offset: usize) -> Vec<ForeignKey> {
    let mut out = Vec::new();
    let mut column_keys = |table: &str, column: &ColumnDef| {
        for option in &column.options {
            if let ColumnOption::ForeignKey(fk) = &option.option {
                out.push(ForeignKey {
                    table: table.to_owned(),
                    columns: vec![ident(&column.name)],
                    references: table_name(&fk.foreign_table),
                    offset,
                });
            }
        }
    };
    let mut table_keys = Vec::new();
    match stmt {
        Statement::CreateTable(ct) => {
            let table = table_name(&ct.name);
            for column in &ct.columns {
                column_keys(&table, column);
            }
            table_keys.extend(ct.constraints.iter().map(|c| (table.clone(), c)));
        }
        Statement::AlterTable(at) => {
            let table = table_name(&at.name);
            for op in &at.operations {
                match op {
                    AlterTableOperation::AddColumn { column_def, .. } => {
                        column_keys(&table, column_def);
                    }
                    AlterTableOperation::AddConstraint { constraint, .. } => {
                        table_keys.push((table.clone(), constraint));
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
    for (table, constraint) in table_keys {
        if let TableConstraint::ForeignKey(fk) = constraint {
            out.push(ForeignKey {
                table,
                columns: fk.columns.iter().map(ident).collect(),
                references: table_name(&fk.foreign_table),
                offset,
            });
        }
    }
    out
}

/// Records what `stmt` does to the schema (SQLite columns carry no type the rules use).
fn apply(stmt: &Statement, schema: &mut Schema) {
    match stmt {
        Statement::CreateTable(ct) => {
            let name = table_name(&ct.name);
            schema.create_table(&name, ct.if_not_exists);
            for column in &ct.columns {
                add_column(schema, &name, column);
            }
            for constraint in &ct.constraints {
                add_constraint(schema, &name, constraint);
            }
        }
        Statement::AlterTable(at) => {
            let mut name = table_name(&at.name);
            for op in &at.operations {
                match op {
                    AlterTableOperation::RenameTable {
                        table_name: RenameTableNameKind::As(to) | RenameTableNameKind::To(to),
                    } => {
                        let to = table_name(to);
                        schema.rename_table(&name, &to);
                        name = to;
                    }
                    AlterTableOperation::AddColumn { column_def, .. } => {
                        add_column(schema, &name, column_def);
                    }
                    AlterTableOperation::AddConstraint { constraint, .. } => {
                        add_constraint(schema, &name, constraint);
                    }
                    AlterTableOperation::DropColumn { column_names, .. } => {
                        for column in column_names.iter().map(ident) {
                            schema.drop_column(&name, &column);
                        }
                    }
                    AlterTableOperation::RenameColumn {
                        old_column_name,
                        new_column_name,
                    } => schema.rename_column(
                        &name,
                        &ident(old_column_name),
                        &ident(new_column_name),
                    ),
                    _ => {}
                }
            }
        }
        // A partial index serves only some lookups, so it covers no foreign key.
        Statement::CreateIndex(ci) => {
            let columns = if ci.predicate.is_some() {
                Vec::new()
            } else {
                index_columns(&ci.columns)
            };
            let name = ci.name.as_ref().map(table_name);
            schema.add_index(&table_name(&ci.table_name), name.as_deref(), columns);
        }
        Statement::Drop {
            object_type: ObjectType::Table,
            names,
            ..
        } => {
            for name in names {
                schema.drop_table(&table_name(name));
            }
        }
        Statement::Drop {
            object_type: ObjectType::Index,
            names,
            ..
        } => {
            for name in names {
                schema.drop_index(&table_name(name));
            }
        }
        _ => {}
    }
}

fn add_column(schema: &mut Schema, table: &str, column: &ColumnDef) {
    let name = ident(&column.name);
    for option in &column.options {
        if let ColumnOption::PrimaryKey(_) | ColumnOption::Unique(_) = option.option {
            let index = option.name.as_ref().map(ident);
            schema.add_index(table, index.as_deref(), vec![name.clone()]);
        }
    }
    schema.add_column(table, &name, None);
}

fn add_constraint(schema: &mut Schema, table: &str, constraint: &TableConstraint) {
    let (name, columns) = match constraint {
        TableConstraint::PrimaryKey(pk) => (&pk.name, &pk.columns),
        TableConstraint::Unique(u) => (&u.name, &u.columns),
        _ => return,
    };
    let name = name.as_ref().map(ident);
    schema.add_index(table, name.as_deref(), index_columns(columns));
}

/// An identifier as the database stores it: unquoted ones are folded to lower case.
fn ident(i: &Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

/// The last part of a (possibly schema-qualified) name.
fn table_name(name: &ObjectName) -> String {
    match name.0.last() {
        Some(ObjectNamePart::Identifier(i)) => ident(i),
        _ => name.to_string(),
    }
}

fn index_columns(columns: &[IndexColumn]) -> Vec<String> {
    columns
        .iter()
        .map_while(|c| match &c.column.expr {
            sqlparser::ast::Expr::Identifier(i) => Some(ident(i)),
            _ => None,
        })
        .collect()
}
