//! Contracts: scoping, validation, the status machine, optimistic concurrency, pages
//! and filters, from the outside.

use std::collections::HashSet;

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{create, created, draft, get, ids, member, patch, with_role};
use crate::backends::Env;

/// A member sees and changes only their own contracts; someone else's is 404 whatever
/// the method; a manager and an admin see everyone's.
async fn a_member_sees_only_their_own(e: Env) {
    let a = member(&e, "a@example.com").await;
    let b = member(&e, "b@example.com").await;
    let manager = with_role(&e, "manager@example.com", "manager").await;
    let admin = with_role(&e, "admin@example.com", "admin").await;
    let r = create(&e, &a, draft("A's deal"))
        .await
        .expect(StatusCode::CREATED);
    let id = r.text("id");
    assert_eq!(r.headers["etag"], "\"1\"");
    assert_eq!(
        r.headers["location"],
        format!("/api/v1/contracts/{id}").as_str()
    );
    assert_eq!(r.body["status"], "draft");
    assert_eq!(r.body["version"], 1);
    assert_eq!(r.body["owner_id"], a.id.as_str());
    assert_eq!(
        r.body["balance"],
        json!({"paid_cents": 0, "refunded_cents": 0, "outstanding_cents": 125_000})
    );
    let b_own = created(&e, &b, draft("B's deal")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let path = format!("/api/v1/contracts/{id}");
    let r = get(&e, &b, &path).await.expect(StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "route.not_found", "{}", r.body);
    patch(&e, &b, &id, None, json!({"title": "mine now"}))
        .await
        .expect(StatusCode::NOT_FOUND);
    e.api
        .send_as(Method::DELETE, &path, &b.at, None)
        .await
        .expect(StatusCode::NOT_FOUND);
    let list = get(&e, &b, "/api/v1/contracts")
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&list.body), vec![b_own.clone()]);
    let r = get(&e, &b, &format!("/api/v1/contracts?owner={}", a.id))
        .await
        .expect(StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "auth.forbidden");

    for boss in [&manager, &admin] {
        let r = get(&e, boss, &path).await.expect(StatusCode::OK);
        assert_eq!(r.body["title"], "A's deal");
        let all = get(&e, boss, "/api/v1/contracts")
            .await
            .expect(StatusCode::OK);
        assert_eq!(ids(&all.body), [b_own.clone(), id.clone()]);
        let only_a = get(&e, boss, &format!("/api/v1/contracts?owner={}", a.id))
            .await
            .expect(StatusCode::OK);
        assert_eq!(ids(&only_a.body), vec![id.clone()]);
    }
    // Nothing B tried changed A's contract.
    let r = get(&e, &a, &path).await.expect(StatusCode::OK);
    assert_eq!(
        (r.body["title"].clone(), r.body["version"].clone()),
        (json!("A's deal"), json!(1))
    );

    // Every write is in the audit trail.
    let audit = get(&e, &admin, "/api/v1/audit?action=contract.created")
        .await
        .expect(StatusCode::OK);
    let targets: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|ev| ev["target_id"].as_str())
        .collect();
    assert!(
        targets.contains(&id.as_str()) && targets.contains(&b_own.as_str()),
        "{}",
        audit.body
    );
}

