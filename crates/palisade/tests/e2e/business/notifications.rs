//! Notifications: made from events by the job queue, listed and marked read, and
//! streamed live (server-sent events) on any instance, resuming after `Last-Event-ID`.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::payments::{active, pay, payment};
use super::{Caller, get, member};
use crate::api::Api;
use crate::backends::{Env, start, start_with};

/// Waits (at most `limit`) for the caller's list to hold `n` notifications.
async fn listed(api: &Api, who: &Caller, n: usize, limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let r = api
            .get_as("/api/v1/notifications?limit=100", &who.at)
            .await
            .expect(StatusCode::OK);
        if r.body["items"].as_array().is_some_and(|i| i.len() >= n) {
            return r.body;
        }
        assert!(
            Instant::now() < deadline,
            "{n} notifications expected: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A server-sent event: its id, its event name, its data.
#[derive(Debug)]
struct Sent {
    id: String,
    event: String,
    data: Value,
}

/// An open stream and what it has received that is not an event yet.
struct Stream {
    res: reqwest::Response,
    buffer: String,
}

impl Stream {
    async fn open(
        api: &Api,
        who: &Caller,
        last_event_id: Option<&str>,
    ) -> Result<Stream, StatusCode> {
        let mut req = api
            .http
            .get(format!("{}/api/v1/notifications/stream", api.base))
            .bearer_auth(&who.at);
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let res = req.send().await.expect("stream");
        if res.status() != StatusCode::OK {
            return Err(res.status());
        }
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        Ok(Stream {
            res,
            buffer: String::new(),
        })
    }

    /// The next event (comments skipped), within `limit`.
    async fn next(&mut self, limit: Duration) -> Sent {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (String::new(), String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if !id.is_empty() {
                    let data = serde_json::from_str(&data).expect("JSON data");
                    return Sent { id, event, data };
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.res.chunk())
                .await
                .expect("no event in time")
                .expect("stream read")
                .expect("the stream ended");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// An active contract of `who`'s, once its status change was told (so later
/// notifications come after it).
async fn contract_told(e: &Env, who: &Caller) -> String {
    let contract = active(e, who, 100_000).await;
    let list = listed(&e.api, who, 1, Duration::from_secs(5)).await;
    assert_eq!(
        list["items"][0]["kind"], "contract.status_changed",
        "{list}"
    );
    assert_eq!(
        list["items"][0]["body"],
        "A contract went from draft to active."
    );
    contract
}

async fn paid(e: &Env, who: &Caller, contract: &str, key: &str, cents: i64) {
    pay(e, who, key, payment(contract, cents, "pm_card_visa"))
        .await
        .expect(StatusCode::CREATED);
}

async fn notifications_follow_payments(e: Env) {
    let a = member(&e, "a@example.com").await;
    let b = member(&e, "b@example.com").await;
    let contract = contract_told(&e, &a).await;
    paid(&e, &a, &contract, "n-1", 1_250).await;

    let list = listed(&e.api, &a, 2, Duration::from_secs(5)).await;
    let n = &list["items"][0];
    assert_eq!(
        (&n["kind"], &n["title"]),
        (&json!("payment.succeeded"), &json!("Payment received")),
        "{list}"
    );
    assert_eq!(n["body"], "12.50 EUR was paid.");
    assert_eq!(n["data"]["contract_id"], contract.as_str());
    assert!(n["read_at"].is_null());
    assert_eq!(list["unread_count"], 2);
    let id = n["id"].as_str().unwrap().to_owned();

    // Someone else's is not found; one's own is read, again without change.
    let path = format!("/api/v1/notifications/{id}/read");
    let r = e
        .api
        .send_as(reqwest::Method::POST, &path, &b.at, None)
        .await;
    r.expect(StatusCode::NOT_FOUND);
    for _ in 0..2 {
        e.api
            .send_as(reqwest::Method::POST, &path, &a.at, None)
            .await
            .expect(StatusCode::NO_CONTENT);
    }
    let list = get(&e, &a, "/api/v1/notifications?unread=true")
        .await
        .expect(StatusCode::OK);
    let unread = list.body["items"].as_array().unwrap();
    assert_eq!(
        (unread.len(), &list.body["unread_count"]),
        (1, &json!(1)),
        "{}",
        list.body
    );
    assert_eq!(unread[0]["kind"], "contract.status_changed");
    assert_eq!(
        get(&e, &b, "/api/v1/notifications").await.body["items"],
        json!([])
    );

    // A declined card and a status change are told too; all read at once.
    pay(
        &e,
        &a,
        "n-2",
        payment(&contract, 100, "pm_card_chargeDeclined"),
    )
    .await
    .expect(StatusCode::CREATED);
    let list = listed(&e.api, &a, 3, Duration::from_secs(5)).await;
    assert_eq!(list["items"][0]["kind"], "payment.failed", "{list}");
    assert_eq!(list["items"][0]["data"]["failure_code"], "card_declined");
    e.api
        .send_as(
            reqwest::Method::POST,
            "/api/v1/notifications/read-all",
            &a.at,
            None,
        )
        .await
        .expect(StatusCode::NO_CONTENT);
    assert_eq!(
        get(&e, &a, "/api/v1/notifications").await.body["unread_count"],
        0
    );
}

async fn streams_are_live_and_resume(e: Env) {
    let a = member(&e, "a@example.com").await;
    let contract = contract_told(&e, &a).await;
    let mut stream = Stream::open(&e.api, &a, None).await.expect("stream");
    let started = Instant::now();
    paid(&e, &a, &contract, "s-1", 100).await;
    let first = stream.next(Duration::from_secs(5)).await;
    assert_eq!(first.event, "payment.succeeded", "{first:?}");
    assert_eq!(first.data["id"], first.id.as_str());
    let latency = started.elapsed();

    // Dropped; two payments meanwhile; resumed after the first: both (in the order they
    // were told, which two concurrent dispatches may swap).
    drop(stream);
    paid(&e, &a, &contract, "s-2", 200).await;
    paid(&e, &a, &contract, "s-3", 300).await;
    listed(&e.api, &a, 4, Duration::from_secs(5)).await;
    let mut resumed = Stream::open(&e.api, &a, Some(&first.id))
        .await
        .expect("stream");
    let second = resumed.next(Duration::from_secs(5)).await;
    let third = resumed.next(Duration::from_secs(5)).await;
    let mut bodies = [second.data["body"].clone(), third.data["body"].clone()];
    bodies.sort_by_key(|b| b.to_string());
    assert_eq!(
        bodies,
        [json!("2.00 EUR was paid."), json!("3.00 EUR was paid.")]
    );
    assert!(second.id < third.id, "ids ascend on the stream");
    assert!(latency < Duration::from_secs(2), "{latency:?}");

    // Five streams per user; a sixth is refused.
    let mut open = vec![resumed];
    for _ in 0..4 {
        open.push(Stream::open(&e.api, &a, None).await.expect("stream"));
    }
    assert_eq!(
        Stream::open(&e.api, &a, None).await.err(),
        Some(StatusCode::TOO_MANY_REQUESTS)
    );
    drop(open);
}

/// Changes to an account's security are told to its owner: a sign-in from a browser
/// not seen before (not the first, not a repeat), a password change, a lockout.
async fn security_notices_are_told(e: Env) {
    use crate::backends::PASSWORD;
    let a = member(&e, "a@example.com").await;
    let login = |agent: &'static str, password: &'static str| {
        let api = e.api.clone();
        async move {
            api.call(
                reqwest::Method::POST,
                "/api/v1/auth/login",
                Some(json!({"email": "a@example.com", "password": password})),
                &[("user-agent", agent)],
            )
            .await
        }
    };
    login("Other Browser/1.0", PASSWORD)
        .await
        .expect(StatusCode::OK);
    let list = listed(&e.api, &a, 1, Duration::from_secs(5)).await;
    let n = &list["items"][0];
    assert_eq!(n["kind"], "security.new_sign_in", "{list}");
    assert_eq!(n["data"]["user_agent"], "Other Browser/1.0");
    login("Other Browser/1.0", PASSWORD)
        .await
        .expect(StatusCode::OK);

    let new_password = "a different horse battery staple 7";
    e.api
        .send_as(
            reqwest::Method::POST,
            "/api/v1/me/password",
            &a.at,
            Some(json!({"current_password": PASSWORD, "new_password": new_password})),
        )
        .await
        .expect(StatusCode::NO_CONTENT);
    let list = listed(&e.api, &a, 2, Duration::from_secs(5)).await;
    assert_eq!(
        list["items"][0]["kind"], "security.password_changed",
        "{list}"
    );

    for _ in 0..5 {
        login("Other Browser/1.0", "not the password at all")
            .await
            .expect(StatusCode::UNAUTHORIZED);
    }
    let list = listed(&e.api, &a, 3, Duration::from_secs(5)).await;
    assert_eq!(list["items"][0]["kind"], "security.lockout", "{list}");
    let kinds: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "security.lockout",
            "security.password_changed",
            "security.new_sign_in"
        ],
        "one sign-in notice, however often the new browser signs in"
    );
}

on_both!(
    notifications_follow_payments,
    streams_are_live_and_resume,
    security_notices_are_told
);

/// A payment made through one instance reaches a stream held on another within 1 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_on_another_instance_gets_the_notification() {
    let e = start(true).await;
    let (_second, other) = e.second_instance();
    let a = member(&e, "a@example.com").await;
    let contract = contract_told(&e, &a).await;
    let mut stream = Stream::open(&other, &a, None).await.expect("stream");
    // The first dispatch may wait for the other worker's first poll; measure the next.
    paid(&e, &a, &contract, "x-0", 100).await;
    stream.next(Duration::from_secs(5)).await;
    let started = Instant::now();
    paid(&e, &a, &contract, "x-1", 200).await;
    let sent = stream.next(Duration::from_secs(5)).await;
    let latency = started.elapsed();
    assert_eq!(sent.data["body"], "2.00 EUR was paid.");
    assert!(latency < Duration::from_secs(1), "{latency:?}");
}

/// With two instances working the queue, every event is dispatched once: as many
/// notifications as payments, none twice, none missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_event_is_dispatched_once_by_two_instances() {
    // The test polls the list while the queue works.
    let e = start_with(true, &[("PALISADE_RATE_LIMIT_GENERAL", "10000/1m")]).await;
    let (_second, other) = e.second_instance();
    let a = member(&e, "a@example.com").await;
    let contract = contract_told(&e, &a).await;
    let mut runs = Vec::new();
    for i in 0..20 {
        let api = if i % 2 == 0 {
            e.api.clone()
        } else {
            other.clone()
        };
        let (who, contract) = (a.clone(), contract.clone());
        runs.push(tokio::spawn(async move {
            let auth = format!("Bearer {}", who.at);
            let key = format!("d-{i}");
            let headers = [
                ("authorization", auth.as_str()),
                ("idempotency-key", key.as_str()),
            ];
            api.call(
                reqwest::Method::POST,
                "/api/v1/payments",
                Some(payment(&contract, 100, "pm_card_visa")),
                &headers,
            )
            .await
            .expect(StatusCode::CREATED);
        }));
    }
    for r in runs {
        r.await.expect("payment");
    }
    let list = listed(&e.api, &a, 21, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = get(&e, &a, "/api/v1/notifications?limit=100")
        .await
        .expect(StatusCode::OK);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 21, "{list}");
    let mut subjects: Vec<&str> = items
        .iter()
        .filter(|n| n["kind"] == "payment.succeeded")
        .map(|n| n["data"]["subject_id"].as_str().unwrap())
        .collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), 20);
    // The notifications' uniqueness would hide a second dispatch; the instances' own
    // counts do not: the registration, the contract's two events and two per payment,
    // each taken once.
    let mut dispatched = 0;
    for api in [&e.api, &other] {
        dispatched += counter(
            &api.text_as("/metrics", &a.at).await,
            "events_dispatched_total",
        );
    }
    assert_eq!(dispatched, 43);
}

