//! The dispatcher, in-process on SQLite and PostgreSQL: events recorded in a
//! transaction are dispatched in batches, each exactly once also with concurrent
//! dispatchers; an event that cannot be dispatched moves to the job queue and holds no
//! other back; a rolled-back event is never dispatched.

use std::sync::Arc;

use palisade_auth::ids::UserId;
use palisade_auth::secretbox::SecretBox;
use palisade_service::dispatch::{self, Dispatcher};
use palisade_service::events::{EventLog, EventType};
use palisade_service::mail::{Mail, MailSettings, TransportSettings};
use palisade_service::notifications::Notifications;
use palisade_service::notifications::live::Live;
use palisade_service::webhooks::{WebhookSettings, Webhooks};
use palisade_store::Db;
use palisade_store::cache::ScopeVersions;
use palisade_store::repo::{jobs, notifications};
use palisade_store::slots::Slots;
use serde_json::json;
use uuid::Uuid;

#[allow(dead_code)] // Each test binary uses a part of it.
mod common;

fn log_and_dispatcher(db: &Db) -> (EventLog, Arc<Dispatcher>) {
    let events = EventLog::new(Arc::new(ScopeVersions::new(db.clone())));
    let notifications = Notifications::new(db.clone(), Live::new(Slots::new(None)));
    let webhooks = Webhooks::new(
        db.clone(),
        SecretBox::new(&[7; 32]).unwrap(),
        events.clone(),
        WebhookSettings::default(),
    )
    .unwrap();
    let mail = Mail::new(
        db.clone(),
        SecretBox::new(&[8; 32]).unwrap(),
        MailSettings {
            from: "Palisade <no-reply@example.com>".parse().unwrap(),
            public_url: "https://app.example.com".to_owned(),
            transport: TransportSettings::Files(tempfile::tempdir().unwrap().keep()),
        },
    )
    .unwrap();
    let dispatcher = Dispatcher::new(db.clone(), notifications, webhooks, mail, &events);
    (events, dispatcher)
}

/// Records `n` successful payments of `owner`, one transaction each.
async fn paid(db: &Db, events: &EventLog, owner: UserId, n: usize) {
    for i in 0..n {
        let mut tx = db.begin().await.expect("begin");
        events
            .record(
                &mut tx,
                EventType::PaymentSucceeded,
                format!("pay_{i}"),
                owner,
                Some(owner),
                json!({"amount": {"amount_cents": 100, "currency": "EUR"}}),
            )
            .await
            .expect("record");
        tx.commit().await.expect("commit");
    }
}

async fn notified(db: &Db, user: UserId) -> usize {
    notifications::page(db, user, false, None, 10_000)
        .await
        .expect("notifications")
        .len()
}

async fn events_are_dispatched_in_batches(db: Db) {
    let (events, dispatcher) = log_and_dispatcher(&db);
    let who = common::member(&db, "a@example.com").await;
    paid(&db, &events, who.user_id, 250).await;
    // A recorded event that rolls back is never seen.
    let mut tx = db.begin().await.unwrap();
    events
        .record(
            &mut tx,
            EventType::PaymentSucceeded,
            "gone",
            who.user_id,
            None,
            json!({}),
        )
        .await
        .unwrap();
    drop(tx);

    let mut batches = Vec::new();
    loop {
        let n = dispatcher.dispatch_pending().await.expect("dispatch");
        batches.push(n);
        if n == 0 {
            break;
        }
    }
    assert_eq!(batches, [100, 100, 50, 0]);
    assert_eq!(notified(&db, who.user_id).await, 250);
}

async fn each_event_is_dispatched_once_by_concurrent_dispatchers(db: Db) {
    let (events, _) = log_and_dispatcher(&db);
    let who = common::member(&db, "a@example.com").await;
    paid(&db, &events, who.user_id, 300).await;
    let mut runs = Vec::new();
    for _ in 0..4 {
        let (_, dispatcher) = log_and_dispatcher(&db);
        runs.push(tokio::spawn(async move {
            let mut taken = 0;
            loop {
                match dispatcher.dispatch_pending().await.expect("dispatch") {
                    0 => return taken,
                    n => taken += n,
                }
            }
        }));
    }
    let mut taken = 0;
    for run in runs {
        taken += run.await.unwrap();
    }
    assert_eq!(taken, 300, "every event taken by exactly one dispatcher");
    assert_eq!(notified(&db, who.user_id).await, 300);
}

async fn an_event_that_fails_moves_to_the_job_queue(db: Db) {
    let (events, dispatcher) = log_and_dispatcher(&db);
    let who = common::member(&db, "a@example.com").await;
    paid(&db, &events, who.user_id, 3).await;
    // Its owner does not exist: its notification breaks the foreign key.
    let ghost = UserId::from(Uuid::now_v7());
    paid(&db, &events, ghost, 1).await;
    paid(&db, &events, who.user_id, 3).await;

    assert_eq!(dispatcher.dispatch_pending().await.expect("dispatch"), 7);
    assert_eq!(dispatcher.dispatch_pending().await.expect("dispatch"), 0);
    assert_eq!(
        notified(&db, who.user_id).await,
        6,
        "the others went through"
    );
    let queued = jobs::list(&db, None, 10).await.unwrap();
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(queued[0].kind, dispatch::KIND);
    assert_eq!(queued[0].state, jobs::QUEUED);
}

on_both!(
    events_are_dispatched_in_batches,
    each_event_is_dispatched_once_by_concurrent_dispatchers,
    an_event_that_fails_moves_to_the_job_queue,
);
