//! The real binary on PostgreSQL (`TEST_DATABASE_URL`), reached through a proxy the
//! test controls, to watch readiness follow an outage and a drain finish slow work.

use std::time::{Duration, Instant};

use crate::harness::{
    FaultProxy, Mode, Server, client, postgres_socket_addr, status_of, via, wait_for,
};
use palisade_store::testing::TempPostgres;
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_on_postgres() {
    let pg = TempPostgres::create().await;
    let server = Server::start(&[("DATABASE_URL", pg.url())]);
    let detailed: Value = client()
        .get(server.url("/health/detailed"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(detailed["database"]["backend"], "postgres");
    assert_eq!(detailed["database"]["reachable"], true);
    assert_eq!(status_of(&server.url("/ready")).await, Some(StatusCode::OK));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_turns_503_while_the_database_is_unreachable_and_back() {
    let pg = TempPostgres::create().await;
    let proxy = FaultProxy::start(postgres_socket_addr()).await;
    let url = via(pg.url(), proxy.addr);
    let server = Server::start(&[
        ("DATABASE_URL", &url),
        ("PALISADE_DB_HEALTH_INTERVAL", "200ms"),
        ("DB_CONNECTION_TIMEOUT", "500ms"),
    ]);
    let ready = server.url("/ready");
    assert_eq!(status_of(&ready).await, Some(StatusCode::OK));

    proxy.set(Mode::Down);
    wait_for(
        &ready,
        StatusCode::SERVICE_UNAVAILABLE,
        Duration::from_secs(10),
    )
    .await;
    let res = client().get(&ready).send().await.expect("request");
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["code"], "service.database_unavailable");
    assert_eq!(
        status_of(&server.url("/health")).await,
        Some(StatusCode::SERVICE_UNAVAILABLE)
    );
    assert_eq!(
        status_of(&server.url("/live")).await,
        Some(StatusCode::OK),
        "liveness ignores the database"
    );
    let metrics = client()
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("database_up 0"), "{metrics}");
    assert!(
        metrics.contains("database_errors_total{operation=\"ping\",table=\"none\"}"),
        "{metrics}"
    );

    proxy.set(Mode::Pass);
    wait_for(&ready, StatusCode::OK, Duration::from_secs(10)).await;
    assert_eq!(
        status_of(&server.url("/health")).await,
        Some(StatusCode::OK)
    );
    server.wait_for_log("database unreachable");
    server.wait_for_log("database reachable again");
    assert!(
        !server.logs().contains(pg.url()),
        "the database URL was logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_turns_unready_and_finishes_the_request_in_flight() {
    let pg = TempPostgres::create().await;
    let proxy = FaultProxy::start(postgres_socket_addr()).await;
    let url = via(pg.url(), proxy.addr);
    // A slow database must make the request slow, not time out its connection.
    let mut server = Server::start(&[
        ("DATABASE_URL", &url),
        ("PALISADE_SHUTDOWN_DELAY", "1s"),
        ("DB_CONNECTION_TIMEOUT", "10s"),
    ]);
    assert_eq!(status_of(&server.url("/ready")).await, Some(StatusCode::OK));

    // Every database reply now takes 1 s: /health/detailed (a live ping) takes seconds.
    proxy.set(Mode::Slow(Duration::from_secs(1)));
    let slow_url = server.url("/health/detailed");
    let started = Instant::now();
    let in_flight = tokio::spawn(async move { client().get(slow_url).send().await });
    tokio::time::sleep(Duration::from_millis(300)).await;

    server.terminate();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Within the shutdown delay new requests are still accepted, and /ready says 503.
    let res = client()
        .get(server.url("/ready"))
        .send()
        .await
        .expect("ready during the drain");
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["code"], "service.shutting_down");

    let res = in_flight
        .await
        .expect("task")
        .expect("the in-flight request is answered");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        started.elapsed() > Duration::from_millis(1500),
        "the request was not slow: {:?}",
        started.elapsed()
    );
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["database"]["reachable"], true);

    assert_eq!(
        server.wait(Duration::from_secs(30)),
        Some(0),
        "{}",
        server.logs()
    );
    server.wait_for_log("\"drain\":\"Complete\"");
    // After the drain the listener is closed.
    assert_eq!(status_of(&server.url("/live")).await, None);
}
