//! The schema the up files have built so far, as far as the rules need it, in terms of
//! neither parser: each table's columns and types, the columns its indexes start with,
//! its validated `CHECK (col IS NOT NULL)` constraints, and which tables and other
//! objects are new. A new object was created by the file being linted, or by an earlier
//! migration not yet applied that the same `migrate up` runs first: it is empty, and no
//! running code uses it, so what would lock, rewrite or break a live one is harmless.

use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Default)]
pub struct Schema {
    tables: BTreeMap<String, Table>,
    /// Objects other than tables (views, types, functions, …) that are new, by kind.
    new_objects: BTreeSet<(&'static str, String)>,
    /// Which index belongs to which table, so a DROP INDEX finds its table.
    index_tables: BTreeMap<String, String>,
}

/// A column type as PostgreSQL names it internally (`int4`, `varchar`, `numeric`, …),
/// with its modifiers (`varchar(20)` has `[20]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnType {
    pub name: String,
    pub mods: Vec<i64>,
    pub array: bool,
}

impl std::fmt::Display for ColumnType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        if !self.mods.is_empty() {
            let mods: Vec<_> = self.mods.iter().map(ToString::to_string).collect();
            write!(f, "({})", mods.join(", "))?;
        }
        if self.array {
            f.write_str("[]")?;
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Table {
    columns: BTreeMap<String, Option<ColumnType>>,
    indexes: Vec<Index>,
    /// Validated `CHECK (col IS NOT NULL)` constraints: name → column.
    not_null_checks: BTreeMap<String, String>,
    /// Those added `NOT VALID`, until they are validated.
    unvalidated_not_null_checks: BTreeMap<String, String>,
    /// Constraints added `NOT VALID` by the file being linted.
    not_valid_here: BTreeSet<String>,
    /// Constraints added by the file being linted (or a pending one).
    new_constraints: BTreeSet<String>,
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
    /// A new up file starts. When the previous file is already applied (or that is not
    /// known), what it created is now live; when it is pending, it runs just before
    /// this one in the same `migrate up`, so its objects stay new.
    pub fn start_file(&mut self, previous_pending: bool) {
        for table in self.tables.values_mut() {
            table.not_valid_here.clear();
            if !previous_pending {
                table.new = false;
                table.new_constraints.clear();
            }
        }
        if !previous_pending {
            self.new_objects.clear();
        }
    }

    pub fn is_new(&self, table: &str) -> bool {
        self.tables.get(table).is_some_and(|t| t.new)
    }

    pub fn has_table(&self, table: &str) -> bool {
        self.tables.contains_key(table)
    }

    pub fn column_type(&self, table: &str, column: &str) -> Option<&ColumnType> {
        self.tables.get(table)?.columns.get(column)?.as_ref()
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

    /// Whether a validated `CHECK (column IS NOT NULL)` stands on the column.
    pub fn has_not_null_check(&self, table: &str, column: &str) -> bool {
        self.tables
            .get(table)
            .is_some_and(|t| t.not_null_checks.values().any(|c| c == column))
    }

    /// Whether the file being linted added this constraint `NOT VALID`.
    pub fn added_not_valid_here(&self, table: &str, constraint: &str) -> bool {
        self.tables
            .get(table)
            .is_some_and(|t| t.not_valid_here.contains(constraint))
    }

    pub fn is_new_constraint(&self, table: &str, constraint: &str) -> bool {
        self.tables
            .get(table)
            .is_some_and(|t| t.new || t.new_constraints.contains(constraint))
    }

    /// The table an index belongs to, when the migrations show it.
    pub fn index_table(&self, index: &str) -> Option<&str> {
        self.index_tables.get(index).map(String::as_str)
    }

    pub fn is_new_object(&self, kind: &'static str, name: &str) -> bool {
        self.new_objects.contains(&(kind, name.to_owned()))
    }

    // What statements do to the schema.

    pub fn create_table(&mut self, name: &str, if_not_exists: bool) {
        if if_not_exists && self.tables.contains_key(name) {
            return;
        }
        self.tables.insert(
            name.to_owned(),
            Table {
                new: true,
                ..Table::default()
            },
        );
    }

    pub fn drop_table(&mut self, name: &str) {
        self.tables.remove(name);
        self.index_tables.retain(|_, t| t != name);
    }

    pub fn rename_table(&mut self, from: &str, to: &str) {
        let table = self.tables.remove(from).unwrap_or_default();
        self.tables.insert(to.to_owned(), table);
        for t in self.index_tables.values_mut() {
            if t == from {
                *t = to.to_owned();
            }
        }
    }

    pub fn add_column(&mut self, table: &str, column: &str, ty: Option<ColumnType>) {
        self.table(table).columns.insert(column.to_owned(), ty);
    }

    pub fn set_column_type(&mut self, table: &str, column: &str, ty: ColumnType) {
        self.table(table)
            .columns
            .insert(column.to_owned(), Some(ty));
    }

    pub fn drop_column(&mut self, table: &str, column: &str) {
        let t = self.table(table);
        t.columns.remove(column);
        // The database drops the indexes and checks that use the column with it.
        t.indexes.retain(|i| !i.columns.iter().any(|c| c == column));
        t.not_null_checks.retain(|_, c| c != column);
        t.unvalidated_not_null_checks.retain(|_, c| c != column);
    }

    pub fn rename_column(&mut self, table: &str, from: &str, to: &str) {
        let t = self.table(table);
        if let Some(ty) = t.columns.remove(from) {
            t.columns.insert(to.to_owned(), ty);
        }
        for column in t
            .indexes
            .iter_mut()
            .flat_map(|i| &mut i.columns)
            .chain(t.not_null_checks.values_mut())
            .chain(t.unvalidated_not_null_checks.values_mut())
        {
            if column == from {
                *column = to.to_owned();
            }
        }
    }

    /// An index (or a primary key or unique constraint, which has one).
    pub fn add_index(&mut self, table: &str, name: Option<&str>, columns: Vec<String>) {
        if let Some(name) = name {
            self.index_tables.insert(name.to_owned(), table.to_owned());
        }
        self.table(table).indexes.push(Index {
            name: name.map(str::to_owned),
            columns,
        });
    }

    pub fn rename_index(&mut self, from: &str, to: &str) {
        if let Some(table) = self.index_tables.remove(from) {
            self.index_tables.insert(to.to_owned(), table);
        }
        for index in self.tables.values_mut().flat_map(|t| &mut t.indexes) {
            if index.name.as_deref() == Some(from) {
                index.name = Some(to.to_owned());
            }
        }
    }

    /// Drops an index, or a constraint, by name, wherever it is.
    pub fn drop_index(&mut self, name: &str) {
        self.index_tables.remove(name);
        for table in self.tables.values_mut() {
            table.indexes.retain(|i| i.name.as_deref() != Some(name));
        }
    }

    /// A constraint added to `table`; `not_null_check` names the column of a
    /// `CHECK (col IS NOT NULL)`.
    pub fn add_constraint(
        &mut self,
        table: &str,
        name: &str,
        validated: bool,
        not_null_check: Option<&str>,
    ) {
        let t = self.table(table);
        t.new_constraints.insert(name.to_owned());
        if !validated {
            t.not_valid_here.insert(name.to_owned());
        }
        if let Some(column) = not_null_check {
            let checks = if validated {
                &mut t.not_null_checks
            } else {
                &mut t.unvalidated_not_null_checks
            };
            checks.insert(name.to_owned(), column.to_owned());
        }
    }

    pub fn validate_constraint(&mut self, table: &str, name: &str) {
        let t = self.table(table);
        if let Some(column) = t.unvalidated_not_null_checks.remove(name) {
            t.not_null_checks.insert(name.to_owned(), column);
        }
    }

    pub fn drop_constraint(&mut self, table: &str, name: &str) {
        let t = self.table(table);
        t.not_null_checks.remove(name);
        t.unvalidated_not_null_checks.remove(name);
        self.drop_index(name);
    }

    pub fn create_object(&mut self, kind: &'static str, name: &str) {
        self.new_objects.insert((kind, name.to_owned()));
    }

    fn table(&mut self, name: &str) -> &mut Table {
        self.tables.entry(name.to_owned()).or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(c: &[&str]) -> Vec<String> {
        c.iter().map(|c| (*c).to_owned()).collect()
    }

    fn ty(name: &str, mods: &[i64]) -> ColumnType {
        ColumnType {
            name: name.into(),
            mods: mods.to_vec(),
            array: false,
        }
    }

    #[test]
    fn records_column_types_through_adds_renames_and_type_changes() {
        let mut s = Schema::default();
        s.create_table("users", false);
        s.add_column("users", "name", Some(ty("varchar", &[10])));
        s.rename_column("users", "name", "full_name");
        s.add_column("users", "email", None);
        s.set_column_type("users", "email", ty("varchar", &[50]));
        s.rename_table("users", "people");
        assert!(!s.has_table("users"));
        assert_eq!(
            s.column_type("people", "full_name"),
            Some(&ty("varchar", &[10]))
        );
        assert_eq!(
            s.column_type("people", "email").map(ToString::to_string),
            Some("varchar(50)".into())
        );
        assert!(s.column_type("people", "name").is_none());
    }

    #[test]
    fn new_tables_and_objects_are_those_of_the_current_file_or_a_pending_one() {
        let mut s = Schema::default();
        s.create_table("a", false);
        s.create_object("view", "v");
        assert!(s.is_new("a") && s.is_new_object("view", "v"));
        s.start_file(true);
        assert!(
            s.is_new("a") && s.is_new_object("view", "v"),
            "a pending file's objects stay new"
        );
        s.start_file(false);
        assert!(!s.is_new("a") && !s.is_new_object("view", "v"));
        s.create_table("a", true);
        assert!(
            !s.is_new("a"),
            "IF NOT EXISTS on an existing table creates nothing"
        );
        assert!(!s.is_new("never_created"));
    }

    #[test]
    fn composite_keys_are_covered_only_by_an_index_starting_with_them() {
        let mut s = Schema::default();
        s.add_index("t", None, cols(&["a", "b"]));
        s.add_index("t", Some("t_c"), cols(&["c"]));
        assert!(s.covers("t", &cols(&["a"])));
        assert!(s.covers("t", &cols(&["b", "a"])));
        assert!(!s.covers("t", &cols(&["b"])));
        assert!(!s.covers("t", &cols(&["c", "d"])));
        s.drop_index("t_c");
        assert!(!s.covers("t", &cols(&["c"])));
        s.drop_column("t", "b");
        assert!(
            !s.covers("t", &cols(&["a"])),
            "the column's indexes go with it"
        );
    }

    #[test]
    fn a_not_null_check_counts_once_validated_and_until_dropped() {
        let mut s = Schema::default();
        s.create_table("t", false);
        s.add_constraint("t", "t_c_nn", false, Some("c"));
        assert!(s.added_not_valid_here("t", "t_c_nn"));
        assert!(!s.has_not_null_check("t", "c"), "not yet validated");
        s.validate_constraint("t", "t_c_nn");
        assert!(s.has_not_null_check("t", "c"));
        s.start_file(false);
        assert!(!s.added_not_valid_here("t", "t_c_nn"));
        s.rename_column("t", "c", "d");
        assert!(s.has_not_null_check("t", "d"));
        s.drop_constraint("t", "t_c_nn");
        assert!(!s.has_not_null_check("t", "d"));
    }
}
