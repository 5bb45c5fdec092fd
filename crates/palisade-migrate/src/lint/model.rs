//! The schema the up files have built so far, as far as the rules need it: each table's
//! column types and the columns its indexes start with, and which tables the file being
//! linted created (a new table is empty, so what would lock or rewrite a live one is
//! harmless there).

use std::collections::BTreeMap;

use sqlparser::ast::{
    AlterColumnOperation, AlterTableOperation, ColumnDef, ColumnOption, DataType, Expr, Ident,
    IndexColumn, ObjectName, ObjectNamePart, ObjectType, RenameTableNameKind, Statement,
    TableConstraint,
};

#[derive(Debug, Default)]
pub struct Schema {
    tables: BTreeMap<String, Table>,
}

#[derive(Debug, Default)]
struct Table {
    columns: BTreeMap<String, DataType>,
    indexes: Vec<Index>,
    /// Created by an earlier statement of the file being linted.
    new: bool,
}

#[derive(Debug)]
struct Index {
    /// Its name, or its constraint's, so that a later DROP can remove it.
    name: Option<String>,
    /// The plain columns it starts with: after an expression, the index no longer helps
    /// a lookup by column, so the list stops there.
    columns: Vec<String>,
}

impl Schema {
    /// A new up file starts: the tables created so far are now existing ones.
    pub fn start_file(&mut self) {
        for table in self.tables.values_mut() {
            table.new = false;
        }
    }

    pub fn is_new(&self, table: &str) -> bool {
        self.tables.get(table).is_some_and(|t| t.new)
    }

    pub fn has_table(&self, table: &str) -> bool {
        self.tables.contains_key(table)
    }

    pub fn column_type(&self, table: &str, column: &str) -> Option<&DataType> {
        self.tables.get(table)?.columns.get(column)
    }

    /// Whether some index of `table` starts with `columns`, in any order: such an index
    /// serves the lookups a foreign key makes.
    pub fn covers(&self, table: &str, columns: &[String]) -> bool {
        self.tables.get(table).is_some_and(|t| {
            t.indexes.iter().any(|i| {
                i.columns.len() >= columns.len()
                    && columns
                        .iter()
                        .all(|c| i.columns[..columns.len()].contains(c))
            })
        })
    }

    /// Records what `stmt` does to the schema.
    pub fn apply(&mut self, stmt: &Statement) {
        match stmt {
            Statement::CreateTable(ct) => {
                let name = table_name(&ct.name);
                if ct.if_not_exists && self.tables.contains_key(&name) {
                    return;
                }
                let mut table = Table {
                    new: true,
                    ..Table::default()
                };
                for column in &ct.columns {
                    table.add_column(column);
                }
                for constraint in &ct.constraints {
                    table.add_constraint(constraint);
                }
                self.tables.insert(name, table);
            }
            Statement::AlterTable(at) => {
                let mut name = table_name(&at.name);
                for op in &at.operations {
                    if let AlterTableOperation::RenameTable { table_name: to } = op {
                        let to = match to {
                            RenameTableNameKind::As(n) | RenameTableNameKind::To(n) => n,
                        };
                        let table = self.tables.remove(&name).unwrap_or_default();
                        name = table_name(to);
                        self.tables.insert(name.clone(), table);
                    } else {
                        self.tables.entry(name.clone()).or_default().alter(op);
                    }
                }
            }
            // A partial index serves only some lookups, so it is not recorded.
            Statement::CreateIndex(ci) if ci.predicate.is_none() => {
                let index = Index {
                    name: ci.name.as_ref().map(table_name),
                    columns: index_columns(&ci.columns),
                };
                let table = self.tables.entry(table_name(&ci.table_name)).or_default();
                table.indexes.push(index);
            }
            Statement::Drop {
                object_type: ObjectType::Table,
                names,
                ..
            } => {
                for name in names {
                    self.tables.remove(&table_name(name));
                }
            }
            Statement::Drop {
                object_type: ObjectType::Index,
                names,
                ..
            } => {
                for name in names.iter().map(table_name) {
                    for table in self.tables.values_mut() {
                        table.drop_index(&name);
                    }
                }
            }
            _ => {}
        }
    }
}

impl Table {
    fn add_column(&mut self, column: &ColumnDef) {
        let name = ident(&column.name);
        for option in &column.options {
            if let ColumnOption::PrimaryKey(_) | ColumnOption::Unique(_) = option.option {
                self.indexes.push(Index {
                    name: option.name.as_ref().map(ident),
                    columns: vec![name.clone()],
                });
            }
        }
        self.columns.insert(name, column.data_type.clone());
    }

    fn add_constraint(&mut self, constraint: &TableConstraint) {
        let (name, columns) = match constraint {
            TableConstraint::PrimaryKey(pk) => (&pk.name, &pk.columns),
            TableConstraint::Unique(u) => (&u.name, &u.columns),
            _ => return,
        };
        self.indexes.push(Index {
            name: name.as_ref().map(ident),
            columns: index_columns(columns),
        });
    }

