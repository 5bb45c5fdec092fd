//! One JSON log line per request, inside a span that carries the request id so every
//! event logged while serving it can be correlated. Logs the path without its query
//! string and no header values: neither may carry a token into the logs.

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::client_ip::ClientIp;
use super::request_id::RequestId;
use super::route::RouteTemplate;

pub async fn layer(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.as_str().to_owned())
        .unwrap_or_default();
    let client_ip = req
        .extensions()
        .get::<ClientIp>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let span = tracing::info_span!("request", request_id = %request_id, method = %method);
    let res = next.run(req).instrument(span.clone()).await;
    let route = res
        .extensions()
        .get::<RouteTemplate>()
        .map(|r| r.0.as_str())
        .unwrap_or("unmatched");
    tracing::info!(
        parent: &span,
        path = %path,
        route,
        status = res.status().as_u16(),
        latency_ms = start.elapsed().as_secs_f64() * 1000.0,
        client_ip = %client_ip,
        "request served"
    );
    res
}
