//! The PostgreSQL rules: what one parsed statement of an up file breaks, judged against
//! the schema the statements before it built, and what it changes in that schema.

use pg_query::NodeEnum;
use pg_query::protobuf::{
    AlterTableCmd, AlterTableType, ColumnDef, ConstrType, Constraint, DropBehavior, Node,
    NullTestType, ObjectType, RangeVar, Token, TransactionStmtKind,
};

use super::super::catalog::*;
use super::super::model::Schema;
use super::super::{ForeignKey, Hit};
use super::types::{column_type, is_serial, rewrites, volatile_call};
use super::{PgStatement, last_name, names, tokens};

/// Where a statement is: its first token, and what its nodes' locations count from.
#[derive(Clone, Copy)]
pub struct Place {
    pub offset: usize,
    pub base: usize,
}

impl Place {
    /// The file offset of a node's location, or the statement's when it has none.
    fn of(self, location: i32) -> usize {
        usize::try_from(location).map_or(self.offset, |l| self.base + l)
    }
}

/// What a file has set so far that later statements depend on.
pub struct File {
    no_transaction: bool,
    lock_timeout: bool,
    statement_timeout: bool,
    timeouts_checked: bool,
    /// Dropped functions and views, judged at the end of the file: one created again
    /// under the same name in the same transaction was replaced, and no code saw it
    /// missing.
    dropped: Vec<(&'static str, String, Hit)>,
    /// Functions and views created by this file, each after how many drops.
    created: Vec<(&'static str, String, usize)>,
}

impl File {
    pub fn new(no_transaction: bool) -> File {
        File {
            no_transaction,
            lock_timeout: false,
            statement_timeout: false,
            timeouts_checked: false,
            dropped: Vec::new(),
            created: Vec::new(),
        }
    }

    /// The drops that were not replacements: created again after the drop, in the
    /// same transaction.
    pub fn finish(self) -> Vec<Hit> {
        let File {
            no_transaction,
            dropped,
            created,
            ..
        } = self;
        dropped
            .into_iter()
            .enumerate()
            .filter(|(i, (kind, name, _))| {
                no_transaction
                    || !created
                        .iter()
                        .any(|(k, n, after)| k == kind && n == name && after > i)
            })
            .map(|(_, (.., hit))| hit)
            .collect()
    }

    fn created(&mut self, kind: &'static str, name: String) {
        let drops = self.dropped.len();
        self.created.push((kind, name, drops));
    }
}

/// `BEGIN`, `COMMIT` and their kin: the engine owns the transaction.
pub fn transaction_control(node: &NodeEnum, at: Place) -> Option<Hit> {
    let NodeEnum::TransactionStmt(t) = node else {
        return None;
    };
    let what = match t.kind() {
        TransactionStmtKind::TransStmtBegin | TransactionStmtKind::TransStmtStart => "BEGIN",
        TransactionStmtKind::TransStmtCommit => "COMMIT",
        TransactionStmtKind::TransStmtRollback => "ROLLBACK",
        TransactionStmtKind::TransStmtSavepoint => "SAVEPOINT",
        TransactionStmtKind::TransStmtRelease => "RELEASE",
        TransactionStmtKind::TransStmtRollbackTo => "ROLLBACK TO",
        _ => "a two-phase commit",
    };
    Some(Hit::at(
        &TRANSACTION_NESTING,
        at.offset,
        format!(
            "`{what}` in a migration: remove it; the engine runs each migration in its own \
             transaction (or none, with `-- palisade:no-transaction`)"
        ),
    ))
}

fn relname(r: &Option<RangeVar>) -> String {
    r.as_ref().map(|r| r.relname.clone()).unwrap_or_default()
}

fn node(n: &Option<Box<Node>>) -> Option<&NodeEnum> {
    n.as_ref().and_then(|n| n.node.as_ref())
}

/// The commands of an `ALTER TABLE`.
fn commands(a: &pg_query::protobuf::AlterTableStmt) -> impl Iterator<Item = &AlterTableCmd> {
    a.cmds.iter().filter_map(|c| match &c.node {
        Some(NodeEnum::AlterTableCmd(cmd)) => Some(cmd.as_ref()),
        _ => None,
    })
}

fn constraints(column: &ColumnDef) -> impl Iterator<Item = &Constraint> {
    column.constraints.iter().filter_map(|n| match &n.node {
        Some(NodeEnum::Constraint(c)) => Some(c.as_ref()),
        _ => None,
    })
}

fn has(column: &ColumnDef, kind: ConstrType) -> bool {
    constraints(column).any(|c| c.contype() == kind)
}

/// The name an object of a DROP is known by: the last part of its qualified name.
fn object_name(n: &Node) -> String {
    match &n.node {
        Some(NodeEnum::List(l)) => last_name(&l.items),
        Some(NodeEnum::String(s)) => s.sval.clone(),
        Some(NodeEnum::TypeName(t)) => last_name(&t.names),
        Some(NodeEnum::ObjectWithArgs(o)) => last_name(&o.objname),
        _ => String::new(),
    }
}

/// The column a `CHECK (col IS NOT NULL)` is about.
fn not_null_check(c: &Constraint) -> Option<String> {
    let Some(NodeEnum::NullTest(t)) = node(&c.raw_expr) else {
        return None;
    };
    if t.nulltesttype() != NullTestType::IsNotNull {
        return None;
    }
    match node(&t.arg) {
        Some(NodeEnum::ColumnRef(r)) if r.fields.len() == 1 => names(&r.fields).pop(),
        _ => None,
    }
}

/// What `stmt` breaks, `schema` being the schema before it.
pub fn check(stmt: &NodeEnum, at: Place, schema: &Schema, file: &mut File) -> Vec<Hit> {
    let mut hits = Vec::new();
    let mut locks_live_table = false;
    let hit = |rule, message: String| Hit::at(rule, at.offset, message);
    match stmt {
        NodeEnum::VariableSetStmt(v) => {
            // `SET lock_timeout = 0` turns the limit off.
            let off = v.args.iter().any(|a| match &a.node {
                Some(NodeEnum::AConst(c)) => {
                    matches!(
                        &c.val,
                        Some(pg_query::protobuf::a_const::Val::Ival(i)) if i.ival == 0
                    ) || matches!(
                        &c.val,
                        Some(pg_query::protobuf::a_const::Val::Sval(s)) if s.sval.trim() == "0"
                    )
                }
                _ => false,
            });
            match v.name.as_str() {
                "lock_timeout" => file.lock_timeout = !off && !v.args.is_empty(),
                "statement_timeout" => file.statement_timeout = !off && !v.args.is_empty(),
                _ => {}
            }
        }
        NodeEnum::CreateStmt(c) => {
            let table = relname(&c.relation);
            let columns: Vec<&ColumnDef> = c
                .table_elts
                .iter()
                .filter_map(|e| match &e.node {
                    Some(NodeEnum::ColumnDef(d)) => Some(d.as_ref()),
                    _ => None,
                })
                .collect();
            let mut keys: Vec<String> = Vec::new();
            for e in &c.table_elts {
                if let Some(NodeEnum::Constraint(k)) = &e.node {
                    match k.contype() {
                        ConstrType::ConstrPrimary => keys.extend(names(&k.keys)),
                        ConstrType::ConstrForeign => keys.extend(names(&k.fk_attrs)),
                        _ => {}
                    }
                }
            }
            for d in &columns {
                let key = keys.contains(&d.colname);
                check_column_type(&table, d, key, at, &mut hits);
            }
            duplicates(
                columns.iter().map(|d| d.colname.as_str()),
                &format!("table `{table}` declares"),
                at,
                &mut hits,
            );
            robust(
                file,
                !c.if_not_exists,
                "CREATE TABLE",
                "IF NOT EXISTS",
                at,
                &mut hits,
            );
        }
        NodeEnum::AlterTableStmt(a) if a.objtype() == ObjectType::ObjectTable => {
            let table = relname(&a.relation);
            let new = schema.is_new(&table);
            locks_live_table = !new;
            for cmd in commands(a) {
                check_alter(&table, new, cmd, at, schema, file, &mut hits);
            }
        }
        // ALTER TYPE … ALTER ATTRIBUTE … TYPE: no table is rewritten, but functions and
        // code reading the composite type see another type.
        NodeEnum::AlterTableStmt(a) if a.objtype() == ObjectType::ObjectType => {
            let ty = relname(&a.relation);
            for cmd in commands(a) {
                if cmd.subtype() == AlterTableType::AtAlterColumnType
                    && !schema.is_new_object("type", &ty)
                {
                    hits.push(hit(
                        &CHANGING_COLUMN_TYPE,
                        format!(
                            "attribute `{}` of composite type `{ty}` changes type: code and \
                             functions reading the type may break",
                            cmd.name
                        ),
                    ));
                }
            }
        }
        NodeEnum::IndexStmt(i) => {
            let table = relname(&i.relation);
            let index = if i.idxname.is_empty() {
                "(unnamed)"
            } else {
                &i.idxname
            };
            if i.concurrent {
                in_transaction(file, "CREATE INDEX CONCURRENTLY", at, &mut hits);
            } else if !schema.is_new(&table) {
                locks_live_table = true;
                hits.push(hit(
                    &REQUIRE_CONCURRENT_INDEX_CREATION,
                    format!(
                        "index `{index}` on existing table `{table}` is built without \
                         CONCURRENTLY: use CREATE INDEX CONCURRENTLY in a \
                         `-- palisade:no-transaction` file"
                    ),
                ));
            }
            robust(
                file,
                !i.if_not_exists,
                "CREATE INDEX",
                "IF NOT EXISTS",
                at,
                &mut hits,
            );
        }
        NodeEnum::DropStmt(d) => {
            let kind = d.remove_type();
            for name in d.objects.iter().map(object_name) {
                let (rule, what) = match kind {
                    ObjectType::ObjectTable => {
                        if schema.is_new(&name) {
                            continue;
                        }
                        locks_live_table = true;
                        (&BAN_DROP_TABLE, "table")
                    }
                    ObjectType::ObjectIndex => {
                        if d.concurrent {
                            in_transaction(file, "DROP INDEX CONCURRENTLY", at, &mut hits);
                            continue;
                        }
                        let table = schema.index_table(&name);
                        if table.is_some_and(|t| schema.is_new(t)) {
                            continue;
                        }
                        locks_live_table = true;
                        let on = table.map_or(String::new(), |t| format!(" on `{t}`"));
                        hits.push(hit(
                            &REQUIRE_CONCURRENT_INDEX_DELETION,
                            format!(
                                "index `{name}`{on} is dropped without CONCURRENTLY: use DROP \
                                 INDEX CONCURRENTLY in a `-- palisade:no-transaction` file"
                            ),
                        ));
                        continue;
                    }
                    ObjectType::ObjectView | ObjectType::ObjectMatview => (&BAN_DROP_VIEW, "view"),
                    ObjectType::ObjectFunction | ObjectType::ObjectProcedure => {
                        (&BAN_DROP_FUNCTION, "function")
                    }
                    ObjectType::ObjectType => (&BAN_DROP_TYPE, "type"),
                    ObjectType::ObjectSchema => (&BAN_DROP_SCHEMA, "schema"),
                    ObjectType::ObjectSequence => (&BAN_DROP_SEQUENCE, "sequence"),
                    ObjectType::ObjectDomain => (&BAN_DROP_DOMAIN, "domain"),
                    ObjectType::ObjectExtension => (&BAN_DROP_EXTENSION, "extension"),
                    _ => continue,
                };
                if kind != ObjectType::ObjectTable && schema.is_new_object(what, &name) {
                    continue;
                }
                let dropped = hit(
                    rule,
                    format!(
                        "{what} `{name}` is dropped: first stop the code using it, then drop it \
                         in a later release"
                    ),
                );
                if matches!(what, "function" | "view") {
                    file.dropped.push((what, name, dropped));
                } else {
                    hits.push(dropped);
                }
            }
            robust(file, !d.missing_ok, "DROP", "IF EXISTS", at, &mut hits);
        }
        NodeEnum::DropdbStmt(d) => hits.push(hit(
            &BAN_DROP_DATABASE,
            format!(
                "database `{}` is dropped: do that by hand, not in a migration",
                d.dbname
            ),
        )),
        NodeEnum::TruncateStmt(t) => {
            locks_live_table = t.relations.iter().any(
                |r| !matches!(&r.node, Some(NodeEnum::RangeVar(v)) if schema.is_new(&v.relname)),
            );
            if t.behavior() == DropBehavior::DropCascade {
                hits.push(hit(
                    &BAN_TRUNCATE_CASCADE,
                    "TRUNCATE … CASCADE also empties every table that references these: \
                     name each table to empty instead"
                        .into(),
                ));
            }
        }
        NodeEnum::RenameStmt(r) => check_rename(r, at, schema, &mut hits, &mut locks_live_table),
        NodeEnum::AlterEnumStmt(e) => {
            let ty = last_name(&e.type_name);
            if !e.old_val.is_empty() {
                hits.push(hit(
                    &RENAMING_OBJECT,
                    format!(
                        "value '{}' of enum `{ty}` is renamed to '{}': code still using the old \
                         value fails",
                        e.old_val, e.new_val
                    ),
                ));
            } else if e.new_val_neighbor.is_empty() && !schema.is_new_object("type", &ty) {
                hits.push(hit(
                    &REQUIRE_ENUM_VALUE_ORDERING,
                    format!(
                        "value '{}' is appended to enum `{ty}`: say BEFORE or AFTER which value \
                         it goes, so comparisons keep their meaning",
                        e.new_val
                    ),
                ));
            }
        }
        NodeEnum::AlterObjectSchemaStmt(s) => {
            let (name, new) = match &s.relation {
                Some(r) => (r.relname.clone(), schema.is_new(&r.relname)),
                None => {
                    let name = s.object.as_deref().map(object_name).unwrap_or_default();
                    let new = schema.is_new_object(kind_key(s.object_type()), &name);
                    (name, new)
                }
            };
            if new {
                return hits;
            }
            hits.push(hit(
                &BAN_SET_SCHEMA,
                format!(
                    "`{name}` moves to schema `{}`: code naming it by its old schema fails",
                    s.newschema
                ),
            ));
        }
        NodeEnum::CreateDomainStmt(d) => {
            let checks = d.constraints.iter().any(|c| {
                matches!(&c.node, Some(NodeEnum::Constraint(k)) if k.contype() == ConstrType::ConstrCheck)
            });
            if checks {
                let name = last_name(&d.domainname);
                hits.push(hit(
                    &BAN_CREATE_DOMAIN_WITH_CONSTRAINT,
                    format!(
                        "domain `{name}` has a CHECK: put the check on the columns (as a table \
                         constraint), where it can be changed NOT VALID"
                    ),
                ));
            }
        }
        NodeEnum::AlterDomainStmt(d) if d.subtype == "C" => {
            let validated =
                matches!(node(&d.def), Some(NodeEnum::Constraint(k)) if !k.skip_validation);
            if validated {
                let name = last_name(&d.type_name);
                hits.push(hit(
                    &BAN_ALTER_DOMAIN_WITH_ADD_CONSTRAINT,
                    format!(
                        "a constraint is added to domain `{name}` and checked against every \
                         column of the domain: add it NOT VALID, then VALIDATE CONSTRAINT \
                         later"
                    ),
                ));
            }
        }
        NodeEnum::ReindexStmt(r) => {
            let concurrent = r.params.iter().any(
                |p| matches!(&p.node, Some(NodeEnum::DefElem(d)) if d.defname == "concurrently"),
            );
            // REINDEX TABLE names the table, REINDEX INDEX the index.
            let name = relname(&r.relation);
            let new =
                schema.is_new(&name) || schema.index_table(&name).is_some_and(|t| schema.is_new(t));
            if concurrent {
                in_transaction(file, "REINDEX CONCURRENTLY", at, &mut hits);
            } else if !new {
                locks_live_table = true;
                hits.push(hit(
                    &REQUIRE_CONCURRENT_REINDEX,
                    "REINDEX without CONCURRENTLY blocks writes: use REINDEX … CONCURRENTLY in \
                     a `-- palisade:no-transaction` file"
                        .into(),
                ));
            }
        }
        NodeEnum::ClusterStmt(c)
            if !c
                .relation
                .as_ref()
                .is_some_and(|r| schema.is_new(&r.relname)) =>
        {
            locks_live_table = true;
            hits.push(hit(
                &PREFER_REPACK,
                "CLUSTER rewrites the table under an exclusive lock: use pg_repack, outside the \
                 migrations"
                    .into(),
            ));
        }
        NodeEnum::VacuumStmt(v) if v.is_vacuumcmd => {
            in_transaction(file, "VACUUM", at, &mut hits);
            let full = v
                .options
                .iter()
                .any(|o| matches!(&o.node, Some(NodeEnum::DefElem(d)) if d.defname == "full"));
            if full {
                locks_live_table = true;
                hits.push(hit(
                    &PREFER_REPACK,
                    "VACUUM FULL rewrites the table under an exclusive lock: use pg_repack, \
                     outside the migrations"
                        .into(),
                ));
            }
        }
        NodeEnum::UpdateStmt(u) => {
            let targets = u.target_list.iter().filter_map(whole_column);
            let table = relname(&u.relation);
            duplicates(
                targets,
                &format!("UPDATE of `{table}` assigns"),
                at,
                &mut hits,
            );
        }
        NodeEnum::InsertStmt(i) => {
            let targets = i.cols.iter().filter_map(whole_column);
            let table = relname(&i.relation);
            duplicates(
                targets,
                &format!("INSERT into `{table}` names"),
                at,
                &mut hits,
            );
        }
        NodeEnum::CreateFunctionStmt(f) => {
            file.created("function", last_name(&f.funcname));
        }
        NodeEnum::ViewStmt(v) => {
            let view = relname(&v.view);
            file.created("view", view.clone());
            let aliases = names(&v.aliases);
            duplicates(
                aliases.iter().map(String::as_str),
                &format!("view `{view}` declares"),
                at,
                &mut hits,
            );
        }
        _ => {}
    }
    if locks_live_table && !file.timeouts_checked {
        file.timeouts_checked = true;
        if !file.lock_timeout {
            hits.push(hit(
                &REQUIRE_LOCK_TIMEOUT,
                "this statement locks a live table with no lock_timeout set: put `SET \
                 lock_timeout = '2s';` before it, so a long query ahead makes the migration \
                 fail instead of queueing every query behind it"
                    .into(),
            ));
        }
        if !file.statement_timeout {
            hits.push(hit(
                &REQUIRE_STATEMENT_TIMEOUT,
                "this statement locks a live table with no statement_timeout set: put `SET \
                 statement_timeout = '…';` before it, so the lock is held for a bounded time"
                    .into(),
            ));
        }
    }
    hits
}

#[allow(clippy::too_many_lines)]
fn check_alter(
    table: &str,
    new: bool,
    cmd: &AlterTableCmd,
    at: Place,
    schema: &Schema,
    file: &File,
    hits: &mut Vec<Hit>,
) {
    let hit = |rule, message: String| Hit::at(rule, at.offset, message);
    let column = &cmd.name;
    match cmd.subtype() {
        AlterTableType::AtAddColumn => {
            let Some(NodeEnum::ColumnDef(d)) = node(&cmd.def) else {
                return;
            };
            let key = has(d, ConstrType::ConstrPrimary) || has(d, ConstrType::ConstrForeign);
            check_column_type(table, d, key, at, hits);
            robust(
                file,
                !cmd.missing_ok,
                "ADD COLUMN",
                "IF NOT EXISTS",
                at,
                hits,
            );
            if new {
                return;
            }
            check_added_column(table, d, at, hits);
        }
        AlterTableType::AtAddConstraint if !new => {
            let Some(NodeEnum::Constraint(c)) = node(&cmd.def) else {
                return;
            };
            let name = if c.conname.is_empty() {
                "(unnamed)"
            } else {
                &c.conname
            };
            match c.contype() {
                ConstrType::ConstrPrimary if c.indexname.is_empty() => hits.push(hit(
                    &ADDING_SERIAL_PRIMARY_KEY_FIELD,
                    format!(
                        "primary key `{name}` on existing table `{table}` builds its index under \
                         an exclusive lock: CREATE UNIQUE INDEX CONCURRENTLY, then ADD PRIMARY \
                         KEY USING INDEX"
                    ),
                )),
                ConstrType::ConstrUnique if c.indexname.is_empty() => hits.push(hit(
                    &DISALLOWED_UNIQUE_CONSTRAINT,
                    format!(
                        "unique constraint `{name}` on existing table `{table}` builds its index \
                         under a lock: CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT … \
                         UNIQUE USING INDEX"
                    ),
                )),
                ConstrType::ConstrForeign if !c.skip_validation => hits.push(hit(
                    &ADDING_FOREIGN_KEY_CONSTRAINT,
                    format!(
                        "foreign key `{name}` on existing table `{table}` is validated under a \
                         lock on both tables: add it NOT VALID, then VALIDATE CONSTRAINT in a \
                         later migration"
                    ),
                )),
                ConstrType::ConstrNotnull if !c.skip_validation => {
                    let column = last_name(&c.keys);
                    if !schema.has_not_null_check(table, &column) {
                        hits.push(hit(
                            &ADDING_NOT_NULLABLE_FIELD,
                            format!(
                                "NOT NULL constraint on `{table}.{column}` scans the table under \
                                 an exclusive lock: add CHECK ({column} IS NOT NULL) NOT VALID \
                                 and VALIDATE it in a later migration first"
                            ),
                        ));
                    }
                }
                ConstrType::ConstrExclusion => hits.push(hit(
                    &DISALLOWED_UNIQUE_CONSTRAINT,
                    format!(
                        "exclusion constraint `{name}` on existing table `{table}` builds its \
                         index under a lock that blocks writes"
                    ),
                )),
                ConstrType::ConstrCheck if !c.skip_validation => hits.push(hit(
                    &CONSTRAINT_MISSING_NOT_VALID,
                    format!(
                        "check `{name}` on existing table `{table}` is validated under a lock: \
                         add it NOT VALID, then VALIDATE CONSTRAINT in a later migration"
                    ),
                )),
                _ => {}
            }
        }
        AlterTableType::AtValidateConstraint
            if !new && !file.no_transaction && schema.added_not_valid_here(table, column) =>
        {
            hits.push(hit(
                &CONSTRAINT_MISSING_NOT_VALID,
                format!(
                    "constraint `{column}` is validated in the same transaction that added it \
                     NOT VALID, so the scan runs under the add's lock: validate it in a later \
                     migration"
                ),
            ));
        }
        AlterTableType::AtAlterColumnType => {
            let Some(NodeEnum::ColumnDef(d)) = node(&cmd.def) else {
                return;
            };
            let Some(t) = &d.type_name else { return };
            let mut retyped = (**d).clone();
            retyped.colname.clone_from(column);
            check_column_type(table, &retyped, false, at, hits);
            if new {
                return;
            }
            let to = column_type(t);
            let old = schema.column_type(table, column);
            // A USING expression computes every value anew.
            let using = d.raw_default.is_some();
            if using || old.is_none_or(|old| rewrites(old, &to)) {
                let from = match old {
                    None => "a type the earlier migrations do not show".into(),
                    Some(t) if *t == to => format!("`{t}` (computed anew by USING)"),
                    Some(t) => format!("`{t}`"),
                };
                hits.push(hit(
                    &CHANGING_COLUMN_TYPE,
                    format!(
                        "column `{table}.{column}` changes from {from} to `{to}`, which rewrites \
                         the table: add a new column, backfill it, and switch the code over"
                    ),
                ));
            }
        }
        AlterTableType::AtDropColumn if !new => hits.push(hit(
            &BAN_DROP_COLUMN,
            format!(
                "column `{table}.{column}` is dropped: first stop the code using it, then drop \
                 it in a later release"
            ),
        )),
        AlterTableType::AtDropConstraint if !schema.is_new_constraint(table, column) => {
            hits.push(hit(
                &BAN_DROP_CONSTRAINT,
                format!(
                    "constraint `{column}` of `{table}` is dropped: make sure no code relies on \
                     it, and that the data it kept out may come in"
                ),
            ));
        }
        AlterTableType::AtColumnDefault if !new && cmd.def.is_none() => hits.push(hit(
            &BAN_DROP_DEFAULT,
            format!(
                "the default of `{table}.{column}` is dropped: inserts that leave the column out \
                 now store NULL or fail"
            ),
        )),
        AlterTableType::AtSetNotNull if !new && !schema.has_not_null_check(table, column) => {
            hits.push(hit(
                &ADDING_NOT_NULLABLE_FIELD,
                format!(
                    "SET NOT NULL on `{table}.{column}` scans the table under an exclusive lock: \
                     first add CHECK ({column} IS NOT NULL) NOT VALID and VALIDATE it in a \
                     later migration; SET NOT NULL then takes no scan"
                ),
            ));
        }
        AlterTableType::AtDropNotNull if !new => hits.push(hit(
            &BAN_DROP_NOT_NULL,
            format!(
                "`{table}.{column}` may be NULL from now on: make sure the code reading it \
                 copes first"
            ),
        )),
        AlterTableType::AtDetachPartition => {
            let concurrent =
                matches!(node(&cmd.def), Some(NodeEnum::PartitionCmd(p)) if p.concurrent);
            if concurrent {
                in_transaction(file, "DETACH PARTITION CONCURRENTLY", at, hits);
            } else if !new {
                hits.push(hit(
                    &REQUIRE_CONCURRENT_PARTITION_DETACH,
                    format!(
                        "a partition of `{table}` is detached without CONCURRENTLY: use DETACH \
                         PARTITION … CONCURRENTLY in a `-- palisade:no-transaction` file"
                    ),
                ));
            }
        }
        AlterTableType::AtAddIdentity
        | AlterTableType::AtSetIdentity
        | AlterTableType::AtDropIdentity
            if !new =>
        {
            hits.push(hit(
                &BAN_ALTER_IDENTITY,
                format!(
                    "the identity of `{table}.{column}` changes: inserts that give or leave out \
                     its value may fail"
                ),
            ));
        }
        _ => {}
    }
}

/// A column added to a live table: what filling its existing rows costs.
fn check_added_column(table: &str, d: &ColumnDef, at: Place, hits: &mut Vec<Hit>) {
    let hit = |rule, message: String| Hit::at(rule, at.offset, message);
    let column = &d.colname;
    let ty = d.type_name.as_ref().map(column_type);
    let serial = ty.as_ref().is_some_and(is_serial);
    let default = constraints(d).find(|c| c.contype() == ConstrType::ConstrDefault);
    let generated = constraints(d).find(|c| c.contype() == ConstrType::ConstrGenerated);
    let identity = has(d, ConstrType::ConstrIdentity);
    let filled = default.is_some() || generated.is_some() || identity || serial;
    if (has(d, ConstrType::ConstrNotnull) || d.is_not_null) && !filled {
        hits.push(hit(
            &ADDING_REQUIRED_FIELD,
            format!(
                "column `{table}.{column}` is added NOT NULL without a DEFAULT: add it with a \
                 DEFAULT, or nullable, backfill, then SET NOT NULL"
            ),
        ));
    }
    let rewrite = if let Some(g) = generated.filter(|g| g.generated_kind != "v") {
        let _ = g;
        Some("is a stored generated column, computed for every row".to_owned())
    } else if identity || serial {
        Some("takes its values from a sequence, one per existing row".to_owned())
    } else {
        default
            .and_then(|c| node(&c.raw_expr))
            .and_then(volatile_call)
            .map(|(f, known)| {
                if known {
                    format!("has a volatile default ({f}()), computed for every row")
                } else {
                    format!(
                        "has a default calling {f}(), which may be volatile and so computed \
                         for every row"
                    )
                }
            })
    };
    if let Some(why) = rewrite {
        hits.push(hit(
            &ADDING_FIELD_WITH_DEFAULT,
            format!(
                "column `{table}.{column}` {why}: the table is rewritten under an exclusive \
                 lock; add it without the default, set the default, then backfill in batches"
            ),
        ));
    }
    for c in constraints(d) {
        match c.contype() {
            ConstrType::ConstrPrimary => hits.push(hit(
                &ADDING_SERIAL_PRIMARY_KEY_FIELD,
                format!(
                    "column `{table}.{column}` is added as the primary key, whose index is built \
                     under an exclusive lock: add the column, CREATE UNIQUE INDEX \
                     CONCURRENTLY, then ADD PRIMARY KEY USING INDEX"
                ),
            )),
            ConstrType::ConstrUnique => hits.push(hit(
                &DISALLOWED_UNIQUE_CONSTRAINT,
                format!(
                    "column `{table}.{column}` is added UNIQUE, whose index is built under a \
                     lock: add the column, CREATE UNIQUE INDEX CONCURRENTLY, then ADD \
                     CONSTRAINT … UNIQUE USING INDEX"
                ),
            )),
            ConstrType::ConstrForeign => hits.push(hit(
                &ADDING_FOREIGN_KEY_CONSTRAINT,
                format!(
                    "column `{table}.{column}` is added with REFERENCES, validated under a lock \
                     on both tables: add the column, then the foreign key NOT VALID, then \
                     VALIDATE CONSTRAINT in a later migration"
                ),
            )),
            ConstrType::ConstrCheck => hits.push(hit(
                &CONSTRAINT_MISSING_NOT_VALID,
                format!(
                    "column `{table}.{column}` is added with a CHECK, validated against every \
                     row under a lock: add the check as a NOT VALID table constraint"
                ),
            )),
            _ => {}
        }
    }
}

/// The type rules, for a column declared or retyped; `key` says whether it is part of a
/// primary or foreign key, the columns whose integer width matters.
fn check_column_type(table: &str, d: &ColumnDef, key: bool, at: Place, hits: &mut Vec<Hit>) {
    let Some(t) = &d.type_name else { return };
    let ty = column_type(t);
    let column = &d.colname;
    let at = at.of(t.location);
    let hit = |rule, message: String| Hit::at(rule, at, message);
    let key = key
        || is_serial(&ty)
        || [
            ConstrType::ConstrIdentity,
            ConstrType::ConstrPrimary,
            ConstrType::ConstrForeign,
        ]
        .into_iter()
        .any(|k| has(d, k));
    match ty.name.as_str() {
        "timestamp" => hits.push(hit(
            &PREFER_TIMESTAMPTZ,
            format!("column `{table}.{column}` is `timestamp`: use `timestamptz`"),
        )),
        "bpchar" => hits.push(hit(
            &BAN_CHAR_FIELD,
            format!(
                "column `{table}.{column}` is `char`: use `text` (with a CHECK on its length if \
                 needed)"
            ),
        )),
        "varchar" if !ty.mods.is_empty() => hits.push(hit(
            &PREFER_TEXT_FIELD,
            format!("column `{table}.{column}` is `{ty}`: use `text` with a CHECK on its length"),
        )),
        _ => {}
    }
    if is_serial(&ty) {
        hits.push(hit(
            &PREFER_IDENTITY,
            format!(
                "column `{table}.{column}` is `{ty}`: use `bigint GENERATED ALWAYS AS IDENTITY`"
            ),
        ));
    }
    if key && !ty.array {
        match ty.name.as_str() {
            "int4" | "serial" => hits.push(hit(
                &PREFER_BIGINT_OVER_INT,
                format!("key column `{table}.{column}` is a 32-bit `{ty}`: use `bigint`"),
            )),
            "int2" | "smallserial" => hits.push(hit(
                &PREFER_BIGINT_OVER_SMALLINT,
                format!("key column `{table}.{column}` is a 16-bit `{ty}`: use `bigint`"),
            )),
            _ => {}
        }
    }
}

fn check_rename(
    r: &pg_query::protobuf::RenameStmt,
    at: Place,
    schema: &Schema,
    hits: &mut Vec<Hit>,
    locks_live_table: &mut bool,
) {
    let hit = |rule, message: String| Hit::at(rule, at.offset, message);
    let table = relname(&r.relation);
    match r.rename_type() {
        ObjectType::ObjectTable if !schema.is_new(&table) => {
            *locks_live_table = true;
            hits.push(hit(
                &RENAMING_TABLE,
                format!(
                    "table `{table}` is renamed to `{}`: create the new table (or a view), move \
                     the code over, and drop the old one later",
                    r.newname
                ),
            ));
        }
        ObjectType::ObjectColumn
            if r.relation_type() == ObjectType::ObjectTable && !schema.is_new(&table) =>
        {
            *locks_live_table = true;
            hits.push(hit(
                &RENAMING_COLUMN,
                format!(
                    "column `{table}.{}` is renamed to `{}`: add the new column, write both, \
                     backfill, and drop the old one later",
                    r.subname, r.newname
                ),
            ));
        }
        // No code names an index: renaming one breaks nothing.
        ObjectType::ObjectColumn if r.relation_type() != ObjectType::ObjectTable => {
            let view = format!("{:?}", r.relation_type());
            let what = view.trim_start_matches("Object").to_lowercase();
            hits.push(hit(
                &RENAMING_OBJECT,
                format!(
                    "column `{table}.{}` of {what} `{table}` is renamed to `{}`: code still \
                     using the old name fails",
                    r.subname, r.newname
                ),
            ));
        }
        ObjectType::ObjectTable | ObjectType::ObjectColumn | ObjectType::ObjectIndex => {}
        ObjectType::ObjectTabconstraint if schema.is_new(&table) => {}
        kind => {
            let old = if !r.subname.is_empty() {
                r.subname.clone()
            } else if !table.is_empty() {
                table
            } else {
                r.object.as_deref().map(object_name).unwrap_or_default()
            };
            let what = format!("{kind:?}")
                .trim_start_matches("Object")
                .to_lowercase();
            if schema.is_new_object(kind_key(kind), &old) {
                return;
            }
            hits.push(hit(
                &RENAMING_OBJECT,
                format!(
                    "{what} `{old}` is renamed to `{}`: code still using the old name fails",
                    r.newname
                ),
            ));
        }
    }
}

/// The kind under which [`apply`] records a new object of this type.
fn kind_key(kind: ObjectType) -> &'static str {
    match kind {
        ObjectType::ObjectView | ObjectType::ObjectMatview => "view",
        ObjectType::ObjectFunction | ObjectType::ObjectProcedure => "function",
        ObjectType::ObjectType => "type",
        ObjectType::ObjectDomain => "domain",
        ObjectType::ObjectSequence => "sequence",
        ObjectType::ObjectSchema => "schema",
        ObjectType::ObjectExtension => "extension",
        _ => "other",
    }
}

/// `CONCURRENTLY` (or `VACUUM`) in a migration that runs in a transaction: PostgreSQL
/// refuses it.
fn in_transaction(file: &File, what: &str, at: Place, hits: &mut Vec<Hit>) {
    if !file.no_transaction {
        hits.push(Hit::at(
            &BAN_CONCURRENT_INDEX_CREATION_IN_TRANSACTION,
            at.offset,
            format!(
                "{what} cannot run in the migration's transaction: put \
                 `-- palisade:no-transaction` at the top of the file"
            ),
        ));
    }
}

/// `prefer-robust-stmts`: only a no-transaction file can stop half-way and be run again.
fn robust(file: &File, fragile: bool, what: &str, guard: &str, at: Place, hits: &mut Vec<Hit>) {
    if file.no_transaction && fragile {
        hits.push(Hit::at(
            &PREFER_ROBUST_STMTS,
            at.offset,
            format!(
                "{what} without {guard} in a no-transaction migration fails when the migration \
                 is run again after stopping half-way"
            ),
        ));
    }
}

/// The column an UPDATE or INSERT target sets whole; `a[1]` or `c.x` sets a part of one,
/// and parts may be set side by side.
fn whole_column(t: &Node) -> Option<&str> {
    match &t.node {
        Some(NodeEnum::ResTarget(r)) if r.indirection.is_empty() => Some(r.name.as_str()),
        _ => None,
    }
}

fn duplicates<'a>(
    names: impl Iterator<Item = &'a str>,
    what: &str,
    at: Place,
    hits: &mut Vec<Hit>,
) {
    let mut seen = std::collections::BTreeSet::new();
    for name in names.filter(|n| !n.is_empty()) {
        if !seen.insert(name) {
            hits.push(Hit::at(
                &BAN_DUPLICATE_COLUMN_ASSIGNMENTS,
                at.offset,
                format!("{what} column `{name}` twice"),
            ));
        }
    }
}

