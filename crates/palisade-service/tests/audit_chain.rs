//! The audit chain on a real (SQLite) database: verification passes on an intact log
//! and names the first row that was changed, deleted or inserted behind its back, and,
//! against an anchor kept from an earlier run, a cut-off end or a rewritten chain.

use palisade_service::audit::{Action, Actor, Anchor, Audit, Entry, Outcome, Verdict};
use palisade_store::Db;

async fn log_with(rows: usize) -> (Db, Audit, tempfile::TempDir) {
    let (db, dir) = palisade_store::testing::migrated_sqlite().await;
    let audit = Audit::new(db.clone());
    for i in 0..rows {
        let actor = Actor {
            ip: Some("192.0.2.7".into()),
            request_id: Some(format!("req-{i}")),
            ..Actor::default()
        };
        audit
            .record(
                &actor,
                Entry::new(Action::Login, Outcome::Failure).detail("n", i),
            )
            .await
            .expect("record");
    }
    (db, audit, dir)
}

async fn verdict(audit: &Audit) -> Verdict {
    audit.verify(None, |_| {}).await.expect("verify")
}

async fn verdict_against(audit: &Audit, anchor: &Anchor) -> Verdict {
    audit.verify(Some(anchor), |_| {}).await.expect("verify")
}

/// The head an intact log reports.
async fn head(audit: &Audit) -> Anchor {
    match verdict(audit).await {
        Verdict::Intact {
            head: Some(head), ..
        } => head,
        other => panic!("not intact: {other:?}"),
    }
}

#[tokio::test]
async fn an_intact_log_verifies_and_names_its_head() {
    let (_db, audit, _dir) = log_with(5).await;
    let head = head(&audit).await;
    assert_eq!(head.seq, 5);
    assert_eq!(
        verdict(&audit).await,
        Verdict::Intact {
            rows: 5,
            head: Some(head.clone())
        }
    );
    // Its own head, and any earlier row's, is a good anchor.
    assert!(matches!(
        verdict_against(&audit, &head).await,
        Verdict::Intact { rows: 5, .. }
    ));
    let (_db0, empty, _dir0) = log_with(0).await;
    assert_eq!(
        verdict(&empty).await,
        Verdict::Intact {
            rows: 0,
            head: None
        }
    );
}

#[tokio::test]
async fn rows_cut_off_the_end_are_found_only_with_an_anchor() {
    let (db, audit, _dir) = log_with(5).await;
    let anchor = head(&audit).await;
    db.execute_script("DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE seq >= 4")
        .await
        .expect("tamper");
    // What is left is a whole chain.
    assert!(matches!(
        verdict(&audit).await,
        Verdict::Intact { rows: 3, .. }
    ));
    assert_eq!(
        verdict_against(&audit, &anchor).await,
        Verdict::Truncated { seq: 5 }
    );
}

#[tokio::test]
async fn a_chain_rewritten_with_recomputed_hashes_misses_its_anchor() {
    let (_db, audit, _dir) = log_with(5).await;
    let anchor = head(&audit).await;
    // Another whole chain of five rows: what an intruder who recomputed every hash
    // after an edit would leave.
    let (_db2, forged, _dir2) = log_with(5).await;
    assert!(matches!(
        verdict(&forged).await,
        Verdict::Intact { rows: 5, .. }
    ));
    assert_eq!(
        verdict_against(&forged, &anchor).await,
        Verdict::Rewritten { seq: 5 }
    );
}

#[test]
fn anchors_are_seq_colon_sha256_hex() {
    let hash = "ab".repeat(32);
    let anchor: Anchor = format!("42:{}", hash.to_uppercase())
        .parse()
        .expect("anchor");
    assert_eq!(anchor.to_string(), format!("42:{hash}"));
    for bad in [
        String::new(),
        "42".into(),
        format!("0:{hash}"),
        format!("x:{hash}"),
        "42:abcd".into(),
        format!("42:{}", "zz".repeat(32)),
    ] {
        assert!(bad.parse::<Anchor>().is_err(), "{bad}");
    }
}

#[tokio::test]
async fn the_application_cannot_change_or_delete_rows() {
    let (db, _audit, _dir) = log_with(2).await;
    assert!(
        db.execute_script("UPDATE audit_log SET outcome = 'success'")
            .await
            .is_err()
    );
    assert!(db.execute_script("DELETE FROM audit_log").await.is_err());
}

#[tokio::test]
async fn a_changed_row_is_named() {
    let (db, audit, _dir) = log_with(5).await;
    db.execute_script(
        "DROP TRIGGER audit_log_no_update; UPDATE audit_log SET details = '{\"n\":99}' WHERE seq = 3",
    )
    .await
    .expect("tamper");
    assert_eq!(verdict(&audit).await, Verdict::Changed { seq: 3 });
}

#[tokio::test]
async fn a_deleted_row_is_named() {
    let (db, audit, _dir) = log_with(5).await;
    db.execute_script("DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE seq = 2")
        .await
        .expect("tamper");
    assert_eq!(verdict(&audit).await, Verdict::Deleted { seq: 3 });
}

#[tokio::test]
async fn an_inserted_row_is_named() {
    let (db, audit, _dir) = log_with(3).await;
    // Shift rows 2.. up by one and put a row at 2 whose content and hash are a valid
    // chain link of their own (copied from row 2, relinked to row 1's hash): row 3 then
    // no longer links to the row before it although the numbering is whole.
    db.execute_script(
        "DROP TRIGGER audit_log_no_update;
         UPDATE audit_log SET seq = seq + 100 WHERE seq >= 2;
         UPDATE audit_log SET seq = seq - 99 WHERE seq >= 102;
         INSERT INTO audit_log (seq, id, occurred_at, actor_id, actor_ip, action, outcome,
                                target_type, target_id, request_id, details, prev_hash, hash)
         SELECT 2, id, occurred_at, actor_id, actor_ip, action, outcome,
                target_type, target_id, request_id, details, prev_hash, hash
         FROM audit_log WHERE seq = 3",
    )
    .await
    .expect("tamper");
    // Row 2 is a faithful copy of the old row 2, so it verifies; the old row 2, now
    // at 3, links to row 1, not to the row before it.
    assert_eq!(verdict(&audit).await, Verdict::Inserted { seq: 3 });
}
