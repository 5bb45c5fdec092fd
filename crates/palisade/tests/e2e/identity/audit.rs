//! The audit trail records events and `palisade audit verify` finds an edited row.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api::token;
use crate::backends::{Env, PASSWORD};

async fn the_audit_trail_records_and_detects_an_edited_row(e: Env) {
    let api = &e.api;
    let admin = e.admin("auditor@example.com").await;
    let at = token(&admin, "access_token");
    api.register("someone@example.com", PASSWORD, "S").await;
    api.login("someone@example.com", "wrong password 1234")
        .await;
    let events = api
        .get_as("/api/v1/audit?limit=100", &at)
        .await
        .expect(StatusCode::OK);
    let actions: Vec<&str> = events.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for want in ["auth.register", "auth.login"] {
        assert!(actions.contains(&want), "{want} in {actions:?}");
    }
    let failures = api
        .get_as("/api/v1/audit?action=auth.login&limit=100", &at)
        .await;
    assert!(
        failures.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|e| e["outcome"] == "failure")
    );
    let body = events.body.to_string();
    assert!(
        !body.contains(PASSWORD) && !body.contains("wrong password"),
        "no password in the audit trail"
    );
    // A filter that cannot name an action is refused, not searched for.
    for bad in ["auth.login'%20OR%201=1", "AUTH.LOGIN", &"a".repeat(101)] {
        let r = api
            .get_as(&format!("/api/v1/audit?action={bad}"), &at)
            .await
            .expect(StatusCode::BAD_REQUEST);
        assert_eq!(r.code(), "request.invalid_query", "{bad}");
        assert!(r.text("detail").starts_with("action:"), "{bad}: {}", r.body);
    }

    let ok = e.cli(&["audit", "verify"], "");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let out = String::from_utf8_lossy(&ok.stdout).into_owned();
    assert!(out.contains("intact"), "{out}");
    // The head it names is an anchor for later runs.
    let head = out
        .lines()
        .find_map(|l| l.strip_prefix("head: "))
        .and_then(|l| l.split_whitespace().next())
        .expect("a head line")
        .to_owned();
    let anchored = e.cli(&["audit", "verify", "--anchor", &head], "");
    assert!(
        anchored.status.success(),
        "{}",
        String::from_utf8_lossy(&anchored.stdout)
    );
    // An anchor beyond the end: rows were cut off.
    let (seq, hash) = head.split_once(':').expect("SEQ:HASH");
    let beyond = format!("{}:{hash}", seq.parse::<i64>().expect("seq") + 1000);
    let cut = e.cli(&["audit", "verify", "--json", "--anchor", &beyond], "");
    assert_eq!(cut.status.code(), Some(1));
    let verdict: Value = serde_json::from_slice(&cut.stdout).expect("json verdict");
    assert_eq!(
        verdict["Truncated"]["seq"],
        seq.parse::<i64>().expect("seq") + 1000
    );
    let garbled = e.cli(&["audit", "verify", "--anchor", "7:nothex"], "");
    assert_eq!(garbled.status.code(), Some(2), "a usage error");

    // Someone with database access edits a row (they must drop the guard first).
    tamper(&e).await;
    let bad = e.cli(&["audit", "verify", "--json"], "");
    assert_eq!(
        bad.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&bad.stdout)
    );
    let verdict: Value = serde_json::from_slice(&bad.stdout).expect("json verdict");
    assert_eq!(verdict, json!({"Changed": {"seq": 2}}));
}

/// Changes the outcome of audit row 2, as an intruder with database access would.
async fn tamper(e: &Env) {
    let url = &e
        .env
        .iter()
        .find(|(k, _)| k == "DATABASE_URL")
        .expect("url")
        .1;
    let db = palisade_store::Db::connect(&palisade_store::StoreSettings::new(url.clone()))
        .await
        .expect("db");
    let sql: &'static str = match db.backend() {
        palisade_store::Backend::Sqlite => {
            "DROP TRIGGER audit_log_no_update; UPDATE audit_log SET outcome = 'failure' WHERE seq = 2"
        }
        palisade_store::Backend::Postgres => {
            "DROP TRIGGER audit_log_append_only ON audit_log; UPDATE audit_log SET outcome = 'failure' WHERE seq = 2"
        }
    };
    db.execute_script(sql).await.expect("tamper");
    db.close().await;
}

on_both!(the_audit_trail_records_and_detects_an_edited_row,);