/// Every rule of the fields answers 422 naming the field; nothing is stored.
async fn invalid_contracts_are_refused_by_field(e: Env) {
    let a = member(&e, "a@example.com").await;
    let base = draft("ok");
    let with = |field: &str, value: serde_json::Value| {
        let mut b = base.clone();
        b[field] = value;
        b
    };
    let cases = [
        (with("title", json!("")), "title"),
        (with("title", json!("   ")), "title"),
        (with("title", json!("x".repeat(201))), "title"),
        (with("title", json!("nul\u{0}byte")), "title"),
        (with("counterparty", json!("")), "counterparty"),
        (
            with("description", json!("d".repeat(10_001))),
            "description",
        ),
        (
            with("amount", json!({"amount_cents": 0, "currency": "EUR"})),
            "amount.amount_cents",
        ),
        (
            with(
                "amount",
                json!({"amount_cents": 1_000_000_000_001_i64, "currency": "EUR"}),
            ),
            "amount.amount_cents",
        ),
        (
            with("amount", json!({"amount_cents": 5, "currency": "EURO"})),
            "amount.currency",
        ),
        (
            with("amount", json!({"amount_cents": 5, "currency": "eur"})),
            "amount.currency",
        ),
        (
            with("amount", json!({"amount_cents": 5, "currency": "XAU"})),
            "amount.currency",
        ),
        (
            with("amount", json!({"amount_cents": 5, "currency": "ZZZ"})),
            "amount.currency",
        ),
        (with("tags", json!(["Upper"])), "tags[0]"),
        (with("tags", json!(["a".repeat(33)])), "tags[0]"),
        (
            with(
                "tags",
                json!((0..11).map(|i| format!("t{i}")).collect::<Vec<_>>()),
            ),
            "tags",
        ),
        (with("starts_on", json!("2026-13-01")), "starts_on"),
        (with("starts_on", json!("2026-1-01")), "starts_on"),
        (
            json!({"title": "t", "counterparty": "c", "amount": {"amount_cents": 1, "currency": "EUR"},
                "starts_on": "2026-02-01", "ends_on": "2026-01-31"}),
            "ends_on",
        ),
        (with("owner_id", json!("someone")), "owner_id"),
        (with("status", json!("active")), "status"),
    ];
    for (body, field) in cases {
        let r = create(&e, &a, body.clone())
            .await
            .expect(StatusCode::UNPROCESSABLE_ENTITY);
        let fields: Vec<&str> = r.body["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}: {}", r.body))
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert!(fields.contains(&field), "{body}: {}", r.body);
    }
    // A currency's own minor unit: yen have none below 1, dinars three digits.
    for currency in ["JPY", "KWD", "USD"] {
        let mut b = draft(currency);
        b["amount"]["currency"] = json!(currency);
        created(&e, &a, b).await;
    }
    let list = get(&e, &a, "/api/v1/contracts")
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&list.body).len(), 3, "only the valid ones were stored");
}

/// Every move of the status machine, from each status: the allowed ones succeed, the
/// others answer 409 `contracts.invalid_transition` and change nothing.
async fn every_transition_is_checked(e: Env) {
    let a = member(&e, "a@example.com").await;
    let statuses = ["draft", "active", "completed", "cancelled"];
    let allowed = [
        ("draft", "active"),
        ("draft", "cancelled"),
        ("active", "completed"),
        ("active", "cancelled"),
    ];
    // The path to reach each status from draft.
    let path_to = |s: &str| -> Vec<&'static str> {
        match s {
            "draft" => vec![],
            "active" => vec!["active"],
            "completed" => vec!["active", "completed"],
            _ => vec!["cancelled"],
        }
    };
    for from in statuses {
        for to in statuses {
            if from == to {
                continue;
            }
            let id = created(&e, &a, draft(&format!("{from} to {to}"))).await["id"]
                .as_str()
                .unwrap()
                .to_owned();
            for step in path_to(from) {
                patch(&e, &a, &id, None, json!({"status": step}))
                    .await
                    .expect(StatusCode::OK);
            }
            let before = get(&e, &a, &format!("/api/v1/contracts/{id}")).await.body;
            let r = patch(&e, &a, &id, None, json!({"status": to})).await;
            if allowed.contains(&(from, to)) {
                let r = r.expect(StatusCode::OK);
                assert_eq!(r.body["status"], to);
                assert_eq!(r.body["version"], before["version"].as_i64().unwrap() + 1);
            } else {
                let r = r.expect(StatusCode::CONFLICT);
                assert_eq!(r.code(), "contracts.invalid_transition", "{from}→{to}");
                let after = get(&e, &a, &format!("/api/v1/contracts/{id}")).await.body;
                assert_eq!(after, before, "{from}→{to} changed the contract");
            }
        }
    }
}