/// Identifiers longer than PostgreSQL's 63 bytes, which it cuts without an error.
pub fn identifiers_too_long(sql: &str, statements: &[PgStatement]) -> Vec<Hit> {
    const MAX: usize = 63;
    let Ok(tokens) = tokens(sql) else {
        return Vec::new();
    };
    let mut hits = Vec::new();
    for t in tokens.iter().filter(|t| t.token == Token::Ident as i32) {
        let (Ok(start), Ok(end)) = (usize::try_from(t.start), usize::try_from(t.end)) else {
            continue;
        };
        let Some(text) = sql.get(start..end) else {
            continue;
        };
        let name = match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
            Some(quoted) => quoted.replace("\"\"", "\""),
            None => text.to_lowercase(),
        };
        // Only identifiers in statements PostgreSQL accepted: a rejected one has its error.
        let in_parsed = statements
            .iter()
            .rev()
            .find(|s| s.leading <= start)
            .is_some_and(|s| s.node.is_some());
        if name.len() > MAX && in_parsed {
            hits.push(Hit::at(
                &IDENTIFIER_TOO_LONG,
                start,
                format!(
                    "identifier `{name}` is {} bytes: PostgreSQL keeps only the first {MAX}; \
                     shorten it",
                    name.len()
                ),
            ));
        }
    }
    hits
}

