//! The store's behaviour, checked once per scenario on both backends: each scenario is
//! a function over a [`Db`], run by the `sqlite::` and `postgres::` test modules below.

use palisade_store::sea_query::{Expr, ExprTrait, Func, Iden, Order, Query};
use palisade_store::testing::TempPostgres;
use palisade_store::{Backend, Db, StoreError, StoreSettings, Tx};

#[derive(Iden)]
enum Items {
    Table,
    Id,
    Name,
    Qty,
}

#[derive(Debug, sqlx::FromRow)]
struct Qty {
    qty: i64,
}

#[derive(Debug, PartialEq, sqlx::FromRow)]
struct Item {
    id: String,
    name: String,
    qty: i64,
}

const SCHEMA: &str =
    "CREATE TABLE items (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, qty BIGINT NOT NULL);
     CREATE TABLE item_tags (item_id TEXT NOT NULL REFERENCES items(id), tag TEXT NOT NULL)";

fn insert(id: &str, name: &str, qty: i64) -> palisade_store::sea_query::InsertStatement {
    Query::insert()
        .into_table(Items::Table)
        .columns([Items::Id, Items::Name, Items::Qty])
        .values_panic([id.into(), name.into(), qty.into()])
        .to_owned()
}

fn select_all() -> palisade_store::sea_query::SelectStatement {
    Query::select()
        .columns([Items::Id, Items::Name, Items::Qty])
        .from(Items::Table)
        .order_by(Items::Id, Order::Asc)
        .to_owned()
}

async fn count(db: &Db) -> usize {
    db.fetch_all::<Item, _>("items", &select_all())
        .await
        .expect("select")
        .len()
}

// ---- scenarios ---------------------------------------------------------------------

async fn crud_through_one_repository(db: Db) {
    db.execute_script(SCHEMA).await.expect("schema");
    assert_eq!(
        db.execute("items", &insert("a", "apple", 3))
            .await
            .expect("insert"),
        1
    );
    db.execute("items", &insert("b", "pear", 5))
        .await
        .expect("insert");

    let found: Option<Item> = db
        .fetch_optional(
            "items",
            &select_all()
                .and_where(Expr::col(Items::Name).eq("pear"))
                .to_owned(),
        )
        .await
        .expect("select");
    assert_eq!(
        found,
        Some(Item {
            id: "b".into(),
            name: "pear".into(),
            qty: 5
        })
    );

    let update = Query::update()
        .table(Items::Table)
        .value(Items::Qty, Expr::col(Items::Qty).add(10))
        .and_where(Expr::col(Items::Id).eq("a"))
        .to_owned();
    assert_eq!(db.execute("items", &update).await.expect("update"), 1);

    let delete = Query::delete()
        .from_table(Items::Table)
        .and_where(Expr::col(Items::Id).eq("b"))
        .to_owned();
    assert_eq!(db.execute("items", &delete).await.expect("delete"), 1);

    let all: Vec<Item> = db
        .reader()
        .fetch_all("items", &select_all())
        .await
        .expect("select");
    assert_eq!(
        all,
        vec![Item {
            id: "a".into(),
            name: "apple".into(),
            qty: 13
        }]
    );
}

async fn injection_strings_are_data(db: Db) {
    db.execute_script(SCHEMA).await.expect("schema");
    let evil = "x'); DROP TABLE items; --";
    db.execute("items", &insert("1", evil, 1))
        .await
        .expect("insert");
    let back: Option<Item> = db
        .fetch_optional(
            "items",
            &select_all()
                .and_where(Expr::col(Items::Name).eq(evil))
                .to_owned(),
        )
        .await
        .expect("select");
    assert_eq!(back.map(|i| i.name), Some(evil.to_owned()));
    assert_eq!(count(&db).await, 1);
}

async fn constraint_and_syntax_errors_are_not_transient(db: Db) {
    db.execute_script(SCHEMA).await.expect("schema");
    db.execute("items", &insert("a", "apple", 1))
        .await
        .expect("insert");
    let dup = db
        .execute("items", &insert("b", "apple", 1))
        .await
        .expect_err("unique name");
    assert!(dup.is_unique_violation(), "{dup}");
    assert!(!dup.is_transient());
    let syntax = db
        .execute_script("SELEC 1")
        .await
        .expect_err("syntax error");
    assert!(!syntax.is_transient(), "{syntax}");
}

async fn foreign_keys_are_enforced(db: Db) {
    db.execute_script(SCHEMA).await.expect("schema");
    let orphan = Query::insert()
        .into_table("item_tags")
        .columns(["item_id", "tag"])
        .values_panic(["nope".into(), "t".into()])
        .to_owned();
    let err = db
        .execute("item_tags", &orphan)
        .await
        .expect_err("foreign key");
    assert!(!err.is_transient(), "{err}");
}

async fn transaction_commits_and_rolls_back(db: Db) {
    db.execute_script(SCHEMA).await.expect("schema");
    db.transaction(|tx: &mut Tx| {
        Box::pin(async move {
            tx.execute("items", &insert("a", "apple", 1)).await?;
            tx.execute("items", &insert("b", "pear", 1)).await?;
            Ok::<_, StoreError>(())
        })
    })
    .await
    .expect("commit");
    assert_eq!(count(&db).await, 2);

    // The second insert breaks the unique name: the first must be rolled back with it.
    let failed = db
        .transaction(|tx: &mut Tx| {
            Box::pin(async move {
                tx.execute("items", &insert("c", "cherry", 1)).await?;
                tx.execute("items", &insert("d", "apple", 1)).await?;
                Ok::<_, StoreError>(())
            })
        })
        .await;
    assert!(failed.is_err());
    assert_eq!(
        count(&db).await,
        2,
        "nothing of the failed transaction may remain"
    );
}

