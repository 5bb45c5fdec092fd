//! `contracts` and `contract_tags`, and the full-text search over them (SQLite FTS5 on
//! `contracts_fts`, PostgreSQL `tsvector` on `contracts.search`: the one place the two
//! dialects are written separately). Search input arrives here as plain words; each is
//! quoted for FTS5 or handed to `plainto_tsquery`, so no input is ever read as the
//! full-text query language.

use palisade_auth::ids::{ContractId, UserId};
use sea_query::{Alias, Cond, Expr, ExprTrait, Iden, Order, Query, SelectStatement, SimpleExpr};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::{Backend, Exec, StoreError};

#[derive(Iden)]
enum Contracts {
    Table,
    Seq,
    Id,
    OwnerId,
    Title,
    Counterparty,
    AmountCents,
    Currency,
    Status,
    StartsOn,
    EndsOn,
    Description,
    Tags,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(Iden)]
enum ContractTags {
    Table,
    Tag,
    ContractId,
}

const COLUMNS: [Contracts; 14] = [
    Contracts::Id,
    Contracts::OwnerId,
    Contracts::Title,
    Contracts::Counterparty,
    Contracts::AmountCents,
    Contracts::Currency,
    Contracts::Status,
    Contracts::StartsOn,
    Contracts::EndsOn,
    Contracts::Description,
    Contracts::Tags,
    Contracts::Version,
    Contracts::CreatedAt,
    Contracts::UpdatedAt,
];

/// A `contracts` row.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct ContractRow {
    #[sqlx(try_from = "Uuid")]
    pub id: ContractId,
    #[sqlx(try_from = "Uuid")]
    pub owner_id: UserId,
    pub title: String,
    pub counterparty: String,
    pub amount_cents: i64,
    pub currency: String,
    pub status: String,
    pub starts_on: Option<Date>,
    pub ends_on: Option<Date>,
    pub description: String,
    /// Space-separated.
    pub tags: String,
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl ContractRow {
    pub fn tag_list(&self) -> Vec<String> {
        self.tags.split_whitespace().map(str::to_owned).collect()
    }
}

/// Which contracts a list or an export reads. Every field narrows.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub owner: Option<UserId>,
    pub status: Option<&'static str>,
    pub tag: Option<String>,
    /// Full-text: rows holding every word, in title, counterparty or description.
    pub words: Option<Vec<String>>,
    pub created_after: Option<OffsetDateTime>,
    pub created_before: Option<OffsetDateTime>,
}

pub async fn insert(ex: impl Into<Exec<'_>>, c: &ContractRow) -> Result<(), StoreError> {
    let mut ex = ex.into();
    let stmt = Query::insert()
        .into_table(Contracts::Table)
        .columns(COLUMNS)
        .values_panic(values(c))
        .to_owned();
    ex.execute("contracts", &stmt).await?;
    insert_tags(&mut ex, c).await
}

/// Inserts many contracts in two statements (rows, then tags): for bulk loads.
pub async fn insert_many(ex: impl Into<Exec<'_>>, rows: &[ContractRow]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut ex = ex.into();
    let mut stmt = Query::insert();
    stmt.into_table(Contracts::Table).columns(COLUMNS);
    for c in rows {
        stmt.values_panic(values(c));
    }
    ex.execute("contracts", &stmt).await?;
    let mut tags = Query::insert();
    tags.into_table(ContractTags::Table)
        .columns([ContractTags::Tag, ContractTags::ContractId]);
    let mut any = false;
    for c in rows {
        for tag in c.tag_list() {
            tags.values_panic([tag.into(), c.id.as_uuid().into()]);
            any = true;
        }
    }
    if any {
        ex.execute("contract_tags", &tags).await?;
    }
    Ok(())
}

fn values(c: &ContractRow) -> [SimpleExpr; 14] {
    [
        c.id.as_uuid().into(),
        c.owner_id.as_uuid().into(),
        c.title.clone().into(),
        c.counterparty.clone().into(),
        c.amount_cents.into(),
        c.currency.clone().into(),
        c.status.clone().into(),
        c.starts_on.into(),
        c.ends_on.into(),
        c.description.clone().into(),
        c.tags.clone().into(),
        c.version.into(),
        c.created_at.into(),
        c.updated_at.into(),
    ]
}

async fn insert_tags(ex: &mut Exec<'_>, c: &ContractRow) -> Result<(), StoreError> {
    let tags = c.tag_list();
    if tags.is_empty() {
        return Ok(());
    }
    let mut stmt = Query::insert();
    stmt.into_table(ContractTags::Table)
        .columns([ContractTags::Tag, ContractTags::ContractId]);
    for tag in tags {
        stmt.values_panic([tag.into(), c.id.as_uuid().into()]);
    }
    ex.execute("contract_tags", &stmt).await.map(|_| ())
}

pub async fn by_id(
    ex: impl Into<Exec<'_>>,
    id: ContractId,
) -> Result<Option<ContractRow>, StoreError> {
    ex.into()
        .fetch_optional("contracts", &select_by_id(id))
        .await
}

