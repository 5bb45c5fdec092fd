//! The benchmark's baseline: a bare axum server answering `GET /health` with the same
//! JSON as palisade, with no layers at all. It prints its address the way palisade does
//! (`{"message":"listening","addr":…}`) so the bench script starts both alike.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!(
        "{}",
        json!({ "message": "listening", "addr": listener.local_addr()?.to_string() })
    );
    axum::serve(listener, Router::new().route("/health", get(health))).await
}
