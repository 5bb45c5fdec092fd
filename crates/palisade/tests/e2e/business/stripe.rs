//! The `stripe` payment provider against localstripe, a stateful Stripe-compatible
//! server: payments become PaymentIntents, refused cards failed payments, refunds
//! Stripe refunds; while Stripe is down a payment waits, pending, and the client's
//! retry with the same key completes that same payment.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Caller, created, get, member, patch};
use crate::api::{Answer, Api};
use crate::backends::{Env, start_with};
use crate::peers::{LocalStripe, SECRET_KEY};

async fn on_stripe(stripe: &LocalStripe) -> Env {
    let url = stripe.url();
    start_with(
        false,
        &[
            ("PALISADE_PAYMENT_PROVIDER", "stripe"),
            ("STRIPE_API_BASE", url.as_str()),
            ("STRIPE_SECRET_KEY", SECRET_KEY),
        ],
    )
    .await
}

async fn active(e: &Env, who: &Caller) -> String {
    let c = created(e, who, super::draft("Retainer")).await;
    let id = c["id"].as_str().expect("id").to_owned();
    patch(e, who, &id, None, json!({"status": "active"}))
        .await
        .expect(StatusCode::OK);
    id
}

async fn post(e: &Env, who: &Caller, path: &str, key: &str, body: Value) -> Answer {
    let auth = format!("Bearer {}", who.at);
    let headers = [("authorization", auth.as_str()), ("idempotency-key", key)];
    e.api.call(Method::POST, path, Some(body), &headers).await
}