fn select_by_id(id: ContractId) -> SelectStatement {
    Query::select()
        .columns(COLUMNS)
        .from(Contracts::Table)
        .and_where(Expr::col(Contracts::Id).eq(id.as_uuid()))
        .to_owned()
}

/// How many contracts `owner` has, whatever their status (a plan's `contracts_max`).
pub async fn count_owned(ex: impl Into<Exec<'_>>, owner: UserId) -> Result<i64, StoreError> {
    let stmt = Query::select()
        .expr_as(Expr::col(Contracts::Id).count(), "n")
        .from(Contracts::Table)
        .and_where(Expr::col(Contracts::OwnerId).eq(owner.as_uuid()))
        .to_owned();
    super::number(ex, "contracts", &stmt).await
}

/// The contract, locked until the transaction ends (PostgreSQL `FOR UPDATE`; a SQLite
/// write transaction holds the whole database already): money moved against it is
/// checked and written by one transaction at a time.
pub async fn lock(
    ex: impl Into<Exec<'_>>,
    id: ContractId,
) -> Result<Option<ContractRow>, StoreError> {
    let stmt = select_by_id(id)
        .lock(sea_query::LockType::Update)
        .to_owned();
    ex.into().fetch_optional("contracts", &stmt).await
}

/// Writes `c` over the stored row if that is still at `c.version - 1`; `false` when
/// another change came first. Tags are replaced with `c`'s.
pub async fn update(ex: impl Into<Exec<'_>>, c: &ContractRow) -> Result<bool, StoreError> {
    let mut ex = ex.into();
    let stmt = Query::update()
        .table(Contracts::Table)
        .values([
            (Contracts::Title, c.title.clone().into()),
            (Contracts::Counterparty, c.counterparty.clone().into()),
            (Contracts::AmountCents, c.amount_cents.into()),
            (Contracts::Currency, c.currency.clone().into()),
            (Contracts::Status, c.status.clone().into()),
            (Contracts::StartsOn, c.starts_on.into()),
            (Contracts::EndsOn, c.ends_on.into()),
            (Contracts::Description, c.description.clone().into()),
            (Contracts::Tags, c.tags.clone().into()),
            (Contracts::Version, c.version.into()),
            (Contracts::UpdatedAt, c.updated_at.into()),
        ])
        .and_where(Expr::col(Contracts::Id).eq(c.id.as_uuid()))
        .and_where(Expr::col(Contracts::Version).eq(c.version - 1))
        .to_owned();
    if ex.execute("contracts", &stmt).await? == 0 {
        return Ok(false);
    }
    let clear = Query::delete()
        .from_table(ContractTags::Table)
        .and_where(Expr::col(ContractTags::ContractId).eq(c.id.as_uuid()))
        .to_owned();
    ex.execute("contract_tags", &clear).await?;
    insert_tags(&mut ex, c).await?;
    Ok(true)
}

pub async fn delete(ex: impl Into<Exec<'_>>, id: ContractId) -> Result<bool, StoreError> {
    let stmt = Query::delete()
        .from_table(Contracts::Table)
        .and_where(Expr::col(Contracts::Id).eq(id.as_uuid()))
        .to_owned();
    Ok(ex.into().execute("contracts", &stmt).await? > 0)
}

/// A contract with its balance (see [`super::payments::balances`]).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct WithBalance {
    #[sqlx(flatten)]
    pub row: ContractRow,
    pub paid_cents: i64,
    pub refunded_cents: i64,
}

/// A page of the contracts `filter` selects with their balances, newest first (ids are
/// UUIDv7), older than `before` when given: one query, the balance of each row summed
/// by `payments_contract`.
pub async fn page(
    ex: impl Into<Exec<'_>>,
    filter: &Filter,
    before: Option<ContractId>,
    limit: u64,
) -> Result<Vec<WithBalance>, StoreError> {
    let mut ex = ex.into();
    let mut stmt = select(filter, ex.backend());
    // SUM of a BIGINT is NUMERIC on PostgreSQL: cast back.
    for (sum, name) in [
        ("amount_cents", "paid_cents"),
        ("refunded_cents", "refunded_cents"),
    ] {
        stmt.expr_as(
            Expr::cust(format!(
                "(SELECT CAST(COALESCE(SUM(p.{sum}), 0) AS BIGINT) FROM payments p \
                 WHERE p.contract_id = contracts.id AND p.status = 'succeeded')"
            )),
            Alias::new(name),
        );
    }
    if let Some(id) = before {
        stmt.and_where(Expr::col((Contracts::Table, Contracts::Id)).lt(id.as_uuid()));
    }
    stmt.limit(limit);
    ex.fetch_all("contracts", &stmt).await
}

/// Streams every contract `filter` selects into `rows`, newest first, in batches of
/// up to `batch` (see [`crate::Db::stream`]).
pub async fn stream(
    db: &crate::Db,
    filter: &Filter,
    rows: &tokio::sync::mpsc::Sender<Vec<ContractRow>>,
    batch: usize,
    idle: std::time::Duration,
) -> Result<(u64, bool), StoreError> {
    db.stream(
        "contracts",
        &select(filter, db.backend()),
        rows,
        batch,
        idle,
    )
    .await
}

