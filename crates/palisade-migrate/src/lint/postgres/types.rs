//! Column types and default expressions as PostgreSQL's parser gives them: which type a
//! `TypeName` is, which type changes rewrite the table, which defaults are volatile.

use pg_query::protobuf::{TypeName, a_const};
use pg_query::{NodeEnum, NodeRef};

use super::super::model::ColumnType;
use super::{last_name, names};

/// The type of a `TypeName`: its last name (`pg_catalog.int4` is `int4`), with the
/// grammar's aliases already resolved by the parser (`integer` is `int4`, `varchar(n)`
/// and `character varying(n)` are `varchar`, `char(n)` is `bpchar`).
pub fn column_type(t: &TypeName) -> ColumnType {
    let name = last_name(&t.names);
    let mods = t
        .typmods
        .iter()
        .filter_map(|m| match &m.node {
            Some(NodeEnum::AConst(c)) => match &c.val {
                Some(a_const::Val::Ival(i)) => Some(i64::from(i.ival)),
                _ => None,
            },
            _ => None,
        })
        .collect();
    ColumnType {
        name: canonical(&name).to_owned(),
        mods,
        array: !t.array_bounds.is_empty(),
    }
}

/// Spellings the grammar leaves as written that name the same type.
fn canonical(name: &str) -> &str {
    match name {
        "integer" | "int" => "int4",
        "smallint" => "int2",
        "bigint" => "int8",
        "serial4" => "serial",
        "serial8" => "bigserial",
        "serial2" => "smallserial",
        "decimal" => "numeric",
        "character varying" => "varchar",
        "timestamp without time zone" => "timestamp",
        "timestamp with time zone" => "timestamptz",
        "bool" | "boolean" => "bool",
        other => other,
    }
}

pub fn is_serial(t: &ColumnType) -> bool {
    matches!(t.name.as_str(), "serial" | "bigserial" | "smallserial")
}

/// Whether changing a column from `old` to `new` rewrites the table (PostgreSQL ≥ 9.2):
/// everything but the same type, or widening a varchar or a numeric's precision, or
/// lifting its limit, or varchar to text, does.
pub fn rewrites(old: &ColumnType, new: &ColumnType) -> bool {
    if old == new {
        return false;
    }
    if old.array != new.array {
        return true;
    }
    let (o, n) = (old.name.as_str(), new.name.as_str());
    match (o, n) {
        ("varchar" | "text", "text") => false,
        ("varchar", "varchar") => match (old.mods.first(), new.mods.first()) {
            (_, None) => false,
            (Some(a), Some(b)) => b < a,
            (None, Some(_)) => true,
        },
        ("numeric", "numeric") => match (old.mods.as_slice(), new.mods.as_slice()) {
            (_, []) => false,
            ([p, rest @ ..], [p2, rest2 @ ..]) => {
                let (s, s2) = (rest.first().unwrap_or(&0), rest2.first().unwrap_or(&0));
                p2 < p || s2 != s
            }
            ([], _) => true,
        },
        // Same precision class: timestamp(3) → timestamp(6) widens.
        ("timestamptz", "timestamptz") | ("timestamp", "timestamp") => {
            match (old.mods.first(), new.mods.first()) {
                (_, None) => false,
                (Some(a), Some(b)) => b < a,
                (None, Some(_)) => true,
            }
        }
        _ => true,
    }
}

/// Functions whose value differs from row to row (PostgreSQL marks them VOLATILE): a
/// default calling one is computed for each existing row, rewriting the table.
const VOLATILE: &[&str] = &[
    "random",
    "gen_random_uuid",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "uuidv4",
    "uuidv7",
    "clock_timestamp",
    "timeofday",
    "nextval",
    "setval",
    "txid_current",
    "random_normal",
];

/// Functions PostgreSQL marks STABLE or IMMUTABLE that defaults commonly call: a
/// default calling them is evaluated once, and the column is added without a rewrite.
const NOT_VOLATILE: &[&str] = &[
    "now",
    "statement_timestamp",
    "transaction_timestamp",
    "current_setting",
    "lower",
    "upper",
    "coalesce",
    "concat",
    "to_jsonb",
    "to_json",
    "jsonb_build_object",
    "json_build_object",
    "jsonb_build_array",
    "json_build_array",
    "array_fill",
    "make_interval",
    "make_date",
    "to_timestamp",
    "length",
    "abs",
    "round",
    "greatest",
    "least",
    "md5",
    // What the grammar makes of SQL syntax: `AT TIME ZONE`, `EXTRACT`, `TRIM`, …
    "timezone",
    "extract",
    "date_part",
    "date_trunc",
    "btrim",
    "ltrim",
    "rtrim",
    "substring",
    "overlay",
    "position",
    "replace",
    "left",
    "right",
    "split_part",
    "regexp_replace",
    "to_char",
    "to_date",
    "to_number",
    "format",
    "nullif",
    "make_timestamptz",
    "make_timestamp",
    "age",
];

