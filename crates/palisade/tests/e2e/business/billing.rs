//! Billing: plans, gating, and subscriptions kept in step with Stripe. Against
//! localstripe (a stateful Stripe-compatible server, sending its own signed webhooks)
//! for the whole flow, with Checkout and the portal from the launcher's minimal
//! endpoints (localstripe has neither); with events signed here for the rules on
//! replays, order and signatures.

use std::time::{Duration, Instant};

use palisade_auth::stripe_signature::sign;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::stripe::deliver;
use super::{Caller, create, draft, get, member, with_role};
use crate::api::{Answer, Api};
use crate::backends::{Env, start_with};
use crate::peers::{LocalStripe, SECRET_KEY};

const WEBHOOK_SECRET: &str = "whsec_billing_e2e";
const PLANS: &str = r#"[{"id":"free","name":"Free","features":[],"limits":{"contracts_max":2}},{"id":"pro","name":"Pro","features":["exports"],"limits":{"contracts_max":100},"stripe_price":"price_pro"}]"#;

/// A server with billing through the Stripe at `api_base`.
async fn on_billing(postgres: bool, api_base: &str) -> Env {
    start_with(
        postgres,
        &[
            ("PALISADE_BILLING", "stripe"),
            ("PALISADE_BILLING_PLANS", PLANS),
            (
                "PALISADE_BILLING_RETURN_URL",
                "https://app.example.com/billing",
            ),
            ("STRIPE_API_BASE", api_base),
            ("STRIPE_SECRET_KEY", SECRET_KEY),
            ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET),
            // The tests poll the exports to see the gate move.
            ("PALISADE_RATE_LIMIT_EXPORT", "1000/1m"),
        ],
    )
    .await
}

async fn post(api: &Api, who: &Caller, path: &str, body: Option<Value>) -> Answer {
    api.send_as(Method::POST, path, &who.at, body).await
}

async fn checkout(api: &Api, who: &Caller, plan: &str) -> Answer {
    let body = json!({ "plan": plan });
    post(api, who, "/api/v1/billing/checkout", Some(body)).await
}

async fn subscription(api: &Api, who: &Caller) -> Value {
    api.get_as("/api/v1/billing/subscription", &who.at)
        .await
        .expect(StatusCode::OK)
        .body
}