/// The `SELECT` of the rows `filter` selects, newest first.
fn select(filter: &Filter, backend: Backend) -> SelectStatement {
    let col = |c: Contracts| Expr::col((Contracts::Table, c));
    let mut stmt = Query::select();
    stmt.columns(COLUMNS.map(|c| (Contracts::Table, c)))
        .from(Contracts::Table)
        .order_by((Contracts::Table, Contracts::Id), Order::Desc);
    if let Some(owner) = filter.owner {
        stmt.and_where(col(Contracts::OwnerId).eq(owner.as_uuid()));
    }
    if let Some(status) = filter.status {
        stmt.and_where(col(Contracts::Status).eq(status));
    }
    if let Some(tag) = &filter.tag {
        stmt.and_where(
            col(Contracts::Id).in_subquery(
                Query::select()
                    .column(ContractTags::ContractId)
                    .from(ContractTags::Table)
                    .and_where(Expr::col(ContractTags::Tag).eq(tag.as_str()))
                    .to_owned(),
            ),
        );
    }
    if let Some(after) = filter.created_after {
        stmt.and_where(col(Contracts::CreatedAt).gt(after));
    }
    if let Some(before) = filter.created_before {
        stmt.and_where(col(Contracts::CreatedAt).lt(before));
    }
    if let Some(words) = &filter.words {
        stmt.cond_where(Cond::all().add(matches(backend, words)));
    }
    stmt
}

/// The condition "holds every word of `words`". (sea-query numbers a custom
/// expression's PostgreSQL placeholders `$1…` within the expression.)
fn matches(backend: Backend, words: &[String]) -> SimpleExpr {
    match backend {
        Backend::Sqlite => Expr::cust_with_values(
            "contracts.seq IN (SELECT rowid FROM contracts_fts WHERE contracts_fts MATCH ?)",
            [fts5_query(words)],
        ),
        Backend::Postgres => Expr::cust_with_values(
            "contracts.search @@ plainto_tsquery('simple', $1)",
            [words.join(" ")],
        ),
    }
}

/// An FTS5 query of `words`, each a string (`"…"`, quotes doubled): FTS5 reads a
/// string as text to find, never as an operator, column filter or prefix.
pub(crate) fn fts5_query(words: &[String]) -> String {
    words
        .iter()
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A search result.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Hit {
    #[sqlx(try_from = "Uuid")]
    pub id: ContractId,
    pub title: String,
    /// Plain text around the best match.
    pub snippet: String,
    /// Higher is better.
    pub score: f64,
}

/// The best `limit` contracts holding every word of `words`, best first; only
/// `owner`'s when given. The title weighs most, then the counterparty, then the
/// description.
pub async fn search(
    ex: impl Into<Exec<'_>>,
    owner: Option<UserId>,
    words: &[String],
    limit: u64,
) -> Result<Vec<Hit>, StoreError> {
    let mut ex = ex.into();
    let mut stmt = Query::select();
    stmt.column((Contracts::Table, Contracts::Id))
        .column((Contracts::Table, Contracts::Title));
    match ex.backend() {
        Backend::Sqlite => {
            const RANK: &str = "bm25(contracts_fts, 10.0, 5.0, 1.0)";
            stmt.expr_as(
                Expr::cust("snippet(contracts_fts, -1, '', '', '…', 16)"),
                Alias::new("snippet"),
            )
            .expr_as(Expr::cust(format!("-{RANK}")), Alias::new("score"))
            .from(Alias::new("contracts_fts"))
            .inner_join(
                Contracts::Table,
                Expr::col((Contracts::Table, Contracts::Seq))
                    .equals((Alias::new("contracts_fts"), Alias::new("rowid"))),
            )
            .and_where(Expr::cust_with_values(
                "contracts_fts MATCH ?",
                [fts5_query(words)],
            ))
            .order_by_expr(Expr::cust(RANK), Order::Asc);
        }
        Backend::Postgres => {
            let query = words.join(" ");
            stmt.expr_as(
                Expr::cust_with_values(
                    "ts_headline('simple', contracts.title || ' · ' || contracts.counterparty \
                     || ' · ' || contracts.description, plainto_tsquery('simple', $1), \
                     'StartSel=\"\", StopSel=\"\", MaxWords=24, MinWords=8')",
                    [query.clone()],
                ),
                Alias::new("snippet"),
            )
            .expr_as(
                Expr::cust_with_values(
                    "ts_rank(contracts.search, plainto_tsquery('simple', $1))::float8",
                    [query.clone()],
                ),
                Alias::new("score"),
            )
            .from(Contracts::Table)
            .and_where(matches(Backend::Postgres, words))
            .order_by(Alias::new("score"), Order::Desc);
        }
    }
    if let Some(owner) = owner {
        stmt.and_where(Expr::col((Contracts::Table, Contracts::OwnerId)).eq(owner.as_uuid()));
    }
    stmt.order_by((Contracts::Table, Contracts::Id), Order::Desc)
        .limit(limit);
    ex.fetch_all("contracts", &stmt).await
}