async fn transaction_reruns_after_a_transient_failure(db: Db) {
    db.execute_script(SCHEMA).await.expect("schema");
    let attempts = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    db.transaction(|tx: &mut Tx| {
        let attempts = attempts.clone();
        Box::pin(async move {
            tx.execute("items", &insert("a", "apple", 1)).await?;
            if attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
                return Err(StoreError::Sql(sqlx::Error::Io(reset)));
            }
            Ok(())
        })
    })
    .await
    .expect("second attempt commits");
    assert_eq!(attempts.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(count(&db).await, 1, "the first attempt was rolled back");
}

async fn concurrent_writers_lose_nothing(db: Db) {
    db.execute_script(SCHEMA).await.expect("schema");
    let mut tasks = Vec::new();
    for w in 0..8 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let id = format!("{w}-{i}");
                db.transaction(|tx: &mut Tx| {
                    let id = id.clone();
                    Box::pin(async move {
                        tx.execute("items", &insert(&id, &id, 1)).await?;
                        Ok::<_, StoreError>(())
                    })
                })
                .await
                .expect("write");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    assert_eq!(count(&db).await, 200);
}

async fn pool_statistics_count_connections_in_use(db: Db) {
    db.execute_script(SCHEMA).await.expect("schema");
    let before = db.stats();
    assert_eq!(before.max, 5);
    assert!(before.size >= 1 && before.size <= before.max, "{before:?}");
    let stats = db
        .transaction(|_tx: &mut Tx| {
            let db = db.clone();
            Box::pin(async move { Ok::<_, StoreError>(db.stats()) })
        })
        .await
        .expect("tx");
    assert!(
        stats.in_use >= 1,
        "a connection is held by the transaction: {stats:?}"
    );
    assert_eq!(stats.in_use + stats.idle, stats.size);
}

// ---- harness -----------------------------------------------------------------------

fn settings(url: String) -> StoreSettings {
    StoreSettings {
        pool_max: 5,
        ..StoreSettings::new(url)
    }
}

async fn sqlite_db() -> (Db, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/nested/test.db", dir.path().display());
    let db = Db::connect(&settings(url)).await.expect("connect sqlite");
    assert_eq!(db.backend(), Backend::Sqlite);
    (db, dir)
}

async fn postgres_db() -> (Db, TempPostgres) {
    let pg = TempPostgres::create().await;
    let db = Db::connect(&settings(pg.url().to_owned()))
        .await
        .expect("connect postgres");
    assert_eq!(db.backend(), Backend::Postgres);
    (db, pg)
}

macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let (db, _dir) = super::sqlite_db().await;
                super::$scenario(db.clone()).await;
                db.close().await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let (db, _pg) = super::postgres_db().await;
                super::$scenario(db.clone()).await;
                db.close().await;
            })*
        }
    };
}

on_both_backends!(
    crud_through_one_repository,
    injection_strings_are_data,
    constraint_and_syntax_errors_are_not_transient,
    foreign_keys_are_enforced,
    transaction_commits_and_rolls_back,
    transaction_reruns_after_a_transient_failure,
    concurrent_writers_lose_nothing,
    pool_statistics_count_connections_in_use,
);

#[tokio::test]
async fn sqlite_file_is_created_in_wal_mode() {
    let (db, dir) = sqlite_db().await;
    db.execute_script(SCHEMA).await.expect("schema");
    db.execute("items", &insert("a", "apple", 1))
        .await
        .expect("insert");
    let wal = dir.path().join("nested/test.db-wal");
    assert!(wal.exists(), "WAL journal expected at {}", wal.display());
}

#[tokio::test]
async fn read_pool_serves_reads_and_refuses_writes_on_postgres() {
    let pg = TempPostgres::create().await;
    let url = pg.url().to_owned();
    let db = Db::connect(&StoreSettings {
        read_url: Some(url.clone()),
        ..settings(url.clone())
    })
    .await
    .expect("connect");
    db.execute_script(SCHEMA).await.expect("schema");
    db.execute("items", &insert("a", "apple", 1))
        .await
        .expect("insert");
    let read: Vec<Item> = db
        .reader()
        .fetch_all("items", &select_all())
        .await
        .expect("read");
    assert_eq!(read.len(), 1);
    assert!(db.replica_stats().is_some());

    // The read pool's sessions are read-only: a SELECT that writes (nextval) is refused
    // there and allowed on the primary.
    db.execute_script("CREATE SEQUENCE s")
        .await
        .expect("sequence");
    let nextval = Query::select()
        .expr_as(Func::cust("nextval").arg("s"), "qty")
        .to_owned();
    let on_primary: Option<Qty> = db
        .fetch_optional("s", &nextval)
        .await
        .expect("primary writes");
    assert_eq!(on_primary.map(|q| q.qty), Some(1));
    let err = db
        .reader()
        .fetch_optional::<Qty>("s", &nextval)
        .await
        .expect_err("read-only session");
    assert!(err.to_string().contains("read-only"), "{err}");
    db.close().await;
}

#[tokio::test]
async fn mixed_backends_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = StoreSettings {
        read_url: Some("postgres://127.0.0.1:1/x".into()),
        ..settings(format!("sqlite://{}/a.db", dir.path().display()))
    };
    assert!(matches!(
        Db::connect(&s).await,
        Err(StoreError::MixedBackends)
    ));
}

#[tokio::test]
async fn an_unknown_scheme_is_a_clear_error() {
    let err = Db::connect(&settings("mysql://root:hunter2@localhost/x".into()))
        .await
        .expect_err("scheme");
    let msg = err.to_string();
    assert!(msg.contains("neither sqlite: nor postgres://"), "{msg}");
    assert!(!msg.contains("hunter2"), "password leaked: {msg}");
}
