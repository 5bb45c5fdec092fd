//! The engine on real databases: every scenario runs on a SQLite file and on a scratch
//! PostgreSQL database (`TEST_DATABASE_URL`, which must be set: these tests fail, not
//! skip, without it).

use std::sync::Mutex;
use std::time::Duration;

use palisade_migrate::conn::Conn;
use palisade_migrate::engine::{Plan, Progress, Step};
use palisade_migrate::scratch::Scratch;
use palisade_migrate::verify::{Outcome, verify};
use palisade_migrate::{Dialect, MigrateError, MigrationSet, Migrator, Quiet, State, Target};

/// A database for one test, removed when dropped.
struct TestDb {
    scratch: Scratch,
}

impl TestDb {
    async fn new(dialect: Dialect) -> TestDb {
        let like = match dialect {
            Dialect::Sqlite => Target::from_url("sqlite::memory:").expect("url"),
            Dialect::Postgres => {
                let url = std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| {
                    panic!(
                        "TEST_DATABASE_URL is not set: these tests need a PostgreSQL server \
                         they may create databases on"
                    )
                });
                Target::from_url(&url).expect("TEST_DATABASE_URL")
            }
        };
        TestDb {
            scratch: Scratch::create(&like, "palisade_test")
                .await
                .expect("scratch database"),
        }
    }

    fn target(&self) -> Target {
        self.scratch.target().clone()
    }

    fn migrator(&self, files: &[(&str, &str)]) -> Migrator {
        Migrator::new(self.target(), set(self.target().dialect(), files)).expect("migrator")
    }

    /// Runs a `SELECT count(*) …` with at most one bound text value.
    async fn count_with(&self, sql: &'static str, value: Option<&str>) -> i64 {
        let mut conn = self.target().connect().await.expect("connect");
        let n = match &mut conn {
            Conn::Sqlite(c) => sqlx::query_scalar(sql).bind(value).fetch_one(c).await,
            Conn::Postgres(c) => sqlx::query_scalar(sql).bind(value).fetch_one(c).await,
        }
        .expect("count");
        conn.close().await;
        n
    }

    async fn count(&self, sql: &'static str) -> i64 {
        self.count_with(sql, None).await
    }

    async fn table_exists(&self, table: &str) -> bool {
        let sql = match self.target().dialect() {
            Dialect::Sqlite => {
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1"
            }
            Dialect::Postgres => {
                "SELECT count(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = $1"
            }
        };
        self.count_with(sql, Some(table)).await == 1
    }
}

fn set(dialect: Dialect, files: &[(&str, &str)]) -> MigrationSet {
    MigrationSet::from_files(
        dialect,
        "test",
        files
            .iter()
            .map(|(f, s)| ((*f).to_owned(), (*s).to_owned())),
    )
}

const BASE: &[(&str, &str)] = &[
    (
        "0001_items.up.sql",
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);",
    ),
    ("0001_items.down.sql", "DROP TABLE items;"),
    (
        "0002_tags.up.sql",
        "CREATE TABLE tags (id INTEGER PRIMARY KEY, item_id INTEGER NOT NULL REFERENCES items (id));\n\
         CREATE INDEX tags_item ON tags (item_id);",
    ),
    ("0002_tags.down.sql", "DROP TABLE tags;"),
];

async fn up(m: &Migrator) -> Result<palisade_migrate::Report, MigrateError> {
    m.execute(&Plan::Up { to: None }, false, &Quiet).await
}

async fn apply_then_roll_back(dialect: Dialect) {
    let db = TestDb::new(dialect).await;
    let m = db.migrator(BASE);
    let report = up(&m).await.expect("up");
    assert_eq!(report.steps.len(), 2);
    assert!(db.table_exists("tags").await);
    let status = m.status().await.expect("status");
    assert!(status.entries.iter().all(|e| e.state == State::Applied));
    let applied = status.entries[0].applied.as_ref().expect("recorded");
    assert!(!applied.applied_by.is_empty() && applied.applied_at.ends_with('Z'));

    assert!(
        up(&m).await.expect("again").steps.is_empty(),
        "nothing left to do"
    );

    m.execute(
        &Plan::Down {
            steps: None,
            to: None,
        },
        false,
        &Quiet,
    )
    .await
    .expect("down");
    assert!(!db.table_exists("tags").await && db.table_exists("items").await);
    m.execute(&Plan::Redo, false, &Quiet).await.expect("redo");
    assert!(!db.table_exists("tags").await && db.table_exists("items").await);
    m.execute(
        &Plan::Down {
            steps: None,
            to: Some(0),
        },
        false,
        &Quiet,
    )
    .await
    .expect("down to 0");
    assert!(!db.table_exists("items").await);
    m.execute(&Plan::Up { to: Some(1) }, false, &Quiet)
        .await
        .expect("up to 1");
    assert!(db.table_exists("items").await && !db.table_exists("tags").await);
}

