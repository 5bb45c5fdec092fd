//! The benchmark's baseline: a bare axum server answering `GET /health` with the same
//! JSON as palisade, with no layers at all. It prints its address the way palisade does
//! (`{"message":"listening","addr":…}`) so the bench script starts both alike.
//!
//! With `BASELINE_HEADERS=palisade` the handler also returns palisade's response
//! headers (as constants, still no middleware), so the two answers are the same size on
//! the wire and the comparison isolates the cost of palisade's layers.
//!
//! With `BASELINE_JWT_KEY_FILE=<Ed25519 PEM>` it also answers `GET /me`: it verifies the
//! bearer token with palisade's own verifier (the same key, issuer and audience) and
//! returns a fixed user, the least an authenticated endpoint can do.
//!
//! With `BASELINE_DATABASE_URL` as well, it answers `GET /contracts`: after the same
//! verification, the SELECT palisade's contract list runs for the caller (their newest
//! 21 contracts with their balances, by the `contracts_owner` index), returned as the
//! same JSON with no other work.
//!
//! `palisade-bench-baseline argon2 <n>` instead hashes `n` passwords with palisade's
//! argon2id parameters in a work area allocated beforehand and prints the median
//! seconds per hash: the login benchmark's limit is cores ÷ that time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Block, Params, Version};
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use palisade_auth::access::{AccessTokens, SigningKey};
use palisade_auth::password::BASELINE;
use serde_json::json;

/// What palisade sends on `GET /health`, besides `content-type`, `content-length` and `date`.
const PALISADE_HEADERS: &[(&str, &str)] = &[
    ("vary", "origin"),
    (
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    (
        "permissions-policy",
        "accelerometer=(), camera=(), geolocation=(), microphone=(), payment=(), usb=()",
    ),
    ("x-permitted-cross-domain-policies", "none"),
    ("cache-control", "no-store"),
    ("x-request-id", "01a20631-2d13-7738-b7d2-9cb91ad1433b"),
];

async fn bare() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

async fn same_headers() -> Response {
    let mut res = Json(json!({ "status": "ok" })).into_response();
    for (name, value) in PALISADE_HEADERS {
        res.headers_mut().insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    res
}

/// The verified claims of the request's bearer token.
fn caller(
    tokens: &AccessTokens,
    headers: &axum::http::HeaderMap,
) -> Option<palisade_auth::access::Claims> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))?;
    tokens.verify(token).ok()
}

async fn me(
    axum::extract::State(tokens): axum::extract::State<Arc<AccessTokens>>,
    headers: axum::http::HeaderMap,
) -> Response {
    match caller(&tokens, &headers) {
        Some(c) => Json(json!({
            "id": c.sub, "email": "bench@example.com", "name": "Bench",
            "roles": c.roles, "two_factor": false, "disabled": false,
            "created_at": "2026-01-01T00:00:00Z",
        }))
        .into_response(),
        _ => axum::http::StatusCode::UNAUTHORIZED.into_response(),
    }
}

/// The list's SELECT, as palisade's store renders it (the page's rows with their
/// balances), for each database.
const LIST: &str = "SELECT id, owner_id, title, counterparty, amount_cents, currency, status, \
     starts_on, ends_on, description, tags, version, created_at, updated_at, \
     (SELECT CAST(COALESCE(SUM(p.amount_cents), 0) AS BIGINT) FROM payments p \
      WHERE p.contract_id = contracts.id AND p.status = 'succeeded') AS paid_cents, \
     (SELECT CAST(COALESCE(SUM(p.refunded_cents), 0) AS BIGINT) FROM payments p \
      WHERE p.contract_id = contracts.id AND p.status = 'succeeded') AS refunded_cents \
     FROM contracts WHERE owner_id = $1 ORDER BY id DESC LIMIT 21";

#[derive(sqlx::FromRow)]
struct ContractRow {
    id: uuid::Uuid,
    owner_id: uuid::Uuid,
    title: String,
    counterparty: String,
    amount_cents: i64,
    currency: String,
    status: String,
    starts_on: Option<String>,
    ends_on: Option<String>,
    description: String,
    tags: String,
    version: i64,
    created_at: String,
    updated_at: String,
    paid_cents: i64,
    refunded_cents: i64,
}

#[derive(Clone)]
enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