/// The foreign keys `stmt` adds; whether an index serves each is judged at the end of
/// the file, since the index often comes after the key.
pub fn foreign_keys(stmt: &NodeEnum, at: Place) -> Vec<ForeignKey> {
    let mut out = Vec::new();
    let mut add = |table: &str, columns: Vec<String>, c: &Constraint| {
        out.push(ForeignKey {
            table: table.to_owned(),
            columns,
            references: relname(&c.pktable),
            offset: at.offset,
        });
    };
    match stmt {
        NodeEnum::CreateStmt(c) => {
            let table = relname(&c.relation);
            for e in &c.table_elts {
                match &e.node {
                    Some(NodeEnum::ColumnDef(d)) => {
                        for k in constraints(d).filter(|k| k.contype() == ConstrType::ConstrForeign)
                        {
                            add(&table, vec![d.colname.clone()], k);
                        }
                    }
                    Some(NodeEnum::Constraint(k)) if k.contype() == ConstrType::ConstrForeign => {
                        add(&table, names(&k.fk_attrs), k);
                    }
                    _ => {}
                }
            }
        }
        NodeEnum::AlterTableStmt(a) => {
            let table = relname(&a.relation);
            for cmd in commands(a) {
                match node(&cmd.def) {
                    Some(NodeEnum::ColumnDef(d))
                        if cmd.subtype() == AlterTableType::AtAddColumn =>
                    {
                        for k in constraints(d).filter(|k| k.contype() == ConstrType::ConstrForeign)
                        {
                            add(&table, vec![d.colname.clone()], k);
                        }
                    }
                    Some(NodeEnum::Constraint(k))
                        if cmd.subtype() == AlterTableType::AtAddConstraint
                            && k.contype() == ConstrType::ConstrForeign =>
                    {
                        add(&table, names(&k.fk_attrs), k);
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
    out
}

/// Records what `stmt` does to the schema.
pub fn apply(stmt: &NodeEnum, schema: &mut Schema) {
    match stmt {
        NodeEnum::CreateStmt(c) => {
            let table = relname(&c.relation);
            schema.create_table(&table, c.if_not_exists);
            for e in &c.table_elts {
                match &e.node {
                    Some(NodeEnum::ColumnDef(d)) => add_column(schema, &table, d),
                    Some(NodeEnum::Constraint(k)) => add_constraint(schema, &table, k),
                    _ => {}
                }
            }
        }
        NodeEnum::AlterTableStmt(a) => {
            let table = relname(&a.relation);
            for cmd in commands(a) {
                match (cmd.subtype(), node(&cmd.def)) {
                    (AlterTableType::AtAddColumn, Some(NodeEnum::ColumnDef(d))) => {
                        add_column(schema, &table, d);
                    }
                    (AlterTableType::AtAddConstraint, Some(NodeEnum::Constraint(k))) => {
                        add_constraint(schema, &table, k);
                    }
                    (AlterTableType::AtAlterColumnType, Some(NodeEnum::ColumnDef(d))) => {
                        if let Some(t) = &d.type_name {
                            schema.set_column_type(&table, &cmd.name, column_type(t));
                        }
                    }
                    (AlterTableType::AtValidateConstraint, _) => {
                        schema.validate_constraint(&table, &cmd.name);
                    }
                    (AlterTableType::AtDropConstraint, _) => {
                        schema.drop_constraint(&table, &cmd.name);
                    }
                    (AlterTableType::AtDropColumn, _) => schema.drop_column(&table, &cmd.name),
                    _ => {}
                }
            }
        }
        NodeEnum::RenameStmt(r) => {
            let table = relname(&r.relation);
            match r.rename_type() {
                ObjectType::ObjectTable => schema.rename_table(&table, &r.newname),
                ObjectType::ObjectIndex => schema.rename_index(&table, &r.newname),
                ObjectType::ObjectColumn if r.relation_type() == ObjectType::ObjectTable => {
                    schema.rename_column(&table, &r.subname, &r.newname);
                }
                _ => {}
            }
        }
        NodeEnum::IndexStmt(i) => {
            let table = relname(&i.relation);
            let columns = index_columns(&i.index_params);
            let name = if i.idxname.is_empty() {
                // PostgreSQL's name for it (`expr` stands for an expression column).
                let parts: Vec<&str> = i
                    .index_params
                    .iter()
                    .map(|p| match &p.node {
                        Some(NodeEnum::IndexElem(e)) if !e.name.is_empty() => e.name.as_str(),
                        _ => "expr",
                    })
                    .collect();
                format!("{table}_{}_idx", parts.join("_"))
            } else {
                i.idxname.clone()
            };
            // A partial index serves only some lookups: it covers no foreign key.
            let columns = if i.where_clause.is_some() {
                Vec::new()
            } else {
                columns
            };
            schema.add_index(&table, Some(&name), columns);
        }
        NodeEnum::DropStmt(d) => {
            for name in d.objects.iter().map(object_name) {
                match d.remove_type() {
                    ObjectType::ObjectTable => schema.drop_table(&name),
                    ObjectType::ObjectIndex => schema.drop_index(&name),
                    _ => {}
                }
            }
        }
        // `OR REPLACE` and `IF NOT EXISTS` may name a live object: only a plain CREATE
        // makes a new one.
        NodeEnum::ViewStmt(v) if !v.replace => schema.create_object("view", &relname(&v.view)),
        NodeEnum::CreateTableAsStmt(c) => {
            if let Some(into) = &c.into {
                let name = relname(&into.rel);
                if c.objtype() == ObjectType::ObjectMatview {
                    schema.create_object("view", &name);
                } else {
                    schema.create_table(&name, c.if_not_exists);
                }
            }
        }
        NodeEnum::CreateFunctionStmt(f) if !f.replace => {
            schema.create_object("function", &last_name(&f.funcname));
        }
        NodeEnum::CreateEnumStmt(e) => {
            schema.create_object("type", &last_name(&e.type_name));
        }
        NodeEnum::CompositeTypeStmt(c) => schema.create_object("type", &relname(&c.typevar)),
        NodeEnum::CreateRangeStmt(r) => {
            schema.create_object("type", &last_name(&r.type_name));
        }
        NodeEnum::CreateDomainStmt(d) => {
            schema.create_object("domain", &last_name(&d.domainname));
        }
        NodeEnum::CreateSeqStmt(s) if !s.if_not_exists => {
            schema.create_object("sequence", &relname(&s.sequence));
        }
        NodeEnum::CreateSchemaStmt(s) if !s.if_not_exists => {
            schema.create_object("schema", &s.schemaname);
        }
        NodeEnum::CreateExtensionStmt(e) if !e.if_not_exists => {
            schema.create_object("extension", &e.extname);
        }
        _ => {}
    }
}

fn add_column(schema: &mut Schema, table: &str, d: &ColumnDef) {
    schema.add_column(table, &d.colname, d.type_name.as_ref().map(column_type));
    for c in constraints(d) {
        let columns = [d.colname.clone()];
        let name = constraint_name(table, c, &columns);
        match c.contype() {
            ConstrType::ConstrPrimary | ConstrType::ConstrUnique => {
                schema.add_index(table, Some(&name), columns.to_vec());
            }
            ConstrType::ConstrCheck | ConstrType::ConstrForeign => {
                schema.add_constraint(table, &name, true, not_null_check(c).as_deref());
            }
            _ => {}
        }
    }
}

fn add_constraint(schema: &mut Schema, table: &str, k: &Constraint) {
    let columns = match k.contype() {
        ConstrType::ConstrForeign => names(&k.fk_attrs),
        ConstrType::ConstrCheck => checked_columns(k),
        _ => names(&k.keys),
    };
    let name = constraint_name(table, k, &columns);
    match k.contype() {
        ConstrType::ConstrPrimary | ConstrType::ConstrUnique => {
            schema.add_index(table, Some(&name), columns);
        }
        ConstrType::ConstrCheck | ConstrType::ConstrForeign => {
            schema.add_constraint(
                table,
                &name,
                !k.skip_validation,
                not_null_check(k).as_deref(),
            );
        }
        _ => {}
    }
}

/// A constraint's name: its own, or the one PostgreSQL gives an unnamed one
/// (`t_pkey`, `t_a_b_key`, `t_a_fkey`, `t_a_check`, or `t_check` for a check on several
/// columns), so that a later `DROP` or `VALIDATE` by that name finds it.
fn constraint_name(table: &str, c: &Constraint, columns: &[String]) -> String {
    if !c.conname.is_empty() {
        return c.conname.clone();
    }
    let cols = columns.join("_");
    match c.contype() {
        ConstrType::ConstrPrimary => format!("{table}_pkey"),
        ConstrType::ConstrUnique => format!("{table}_{cols}_key"),
        ConstrType::ConstrForeign => format!("{table}_{cols}_fkey"),
        ConstrType::ConstrCheck if columns.len() == 1 => format!("{table}_{cols}_check"),
        _ => format!("{table}_check"),
    }
}

/// The columns a CHECK reads, each once, in order.
fn checked_columns(c: &Constraint) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if let Some(expr) = node(&c.raw_expr) {
        for (n, ..) in expr.nodes() {
            if let pg_query::NodeRef::ColumnRef(r) = n
                && let Some(name) = names(&r.fields).pop()
                && !out.contains(&name)
            {
                out.push(name);
            }
        }
    }
    out
}

/// The plain columns an index starts with: after an expression, the index no longer
/// helps a lookup by column, so the list stops there.
fn index_columns(params: &[Node]) -> Vec<String> {
    params
        .iter()
        .map_while(|p| match &p.node {
            Some(NodeEnum::IndexElem(e)) if !e.name.is_empty() => Some(e.name.clone()),
            _ => None,
        })
        .collect()
}
