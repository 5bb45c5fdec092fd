//! Exports from the outside: 200,000 seeded contracts streamed as CSV equal the rows
//! in the database while the server's memory stays flat; NDJSON; the formula guard;
//! at most two running per user, also across instances.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use super::{Caller, created, draft, member, with_role};
use crate::backends::{Env, start, start_with};

/// Seeds `users` × `per_user` contracts with the CLI.
fn seed(e: &Env, users: u32, per_user: u32) {
    let out = e.cli(
        &[
            "db",
            "seed",
            "--users",
            &users.to_string(),
            "--contracts-per-user",
            &per_user.to_string(),
        ],
        "",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "seed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = format!("seeded {users} members and {} contracts", users * per_user);
    assert!(stdout.contains(&want), "{stdout}");
    assert!(stdout.contains("passphrase: "), "{stdout}");
}

async fn export(e: &Env, who: &Caller, query: &str) -> reqwest::Response {
    e.api
        .http
        .get(format!("{}/api/v1/exports/contracts{query}", e.api.base))
        .bearer_auth(&who.at)
        .send()
        .await
        .expect("export")
}

/// Every contract as the database holds it, newest first, as the CSV shows it.
async fn rows_in_database(e: &Env) -> Vec<Vec<String>> {
    let url = e.database_url();
    const SQL: &str = "SELECT title, counterparty, amount_cents, currency, status, tags, version \
                       FROM contracts ORDER BY id DESC";
    type Row = (String, String, i64, String, String, String, i64);
    let rows: Vec<Row> = if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.expect("sqlite");
        sqlx::query_as(SQL).fetch_all(&pool).await.expect("rows")
    } else {
        let pool = sqlx::PgPool::connect(url).await.expect("postgres");
        sqlx::query_as(SQL).fetch_all(&pool).await.expect("rows")
    };
    rows.into_iter()
        .map(|(t, c, a, cur, s, tags, v)| vec![t, c, a.to_string(), cur, s, tags, v.to_string()])
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_thousand_rows_stream_in_flat_memory() {
    let e = start(false).await;
    seed(&e, 200, 1000);
    let boss = with_role(&e, "boss@example.com", "manager").await;
    let before = e.server().rss_bytes();
    let res = export(&e, &boss, "").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(res.headers()["transfer-encoding"], "chunked");
    let disposition = res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"contracts-")
            && disposition.ends_with(".csv\""),
        "{disposition}"
    );
    // Read slowly at first: the server must wait, not buffer.
    let mut res = res;
    let mut body = Vec::new();
    let mut peak = before;
    let mut chunks = 0;
    while let Some(chunk) = res.chunk().await.expect("chunk") {
        body.extend_from_slice(&chunk);
        chunks += 1;
        if chunks % 200 == 0 {
            peak = peak.max(e.server().rss_bytes());
        }
        if chunks < 20 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    peak = peak.max(e.server().rss_bytes());
    let growth = peak.saturating_sub(before);
    assert!(
        growth < 30 * 1024 * 1024,
        "RSS grew {} MiB",
        growth / (1024 * 1024)
    );

    let mut reader = csv::Reader::from_reader(body.as_slice());
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header[..4], ["id", "owner_id", "title", "counterparty"]);
    let col = |name: &str| header.iter().position(|h| h == name).expect(name);
    let pick = [
        "title",
        "counterparty",
        "amount_cents",
        "currency",
        "status",
        "tags",
        "version",
    ]
    .map(col);
    let exported: Vec<Vec<String>> = reader
        .records()
        .map(|r| {
            let r = r.expect("record");
            pick.iter().map(|i| r[*i].to_owned()).collect()
        })
        .collect();
    assert_eq!(exported.len(), 200_000);
    assert!(
        exported == rows_in_database(&e).await,
        "the CSV differs from the rows"
    );

    // The same rows as NDJSON, one object per line.
    let text = export(&e, &boss, "?format=ndjson&status=active")
        .await
        .text()
        .await
        .unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let active = exported.iter().filter(|r| r[4] == "active").count();
    assert_eq!(lines.len(), active);
    assert!(
        lines
            .iter()
            .all(|l| l["status"] == "active" && l["tags"].is_array())
    );

    // Two running exports (not read) are the most: a third is refused, with the rate
    // limit headers, and a slot is free again once one ends.
    let held_a = export(&e, &boss, "").await;
    let held_b = export(&e, &boss, "").await;
    assert_eq!(
        (held_a.status(), held_b.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    let third = export(&e, &boss, "").await;
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        third.headers().contains_key("ratelimit"),
        "{:?}",
        third.headers()
    );
    let problem: serde_json::Value = third.json().await.unwrap();
    assert_eq!(problem["code"], "exports.too_many_running");
    drop(held_a);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = export(&e, &boss, "?status=cancelled&tag=q4").await;
        if r.status() == StatusCode::OK {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the slot never came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(held_b);
}

/// A cell a spreadsheet would run is defused; a member exports only their own; the
/// export tier counts per user.
async fn exports_guard_formulas_and_scope(e: Env) {
    let a = member(&e, "a@example.com").await;
    let b = member(&e, "b@example.com").await;
    let mut evil = draft("=HYPERLINK(\"http://evil.example\",\"click\")");
    evil["counterparty"] = json!("+cmd|' /C calc'!A0");
    evil["description"] = json!("@SUM(1+1)\nsecond line, with \"quotes\"");
    created(&e, &a, evil).await;
    created(&e, &b, draft("B's")).await;
    let text = export(&e, &a, "").await.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(records.len(), 1, "only A's own: {text}");
    assert_eq!(
        &records[0][2],
        "'=HYPERLINK(\"http://evil.example\",\"click\")"
    );
    assert_eq!(&records[0][3], "'+cmd|' /C calc'!A0");
    assert_eq!(&records[0][9], "'@SUM(1+1)\nsecond line, with \"quotes\"");
    assert!(text.contains("\r\n"), "RFC 4180 lines end in CRLF");
    let r = export(&e, &a, &format!("?owner={}", b.id)).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = export(&e, &a, "?format=xlsx").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // The export tier: 10 per minute per user, 3 used above. (A refusal because two
    // exports still run, while one that was dropped ends, also counts against it.)
    let mut codes = Vec::new();
    for _ in 0..12 {
        let r = export(&e, &a, "?status=draft").await;
        let body = r.text().await.unwrap_or_default();
        let code = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["code"].as_str().map(str::to_owned));
        codes.push(code.unwrap_or_else(|| "csv".to_owned()));
    }
    let limited = codes.iter().filter(|c| *c == "rate_limit.exceeded").count();
    assert_eq!(limited, 12 - 7, "{codes:?}");
    assert_eq!(
        export(&e, &b, "").await.status(),
        StatusCode::OK,
        "another user's tier is apart"
    );
}

on_both!(exports_guard_formulas_and_scope);

/// On PostgreSQL with Redis, the two-export limit holds across two instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_running_exports_are_the_most_across_instances() {
    let e = start_with(true, &[]).await;
    seed(&e, 40, 1000);
    let boss = with_role(&e, "boss@example.com", "manager").await;
    let (_second, api2) = e.second_instance();
    let held_a = export(&e, &boss, "").await;
    let held_b = api2
        .http
        .get(format!("{}/api/v1/exports/contracts", api2.base))
        .bearer_auth(&boss.at)
        .send()
        .await
        .expect("export");
    assert_eq!(
        (held_a.status(), held_b.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    let third = export(&e, &boss, "").await;
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    drop((held_a, held_b));
}
