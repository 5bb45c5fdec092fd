//! Payments from the outside: the Idempotency-Key rules, the balance rule under races,
//! refunds, scoping, the simulated provider's outcomes, and retries across instances.

use std::collections::HashSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Caller, created, get, member, patch, with_role};
use crate::api::{Answer, Api};
use crate::backends::{Env, start_with};

/// An active contract of `who` for `cents` EUR; returns its id.
pub(super) async fn active(e: &Env, who: &Caller, cents: i64) -> String {
    let c = created(
        e,
        who,
        json!({"title": "Retainer", "counterparty": "Acme GmbH",
               "amount": {"amount_cents": cents, "currency": "EUR"}}),
    )
    .await;
    let id = c["id"].as_str().expect("id").to_owned();
    patch(e, who, &id, None, json!({"status": "active"}))
        .await
        .expect(StatusCode::OK);
    id
}

pub(super) fn payment(contract: &str, cents: i64, method: &str) -> Value {
    json!({
        "contract_id": contract,
        "amount": {"amount_cents": cents, "currency": "EUR"},
        "payment_method": method,
    })
}

async fn post(api: &Api, who: &Caller, path: &str, key: Option<&str>, body: Value) -> Answer {
    let auth = format!("Bearer {}", who.at);
    let mut headers = vec![("authorization", auth.as_str())];
    if let Some(k) = key {
        headers.push(("idempotency-key", k));
    }
    api.call(Method::POST, path, Some(body), &headers).await
}

pub(super) async fn pay(e: &Env, who: &Caller, key: &str, body: Value) -> Answer {
    post(&e.api, who, "/api/v1/payments", Some(key), body).await
}

async fn refund(e: &Env, who: &Caller, payment: &str, key: &str, body: Value) -> Answer {
    let path = format!("/api/v1/payments/{payment}/refunds");
    post(&e.api, who, &path, Some(key), body).await
}

/// Sends every `(api, caller, path, key, body)` POST at once; the answers, in no order.
async fn all_at_once(requests: Vec<(Api, Caller, String, String, Value)>) -> Vec<Answer> {
    let mut set = tokio::task::JoinSet::new();
    for (api, who, path, key, body) in requests {
        set.spawn(async move { post(&api, &who, &path, Some(&key), body).await });
    }
    set.join_all().await
}

fn replayed(a: &Answer) -> bool {
    a.headers
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true")
}