/// After draft the amount and currency are fixed; other fields still change. Only a
/// draft or cancelled contract can be deleted.
async fn money_is_locked_after_draft_and_only_drafts_delete(e: Env) {
    let a = member(&e, "a@example.com").await;
    let id = created(&e, &a, draft("locked")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = patch(
        &e,
        &a,
        &id,
        None,
        json!({"amount": {"amount_cents": 99, "currency": "USD"}}),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(
        r.body["amount"],
        json!({"amount_cents": 99, "currency": "USD"})
    );
    patch(&e, &a, &id, None, json!({"status": "active"}))
        .await
        .expect(StatusCode::OK);
    for amount in [
        json!({"amount_cents": 100, "currency": "USD"}),
        json!({"amount_cents": 99, "currency": "EUR"}),
    ] {
        let r = patch(
            &e,
            &a,
            &id,
            None,
            json!({"amount": amount, "title": "sneaky"}),
        )
        .await
        .expect(StatusCode::CONFLICT);
        assert_eq!(r.code(), "contracts.locked");
    }
    // The same amount again is no change; the rest may change.
    let r = patch(
        &e,
        &a,
        &id,
        None,
        json!({"amount": {"amount_cents": 99, "currency": "USD"}, "title": "renamed",
               "tags": ["x", "y", "x"], "ends_on": "2027-01-01", "description": "line 1\nline 2"}),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(r.body["title"], "renamed");
    assert_eq!(r.body["tags"], json!(["x", "y"]));
    assert_eq!(r.body["ends_on"], "2027-01-01");
    assert_eq!(r.body["description"], "line 1\nline 2");
    let path = format!("/api/v1/contracts/{id}");
    let r = e
        .api
        .send_as(Method::DELETE, &path, &a.at, None)
        .await
        .expect(StatusCode::CONFLICT);
    assert_eq!(r.code(), "contracts.has_payments");
    patch(&e, &a, &id, None, json!({"status": "cancelled"}))
        .await
        .expect(StatusCode::OK);
    e.api
        .send_as(Method::DELETE, &path, &a.at, None)
        .await
        .expect(StatusCode::NO_CONTENT);
    get(&e, &a, &path).await.expect(StatusCode::NOT_FOUND);
}

/// `If-Match` with a stale version is 412 and changes nothing; of concurrent changes
/// against the same version exactly one wins.
async fn a_stale_if_match_is_refused(e: Env) {
    let a = member(&e, "a@example.com").await;
    let id = created(&e, &a, draft("v1")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = patch(&e, &a, &id, Some("\"1\""), json!({"title": "v2"}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(r.headers["etag"], "\"2\"");
    for stale in ["\"1\"", "W/\"2\"", "2", "\"3\""] {
        let r = patch(&e, &a, &id, Some(stale), json!({"title": "lost"}))
            .await
            .expect(StatusCode::PRECONDITION_FAILED);
        assert_eq!(r.code(), "contracts.version_mismatch", "{stale}");
    }
    let r = get(&e, &a, &format!("/api/v1/contracts/{id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(r.headers["etag"], "\"2\"");
    assert_eq!(r.body["title"], "v2");

    let mut racers = tokio::task::JoinSet::new();
    for i in 0..8 {
        let (api, auth, path) = (
            e.api.clone(),
            format!("Bearer {}", a.at),
            format!("/api/v1/contracts/{id}"),
        );
        racers.spawn(async move {
            let body = json!({"title": format!("racer {i}")});
            let headers = [("authorization", auth.as_str()), ("if-match", "\"2\"")];
            api.call(Method::PATCH, &path, Some(body), &headers)
                .await
                .status
        });
    }
    let outcomes = racers.join_all().await;
    let won = outcomes.iter().filter(|s| **s == StatusCode::OK).count();
    let lost = outcomes
        .iter()
        .filter(|s| **s == StatusCode::PRECONDITION_FAILED)
        .count();
    assert_eq!((won, lost), (1, 7), "{outcomes:?}");
    let r = get(&e, &a, &format!("/api/v1/contracts/{id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(r.body["version"], 3);
}

/// 45 contracts read 20 at a time give each id exactly once, newest first, also while
/// others are being created between the pages.
async fn pages_give_every_contract_once(e: Env) {
    let a = member(&e, "a@example.com").await;
    let mut made = Vec::new();
    for i in 0..45 {
        made.push(
            created(&e, &a, draft(&format!("c{i}"))).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/contracts?limit=20&cursor={c}"),
            None => "/api/v1/contracts?limit=20".to_owned(),
        };
        let r = get(&e, &a, &path).await.expect(StatusCode::OK);
        seen.extend(ids(&r.body));
        pages += 1;
        // Newer contracts arrive meanwhile: they come before the cursor, never after.
        created(&e, &a, draft(&format!("meanwhile {pages}"))).await;
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "an id came twice");
    made.reverse();
    assert_eq!(seen, made, "every contract once, newest first");
    let r = get(&e, &a, "/api/v1/contracts?cursor=bm90LWEtdXVpZA")
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "request.invalid_query");
}

/// Each filter narrows the list to what it names, alone and together.
async fn every_filter_narrows(e: Env) {
    let a = member(&e, "a@example.com").await;
    let mut first = draft("Quarterly bolts");
    first["tags"] = json!(["hardware", "eu"]);
    first["description"] = json!("Nuts and bolts from Rotterdam");
    let first = created(&e, &a, first).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mark = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let mut second = draft("Cloud hosting");
    second["tags"] = json!(["software"]);
    second["counterparty"] = json!("Nimbus Ltd");
    let second = created(&e, &a, second).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    patch(&e, &a, &second, None, json!({"status": "active"}))
        .await
        .expect(StatusCode::OK);
    let third = created(&e, &a, draft("Office chairs")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let q = |query: &str| format!("/api/v1/contracts?{query}");
    let enc = |s: &str| s.replace(':', "%3A").replace('+', "%2B");
    let cases = [
        ("status=active".to_owned(), vec![second.clone()]),
        (
            "status=draft".to_owned(),
            vec![third.clone(), first.clone()],
        ),
        ("tag=eu".to_owned(), vec![first.clone()]),
        (
            "tag=software&status=active".to_owned(),
            vec![second.clone()],
        ),
        ("tag=software&status=draft".to_owned(), vec![]),
        ("q=bolts".to_owned(), vec![first.clone()]),
        ("q=ROTTERDAM".to_owned(), vec![first.clone()]),
        ("q=nimbus".to_owned(), vec![second.clone()]),
        ("q=acme".to_owned(), vec![third.clone(), first.clone()]),
        ("q=acme%20chairs".to_owned(), vec![third.clone()]),
        ("q=acme&status=draft&tag=eu".to_owned(), vec![first.clone()]),
        (
            format!("created_after={}", enc(&mark)),
            vec![third.clone(), second.clone()],
        ),
        (
            format!("created_before={}", enc(&mark)),
            vec![first.clone()],
        ),
        (
            format!("owner={}", a.id),
            vec![third.clone(), second.clone(), first.clone()],
        ),
    ];
    for (query, want) in cases {
        let r = get(&e, &a, &q(&query)).await.expect(StatusCode::OK);
        assert_eq!(ids(&r.body), want, "{query}");
    }
    for bad in [
        "status=open",
        "tag=UPPER",
        "created_after=yesterday",
        "owner=me",
        "limit=0",
        "limit=101",
        "colour=red",
    ] {
        let r = get(&e, &a, &q(bad)).await.expect(StatusCode::BAD_REQUEST);
        assert_eq!(r.code(), "request.invalid_query", "{bad}");
    }
}

on_both!(
    a_member_sees_only_their_own,
    a_stale_if_match_is_refused,
    every_filter_narrows,
    every_transition_is_checked,
    invalid_contracts_are_refused_by_field,
    money_is_locked_after_draft_and_only_drafts_delete,
    pages_give_every_contract_once,
);