/// The value of the unlabelled counter `name` in a Prometheus exposition (0 if absent).
fn counter(exposition: &str, name: &str) -> u64 {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

/// One instance holds 1,000 streams (200 users, 5 each) and still delivers at once;
/// what each stream costs in the server's memory is reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_streams_on_one_instance() {
    use crate::api::now;
    use crate::backends::{AUDIENCE, ISSUER, subject};
    let e = start_with(
        false,
        &[
            ("PALISADE_MAX_CONNECTIONS_PER_CLIENT", "1200"),
            ("PALISADE_RATE_LIMIT_GENERAL", "100000/1m"),
        ],
    )
    .await;
    let a = member(&e, "a@example.com").await;
    let contract = contract_told(&e, &a).await;
    let signer = e.tokens(AUDIENCE, ISSUER, 900);
    let mut callers = vec![a.clone()];
    for _ in 1..200 {
        let (id, sid) = (
            uuid::Uuid::now_v7().to_string(),
            uuid::Uuid::now_v7().to_string(),
        );
        let at = signer.issue(subject(&id, &sid, &["member"]), now());
        callers.push(Caller { at, id });
    }
    let before = e.server().rss_bytes();
    let mut streams = Vec::new();
    for caller in &callers {
        for _ in 0..5 {
            streams.push(Stream::open(&e.api, caller, None).await.expect("stream"));
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held = e.server().rss_bytes();
    let per_stream = held.saturating_sub(before) / 1_000;
    eprintln!("1,000 streams: RSS {before} → {held} bytes, {per_stream} bytes per stream");
    assert!(per_stream < 256 * 1024, "{per_stream} bytes per stream");

    let started = Instant::now();
    paid(&e, &a, &contract, "k-1", 700).await;
    for stream in streams.iter_mut().take(5) {
        let sent = stream.next(Duration::from_secs(5)).await;
        assert_eq!(sent.data["body"], "7.00 EUR was paid.");
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

/// A shutdown ends open streams at once (their clients reconnect elsewhere with
/// `Last-Event-ID`) instead of holding the drain until its timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_ends_streams() {
    let e = start(false).await;
    let (mut server, api) = e.second_instance();
    let a = member(&e, "a@example.com").await;
    let mut stream = Stream::open(&api, &a, None).await.expect("stream");
    let started = Instant::now();
    server.terminate();
    let end = tokio::time::timeout(Duration::from_secs(3), stream.res.chunk())
        .await
        .expect("the stream did not end");
    assert!(matches!(end, Ok(None) | Err(_)), "{end:?}");
    assert_eq!(server.wait(Duration::from_secs(10)), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}
