//! The dashboard: its numbers are the database's, it is cached per scope and a write
//! shows on the next read, on every instance; with Redis gone it still answers.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Caller, created, draft, get, member, patch, with_role};
use crate::backends::{Env, start_with};

/// Contracts per status straight from the database the server uses.
async fn counts_in_database(e: &Env) -> Value {
    let url = e.database_url();
    const SQL: &str = "SELECT status, COUNT(*) FROM contracts GROUP BY status";
    let rows: Vec<(String, i64)> = if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.expect("sqlite");
        sqlx::query_as(SQL).fetch_all(&pool).await.expect("count")
    } else {
        let pool = sqlx::PgPool::connect(url).await.expect("postgres");
        sqlx::query_as(SQL).fetch_all(&pool).await.expect("count")
    };
    let mut by_status = json!({"draft": 0, "active": 0, "completed": 0, "cancelled": 0});
    let mut total = 0;
    for (status, n) in rows {
        by_status[status] = json!(n);
        total += n;
    }
    json!({"total": total, "by_status": by_status})
}

async fn dashboard(e: &Env, who: &Caller, query: &str) -> crate::api::Answer {
    get(e, who, &format!("/api/v1/dashboard{query}")).await
}

fn x_cache(r: &crate::api::Answer) -> &str {
    r.headers["x-cache"].to_str().unwrap_or("")
}