/// Waits (at most `limit`) until the caller's subscription satisfies `ok`.
async fn until(api: &Api, who: &Caller, limit: Duration, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let s = subscription(api, who).await;
        if ok(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "still {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn exports(api: &Api, who: &Caller) -> Answer {
    api.get_as("/api/v1/exports/contracts", &who.at).await
}

/// Waits until the exports are refused to `who` (402) through `api`: a change of plan
/// made elsewhere shows within the view's second.
async fn gated_within(api: &Api, who: &Caller, limit: Duration) {
    let start = Instant::now();
    loop {
        let r = exports(api, who).await;
        if r.status != StatusCode::OK {
            assert_eq!(
                r.expect(StatusCode::PAYMENT_REQUIRED).code(),
                "billing.feature_unavailable"
            );
            return;
        }
        assert!(start.elapsed() < limit, "still served after {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The whole flow against localstripe: gated on the free plan, Checkout, Stripe's own
/// webhooks move the user to pro, the portal, cancel at period end, and the deleted
/// subscription gates the feature again.
async fn subscribing_through_stripe(postgres: bool) {
    let stripe = LocalStripe::start();
    let e = on_billing(postgres, &stripe.url()).await;
    stripe
        .call(
            Method::POST,
            "/v1/plans",
            &[
                ("id", "price_pro"),
                ("amount", "1900"),
                ("currency", "eur"),
                ("interval", "month"),
                ("product[name]", "Pro"),
            ],
        )
        .await;
    let hook = format!("{}/api/v1/webhooks/stripe", e.api.base);
    stripe
        .call(
            Method::POST,
            "/_config/webhooks/palisade",
            &[("url", hook.as_str()), ("secret", WEBHOOK_SECRET)],
        )
        .await;
    let a = member(&e, "a@example.com").await;

    // The plans are public; Stripe's prices are not shown.
    let plans = e
        .api
        .call(Method::GET, "/api/v1/billing/plans", None, &[])
        .await
        .expect(StatusCode::OK);
    assert_eq!(plans.body[0]["id"], "free");
    assert_eq!(plans.body[1]["features"], json!(["exports"]));
    assert!(
        plans.body[1].get("stripe_price").is_none(),
        "{}",
        plans.body
    );

    // On the free plan: no exports, two contracts.
    let s = subscription(&e.api, &a).await;
    assert_eq!(
        (&s["plan"], &s["status"]),
        (&json!("free"), &json!("none")),
        "{s}"
    );
    assert_eq!(s["limits"]["contracts_max"], 2);
    let r = exports(&e.api, &a)
        .await
        .expect(StatusCode::PAYMENT_REQUIRED);
    assert_eq!(
        (r.code(), r.text("plan")),
        ("billing.feature_unavailable", "pro".into())
    );
    for n in 0..2 {
        create(&e, &a, draft(&format!("c{n}")))
            .await
            .expect(StatusCode::CREATED);
    }
    let r = create(&e, &a, draft("c2"))
        .await
        .expect(StatusCode::PAYMENT_REQUIRED);
    assert_eq!(
        (r.code(), r.text("plan")),
        ("billing.limit_reached", "pro".into())
    );

    // Nothing to manage yet; plans that cannot be bought.
    let r = post(&e.api, &a, "/api/v1/billing/portal", None)
        .await
        .expect(StatusCode::CONFLICT);
    assert_eq!(r.code(), "billing.no_subscription");
    let r = checkout(&e.api, &a, "free").await;
    assert_eq!(
        r.expect(StatusCode::UNPROCESSABLE_ENTITY).code(),
        "billing.plan_not_for_sale"
    );
    checkout(&e.api, &a, "gold")
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);

    // Checkout: a Stripe customer made on first need, a session for the pro price.
    let r = checkout(&e.api, &a, "pro").await.expect(StatusCode::OK);
    let url = r.text("url");
    let session = url.rsplit('/').next().expect("session id").to_owned();
    assert!(
        url.starts_with(&stripe.url()) && session.starts_with("cs_"),
        "{url}"
    );
    let customers = stripe.get("customers").await;
    let customer = &customers["data"][0];
    assert_eq!(
        customers["data"].as_array().unwrap().len(),
        1,
        "{customers}"
    );
    assert_eq!(customer["email"], "a@example.com");
    assert_eq!(customer["metadata"]["palisade_user"], a.id.as_str());

    // The customer pays; Stripe's own signed events move the user to pro.
    stripe
        .call(
            Method::POST,
            &format!("/_config/checkout/{session}/pay"),
            &[],
        )
        .await;
    let s = until(&e.api, &a, Duration::from_secs(15), |s| s["plan"] == "pro").await;
    assert_eq!(s["status"], "active", "{s}");
    assert!(s["current_period_end"].is_string(), "{s}");
    exports(&e.api, &a).await.expect(StatusCode::OK);
    create(&e, &a, draft("c2"))
        .await
        .expect(StatusCode::CREATED);

    // Subscribed: the portal opens, a second checkout is refused.
    let r = post(&e.api, &a, "/api/v1/billing/portal", None)
        .await
        .expect(StatusCode::OK);
    assert!(r.text("url").starts_with(&stripe.url()), "{}", r.body);
    let r = checkout(&e.api, &a, "pro").await;
    assert_eq!(
        r.expect(StatusCode::CONFLICT).code(),
        "billing.already_subscribed"
    );

    // Cancel: at the period's end, in Stripe too; the plan holds meanwhile.
    let r = post(&e.api, &a, "/api/v1/billing/cancel", None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        (&r.body["plan"], &r.body["cancel_at_period_end"]),
        (&json!("pro"), &json!(true))
    );
    let subs = stripe
        .get(&format!(
            "subscriptions?customer={}",
            customer["id"].as_str().unwrap()
        ))
        .await;
    let sub = subs["data"][0].clone();
    assert_eq!(sub["cancel_at_period_end"], true, "{subs}");

    // Stripe ends the subscription: its event gates the feature again.
    let sub_id = sub["id"].as_str().expect("subscription id");
    stripe
        .call(Method::DELETE, &format!("/v1/subscriptions/{sub_id}"), &[])
        .await;
    let s = until(&e.api, &a, Duration::from_secs(15), |s| {
        s["status"] == "canceled"
    })
    .await;
    assert_eq!(s["plan"], "free", "{s}");
    exports(&e.api, &a)
        .await
        .expect(StatusCode::PAYMENT_REQUIRED);

    let admin = with_role(&e, "admin@example.com", "admin").await;
    let audit = get(
        &e,
        &admin,
        "/api/v1/audit?action=billing.subscription_changed",
    )
    .await
    .expect(StatusCode::OK);
    assert!(
        audit.body["items"].as_array().unwrap().len() >= 3,
        "{}",
        audit.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_through_stripe_sqlite() {
    subscribing_through_stripe(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_through_stripe_postgres() {
    subscribing_through_stripe(true).await;
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// An event as Stripe sends it, and its signature made now.
fn signed(id: &str, kind: &str, created: i64, object: Value) -> (String, String) {
    let body = json!({"id": id, "object": "event", "type": kind, "created": created,
                      "data": {"object": object}})
    .to_string();
    let signature = sign(body.as_bytes(), WEBHOOK_SECRET, unix_now() as u64);
    (body, signature)
}

fn subscription_object(status: &str, cancel_at_period_end: bool) -> Value {
    json!({"id": "sub_1", "object": "subscription", "customer": "cus_e2e", "status": status,
           "cancel_at_period_end": cancel_at_period_end, "current_period_end": unix_now() + 86_400,
           "items": {"data": [{"price": {"id": "price_pro"}}]}})
}

async fn processed(api: &Api, event: &(String, String)) -> String {
    let r = deliver(api, &event.0, &event.1)
        .await
        .expect(StatusCode::OK);
    r.text("outcome")
}

async fn changes_audited(e: &Env, admin: &Caller) -> usize {
    get(
        e,
        admin,
        "/api/v1/audit?action=billing.subscription_changed",
    )
    .await
    .expect(StatusCode::OK)
    .body["items"]
        .as_array()
        .expect("items")
        .len()
}

/// Events signed here: each processed once, never moving the state backwards; bad
/// and stale signatures refused; a second instance sees each change within the
/// view's second.
async fn subscription_events_in_any_order(postgres: bool) {
    // No call reaches Stripe in this test: the events carry the subscription.
    let e = on_billing(postgres, "http://127.0.0.1:9").await;
    let (_second, other) = e.second_instance();
    let a = member(&e, "a@example.com").await;
    let admin = with_role(&e, "admin@example.com", "admin").await;

    // The checkout's completion links the customer to the user it was made for.
    let completed = signed(
        "evt_cs",
        "checkout.session.completed",
        unix_now() - 200,
        json!({"id": "cs_1", "object": "checkout.session", "customer": "cus_e2e",
               "client_reference_id": a.id, "subscription": null}),
    );
    assert_eq!(processed(&e.api, &completed).await, "processed");

    let t = unix_now() - 100;
    let created = signed(
        "evt_1",
        "customer.subscription.created",
        t,
        subscription_object("active", false),
    );
    assert_eq!(processed(&e.api, &created).await, "processed");
    let s = subscription(&e.api, &a).await;
    assert_eq!(
        (&s["plan"], &s["status"]),
        (&json!("pro"), &json!("active")),
        "{s}"
    );
    exports(&e.api, &a).await.expect(StatusCode::OK);
    let audited = changes_audited(&e, &admin).await;
    assert_eq!(audited, 1);

    // A replay is answered and changes nothing.
    assert_eq!(processed(&e.api, &created).await, "replayed");
    assert_eq!(processed(&other, &created).await, "replayed");
    assert_eq!(changes_audited(&e, &admin).await, audited);

    // Out of order: the newer update first, then an older one; the newer stays.
    let newer = signed(
        "evt_3",
        "customer.subscription.updated",
        t + 60,
        subscription_object("active", true),
    );
    let older = signed(
        "evt_2",
        "customer.subscription.updated",
        t + 30,
        subscription_object("past_due", false),
    );
    processed(&e.api, &newer).await;
    processed(&e.api, &older).await;
    let s = subscription(&e.api, &a).await;
    assert_eq!(
        (&s["status"], &s["cancel_at_period_end"]),
        (&json!("active"), &json!(true)),
        "{s}"
    );

    // Bad and stale signatures are refused before anything is read.
    let deleted = signed(
        "evt_4",
        "customer.subscription.deleted",
        t + 90,
        subscription_object("canceled", true),
    );
    let stale = sign(
        deleted.0.as_bytes(),
        WEBHOOK_SECRET,
        unix_now() as u64 - 600,
    );
    let forged = sign(deleted.0.as_bytes(), "whsec_not_ours", unix_now() as u64);
    for signature in [stale, forged] {
        let r = deliver(&e.api, &deleted.0, &signature)
            .await
            .expect(StatusCode::BAD_REQUEST);
        assert_eq!(r.code(), "webhook.bad_signature");
    }
    assert_eq!(subscription(&e.api, &a).await["plan"], "pro");

    // The other instance serves pro; the deletion, taken by this one, gates the
    // feature there within the view's second.
    exports(&other, &a).await.expect(StatusCode::OK);
    assert_eq!(processed(&e.api, &deleted).await, "processed");
    gated_within(&other, &a, Duration::from_millis(1_500)).await;
    let s = subscription(&other, &a).await;
    assert_eq!(
        (&s["plan"], &s["status"]),
        (&json!("free"), &json!("canceled")),
        "{s}"
    );

    // An ended subscription does not come back, even with a later event.
    let late = signed(
        "evt_5",
        "customer.subscription.updated",
        t + 120,
        subscription_object("active", false),
    );
    processed(&e.api, &late).await;
    assert_eq!(subscription(&e.api, &a).await["status"], "canceled");

    // Events of a customer not ours are acknowledged and ignored.
    let mut stranger = subscription_object("active", false);
    stranger["customer"] = json!("cus_stranger");
    let foreign = signed("evt_6", "customer.subscription.created", t + 130, stranger);
    assert_eq!(processed(&e.api, &foreign).await, "ignored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_events_in_any_order_sqlite() {
    subscription_events_in_any_order(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_events_in_any_order_postgres() {
    subscription_events_in_any_order(true).await;
}

/// Support: an admin (API) or an operator (CLI) puts a user on a plan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_and_the_cli_set_plans() {
    let e = on_billing(false, "http://127.0.0.1:9").await;
    let a = member(&e, "a@example.com").await;
    let admin = with_role(&e, "admin@example.com", "admin").await;
    exports(&e.api, &a)
        .await
        .expect(StatusCode::PAYMENT_REQUIRED);

    let path = format!("/api/v1/admin/users/{}", a.id);
    let r = e
        .api
        .send_as(
            Method::PATCH,
            &path,
            &admin.at,
            Some(json!({"plan": "gold"})),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.code(), "request.invalid_fields");
    e.api
        .send_as(
            Method::PATCH,
            &path,
            &admin.at,
            Some(json!({"plan": "pro"})),
        )
        .await
        .expect(StatusCode::OK);
    let s = subscription(&e.api, &a).await;
    assert_eq!(
        (&s["plan"], &s["status"]),
        (&json!("pro"), &json!("active")),
        "{s}"
    );
    exports(&e.api, &a).await.expect(StatusCode::OK);
    // A member cannot.
    e.api
        .send_as(Method::PATCH, &path, &a.at, Some(json!({"plan": "pro"})))
        .await
        .expect(StatusCode::FORBIDDEN);

    let out = e.cli(
        &[
            "user",
            "set-plan",
            "--email",
            "a@example.com",
            "--plan",
            "free",
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(subscription(&e.api, &a).await["plan"], "free");
    gated_within(&e.api, &a, Duration::from_millis(1_500)).await;
    let out = e.cli(
        &[
            "user",
            "set-plan",
            "--email",
            "a@example.com",
            "--plan",
            "gold",
        ],
        "",
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no plan `gold`") && err.contains("free, pro"),
        "{err}"
    );
}

/// With billing off (the default) nothing is gated and Stripe is never asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn billing_off_gates_nothing() {
    let e = start_with(false, &[("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)]).await;
    let a = member(&e, "a@example.com").await;
    let s = subscription(&e.api, &a).await;
    assert_eq!(
        (&s["plan"], &s["features"], &s["limits"]),
        (&json!("free"), &json!(["exports"]), &json!({})),
        "{s}"
    );
    exports(&e.api, &a).await.expect(StatusCode::OK);
    for path in [
        "/api/v1/billing/checkout",
        "/api/v1/billing/portal",
        "/api/v1/billing/cancel",
    ] {
        let body = path.ends_with("checkout").then(|| json!({"plan": "pro"}));
        let r = post(&e.api, &a, path, body)
            .await
            .expect(StatusCode::NOT_FOUND);
        assert_eq!(r.code(), "billing.disabled", "{path}");
    }
    // Stripe's subscription events are acknowledged and left alone.
    let event = signed(
        "evt_1",
        "invoice.payment_failed",
        unix_now(),
        json!({"id": "in_1", "customer": "cus_1", "subscription": "sub_1"}),
    );
    assert_eq!(processed(&e.api, &event).await, "ignored");
}