    fn alter(&mut self, op: &AlterTableOperation) {
        match op {
            AlterTableOperation::AddColumn { column_def, .. } => self.add_column(column_def),
            AlterTableOperation::AddConstraint { constraint, .. } => {
                self.add_constraint(constraint);
            }
            AlterTableOperation::DropConstraint { name, .. } => self.drop_index(&ident(name)),
            AlterTableOperation::DropColumn { column_names, .. } => {
                for column in column_names.iter().map(ident) {
                    self.columns.remove(&column);
                    // The database drops the indexes that use the column with it.
                    self.indexes.retain(|i| !i.columns.contains(&column));
                }
            }
            AlterTableOperation::RenameColumn {
                old_column_name,
                new_column_name,
            } => {
                let (old, new) = (ident(old_column_name), ident(new_column_name));
                if let Some(ty) = self.columns.remove(&old) {
                    self.columns.insert(new.clone(), ty);
                }
                for column in self.indexes.iter_mut().flat_map(|i| &mut i.columns) {
                    if *column == old {
                        column.clone_from(&new);
                    }
                }
            }
            AlterTableOperation::AlterColumn {
                column_name,
                op: AlterColumnOperation::SetDataType { data_type, .. },
            } => {
                self.columns.insert(ident(column_name), data_type.clone());
            }
            _ => {}
        }
    }

    fn drop_index(&mut self, name: &str) {
        self.indexes.retain(|i| i.name.as_deref() != Some(name));
    }
}

/// An identifier as the database stores it: unquoted ones are folded to lower case.
pub fn ident(i: &Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

/// The last part of a (possibly schema-qualified) name: migrations seldom use two
/// schemas with the same table names, and a qualified and a bare reference to one
/// table must meet.
pub fn table_name(name: &ObjectName) -> String {
    match name.0.last() {
        Some(ObjectNamePart::Identifier(i)) => ident(i),
        _ => name.to_string(),
    }
}

fn index_columns(columns: &[IndexColumn]) -> Vec<String> {
    columns
        .iter()
        .map_while(|c| match &c.column.expr {
            Expr::Identifier(i) => Some(ident(i)),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;

    fn schema(sql: &str) -> Schema {
        let mut s = Schema::default();
        for stmt in Parser::parse_sql(&PostgreSqlDialect {}, sql).expect("test SQL parses") {
            s.apply(&stmt);
        }
        s
    }

    fn cols(c: &[&str]) -> Vec<String> {
        c.iter().map(|c| (*c).to_owned()).collect()
    }

    #[test]
    fn records_column_types_through_adds_renames_and_type_changes() {
        let s = schema(
            "CREATE TABLE Users (id int PRIMARY KEY, name varchar(10));
             ALTER TABLE users ADD COLUMN email text;
             ALTER TABLE users RENAME COLUMN name TO full_name;
             ALTER TABLE public.users ALTER COLUMN email TYPE varchar(50);
             ALTER TABLE users RENAME TO people;",
        );
        assert!(!s.has_table("users"));
        assert_eq!(
            s.column_type("people", "full_name")
                .map(ToString::to_string),
            Some("VARCHAR(10)".into())
        );
        assert_eq!(
            s.column_type("people", "email").map(ToString::to_string),
            Some("VARCHAR(50)".into())
        );
        assert!(s.column_type("people", "name").is_none());
    }

    #[test]
    fn new_tables_are_those_of_the_current_file() {
        let mut s = schema("CREATE TABLE a (id int); CREATE TABLE b (id int);");
        assert!(s.is_new("a"));
        s.start_file();
        assert!(!s.is_new("a"));
        s.apply(
            &Parser::parse_sql(
                &PostgreSqlDialect {},
                "CREATE TABLE IF NOT EXISTS a (x int)",
            )
            .expect("parses")[0],
        );
        assert!(
            !s.is_new("a"),
            "IF NOT EXISTS on an existing table creates nothing"
        );
        assert!(!s.is_new("never_created"));
    }

    #[test]
    fn composite_keys_are_covered_only_by_an_index_starting_with_them() {
        let s = schema(
            "CREATE TABLE t (a int, b int, c int, d int, PRIMARY KEY (a, b));
             CREATE INDEX t_cd ON t (c, lower(d::text), d);
             CREATE INDEX t_d ON t (d) WHERE d > 0;",
        );
        assert!(s.covers("t", &cols(&["a"])));
        assert!(s.covers("t", &cols(&["b", "a"])));
        assert!(!s.covers("t", &cols(&["b"])));
        assert!(s.covers("t", &cols(&["c"])));
        assert!(
            !s.covers("t", &cols(&["c", "d"])),
            "an expression ends the index's columns"
        );
        assert!(
            !s.covers("t", &cols(&["d"])),
            "a partial index does not count"
        );
    }

    #[test]
    fn dropping_a_column_index_or_constraint_removes_its_index() {
        let s = schema(
            "CREATE TABLE t (a int, b int, c int, CONSTRAINT t_c UNIQUE (c));
             CREATE INDEX t_a ON t (a);
             CREATE INDEX t_b ON t (b);
             DROP INDEX t_a;
             ALTER TABLE t DROP COLUMN b;
             ALTER TABLE t DROP CONSTRAINT t_c;",
        );
        assert!(!s.covers("t", &cols(&["a"])));
        assert!(!s.covers("t", &cols(&["b"])));
        assert!(!s.covers("t", &cols(&["c"])));
    }
}
