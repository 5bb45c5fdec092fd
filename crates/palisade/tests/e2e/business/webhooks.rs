//! Outbound webhooks: endpoints managed by administrators only; events sent to a real
//! HTTP receiver on loopback, signed so that the Standard Webhooks reference library
//! (PyPI `standardwebhooks`) accepts them, also through a secret rotation; retried with
//! the same `webhook-id` until the receiver answers, every attempt logged; sent after
//! the server that held the delivery was killed; each event sent once by two
//! instances; private addresses refused without the switch; an endpoint failing for
//! too long disabled and the administrators told.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::payments::{active, payment};
use super::{Caller, created, draft, member, with_role};
use crate::api::Api;
use crate::backends::{Env, start_with};
use crate::peers;

/// What the receiver does with the next request.
#[derive(Clone, Copy, Debug)]
enum Reply {
    Status(u16),
    /// Never answers.
    Hang,
}

/// A request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

#[derive(Default)]
struct Script {
    replies: Mutex<VecDeque<Reply>>,
    received: Mutex<Vec<Received>>,
}

/// An HTTP receiver on 127.0.0.1 that answers by its script (then 200).
struct Receiver {
    addr: SocketAddr,
    script: Arc<Script>,
}

impl Receiver {
    async fn start(replies: &[Reply]) -> Receiver {
        let script = Arc::new(Script::default());
        script
            .replies
            .lock()
            .unwrap()
            .extend(replies.iter().copied());
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { addr, script }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn received(&self) -> Vec<Received> {
        self.script.received.lock().unwrap().clone()
    }

    /// Waits (at most `limit`) until `found` picks its answer out of the requests so far.
    async fn wait_until<T>(
        &self,
        limit: Duration,
        what: &str,
        found: impl Fn(&[Received]) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + limit;
        loop {
            let got = self.received();
            if let Some(answer) = found(&got) {
                return answer;
            }
            assert!(Instant::now() < deadline, "{what}: {got:?}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits (at most `limit`) for `n` requests.
    async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Received> {
        let what = format!("{n} requests expected");
        self.wait_until(limit, &what, |got| (got.len() >= n).then(|| got.to_vec()))
            .await
    }

    /// Waits (at most 10 s) for the message about the user with `email`.
    async fn message_for(&self, email: &str) -> Received {
        let what = format!("no message about {email}");
        self.wait_until(Duration::from_secs(10), &what, |got| {
            got.iter()
                .find(|r| r.json()["data"]["email"] == email)
                .cloned()
        })
        .await
    }
}

async fn receive(State(script): State<Arc<Script>>, headers: HeaderMap, body: Bytes) -> AxumStatus {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    script.received.lock().unwrap().push(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let reply = script.replies.lock().unwrap().pop_front();
    match reply.unwrap_or(Reply::Status(200)) {
        Reply::Status(code) => AxumStatus::from_u16(code).expect("status"),
        Reply::Hang => std::future::pending().await,
    }
}

/// Whether the Standard Webhooks reference library accepts `r` under `secret`.
fn verified_independently(secret: &str, r: &Received) -> bool {
    use std::io::Write;
    let script = "import json, sys\n\
                  from standardwebhooks import Webhook\n\
                  d = json.load(sys.stdin)\n\
                  Webhook(d['secret']).verify(d['body'], d['headers'])\n";
    let input = json!({
        "secret": secret,
        "body": r.body,
        "headers": {"webhook-id": r.id, "webhook-timestamp": r.timestamp,
                    "webhook-signature": r.signature},
    });
    let mut child = std::process::Command::new(peers::python())
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("write");
    child.wait().expect("python").success()
}

/// Settings of a server that sends to loopback and retries within a second.
const FAST: [(&str, &str); 4] = [
    ("PALISADE_WEBHOOK_ALLOW_PRIVATE", "true"),
    ("PALISADE_WEBHOOK_RETRIES", "200ms,400ms,400ms"),
    ("PALISADE_RATE_LIMIT_AUTH", "1000/1m"),
    ("PALISADE_RATE_LIMIT_GENERAL", "10000/1m"),
];

async fn admin(e: &Env) -> Caller {
    with_role(e, "admin@example.com", "admin").await
}

/// Registers an endpoint for `events`; its id and secret.
async fn endpoint(api: &Api, admin: &Caller, url: &str, events: &[&str]) -> (String, String) {
    let r = api
        .send_as(
            Method::POST,
            "/api/v1/admin/webhooks",
            &admin.at,
            Some(json!({"url": url, "events": events})),
        )
        .await
        .expect(StatusCode::CREATED);
    let id = r.body["id"].as_str().expect("id").to_owned();
    let secret = r.body["secret"].as_str().expect("secret").to_owned();
    (id, secret)
}

async fn deliveries(api: &Api, admin: &Caller, id: &str) -> Vec<Value> {
    let r = api
        .get_as(
            &format!("/api/v1/admin/webhooks/{id}/deliveries?limit=100"),
            &admin.at,
        )
        .await
        .expect(StatusCode::OK);
    r.body["items"].as_array().expect("items").clone()
}

/// Waits (at most 10 s) for the endpoint's log to hold `n` attempts.
async fn logged(api: &Api, admin: &Caller, id: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let items = deliveries(api, admin, id).await;
        if items.len() >= n {
            return items;
        }
        assert!(
            Instant::now() < deadline,
            "{n} attempts expected: {items:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn endpoints_are_managed_by_administrators(pg: bool) {
    let e = start_with(pg, &FAST).await;
    let a = admin(&e).await;
    let m = member(&e, "m@example.com").await;
    let create = |who: &Caller, body: Value| {
        let (api, at) = (e.api.clone(), who.at.clone());
        async move {
            api.send_as(Method::POST, "/api/v1/admin/webhooks", &at, Some(body))
                .await
        }
    };
    let body = json!({"url": "https://receiver.invalid/hook", "events": ["contract.created"]});
    create(&m, body.clone()).await.expect(StatusCode::FORBIDDEN);
    e.api
        .get_as("/api/v1/admin/webhooks", &m.at)
        .await
        .expect(StatusCode::FORBIDDEN);

    for (bad, field) in [
        (
            json!({"url": "ftp://receiver.invalid/", "events": ["contract.created"]}),
            "url",
        ),
        (
            json!({"url": "not a url", "events": ["contract.created"]}),
            "url",
        ),
        (
            json!({"url": "https://user:pw@receiver.invalid/", "events": ["contract.created"]}),
            "url",
        ),
        (
            json!({"url": "https://receiver.invalid/", "events": []}),
            "events",
        ),
        (
            json!({"url": "https://receiver.invalid/", "events": ["contract.created'; DROP TABLE jobs;--"]}),
            "events",
        ),
        (
            json!({"url": "https://receiver.invalid/", "events": ["security.lockout"]}),
            "events",
        ),
        // A NUL reached PostgreSQL (a 500) before control characters were refused.
        (
            json!({"url": "https://receiver.invalid/a\u{0}b", "events": ["contract.created"]}),
            "url",
        ),
        (
            json!({"url": "https://receiver.invalid/", "events": ["contract.created"], "description": "a\u{0}b"}),
            "description",
        ),
    ] {
        let r = create(&a, bad.clone())
            .await
            .expect(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.body["errors"][0]["field"], field, "{bad}: {}", r.body);
    }
    create(
        &a,
        json!({"url": "https://receiver.invalid/", "events": ["contract.created"], "secret": "mine"}),
    )
    .await
    .expect(StatusCode::UNPROCESSABLE_ENTITY);

    let r = create(&a, body).await.expect(StatusCode::CREATED);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        r.headers["location"].to_str().unwrap(),
        format!("/api/v1/admin/webhooks/{id}")
    );
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(r.body["events"], json!(["contract.created"]));
    assert_eq!(r.body["disabled"], false);

    let got = e
        .api
        .get_as(&format!("/api/v1/admin/webhooks/{id}"), &a.at)
        .await
        .expect(StatusCode::OK);
    assert!(got.body.get("secret").is_none(), "the secret is shown once");
    let list = e
        .api
        .get_as("/api/v1/admin/webhooks", &a.at)
        .await
        .expect(StatusCode::OK);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);

    let path = format!("/api/v1/admin/webhooks/{id}");
    let r = e
        .api
        .send_as(
            Method::PATCH,
            &path,
            &a.at,
            Some(json!({"events": ["payment.succeeded", "payment.succeeded", "user.registered"], "disabled": true})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        r.body["events"],
        json!(["payment.succeeded", "user.registered"])
    );
    assert_eq!(r.body["disabled"], true);

    let rotated = e
        .api
        .send_as(Method::POST, &format!("{path}/rotate-secret"), &a.at, None)
        .await
        .expect(StatusCode::OK);
    let next = rotated.body["secret"].as_str().unwrap();
    assert!(next.starts_with("whsec_") && next != secret);
    let r = e.api.get_as(&path, &a.at).await.expect(StatusCode::OK);
    assert!(r.body["previous_secret_until"].is_string(), "{}", r.body);

    e.api
        .send_as(Method::DELETE, &path, &m.at, None)
        .await
        .expect(StatusCode::FORBIDDEN);
    e.api
        .send_as(Method::DELETE, &path, &a.at, None)
        .await
        .expect(StatusCode::NO_CONTENT);
    e.api
        .get_as(&path, &a.at)
        .await
        .expect(StatusCode::NOT_FOUND);
    e.api
        .get_as(&format!("{path}/deliveries"), &a.at)
        .await
        .expect(StatusCode::NOT_FOUND);
}

async fn a_failing_receiver_gets_the_event_again(pg: bool) {
    let e = start_with(pg, &FAST).await;
    let receiver = Receiver::start(&[Reply::Status(500), Reply::Status(500)]).await;
    let a = admin(&e).await;
    let (id, secret) = endpoint(&e.api, &a, &receiver.url(), &["contract.created"]).await;
    let m = member(&e, "m@example.com").await;
    let contract = created(&e, &m, draft("Hooked")).await;

    let got = receiver.wait_for(3, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 3);
    assert!(
        got.iter()
            .all(|r| r.id == got[0].id && r.body == got[0].body)
    );
    assert!(got[0].id.starts_with("msg_"), "{}", got[0].id);
    let event = got[0].json();
    assert_eq!(event["type"], "contract.created");
    assert_eq!(event["data"]["subject_id"], contract["id"]);
    assert_eq!(event["data"]["title"], "Hooked");
    for r in &got {
        assert!(verified_independently(&secret, r), "{r:?}");
    }

    let log = logged(&e.api, &a, &id, 3).await;
    let seen: Vec<(i64, Value)> = log
        .iter()
        .map(|d| (d["attempt"].as_i64().unwrap(), d["status_code"].clone()))
        .collect();
    assert_eq!(seen, [(3, json!(200)), (2, json!(500)), (1, json!(500))]);
    assert!(log.iter().all(|d| d["message_id"] == got[0].id.as_str()));
    assert!(log[0]["next_retry_at"].is_null() && log[0]["error"].is_null());
    assert!(log[1]["next_retry_at"].is_string(), "{}", log[1]);
    assert_eq!(log[2]["error"], "answered 500 Internal Server Error");

    // A delivery is found under its own endpoint only; a cursor must be one of the list's.
    let delivery = log[0]["id"].as_str().unwrap();
    let (other, _) = endpoint(&e.api, &a, "https://receiver.invalid/", &["payment.failed"]).await;
    e.api
        .send_as(
            Method::POST,
            &format!("/api/v1/admin/webhooks/{other}/deliveries/{delivery}/retry"),
            &a.at,
            None,
        )
        .await
        .expect(StatusCode::NOT_FOUND);
    let r = e
        .api
        .get_as(
            &format!("/api/v1/admin/webhooks/{id}/deliveries?cursor=nonsense"),
            &a.at,
        )
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert_eq!(r.body["code"], "request.invalid_query");

    // Sent again by hand: the same message, once more.
    e.api
        .send_as(
            Method::POST,
            &format!("/api/v1/admin/webhooks/{id}/deliveries/{delivery}/retry"),
            &a.at,
            None,
        )
        .await
        .expect(StatusCode::ACCEPTED);
    let got = receiver.wait_for(4, Duration::from_secs(10)).await;
    assert_eq!(got[3].id, got[0].id);
    let log = logged(&e.api, &a, &id, 4).await;
    assert_eq!(log[0]["attempt"], 1, "a fresh count of attempts");
}

async fn signatures_verify_through_a_rotation(pg: bool) {
    let e = start_with(pg, &FAST).await;
    let receiver = Receiver::start(&[]).await;
    let a = admin(&e).await;
    let (id, old) = endpoint(&e.api, &a, &receiver.url(), &["user.registered"]).await;
    member(&e, "first@example.com").await;
    // The admin's own registration may be sent too: pick each by its address.
    let first = receiver.message_for("first@example.com").await;
    assert_eq!(first.json()["type"], "user.registered");
    assert!(verified_independently(&old, &first));
    let forged = Received {
        body: first.body.replace("first@", "forged@"),
        ..first.clone()
    };
    assert!(
        !verified_independently(&old, &forged),
        "a changed body fails"
    );

    let r = e
        .api
        .send_as(
            Method::POST,
            &format!("/api/v1/admin/webhooks/{id}/rotate-secret"),
            &a.at,
            None,
        )
        .await
        .expect(StatusCode::OK);
    let new = r.body["secret"].as_str().unwrap().to_owned();
    member(&e, "second@example.com").await;
    let second = receiver.message_for("second@example.com").await;
    assert_eq!(
        second.signature.split(' ').count(),
        2,
        "{}",
        second.signature
    );
    assert!(
        verified_independently(&new, &second),
        "the new secret signs"
    );
    assert!(
        verified_independently(&old, &second),
        "the old one too, for 24 h"
    );
    assert!(!verified_independently(&new, &first));
}

/// The server is killed while a receiver holds its delivery; another instance sends it
/// once the claim lapses, under the same `webhook-id`.
async fn a_delivery_survives_a_killed_server(pg: bool) {
    let mut settings = FAST.to_vec();
    settings.push(("PALISADE_JOB_LEASE", "2s"));
    let e = start_with(pg, &settings).await;
    let receiver = Receiver::start(&[Reply::Hang]).await;
    let a = admin(&e).await;
    let (id, secret) = endpoint(&e.api, &a, &receiver.url(), &["contract.created"]).await;
    let m = member(&e, "m@example.com").await;
    created(&e, &m, draft("Killed")).await;
    let first = receiver.wait_for(1, Duration::from_secs(10)).await;
    e.server().kill();

    let (_second, other) = e.second_instance();
    let got = receiver.wait_for(2, Duration::from_secs(15)).await;
    assert_eq!(got[1].id, first[0].id, "the same message");
    assert!(verified_independently(&secret, &got[1]));
    let log = logged(&other, &a, &id, 1).await;
    assert_eq!(log[0]["status_code"], 200);
    assert_eq!(log[0]["attempt"], 2, "the killed attempt counts");
}

/// Two instances dispatch and deliver: each event reaches the receiver once.
async fn each_event_is_sent_once_by_two_instances(pg: bool) {
    let e = start_with(pg, &FAST).await;
    let (_second, other) = e.second_instance();
    let receiver = Receiver::start(&[]).await;
    let a = admin(&e).await;
    endpoint(&e.api, &a, &receiver.url(), &["payment.succeeded"]).await;
    let m = member(&e, "m@example.com").await;
    let contract = active(&e, &m, 1_000_000).await;
    for i in 0..10 {
        let api = if i % 2 == 0 { &e.api } else { &other };
        let auth = format!("Bearer {}", m.at);
        let key = format!("w-{i}");
        api.call(
            Method::POST,
            "/api/v1/payments",
            Some(payment(&contract, 100, "pm_card_visa")),
            &[
                ("authorization", auth.as_str()),
                ("idempotency-key", key.as_str()),
            ],
        )
        .await
        .expect(StatusCode::CREATED);
    }
    receiver.wait_for(10, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got = receiver.received();
    let mut events: Vec<String> = got
        .iter()
        .map(|r| r.json()["id"].as_str().unwrap().to_owned())
        .collect();
    events.sort();
    events.dedup();
    assert_eq!((got.len(), events.len()), (10, 10), "{got:?}");
}

/// Without the switch, loopback, private and metadata addresses are refused: literally
/// when the endpoint is saved, by name when it is called.
async fn private_addresses_are_refused(pg: bool) {
    let e = start_with(pg, &FAST[1..]).await;
    let receiver = Receiver::start(&[]).await;
    let a = admin(&e).await;
    for url in [
        receiver.url(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[::1]:8080/".to_owned(),
        "http://10.0.0.7/hook".to_owned(),
        "http://0x7f000001/hook".to_owned(),
    ] {
        let r = e
            .api
            .send_as(
                Method::POST,
                "/api/v1/admin/webhooks",
                &a.at,
                Some(json!({"url": url, "events": ["contract.created"]})),
            )
            .await
            .expect(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.body["errors"][0]["field"], "url", "{url}");
    }
    let by_name = format!("http://localhost:{}/hook", receiver.addr.port());
    let (id, _) = endpoint(&e.api, &a, &by_name, &["contract.created"]).await;
    let m = member(&e, "m@example.com").await;
    created(&e, &m, draft("Nowhere")).await;
    let log = logged(&e.api, &a, &id, 1).await;
    let error = log[0]["error"].as_str().unwrap();
    assert!(error.contains("no public address"), "{error}");
    assert!(log[0]["status_code"].is_null());
    assert!(receiver.received().is_empty(), "nothing reached loopback");
}

/// An endpoint failing for longer than allowed is disabled, the administrators are
/// told, and enabling it again forgets its failures.
async fn a_failing_endpoint_is_disabled(pg: bool) {
    let mut settings = FAST.to_vec();
    settings.push(("PALISADE_WEBHOOK_DISABLE_AFTER", "1s"));
    settings[1] = (
        "PALISADE_WEBHOOK_RETRIES",
        "300ms,300ms,300ms,300ms,300ms,300ms",
    );
    let e = start_with(pg, &settings).await;
    let receiver = Receiver::start(&[Reply::Status(503); 20]).await;
    let a = admin(&e).await;
    let (id, _) = endpoint(&e.api, &a, &receiver.url(), &["contract.created"]).await;
    let m = member(&e, "m@example.com").await;
    created(&e, &m, draft("Down")).await;
    let path = format!("/api/v1/admin/webhooks/{id}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let endpoint = loop {
        let r = e.api.get_as(&path, &a.at).await.expect(StatusCode::OK);
        if r.body["disabled"] == true {
            break r.body;
        }
        assert!(Instant::now() < deadline, "not disabled: {}", r.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        endpoint["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("failed")
    );
    assert!(endpoint["failing_since"].is_string());
    // Nothing more is sent: the retry still queued is logged as not sent.
    let sent = receiver.received().len();
    let log = logged(&e.api, &a, &id, sent + 1).await;
    assert_eq!(
        log[0]["error"], "the endpoint is disabled; not sent",
        "{log:?}"
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        receiver.received().len(),
        sent,
        "sent after it was disabled"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = e
            .api
            .get_as("/api/v1/notifications", &a.at)
            .await
            .expect(StatusCode::OK);
        let items = r.body["items"].as_array().unwrap();
        if let Some(n) = items
            .iter()
            .find(|n| n["kind"] == "webhook.endpoint_disabled")
        {
            assert_eq!(n["data"]["endpoint_id"], id.as_str());
            assert_eq!(n["data"]["host"], "127.0.0.1", "the host, not the URL");
            break;
        }
        assert!(Instant::now() < deadline, "admin not told: {}", r.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let told = e
        .api
        .get_as("/api/v1/notifications", &m.at)
        .await
        .expect(StatusCode::OK);
    assert!(
        told.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["kind"] != "webhook.endpoint_disabled"),
        "members are not told"
    );
    let r = e
        .api
        .send_as(
            Method::PATCH,
            &path,
            &a.at,
            Some(json!({"disabled": false})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(r.body["disabled"], false);
    assert!(r.body["failing_since"].is_null());
}

on_both_backends!(
    endpoints_are_managed_by_administrators,
    a_failing_receiver_gets_the_event_again,
    signatures_verify_through_a_rotation,
    a_delivery_survives_a_killed_server,
    private_addresses_are_refused,
    a_failing_endpoint_is_disabled,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_event_is_sent_once_by_two_instances_on_postgres() {
    each_event_is_sent_once_by_two_instances(true).await;
}