/// What makes a default volatile: the first function call known to be volatile, or one
/// this list does not know (a function of the schema's own may be volatile).
pub fn volatile_call(expr: &NodeEnum) -> Option<(String, bool)> {
    let mut unknown = None;
    let calls = std::iter::once(expr.to_ref())
        .chain(expr.nodes().into_iter().map(|(n, ..)| n))
        .filter_map(|n| match n {
            NodeRef::FuncCall(f) => names(&f.funcname).pop(),
            _ => None,
        });
    for name in calls {
        if VOLATILE.contains(&name.as_str()) {
            return Some((name, true));
        }
        if !NOT_VOLATILE.contains(&name.as_str()) {
            unknown.get_or_insert(name);
        }
    }
    unknown.map(|n| (n, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(sql_type: &str) -> ColumnType {
        let sql = format!("CREATE TABLE t (c {sql_type})");
        let parsed = pg_query::parse(&sql, 0).expect("test type parses");
        let Some(NodeEnum::CreateStmt(c)) = parsed.protobuf.stmts[0]
            .stmt
            .as_ref()
            .and_then(|s| s.node.as_ref())
        else {
            panic!("not a CREATE TABLE");
        };
        let Some(NodeEnum::ColumnDef(col)) = &c.table_elts[0].node else {
            panic!("no column");
        };
        column_type(col.type_name.as_ref().expect("a type"))
    }

    #[test]
    fn the_parser_resolves_type_aliases() {
        assert_eq!(ty("integer").name, "int4");
        assert_eq!(ty("int4").name, "int4");
        assert_eq!(ty("character varying(10)"), ty("varchar(10)"));
        assert_eq!(ty("decimal(5, 2)").to_string(), "numeric(5, 2)");
        assert_eq!(ty("timestamp with time zone").name, "timestamptz");
        assert_eq!(ty("timestamp").name, "timestamp");
        assert_eq!(ty("char(2)").name, "bpchar");
        assert_eq!(ty("serial8").name, "bigserial");
        assert!(ty("text[]").array);
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
            ("integer", "int4"),
            ("timestamptz(3)", "timestamptz(6)"),
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
            ("timestamp", "timestamptz"),
            ("text", "text[]"),
        ] {
            assert!(rewrites(&ty(old), &ty(new)), "{old} → {new}");
        }
    }

    fn default_of(expr: &str) -> Option<(String, bool)> {
        let sql = format!("SELECT {expr}");
        let parsed = pg_query::parse(&sql, 0).expect("test expression parses");
        let Some(NodeEnum::SelectStmt(s)) = parsed.protobuf.stmts[0]
            .stmt
            .as_ref()
            .and_then(|s| s.node.as_ref())
        else {
            panic!("not a SELECT");
        };
        let Some(NodeEnum::ResTarget(r)) = &s.target_list[0].node else {
            panic!("no target");
        };
        volatile_call(
            r.val
                .as_ref()
                .and_then(|v| v.node.as_ref())
                .expect("a value"),
        )
    }

    #[test]
    fn volatile_defaults_are_told_from_stable_ones() {
        assert_eq!(
            default_of("gen_random_uuid()"),
            Some(("gen_random_uuid".into(), true))
        );
        assert_eq!(
            default_of("(random() * 10)::int"),
            Some(("random".into(), true))
        );
        assert_eq!(default_of("my_func(1)"), Some(("my_func".into(), false)));
        assert_eq!(default_of("now()"), None);
        assert_eq!(default_of("CURRENT_TIMESTAMP"), None);
        assert_eq!(default_of("'{}'::jsonb"), None);
        assert_eq!(default_of("lower('A') || 'b'"), None);
        assert_eq!(default_of("now() AT TIME ZONE 'utc'"), None);
        assert_eq!(default_of("EXTRACT(year FROM now())::int"), None);
    }
}