async fn dry_run_changes_nothing(dialect: Dialect) {
    let db = TestDb::new(dialect).await;
    let m = db.migrator(BASE);
    let report = m
        .execute(&Plan::Up { to: None }, true, &Quiet)
        .await
        .expect("dry run");
    assert!(report.dry_run);
    assert_eq!(report.steps[1].statements.len(), 2);
    assert!(!db.table_exists("items").await);
    assert!(
        !db.table_exists("palisade_migrations").await,
        "not even the tracking table"
    );
}

async fn a_failure_mid_file_rolls_the_migration_back(dialect: Dialect) {
    let db = TestDb::new(dialect).await;
    let mut files = BASE.to_vec();
    files.push((
        "0003_broken.up.sql",
        "CREATE TABLE half (id INTEGER PRIMARY KEY);\n\
         INSERT INTO half (id) VALUES (1);\n\
         \n   INSERT INTO missing_table (id) VALUES (1);\n\
         CREATE TABLE never (id INTEGER);",
    ));
    files.push(("0003_broken.down.sql", "DROP TABLE half;"));
    let m = db.migrator(&files);
    let err = up(&m).await.expect_err("must fail");
    let MigrateError::Statement(f) = &err else {
        panic!("{err}");
    };
    assert_eq!((f.index, f.line, f.column), (3, 4, 4), "{err}");
    assert!(f.in_transaction);
    let msg = err.to_string();
    assert!(
        msg.contains("0003_broken.up.sql") && msg.contains("missing_table"),
        "{msg}"
    );
    // The two migrations before it stay; nothing of the failing one is left.
    assert!(db.table_exists("tags").await);
    assert!(!db.table_exists("half").await);
    let status = m.status().await.expect("status");
    assert_eq!(status.with_state(State::Applied).count(), 2);
    assert_eq!(status.with_state(State::Pending).count(), 1);
}

async fn drift_and_missing_files_are_reported_and_block(dialect: Dialect) {
    let db = TestDb::new(dialect).await;
    up(&db.migrator(BASE)).await.expect("up");

    let mut changed = BASE.to_vec();
    changed[0] = (
        "0001_items.up.sql",
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);",
    );
    changed.push(("0003_more.up.sql", "CREATE TABLE more (id INTEGER);"));
    let m = db.migrator(&changed);
    let status = m.status().await.expect("status");
    assert_eq!(status.entries[0].state, State::Drifted);
    let err = up(&m).await.expect_err("drift blocks");
    assert!(
        err.to_string().contains("0001_items: the file changed"),
        "{err}"
    );
    assert!(!db.table_exists("more").await, "nothing ran");

    let gone = db.migrator(&BASE[..2]);
    let status = gone.status().await.expect("status");
    assert_eq!(status.entries[1].state, State::MissingFile);
    assert!(up(&gone).await.is_err());
}

async fn an_older_pending_migration_waits_for_run(dialect: Dialect) {
    let db = TestDb::new(dialect).await;
    let mut files = BASE.to_vec();
    files.push(("0005_late.up.sql", "CREATE TABLE late (id INTEGER);"));
    files.push(("0005_late.down.sql", "DROP TABLE late;"));
    up(&db.migrator(&files)).await.expect("up");
    files.push(("0004_early.up.sql", "CREATE TABLE early (id INTEGER);"));
    files.push(("0004_early.down.sql", "DROP TABLE early;"));
    let m = db.migrator(&files);
    assert_eq!(
        m.status().await.expect("status").entries[2].state,
        State::OutOfOrder
    );
    assert!(up(&m).await.is_err());
    m.execute(&Plan::Run("0004_early".into()), false, &Quiet)
        .await
        .expect("run");
    assert!(db.table_exists("early").await);
}

async fn transaction_statements_in_a_file_are_refused(dialect: Dialect) {
    let db = TestDb::new(dialect).await;
    let m = db.migrator(&[
        (
            "0001_a.up.sql",
            "BEGIN;\nCREATE TABLE a (id INTEGER);\nCOMMIT;",
        ),
        ("0001_a.down.sql", "DROP TABLE a;"),
    ]);
    let err = up(&m).await.expect_err("refused");
    assert!(err.to_string().contains("line 1"), "{err}");
    assert!(!db.table_exists("a").await);
}