fn payment(contract: &str, cents: i64, method: &str) -> Value {
    json!({
        "contract_id": contract,
        "amount": {"amount_cents": cents, "currency": "EUR"},
        "payment_method": method,
        "description": "May retainer",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_and_refunds_go_through_stripe() {
    let stripe = LocalStripe::start();
    let e = on_stripe(&stripe).await;
    let a = member(&e, "a@example.com").await;
    let contract = active(&e, &a).await;

    let paid = post(
        &e,
        &a,
        "/api/v1/payments",
        "s-1",
        payment(&contract, 4_200, "pm_card_visa"),
    )
    .await
    .expect(StatusCode::CREATED);
    assert_eq!(
        (paid.text("status"), paid.text("provider")),
        ("succeeded".into(), "stripe".into())
    );
    let intent_id = paid.text("provider_ref");
    assert!(intent_id.starts_with("pi_"), "{intent_id}");
    let intent = stripe.get(&format!("payment_intents/{intent_id}")).await;
    assert_eq!(
        (&intent["status"], &intent["amount"], &intent["currency"]),
        (&json!("succeeded"), &json!(4_200), &json!("eur")),
        "{intent}"
    );
    assert_eq!(intent["metadata"]["description"], "May retainer");

    // A card Stripe declines: a failed payment with Stripe's code.
    let r = post(
        &e,
        &a,
        "/api/v1/payments",
        "s-2",
        payment(&contract, 100, "pm_card_chargeCustomerFail"),
    )
    .await
    .expect(StatusCode::CREATED);
    assert_eq!(
        (r.text("status"), r.text("failure_code")),
        ("failed".into(), "card_declined".into())
    );

    // A refund is Stripe's too.
    let path = format!("/api/v1/payments/{}/refunds", paid.text("id"));
    post(&e, &a, &path, "s-3", json!({"amount_cents": 1_000}))
        .await
        .expect(StatusCode::CREATED);
    let intent = stripe.get(&format!("payment_intents/{intent_id}")).await;
    assert_eq!(
        intent["charges"]["data"][0]["amount_refunded"], 1_000,
        "{intent}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_waits_out_stripe_being_down() {
    let mut stripe = LocalStripe::start();
    let e = on_stripe(&stripe).await;
    let a = member(&e, "a@example.com").await;
    let contract = active(&e, &a).await;

    stripe.stop();
    let body = payment(&contract, 700, "pm_card_visa");
    let r = post(&e, &a, "/api/v1/payments", "down-1", body.clone())
        .await
        .expect(StatusCode::BAD_GATEWAY);
    assert_eq!(r.code(), "payments.provider_unavailable");
    // Nothing is lost: the payment is stored, pending, and holds its part of the
    // balance meanwhile.
    let list = get(&e, &a, "/api/v1/payments").await.expect(StatusCode::OK);
    let items = list.body["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1, "{}", list.body);
    assert_eq!(items[0]["status"], "pending");

    // Stripe is back: the retry completes that same payment.
    stripe.restart();
    let r = post(&e, &a, "/api/v1/payments", "down-1", body)
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(
        (r.text("id"), r.text("status")),
        (
            items[0]["id"].as_str().unwrap().to_owned(),
            "succeeded".into()
        )
    );
    let list = get(&e, &a, "/api/v1/payments").await.expect(StatusCode::OK);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    let intent = stripe
        .get(&format!("payment_intents/{}", r.text("provider_ref")))
        .await;
    assert_eq!(intent["amount"], 700);
}

/// Our `Stripe-Signature` and the official Stripe SDK's (PyPI `stripe`) agree both
/// ways: the SDK accepts a header we make, we accept one it makes, and neither accepts
/// the other's header for a changed body.
#[test]
fn webhook_signatures_agree_with_stripes_sdk() {
    use palisade_auth::stripe_signature::{sign, verify};
    const SDK: &str = r#"
import sys, time, stripe
from stripe._webhook import WebhookSignature
mode, secret, payload = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "check":
    stripe.Webhook.construct_event(payload, sys.argv[4], secret)
    print("ok")
else:
    t = int(time.time())
    print("t=%d,v1=%s" % (t, WebhookSignature._compute_signature("%d.%s" % (t, payload), secret)))
"#;
    let sdk = |args: &[&str]| {
        let out = std::process::Command::new(crate::peers::python())
            .args(["-c", SDK])
            .args(args)
            .output()
            .expect("python");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        )
    };
    let secret = "whsec_agreement_test";
    let body = r#"{"id":"evt_1","object":"event","type":"customer.subscription.updated","data":{"object":{}}}"#;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();

    let ours = sign(body.as_bytes(), secret, now);
    assert_eq!(
        sdk(&["check", secret, body, &ours]),
        (true, "ok".to_owned())
    );
    let changed = body.replace("evt_1", "evt_2");
    assert!(
        !sdk(&["check", secret, &changed, &ours]).0,
        "the SDK must refuse a changed body"
    );

    let (made, theirs) = sdk(&["make", secret, body]);
    assert!(made, "{theirs}");
    assert_eq!(verify(&theirs, body.as_bytes(), secret, now), Ok(()));
    assert!(verify(&theirs, changed.as_bytes(), secret, now).is_err());
}

const WEBHOOK_SECRET: &str = "whsec_e2e_secret";

/// Marks a settled payment pending again, as one the provider has not answered for.
async fn make_pending(e: &Env, reference: &str) {
    let url = e.database_url();
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.expect("sqlite");
        sqlx::query("UPDATE payments SET status = 'pending' WHERE provider_ref = ?")
            .bind(reference)
            .execute(&pool)
            .await
            .expect("update");
    } else {
        let pool = sqlx::PgPool::connect(url).await.expect("postgres");
        sqlx::query("UPDATE payments SET status = 'pending' WHERE provider_ref = $1")
            .bind(reference)
            .execute(&pool)
            .await
            .expect("update");
    }
}

/// Posts `body` to the Stripe webhook of the server at `api`, signed with `signature`.
pub(super) async fn deliver(api: &Api, body: &str, signature: &str) -> Answer {
    let res = api
        .http
        .post(format!("{}/api/v1/webhooks/stripe", api.base))
        .header("content-type", "application/json")
        .header("stripe-signature", signature)
        .body(body.to_owned())
        .send()
        .await
        .expect("webhook");
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.bytes().await.expect("body");
    Answer {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

fn event(id: &str, kind: &str, object: Value) -> String {
    json!({"id": id, "object": "event", "type": kind, "created": 1_800_000_000,
           "data": {"object": object}})
    .to_string()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// Verified events settle a pending payment once; a replay, a late contrary event, an
/// unknown type change nothing; a bad or stale signature is refused.
async fn webhooks_settle_pending_payments_once(postgres: bool) {
    use palisade_auth::stripe_signature::sign;
    let e = start_with(postgres, &[("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)]).await;
    let a = member(&e, "a@example.com").await;
    let contract = active(&e, &a).await;
    let paid = post(
        &e,
        &a,
        "/api/v1/payments",
        "w-1",
        payment(&contract, 500, "pm_card_visa"),
    )
    .await
    .expect(StatusCode::CREATED);
    let reference = paid.text("provider_ref");
    make_pending(&e, &reference).await;
    let path = format!("/api/v1/payments/{}", paid.text("id"));
    assert_eq!(
        get(&e, &a, &path)
            .await
            .expect(StatusCode::OK)
            .text("status"),
        "pending"
    );

    let succeeded = event(
        "evt_1",
        "payment_intent.succeeded",
        json!({"id": reference}),
    );
    let signature = sign(succeeded.as_bytes(), WEBHOOK_SECRET, unix_now());
    let r = deliver(&e.api, &succeeded, &signature)
        .await
        .expect(StatusCode::OK);
    assert_eq!(r.body["outcome"], "processed");
    assert_eq!(
        get(&e, &a, &path)
            .await
            .expect(StatusCode::OK)
            .text("status"),
        "succeeded"
    );
    // The same delivery again: answered, not processed.
    let r = deliver(&e.api, &succeeded, &signature)
        .await
        .expect(StatusCode::OK);
    assert_eq!(r.body["outcome"], "replayed");
    // A contrary event arriving late does not move the payment back.
    let failed = event(
        "evt_2",
        "payment_intent.payment_failed",
        json!({"id": reference, "last_payment_error": {"code": "card_declined"}}),
    );
    deliver(
        &e.api,
        &failed,
        &sign(failed.as_bytes(), WEBHOOK_SECRET, unix_now()),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(
        get(&e, &a, &path)
            .await
            .expect(StatusCode::OK)
            .text("status"),
        "succeeded"
    );
    let admin = super::with_role(&e, "admin@example.com", "admin").await;
    let audit = get(&e, &admin, "/api/v1/audit?action=payment.settled")
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        audit.body["items"].as_array().unwrap().len(),
        2,
        "the payment's own and the webhook's: {}",
        audit.body
    );

    let other = event("evt_3", "customer.created", json!({"id": "cus_1"}));
    let r = deliver(
        &e.api,
        &other,
        &sign(other.as_bytes(), WEBHOOK_SECRET, unix_now()),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(r.body["outcome"], "ignored");

    for (body, signature) in [
        (
            succeeded.clone(),
            sign(succeeded.as_bytes(), "whsec_wrong", unix_now()),
        ),
        (
            succeeded.clone(),
            sign(succeeded.as_bytes(), WEBHOOK_SECRET, unix_now() - 600),
        ),
        (succeeded.replace("evt_1", "evt_9"), signature.clone()),
        (succeeded.clone(), String::new()),
    ] {
        let r = deliver(&e.api, &body, &signature)
            .await
            .expect(StatusCode::BAD_REQUEST);
        assert_eq!(r.code(), "webhook.bad_signature", "{signature}");
    }
    let junk = r#"{"not":"an event"}"#;
    let r = deliver(
        &e.api,
        junk,
        &sign(junk.as_bytes(), WEBHOOK_SECRET, unix_now()),
    )
    .await
    .expect(StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "webhook.malformed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_settle_pending_payments_once_sqlite() {
    webhooks_settle_pending_payments_once(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_settle_pending_payments_once_postgres() {
    webhooks_settle_pending_payments_once(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_without_a_secret_are_refused() {
    let e = start_with(false, &[]).await;
    let body = event("evt_1", "payment_intent.succeeded", json!({"id": "pi_1"}));
    let r = deliver(
        &e.api,
        &body,
        &palisade_auth::stripe_signature::sign(body.as_bytes(), "whsec_x", unix_now()),
    )
    .await
    .expect(StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "webhook.not_configured");
}