/// The key rules, the simulated provider's outcomes, the balance and currency rules,
/// refunds, scoping and the audit trail, one request at a time.
async fn payments_follow_the_rules(e: Env) {
    let a = member(&e, "a@example.com").await;
    let b = member(&e, "b@example.com").await;
    let admin = with_role(&e, "admin@example.com", "admin").await;
    let contract = active(&e, &a, 1_000).await;
    let visa = payment(&contract, 400, "pm_card_visa");

    // The key: required, 1..255 printable ASCII.
    let r = post(&e.api, &a, "/api/v1/payments", None, visa.clone())
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "idempotency.key_missing");
    for bad in ["k".repeat(256), "tab\tkey".to_owned()] {
        let r = pay(&e, &a, &bad, visa.clone())
            .await
            .expect(StatusCode::BAD_REQUEST);
        assert_eq!(r.code(), "idempotency.key_invalid", "{bad:?}");
    }
    // A bad body is refused before the key is claimed: the key stays usable.
    let r = pay(&e, &a, "k-visa", json!({"contract_id": contract}))
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.code(), "request.invalid_body");

    let first = pay(&e, &a, "k-visa", visa.clone())
        .await
        .expect(StatusCode::CREATED);
    assert!(!replayed(&first));
    let id = first.text("id");
    assert_eq!(
        (
            &first.body["status"],
            &first.body["failure_code"],
            &first.body["provider"]
        ),
        (&json!("succeeded"), &Value::Null, &json!("simulated"))
    );
    assert_eq!(first.body["payer_id"], a.id.as_str());
    assert_eq!(
        first.headers["location"],
        format!("/api/v1/payments/{id}").as_str()
    );

    // The same key and body: the first answer again. Another body: refused.
    let again = pay(&e, &a, "k-visa", visa.clone())
        .await
        .expect(StatusCode::CREATED);
    assert!(replayed(&again));
    assert_eq!(again.body, first.body);
    assert_eq!(again.headers["location"], first.headers["location"]);
    let r = pay(&e, &a, "k-visa", payment(&contract, 401, "pm_card_visa"))
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.code(), "idempotency.key_reused");
    // Keys are per user: B's "k-visa" is B's own (and B cannot see A's contract).
    let r = pay(&e, &b, "k-visa", visa.clone())
        .await
        .expect(StatusCode::NOT_FOUND);
    assert!(!replayed(&r));

    // Refused cards are failed payments with their code; they take nothing.
    for (key, method, code) in [
        ("k-declined", "pm_card_chargeDeclined", "card_declined"),
        ("k-funds", "pm_card_insufficientFunds", "insufficient_funds"),
    ] {
        let r = pay(&e, &a, key, payment(&contract, 600, method))
            .await
            .expect(StatusCode::CREATED);
        assert_eq!(
            (r.text("status"), r.text("failure_code")),
            ("failed".into(), code.into())
        );
    }
    let r = pay(
        &e,
        &a,
        "k-unknown",
        payment(&contract, 1, "pm_card_unknown"),
    )
    .await
    .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.code(), "request.invalid_fields");

    // What is left to pay is 600: 601 is refused, 600 is taken.
    let r = pay(
        &e,
        &a,
        "k-over",
        payment(&contract, 601, "pm_card_mastercard"),
    )
    .await
    .expect(StatusCode::CONFLICT);
    assert_eq!(
        (r.code(), &r.body["outstanding_cents"]),
        ("payments.exceeds_balance", &json!(600))
    );
    let rest = pay(
        &e,
        &a,
        "k-rest",
        payment(&contract, 600, "pm_card_mastercard"),
    )
    .await
    .expect(StatusCode::CREATED);
    let c = get(&e, &a, &format!("/api/v1/contracts/{contract}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        c.body["balance"],
        json!({"paid_cents": 1_000, "refunded_cents": 0, "outstanding_cents": 0})
    );

    // The contract's rules: active only, its currency only.
    let draft = created(&e, &a, super::draft("not yet")).await;
    let draft = draft["id"].as_str().unwrap();
    let r = pay(&e, &a, "k-draft", payment(draft, 100, "pm_card_visa"))
        .await
        .expect(StatusCode::CONFLICT);
    assert_eq!(r.code(), "payments.contract_not_active");
    let other = active(&e, &a, 1_000).await;
    let mut usd = payment(&other, 100, "pm_card_visa");
    usd["amount"]["currency"] = json!("USD");
    let r = pay(&e, &a, "k-usd", usd)
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.code(), "payments.currency_mismatch");

    // Refunds: part, then the rest by default, then nothing is left.
    let r = refund(&e, &a, &id, "r-1", json!({"amount_cents": 150}))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(
        (r.text("payment_id"), &r.body["amount_cents"]),
        (id.clone(), &json!(150))
    );
    let replay = refund(&e, &a, &id, "r-1", json!({"amount_cents": 150}))
        .await
        .expect(StatusCode::CREATED);
    assert!(replayed(&replay));
    assert_eq!(replay.body, r.body);
    let r = refund(&e, &a, &id, "r-2", json!({}))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(r.body["amount_cents"], 250);
    let r = refund(&e, &a, &id, "r-3", json!({"amount_cents": 1}))
        .await
        .expect(StatusCode::CONFLICT);
    assert_eq!(
        (r.code(), &r.body["refundable_cents"]),
        ("payments.refund_exceeds_payment", &json!(0))
    );
    let declined = get(&e, &a, "/api/v1/payments?status=failed")
        .await
        .expect(StatusCode::OK);
    let failed_id = declined.body["items"][0]["id"].as_str().unwrap().to_owned();
    let r = refund(&e, &a, &failed_id, "r-4", json!({}))
        .await
        .expect(StatusCode::CONFLICT);
    assert_eq!(r.code(), "payments.refund_exceeds_payment");
    let p = get(&e, &a, &format!("/api/v1/payments/{id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(p.body["refunded_cents"], 400);
    let c = get(&e, &a, &format!("/api/v1/contracts/{contract}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        c.body["balance"],
        json!({"paid_cents": 1_000, "refunded_cents": 400, "outstanding_cents": 400})
    );

    // Scoping: B sees none of A's payments and cannot refund them; an admin sees all.
    get(&e, &b, &format!("/api/v1/payments/{id}"))
        .await
        .expect(StatusCode::NOT_FOUND);
    refund(&e, &b, &id, "r-b", json!({}))
        .await
        .expect(StatusCode::NOT_FOUND);
    let list = get(&e, &b, "/api/v1/payments").await.expect(StatusCode::OK);
    assert_eq!(list.body["items"], json!([]));
    get(&e, &b, &format!("/api/v1/payments?owner={}", a.id))
        .await
        .expect(StatusCode::FORBIDDEN);
    let all = get(
        &e,
        &admin,
        &format!("/api/v1/payments?owner={}&contract_id={contract}", a.id),
    )
    .await
    .expect(StatusCode::OK);
    let listed: HashSet<&str> = all.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 4, "visa, two refused, the rest: {}", all.body);
    assert!(listed.contains(id.as_str()) && listed.contains(rest.text("id").as_str()));

    // Every change is audited.
    for (action, at_least) in [
        ("payment.created", 4),
        ("payment.settled", 4),
        ("payment.refunded", 2),
    ] {
        let audit = get(&e, &admin, &format!("/api/v1/audit?action={action}"))
            .await
            .expect(StatusCode::OK);
        let n = audit.body["items"].as_array().unwrap().len();
        assert_eq!(n, at_least, "{action}: {}", audit.body);
    }

    // A retry reaching another process (a restart, another replica) gets the answer.
    let (_second, api2) = e.second_instance();
    let r = post(&api2, &a, "/api/v1/payments", Some("k-visa"), visa)
        .await
        .expect(StatusCode::CREATED);
    assert!(replayed(&r));
    assert_eq!(r.body, first.body);
}

/// 20 identical requests at once, through two instances: one payment, and every
/// answer is its 201, its replay, or 409 `idempotency.in_progress`.
async fn one_key_one_payment_under_a_race(e: Env) {
    let a = member(&e, "a@example.com").await;
    let contract = active(&e, &a, 100_000).await;
    let (_second, api2) = e.second_instance();
    let body = payment(&contract, 700, "pm_card_visa");
    let answers = all_at_once(
        (0..20)
            .map(|i| {
                let api = if i % 2 == 0 {
                    e.api.clone()
                } else {
                    api2.clone()
                };
                (
                    api,
                    a.clone(),
                    "/api/v1/payments".into(),
                    "race-key".into(),
                    body.clone(),
                )
            })
            .collect(),
    )
    .await;
    let mut ids = HashSet::new();
    for r in &answers {
        match r.status {
            StatusCode::CREATED => {
                ids.insert(r.text("id"));
            }
            StatusCode::CONFLICT => assert_eq!(r.code(), "idempotency.in_progress"),
            other => panic!("{other}: {}", r.body),
        }
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    let list = get(&e, &a, &format!("/api/v1/payments?contract_id={contract}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        list.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        list.body
    );
    // Once it has answered, every retry is a replay of the one payment.
    let r = post(&api2, &a, "/api/v1/payments", Some("race-key"), body)
        .await
        .expect(StatusCode::CREATED);
    assert!(replayed(&r) && ids.contains(&r.text("id")));
}

/// Ten payments of 300 on a contract of 1,000 at once: three are taken, the rest
/// refused; ten refunds of 100 on a payment of 300 at once: three are made.
async fn concurrent_payments_cannot_overpay(e: Env) {
    let a = member(&e, "a@example.com").await;
    let contract = active(&e, &a, 1_000).await;
    let answers = all_at_once(
        (0..10)
            .map(|i| {
                let body = payment(&contract, 300, "pm_card_visa");
                (
                    e.api.clone(),
                    a.clone(),
                    "/api/v1/payments".into(),
                    format!("over-{i}"),
                    body,
                )
            })
            .collect(),
    )
    .await;
    let taken: Vec<&Answer> = answers
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .collect();
    assert_eq!(taken.len(), 3);
    for r in answers.iter().filter(|r| r.status != StatusCode::CREATED) {
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::CONFLICT, "payments.exceeds_balance")
        );
    }
    let c = get(&e, &a, &format!("/api/v1/contracts/{contract}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(c.body["balance"]["paid_cents"], 900);

    let paid = taken[0].text("id");
    let path = format!("/api/v1/payments/{paid}/refunds");
    let answers = all_at_once(
        (0..10)
            .map(|i| {
                let body = json!({"amount_cents": 100});
                (
                    e.api.clone(),
                    a.clone(),
                    path.clone(),
                    format!("back-{i}"),
                    body,
                )
            })
            .collect(),
    )
    .await;
    let made = answers
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    assert_eq!(made, 3);
    let p = get(&e, &a, &format!("/api/v1/payments/{paid}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(p.body["refunded_cents"], 300);
}

/// The payments export: the caller's payments as the API shows them, newest first,
/// formula-like text defused, and NDJSON with the same rows.
async fn payments_export_is_scoped_and_guarded(e: Env) {
    let a = member(&e, "a@example.com").await;
    let b = member(&e, "b@example.com").await;
    let contract = active(&e, &a, 10_000).await;
    let mut evil = payment(&contract, 100, "pm_card_visa");
    evil["description"] = json!("=HYPERLINK(\"http://evil.example\")");
    let first = pay(&e, &a, "x-1", evil).await.expect(StatusCode::CREATED);
    let second = pay(
        &e,
        &a,
        "x-2",
        payment(&contract, 200, "pm_card_chargeDeclined"),
    )
    .await
    .expect(StatusCode::CREATED);
    let theirs = active(&e, &b, 500).await;
    pay(&e, &b, "x-b", payment(&theirs, 300, "pm_card_visa"))
        .await
        .expect(StatusCode::CREATED);

    let fetch = |who: &Caller, query: &str| {
        let req = e
            .api
            .http
            .get(format!("{}/api/v1/exports/payments{query}", e.api.base))
            .bearer_auth(&who.at);
        async move { req.send().await.expect("export") }
    };
    let res = fetch(&a, "").await;
    assert_eq!(res.status(), StatusCode::OK);
    let disposition = res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"payments-")
            && disposition.ends_with(".csv\""),
        "{disposition}"
    );
    let text = res.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header[..6],
        [
            "id",
            "contract_id",
            "payer_id",
            "amount_cents",
            "currency",
            "status"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let got: Vec<(&str, &str, &str, &str)> =
        rows.iter().map(|r| (&r[0], &r[3], &r[5], &r[11])).collect();
    let (first_id, second_id) = (first.text("id"), second.text("id"));
    assert_eq!(
        got,
        [
            (second_id.as_str(), "200", "failed", ""),
            (
                first_id.as_str(),
                "100",
                "succeeded",
                "'=HYPERLINK(\"http://evil.example\")"
            ),
        ],
        "only A's, newest first: {text}"
    );
    let lines = fetch(&a, "?format=ndjson&status=succeeded")
        .await
        .text()
        .await
        .unwrap();
    let objects: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects.len(), 1, "{lines}");
    assert_eq!(
        (&objects[0]["id"], &objects[0]["description"]),
        (
            &json!(first_id),
            &json!("=HYPERLINK(\"http://evil.example\")")
        )
    );
    assert_eq!(
        fetch(&a, &format!("?owner={}", b.id)).await.status(),
        StatusCode::FORBIDDEN
    );
}

on_both!(
    payments_export_is_scoped_and_guarded,
    payments_follow_the_rules,
    one_key_one_payment_under_a_race,
    concurrent_payments_cannot_overpay,
);

/// The payment tier counts per user: its quota spent, payments get 429 with the
/// RateLimit headers while reads go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_payment_tier_limits_payments_per_user() {
    let e = start_with(false, &[("PALISADE_RATE_LIMIT_PAYMENT", "3/60s")]).await;
    let a = member(&e, "a@example.com").await;
    let contract = active(&e, &a, 100_000).await;
    for i in 0..3 {
        pay(
            &e,
            &a,
            &format!("t-{i}"),
            payment(&contract, 10, "pm_card_visa"),
        )
        .await
        .expect(StatusCode::CREATED);
    }
    let r = pay(&e, &a, "t-3", payment(&contract, 10, "pm_card_visa"))
        .await
        .expect(StatusCode::TOO_MANY_REQUESTS);
    assert!(
        r.headers.contains_key("ratelimit-policy"),
        "{:?}",
        r.headers
    );
    assert!(
        r.headers["ratelimit-policy"]
            .to_str()
            .unwrap()
            .contains("payment")
    );
    get(&e, &a, "/api/v1/payments").await.expect(StatusCode::OK);
    // Another user has a quota of their own.
    let b = member(&e, "b@example.com").await;
    let other = active(&e, &b, 100).await;
    pay(&e, &b, "t-b", payment(&other, 10, "pm_card_visa"))
        .await
        .expect(StatusCode::CREATED);
}