/// Runners started together apply each migration once: the others wait for the lock
/// and then find nothing pending.
async fn concurrent_runners_apply_each_migration_once(dialect: Dialect) {
    let db = TestDb::new(dialect).await;
    let mut files = BASE.to_vec();
    // A migration that fails if run twice (the INSERT into a unique key).
    files.push((
        "0003_seed.up.sql",
        "CREATE TABLE seen (k INTEGER PRIMARY KEY);\nINSERT INTO seen (k) VALUES (1);",
    ));
    files.push(("0003_seed.down.sql", "DROP TABLE seen;"));
    let runs = (0..6).map(|_| {
        let m = db.migrator(&files);
        tokio::spawn(async move { up(&m).await.map(|r| r.steps.len()) })
    });
    let mut applied = 0;
    for run in runs.collect::<Vec<_>>() {
        applied += run.await.expect("task").expect("every runner succeeds");
    }
    assert_eq!(applied, 3, "each migration applied by exactly one runner");
    assert_eq!(db.count("SELECT count(*) FROM seen").await, 1);
    assert_eq!(
        db.count("SELECT count(*) FROM palisade_migrations").await,
        3
    );
}

#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);
impl Progress for Recorder {
    fn started(&self, step: &Step) {
        self.0
            .lock()
            .expect("lock")
            .push(format!("start {}", step.id));
    }
    fn note(&self, message: &str) {
        self.0.lock().expect("lock").push(message.to_owned());
    }
}

async fn verify_names_the_first_down_that_does_not_restore(dialect: Dialect) {
    let db = TestDb::new(dialect).await;
    let mut files = BASE.to_vec();
    files.push((
        "0003_col.up.sql",
        "ALTER TABLE items ADD COLUMN price INTEGER;\nCREATE INDEX items_price ON items (price);",
    ));
    // Forgets the index: the schema after the down is not the one before the up.
    files.push(("0003_col.down.sql", "SELECT 1;"));
    files.push(("0004_after.up.sql", "CREATE TABLE after_col (id INTEGER);"));
    files.push(("0004_after.down.sql", "DROP TABLE after_col;"));
    let good = verify(&db.target(), &set(dialect, BASE), &Quiet)
        .await
        .expect("verify");
    assert!(good.first_failure().is_none(), "{good:?}");
    assert_eq!(good.checked.len(), 2);

    let bad = verify(&db.target(), &set(dialect, &files), &Recorder::default())
        .await
        .expect("verify");
    let failure = bad.first_failure().expect("a failure");
    assert_eq!(failure.id, "0003_col");
    let Outcome::DownDoesNotRestore { differences } = &failure.outcome else {
        panic!("{failure:?}");
    };
    assert!(
        differences.iter().any(|d| d.contains("items_price")),
        "{differences:?}"
    );
    assert_eq!(bad.checked.len(), 3, "stops at the first failure");
    assert!(
        !db.table_exists("items").await,
        "verify ran elsewhere, not on the target"
    );
}

macro_rules! on_both {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            use super::*;
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario(Dialect::Sqlite).await;
            })*
        }
        mod postgres {
            use super::*;
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario(Dialect::Postgres).await;
            })*
        }
    };
}

on_both!(
    apply_then_roll_back,
    dry_run_changes_nothing,
    a_failure_mid_file_rolls_the_migration_back,
    drift_and_missing_files_are_reported_and_block,
    an_older_pending_migration_waits_for_run,
    transaction_statements_in_a_file_are_refused,
    concurrent_runners_apply_each_migration_once,
    verify_names_the_first_down_that_does_not_restore,
);

/// `BASE` and a no-transaction migration that builds an index concurrently.
fn with_concurrent_index() -> Vec<(&'static str, &'static str)> {
    let mut files = BASE.to_vec();
    files.push((
        "0003_idx.up.sql",
        "-- palisade:no-transaction\nCREATE INDEX CONCURRENTLY items_name ON items (name);",
    ));
    files.push((
        "0003_idx.down.sql",
        "-- palisade:no-transaction\nDROP INDEX CONCURRENTLY items_name;",
    ));
    files
}

/// `BASE` applied on `db`, then `sql` run on another connection, which is returned
/// open, so that what it began (a lock, a snapshot) lasts until it is closed.
async fn migrated_and_held(db: &TestDb, sql: &'static str) -> Conn {
    up(&db.migrator(BASE)).await.expect("base");
    let mut holder = db.target().connect().await.expect("connect");
    let Conn::Postgres(c) = &mut holder else {
        panic!("a PostgreSQL connection");
    };
    sqlx::raw_sql(sql).execute(&mut *c).await.expect("hold");
    holder
}

