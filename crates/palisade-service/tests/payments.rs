//! Payments under an idempotency key, in-process on SQLite and PostgreSQL: a run that
//! committed a payment and died before storing its answer is continued by the retry
//! that takes its key over (one payment, charged once), the run that lost its key can
//! no longer commit, and a finished key replays its answer.

mod common;

use std::sync::Arc;

use palisade_service::contracts::Contracts;
use palisade_service::contracts::fields::{ContractPatch, Money, Status};
use palisade_service::events::EventLog;
use palisade_service::idempotency::{Answer, Claimed, Idempotency, IdempotencyKey, fingerprint};
use palisade_service::identity::Provenance;
use palisade_service::payments::provider::Simulated;
use palisade_service::payments::{ListQuery, NewPayment, Payments};
use palisade_store::Db;
use palisade_store::cache::ScopeVersions;
use serde_json::json;

use common::{member, new_contract};

async fn a_retry_continues_what_a_dead_run_committed(db: Db) {
    let events = EventLog::new(Arc::new(ScopeVersions::new(db.clone())));
    let contracts = Contracts::new(db.clone(), events.clone());
    let payments = Payments::new(db.clone(), events, Arc::new(Simulated));
    let keys = Idempotency::new(db.clone());
    let who = member(&db, "a@example.com").await;
    let from = Provenance::default();
    let c = contracts
        .create(&who, &from, new_contract())
        .await
        .expect("contract");
    let active = ContractPatch {
        status: Some(Status::Active),
        ..ContractPatch::default()
    };
    contracts
        .update(&who, &from, c.id, None, active)
        .await
        .expect("activate");
    let input = || NewPayment {
        contract_id: c.id,
        amount: Money {
            amount_cents: 200,
            currency: "EUR".to_owned(),
        },
        payment_method: "pm_card_visa".to_owned(),
        description: None,
    };
    let key = IdempotencyKey::parse("retry-me").expect("key");
    let print = fingerprint("POST", "/api/v1/payments", &json!({"amount": 200}));

    let Claimed::Fresh(first) = keys
        .claim(who.user_id, key.clone(), &print)
        .await
        .expect("claim")
    else {
        panic!("a new key is fresh");
    };
    assert!(matches!(
        keys.claim(who.user_id, key.clone(), &print)
            .await
            .expect("claim"),
        Claimed::InProgress
    ));
    let paid = payments
        .create(&who, &from, Some(&first), input())
        .await
        .expect("pay");
    // The run dies before storing its answer; its lease ends (as a dropped request's).
    keys.release(&first).await.expect("release");

    let Claimed::Fresh(second) = keys
        .claim(who.user_id, key.clone(), &print)
        .await
        .expect("claim")
    else {
        panic!("a lapsed key is taken over");
    };
    assert_eq!(second.outcome(), Some(paid.id.to_string().as_str()));
    let again = payments
        .create(&who, &from, Some(&second), input())
        .await
        .expect("continue");
    assert_eq!(
        (again.id, again.provider_ref.clone()),
        (paid.id, paid.provider_ref.clone())
    );
    let page = payments
        .list(&who, &ListQuery::default(), None, Default::default())
        .await
        .expect("list");
    assert_eq!(page.items.len(), 1, "one payment, whatever the retries");

    // The first run, had it lived on, can no longer commit under the key.
    let mut tx = db.begin().await.expect("begin");
    assert!(first.record(&mut tx, "anything").await.is_err());
    drop(tx);

    let answer = Answer {
        status: 201,
        headers: vec![("location".into(), format!("/api/v1/payments/{}", paid.id))],
        body: b"{}".to_vec(),
    };
    keys.finish(&second, &answer).await.expect("finish");
    match keys
        .claim(who.user_id, key.clone(), &print)
        .await
        .expect("claim")
    {
        Claimed::Replay(replayed) => assert_eq!(replayed, answer),
        other => panic!("{other:?}"),
    }
    let other = fingerprint("POST", "/api/v1/payments", &json!({"amount": 201}));
    assert!(matches!(
        keys.claim(who.user_id, key, &other).await.expect("claim"),
        Claimed::Reused
    ));
    // Nothing has expired yet.
    assert_eq!(keys.purge_expired().await.expect("purge"), 0);
}

#[tokio::test]
async fn a_retry_continues_what_a_dead_run_committed_on_sqlite() {
    let (db, _dir) = palisade_store::testing::migrated_sqlite().await;
    a_retry_continues_what_a_dead_run_committed(db).await;
}

#[tokio::test]
async fn a_retry_continues_what_a_dead_run_committed_on_postgres() {
    let (db, _pg) = palisade_store::testing::migrated_postgres().await;
    a_retry_continues_what_a_dead_run_committed(db).await;
}