async fn contracts(
    axum::extract::State((tokens, pool)): axum::extract::State<(Arc<AccessTokens>, Pool)>,
    headers: axum::http::HeaderMap,
) -> Response {
    let Some(claims) = caller(&tokens, &headers) else {
        return axum::http::StatusCode::UNAUTHORIZED.into_response();
    };
    let Ok(owner) = claims.sub.parse::<uuid::Uuid>() else {
        return axum::http::StatusCode::UNAUTHORIZED.into_response();
    };
    let rows: Result<Vec<ContractRow>, sqlx::Error> = match &pool {
        Pool::Sqlite(p) => sqlx::query_as(LIST).bind(owner).fetch_all(p).await,
        Pool::Postgres(p) => {
            // Dates and times as text, as SQLite hands them over.
            let sql = LIST
                .replace("starts_on, ends_on,", "starts_on::text, ends_on::text,")
                .replace(
                    "created_at, updated_at,",
                    "created_at::text, updated_at::text,",
                );
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(owner)
                .fetch_all(p)
                .await
        }
    };
    match rows {
        Ok(rows) => {
            let items: Vec<_> = rows
                .iter()
                .take(20)
                .map(|c| {
                    json!({"id": c.id, "owner_id": c.owner_id, "title": c.title,
                           "counterparty": c.counterparty,
                           "amount": {"amount_cents": c.amount_cents, "currency": c.currency},
                           "status": c.status, "starts_on": c.starts_on, "ends_on": c.ends_on,
                           "description": c.description,
                           "tags": c.tags.split_whitespace().collect::<Vec<_>>(),
                           "balance": {"paid_cents": c.paid_cents,
                                       "refunded_cents": c.refunded_cents,
                                       "outstanding_cents": c.amount_cents - c.paid_cents + c.refunded_cents},
                           "version": c.version, "created_at": c.created_at,
                           "updated_at": c.updated_at})
                })
                .collect();
            Json(json!({"items": items, "next_cursor": null})).into_response()
        }
        Err(_) => axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Median seconds of one argon2id hash with palisade's parameters, over `n` hashes:
/// the computation alone, in a work area allocated and touched once beforehand, so
/// the limit does not include the allocator's or the kernel's work (which the server
/// must then beat). On a spawned thread, as in the server: on the main thread the time
/// moved with the size of the arguments and the environment.
fn time_argon2(n: usize) {
    let hashing = std::thread::spawn(move || {
        let params =
            Params::new(BASELINE.m_kib, BASELINE.t, BASELINE.p, None).expect("argon2 parameters");
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let mut area = vec![Block::default(); params.block_count()];
        let mut out = [0u8; 32];
        let salt = *b"benchmark salt 0";
        let mut once = |i: usize| {
            let start = Instant::now();
            argon
                .hash_password_into_with_memory(
                    format!("benchmark password {i}").as_bytes(),
                    &salt,
                    &mut out,
                    &mut area,
                )
                .expect("argon2");
            start.elapsed().as_secs_f64()
        };
        once(0);
        (1..=n.max(1)).map(once).collect::<Vec<f64>>()
    });
    let mut times = hashing.join().expect("the hashing thread");
    times.sort_by(f64::total_cmp);
    println!("{:.6}", times[times.len() / 2]);
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("argon2") {
        time_argon2(args.get(2).and_then(|n| n.parse().ok()).unwrap_or(20));
        return Ok(());
    }
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let mut router = match std::env::var("BASELINE_HEADERS").as_deref() {
        Ok("palisade") => Router::new().route("/health", get(same_headers)),
        _ => Router::new().route("/health", get(bare)),
    };
    if let Ok(file) = std::env::var("BASELINE_JWT_KEY_FILE") {
        let pem = std::fs::read_to_string(&file)?;
        let key = SigningKey::ed25519_from_pem(&pem).map_err(std::io::Error::other)?;
        let tokens = Arc::new(AccessTokens::new(
            &key,
            "palisade",
            "palisade-api",
            Duration::from_secs(900),
        ));
        router = router.merge(
            Router::new()
                .route("/me", get(me))
                .with_state(tokens.clone()),
        );
        if let Ok(url) = std::env::var("BASELINE_DATABASE_URL") {
            let pool = if url.starts_with("sqlite:") {
                Pool::Sqlite(
                    sqlx::SqlitePool::connect(&url)
                        .await
                        .map_err(std::io::Error::other)?,
                )
            } else {
                Pool::Postgres(
                    sqlx::PgPool::connect(&url)
                        .await
                        .map_err(std::io::Error::other)?,
                )
            };
            router = router.merge(
                Router::new()
                    .route("/contracts", get(contracts))
                    .with_state((tokens, pool)),
            );
        }
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!(
        "{}",
        json!({ "message": "listening", "addr": listener.local_addr()?.to_string() })
    );
    axum::serve(listener, router).await
}