/// The numbers equal a direct count; a second read is a hit; a write in the scope makes
/// the next read a miss with the new numbers; other scopes are apart.
async fn the_dashboard_is_the_databases_numbers_cached_per_scope(e: Env) {
    let a = member(&e, "a@example.com").await;
    let b = member(&e, "b@example.com").await;
    let manager = with_role(&e, "manager@example.com", "manager").await;
    for i in 0..3 {
        let id = created(&e, &a, draft(&format!("a{i}"))).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        if i == 0 {
            patch(&e, &a, &id, None, json!({"status": "active"}))
                .await
                .expect(StatusCode::OK);
        }
    }
    created(&e, &b, draft("b")).await;

    let r = dashboard(&e, &a, "").await.expect(StatusCode::OK);
    assert_eq!(x_cache(&r), "miss");
    assert_eq!(
        r.body["contracts"],
        json!({"total": 3, "by_status": {"draft": 2, "active": 1, "completed": 0, "cancelled": 0}})
    );
    assert_eq!(
        r.body["payments"]["succeeded"],
        json!({"count": 0, "amounts": []})
    );
    let days = r.body["last_30_days"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    assert!(days.iter().all(|d| d["count"] == 0));
    let generated = r.body["generated_at"].clone();
    let r = dashboard(&e, &a, "?scope=own").await.expect(StatusCode::OK);
    assert_eq!((x_cache(&r), &r.body["generated_at"]), ("hit", &generated));

    // Everyone's: only for records:all, and equal to the database's own count.
    let r = dashboard(&e, &a, "?scope=all")
        .await
        .expect(StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "auth.forbidden");
    let r = dashboard(&e, &manager, "?scope=all")
        .await
        .expect(StatusCode::OK);
    assert_eq!(r.body["contracts"], counts_in_database(&e).await);
    assert_eq!(r.body["contracts"]["total"], 4);

    // B's write touches B's scope and everyone's, not A's.
    created(&e, &b, draft("b2")).await;
    let r = dashboard(&e, &a, "").await.expect(StatusCode::OK);
    assert_eq!(x_cache(&r), "hit");
    let r = dashboard(&e, &manager, "?scope=all")
        .await
        .expect(StatusCode::OK);
    assert_eq!(x_cache(&r), "miss");
    assert_eq!(r.body["contracts"], counts_in_database(&e).await);
    // A's write shows on A's next read.
    created(&e, &a, draft("a3")).await;
    let r = dashboard(&e, &a, "").await.expect(StatusCode::OK);
    assert_eq!(x_cache(&r), "miss");
    assert_eq!(r.body["contracts"]["total"], 4);
    dashboard(&e, &a, "?scope=everyone")
        .await
        .expect(StatusCode::BAD_REQUEST);

    // The record cache reports itself.
    let admin = with_role(&e, "admin@example.com", "admin").await;
    let r = get(&e, &admin, "/api/v1/admin/infra/cache")
        .await
        .expect(StatusCode::OK);
    assert!(r.body["hits"].as_u64().unwrap() >= 2, "{}", r.body);
    assert!(r.body["misses"].as_u64().unwrap() >= 4, "{}", r.body);
    assert!(r.body["entries"].as_u64().unwrap() >= 1 && r.body["bytes"].as_u64().unwrap() > 0);
}

on_both!(the_dashboard_is_the_databases_numbers_cached_per_scope);

/// A `redis-server` of this test's own on a free port, killed when dropped.
struct PrivateRedis {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl PrivateRedis {
    fn start_on(port: u16, dir: tempfile::TempDir) -> PrivateRedis {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server)");
        let r = PrivateRedis { child, port, dir };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    fn start() -> PrivateRedis {
        let port = palisade_store::testing::free_port().port();
        PrivateRedis::start_on(port, tempfile::tempdir().expect("tempdir"))
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server; [`PrivateRedis::restart`] brings it back on the same port.
    fn kill(mut self) -> (u16, tempfile::TempDir) {
        self.child.kill().ok();
        self.child.wait().ok();
        let port = self.port;
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        (port, dir)
    }

    fn restart((port, dir): (u16, tempfile::TempDir)) -> PrivateRedis {
        PrivateRedis::start_on(port, dir)
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Two instances on one PostgreSQL and a Redis of the test's own: a write through one
/// shows on the other within milliseconds; the cache is shared (one computes, the other hits);
/// with Redis killed both still answer, say so, and share again once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_dashboard_and_survive_redis() {
    let redis = PrivateRedis::start();
    let url = redis.url();
    let e = start_with(true, &[("REDIS_URL", url.as_str())]).await;
    let (_second, api2) = e.second_instance();
    let a = member(&e, "a@example.com").await;
    let admin = with_role(&e, "admin@example.com", "admin").await;
    let on_second = |path: &str| {
        let (api2, at, path) = (api2.clone(), a.at.clone(), path.to_owned());
        async move { api2.get_as(&path, &at).await }
    };

    created(&e, &a, draft("first")).await;
    let r = dashboard(&e, &a, "").await.expect(StatusCode::OK);
    assert_eq!(
        (x_cache(&r), &r.body["contracts"]["total"]),
        ("miss", &json!(1))
    );
    // The second instance finds what the first computed, in Redis.
    let r = on_second("/api/v1/dashboard").await.expect(StatusCode::OK);
    assert_eq!(
        (x_cache(&r), &r.body["contracts"]["total"]),
        ("hit", &json!(1))
    );
    // A write through the first shows on the second as soon as the second hears of it
    // (PostgreSQL's NOTIFY): well within the 1 s it would otherwise trust the version
    // it has just read.
    created(&e, &a, draft("second")).await;
    let written = std::time::Instant::now();
    let r = loop {
        let r = on_second("/api/v1/dashboard").await.expect(StatusCode::OK);
        if r.body["contracts"]["total"] == 2 {
            break r;
        }
        assert!(
            written.elapsed() < Duration::from_millis(500),
            "the second instance still shows {} after {:?}",
            r.body["contracts"]["total"],
            written.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(x_cache(&r), "miss");

    // Redis dies: the dashboard still answers, computed here, and the instance says it
    // is on its own.
    let stopped = redis.kill();
    created(&e, &a, draft("third")).await;
    let r = dashboard(&e, &a, "").await.expect(StatusCode::OK);
    assert_eq!(r.body["contracts"]["total"], 3);
    let r = get(&e, &admin, "/health/detailed")
        .await
        .expect(StatusCode::OK);
    assert_eq!(r.body["status"], "degraded", "{}", r.body);
    assert_eq!(r.body["redis"]["shared_state"], "in_process", "{}", r.body);
    let r = get(&e, &admin, "/api/v1/admin/infra/cache")
        .await
        .expect(StatusCode::OK);
    assert_eq!(r.body["redis"], "resting", "{}", r.body);
    let metrics = e.api.text_as("/metrics", &admin.at).await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("redis_fallback_total{user=\"cache\"}")),
        "no cache fallback counted"
    );

    // Redis returns: within a few seconds the instances share again.
    let _redis = PrivateRedis::restart(stopped);
    created(&e, &a, draft("fourth")).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let first = dashboard(&e, &a, "").await.expect(StatusCode::OK);
        let second = on_second("/api/v1/dashboard").await.expect(StatusCode::OK);
        assert_eq!(first.body["contracts"], second.body["contracts"]);
        if x_cache(&second) == "hit" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the cache was never shared again"
        );
        // A fresh write, so the next first read computes and stores again.
        created(&e, &a, draft("again")).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
