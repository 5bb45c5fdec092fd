//! What the infrastructure statistics read of the database itself: its size and its
//! largest tables. The queries are the two backends' own catalogues, written once each.

use sea_query::{Alias, Asterisk, Expr, ExprTrait, Order, Query};

use crate::{Backend, Db, StoreError};

/// A table, its rows (PostgreSQL: the planner's estimate; SQLite: counted) and, where
/// the backend says, its size on disk with indexes.
#[derive(Clone, Debug)]
pub struct TableSize {
    pub name: String,
    pub rows: i64,
    pub bytes: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct Name {
    name: String,
}

#[derive(sqlx::FromRow)]
struct PgTable {
    name: String,
    rows: i64,
    bytes: i64,
}

/// The database's size in bytes.
pub async fn database_size(db: &Db) -> Result<i64, StoreError> {
    let size = match db.backend() {
        Backend::Postgres => "pg_database_size(current_database())",
        Backend::Sqlite => {
            "(SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size())"
        }
    };
    let stmt = Query::select().expr_as(Expr::cust(size), "n").to_owned();
    super::number(db, "catalogue", &stmt).await
}

/// The `limit` largest tables, largest first (SQLite: by rows, the only size it tells).
pub async fn largest_tables(db: &Db, limit: u64) -> Result<Vec<TableSize>, StoreError> {
    if db.backend() == Backend::Postgres {
        let stmt = Query::select()
            .expr_as(Expr::col(Alias::new("relname")), "name")
            .expr_as(Expr::cust("n_live_tup::BIGINT"), "rows")
            .expr_as(Expr::cust("pg_total_relation_size(relid)"), "bytes")
            .from(Alias::new("pg_stat_user_tables"))
            .order_by_expr(Expr::cust("pg_total_relation_size(relid)"), Order::Desc)
            .limit(limit)
            .to_owned();
        let rows: Vec<PgTable> = crate::Exec::from(db).fetch_all("catalogue", &stmt).await?;
        return Ok(rows
            .into_iter()
            .map(|t| TableSize {
                name: t.name,
                rows: t.rows,
                bytes: Some(t.bytes),
            })
            .collect());
    }
    let names = Query::select()
        .column(Alias::new("name"))
        .from(Alias::new("sqlite_master"))
        .and_where(Expr::col(Alias::new("type")).eq("table"))
        .and_where(Expr::col(Alias::new("name")).not_like("sqlite_%"))
        .to_owned();
    let names: Vec<Name> = crate::Exec::from(db).fetch_all("catalogue", &names).await?;
    let mut tables = Vec::with_capacity(names.len());
    for Name { name } in names {
        // The table's name is an identifier, quoted by the builder, not a value.
        let count = Query::select()
            .expr_as(Expr::col(Asterisk).count(), "n")
            .from(Alias::new(name.as_str()))
            .to_owned();
        let rows = super::number(db, "catalogue", &count).await?;
        tables.push(TableSize {
            name,
            rows,
            bytes: None,
        });
    }
    tables.sort_by(|a, b| b.rows.cmp(&a.rows).then_with(|| a.name.cmp(&b.name)));
    tables.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(tables)
}
