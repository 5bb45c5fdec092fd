//! This build's own migrations pass the linter and verify (each down restores its up)
//! on both databases.

use palisade_migrate::lint::{LintOptions, lint};
use palisade_migrate::verify::verify;
use palisade_migrate::{Quiet, Target};
use palisade_store::Backend;
use palisade_store::schema::migrations;
use palisade_store::testing::test_database_url;

#[test]
fn the_migrations_lint_clean() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let findings = lint(&migrations(backend), &LintOptions::default());
        assert!(findings.is_empty(), "{}: {findings:#?}", backend.as_str());
    }
}

async fn verified(like: Target) {
    let set = migrations(like.dialect());
    let v = verify(&like, &set, &Quiet).await.expect("verify");
    assert_eq!(v.checked.len(), set.migrations.len());
    assert!(v.first_failure().is_none(), "{v:#?}");
}

#[tokio::test]
async fn every_down_restores_its_up_on_sqlite() {
    verified(Target::from_url("sqlite::memory:").expect("url")).await;
}

#[tokio::test]
async fn every_down_restores_its_up_on_postgres() {
    verified(Target::from_url(&test_database_url()).expect("TEST_DATABASE_URL")).await;
}
