//! Cache-scope versions as a process knows them: a change committed here is seen by the
//! next read at once; on PostgreSQL a change committed by
//! another instance is seen as soon as its notification arrives, well within the age
//! a version is otherwise trusted for.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use palisade_store::background::Tasks;
use palisade_store::cache::ScopeVersions;
use palisade_store::cache::versions::MAX_AGE;
use palisade_store::listen::Subscriptions;
use palisade_store::testing::{migrated_postgres, migrated_sqlite};
use palisade_store::{Db, StoreSettings};

const SCOPE: &str = "owner:test";

async fn bump(versions: &ScopeVersions, db: &Db) {
    let mut tx = db.begin().await.expect("begin");
    versions
        .bump(&mut tx, &[SCOPE.to_owned()])
        .await
        .expect("bump");
    tx.commit().await.expect("commit");
}

async fn own_changes_show_on_the_next_read(db: Db) {
    let versions = ScopeVersions::new(db.clone());
    assert_eq!(versions.version(SCOPE).await.expect("read"), 0);
    bump(&versions, &db).await;
    assert_eq!(
        versions.version(SCOPE).await.expect("read"),
        1,
        "seen at once"
    );
}

/// What waits for a commit runs after it, and never for a transaction rolled back.
async fn commit_hooks_run_only_on_commit(db: Db) {
    let ran = Arc::new(AtomicUsize::new(0));
    for commit in [false, true] {
        let mut tx = db.begin().await.expect("begin");
        let counter = ran.clone();
        tx.on_commit(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(ran.load(Ordering::SeqCst), 0, "not before the commit");
        if commit {
            tx.commit().await.expect("commit");
        }
    }
    assert_eq!(ran.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn own_changes_show_on_the_next_read_sqlite() {
    let (db, _dir) = migrated_sqlite().await;
    own_changes_show_on_the_next_read(db.clone()).await;
    commit_hooks_run_only_on_commit(db).await;
}

#[tokio::test]
async fn own_changes_show_on_the_next_read_postgres() {
    let (db, _pg) = migrated_postgres().await;
    own_changes_show_on_the_next_read(db.clone()).await;
    commit_hooks_run_only_on_commit(db).await;
}

/// Another instance: its own pool, its own versions, its own listener.
async fn instance(url: &str) -> (Db, ScopeVersions, Tasks) {
    let db = Db::connect(&StoreSettings::new(url.to_owned()))
        .await
        .expect("connect");
    let versions = ScopeVersions::new(db.clone());
    let mut subscriptions = Subscriptions::default();
    versions.subscribe(&mut subscriptions);
    let mut tasks = Tasks::default();
    subscriptions.start(&db, &mut tasks);
    (db, versions, tasks)
}

#[tokio::test]
async fn another_instances_change_shows_when_its_notification_arrives() {
    let (_db, pg) = migrated_postgres().await;
    let (db_a, a, tasks_a) = instance(pg.url()).await;
    let (db_b, b, tasks_b) = instance(pg.url()).await;
    // Let both listeners connect: a change made before is only bounded by the age.
    tokio::time::sleep(Duration::from_millis(300)).await;

    for round in 1..=5 {
        assert_eq!(
            a.version(SCOPE).await.expect("read"),
            round - 1,
            "a knows it"
        );
        let committed = Instant::now();
        bump(&b, &db_b).await;
        loop {
            if a.version(SCOPE).await.expect("read") == round {
                break;
            }
            assert!(
                committed.elapsed() < MAX_AGE / 2,
                "round {round}: instance a still trusts the old version after {:?}",
                committed.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    tasks_a.stop(Duration::from_secs(1)).await;
    tasks_b.stop(Duration::from_secs(1)).await;
    db_a.close().await;
    db_b.close().await;
}