#[tokio::test]
async fn a_migration_waits_for_a_lock_only_so_long_on_postgres() {
    // A long transaction holds the table: the ALTER must give up after the engine's
    // lock_timeout instead of queueing every query behind it.
    {
        let db = TestDb::new(Dialect::Postgres).await;
        let holder =
            migrated_and_held(&db, "BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE").await;
        let mut files = BASE.to_vec();
        files.push((
            "0003_note.up.sql",
            "ALTER TABLE items ADD COLUMN note TEXT;",
        ));
        files.push(("0003_note.down.sql", "ALTER TABLE items DROP COLUMN note;"));
        let started = std::time::Instant::now();
        let waited = tokio::time::timeout(Duration::from_secs(60), up(&db.migrator(&files)))
            .await
            .expect("the migration gave up by itself");
        let err = waited.expect_err("the table is locked");
        let secs = started.elapsed().as_secs_f64();
        assert!(err.to_string().contains("lock timeout"), "{err}");
        assert!((4.5..30.0).contains(&secs), "gave up after {secs} s");
        holder.close().await;
        // Once the table is free, the same migration runs.
        up(&db.migrator(&files))
            .await
            .expect("runs once the lock is gone");
    }
    // A limit of the operator's own (here the database's) is kept.
    let db = TestDb::new(Dialect::Postgres).await;
    let files = [
        (
            "0001_show.up.sql",
            "CREATE TABLE seen AS SELECT current_setting('lock_timeout') AS v;",
        ),
        ("0001_show.down.sql", "DROP TABLE seen;"),
    ];
    up(&db.migrator(&files)).await.expect("up");
    assert_eq!(
        db.count("SELECT count(*) FROM seen WHERE v = '5s'").await,
        1
    );
    let mut conn = db.target().connect().await.expect("connect");
    let Conn::Postgres(c) = &mut conn else {
        panic!("a PostgreSQL connection");
    };
    sqlx::raw_sql(
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET lock_timeout = ''42s''', \
         current_database()); END $$",
    )
    .execute(&mut *c)
    .await
    .expect("alter database");
    conn.close().await;
    let again = [
        (
            "0002_show.up.sql",
            "INSERT INTO seen SELECT current_setting('lock_timeout');",
        ),
        ("0002_show.down.sql", "SELECT 1;"),
    ];
    let all: Vec<_> = files.iter().chain(again.iter()).copied().collect();
    up(&db.migrator(&all)).await.expect("up");
    assert_eq!(
        db.count("SELECT count(*) FROM seen WHERE v = '42s'").await,
        1
    );
}

#[tokio::test]
async fn a_concurrent_index_build_waits_for_older_transactions_on_postgres() {
    // A no-transaction file gets no lock_timeout: CREATE INDEX CONCURRENTLY waits for
    // every older transaction of the database, blocking nobody, and must not give up.
    let db = TestDb::new(Dialect::Postgres).await;
    // An open transaction with a snapshot, as a long report would hold.
    let holder = migrated_and_held(
        &db,
        "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM tags",
    )
    .await;
    let m = db.migrator(&with_concurrent_index());
    let build = tokio::spawn(async move { up(&m).await.map(|_| ()) });
    // Longer than the engine's lock_timeout: the build still waits.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert!(
        !build.is_finished(),
        "the build gave up while an older transaction was open"
    );
    holder.close().await;
    tokio::time::timeout(Duration::from_secs(60), build)
        .await
        .expect("the build ends once the transaction does")
        .expect("task")
        .expect("the index is built");
    assert_eq!(
        db.count("SELECT count(*) FROM pg_indexes WHERE indexname = 'items_name'")
            .await,
        1
    );
}

#[tokio::test]
async fn a_no_transaction_file_runs_alone_on_postgres() {
    let db = TestDb::new(Dialect::Postgres).await;
    let m = db.migrator(&with_concurrent_index());
    let progress = Recorder::default();
    m.execute(&Plan::Up { to: None }, false, &progress)
        .await
        .expect("up");
    let said = progress.0.lock().expect("lock").join("\n");
    assert!(
        said.contains("0003_idx runs alone, outside a transaction"),
        "{said}"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM pg_indexes WHERE indexname = 'items_name'")
            .await,
        1
    );
    // Without the directive PostgreSQL refuses the statement inside the transaction.
    let db2 = TestDb::new(Dialect::Postgres).await;
    let mut plain = BASE.to_vec();
    plain.push((
        "0003_idx.up.sql",
        "CREATE INDEX CONCURRENTLY items_name ON items (name);",
    ));
    let err = up(&db2.migrator(&plain))
        .await
        .expect_err("in a transaction");
    assert!(err.to_string().contains("CONCURRENTLY"), "{err}");
}

#[tokio::test]
async fn migrations_for_another_dialect_are_refused() {
    let target = Target::from_url("sqlite::memory:").expect("url");
    let err = match Migrator::new(target, set(Dialect::Postgres, BASE)) {
        Ok(_) => panic!("accepted"),
        Err(e) => e,
    };
    assert!(err.to_string().contains("for postgres"), "{err}");
}
