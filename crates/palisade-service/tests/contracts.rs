//! Contracts in-process, on migrated SQLite and PostgreSQL: each write leaves exactly
//! one domain event and one audit entry, written in its transaction; a refused write
//! leaves neither.

mod common;

use std::sync::Arc;

use palisade_service::contracts::fields::{ContractPatch, Status};
use palisade_service::contracts::{ContractError, Contracts};
use palisade_service::events::EventLog;
use palisade_service::identity::Provenance;
use palisade_store::Db;
use palisade_store::cache::ScopeVersions;
use palisade_store::repo::audit;
use palisade_store::repo::events::{self, EventRow};

async fn all_events(db: &Db) -> Vec<EventRow> {
    events::after(db, None, 1000).await.expect("events")
}

async fn audit_actions(db: &Db) -> Vec<String> {
    let filter = audit::Filter::default();
    audit::page(db, &filter, 1000)
        .await
        .expect("audit")
        .into_iter()
        .map(|e| e.action)
        .collect()
}

use common::{member, new_contract};

async fn every_write_leaves_one_event_and_one_audit_entry(db: Db) {
    let versions = Arc::new(ScopeVersions::new(db.clone()));
    let contracts = Contracts::new(db.clone(), EventLog::new(versions));
    let who = member(&db, "a@example.com").await;
    let from = Provenance::default();
    let c = contracts
        .create(&who, &from, new_contract())
        .await
        .expect("create");
    let status = |s| ContractPatch {
        status: Some(s),
        ..ContractPatch::default()
    };
    contracts
        .update(&who, &from, c.id, None, status(Status::Active))
        .await
        .expect("activate");
    // Refused: no event, no entry.
    let refused = contracts
        .update(&who, &from, c.id, None, status(Status::Draft))
        .await;
    assert!(matches!(
        refused,
        Err(ContractError::InvalidTransition { .. })
    ));
    let stale = contracts
        .update(&who, &from, c.id, Some("\"1\""), status(Status::Cancelled))
        .await;
    assert!(matches!(
        stale,
        Err(ContractError::VersionMismatch { current: 2 })
    ));
    // A change to nothing writes nothing.
    contracts
        .update(&who, &from, c.id, None, status(Status::Active))
        .await
        .expect("no change");
    contracts
        .update(&who, &from, c.id, Some("\"2\""), status(Status::Cancelled))
        .await
        .expect("cancel");
    contracts.delete(&who, &from, c.id).await.expect("delete");

    let events = all_events(&db).await;
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "contract.created",
            "contract.updated",
            "contract.updated",
            "contract.deleted"
        ]
    );
    assert!(events.iter().all(|e| e.subject_type == "contract"
        && e.subject_id == c.id.to_string()
        && e.actor_id == Some(who.user_id.as_uuid())));
    assert_eq!(events[0].data["title"], "Bolts");
    assert_eq!(events[1].data["previous_status"], "draft");
    assert_eq!(events[1].data["status"], "active");
    assert_eq!(events[2].data["version"], 3);
    let mut ids: Vec<_> = events.iter().map(|e| e.id).collect();
    ids.sort();
    assert_eq!(
        ids,
        events.iter().map(|e| e.id).collect::<Vec<_>>(),
        "ids sort by creation"
    );

    let actions = audit_actions(&db).await;
    let contract_actions: Vec<&str> = actions
        .iter()
        .map(String::as_str)
        .filter(|a| a.starts_with("contract."))
        .collect();
    assert_eq!(contract_actions.len(), 4, "{actions:?}");
}

#[tokio::test]
async fn every_write_leaves_one_event_and_one_audit_entry_on_sqlite() {
    let (db, _dir) = palisade_store::testing::migrated_sqlite().await;
    every_write_leaves_one_event_and_one_audit_entry(db).await;
}

#[tokio::test]
async fn every_write_leaves_one_event_and_one_audit_entry_on_postgres() {
    let (db, _pg) = palisade_store::testing::migrated_postgres().await;
    every_write_leaves_one_event_and_one_audit_entry(db).await;
}
