//! One JSON log line per request, inside a span that carries the request id so every
//! event logged while serving it can be correlated. Logs the path without its query
//! string and no header values: neither may carry a token into the logs.

use std::time::Duration;

use http::StatusCode;
use tracing::Span;

use super::client_ip::ClientIp;
use super::request_id::RequestId;

/// The span every event logged while serving the request is recorded in.
pub fn span(id: &RequestId) -> Span {
    tracing::info_span!("request", request_id = %id.as_str())
}

/// The access-log line of an answered request. It carries its own request id and is
/// logged outside the span: the JSON formatter would otherwise re-read the span's
/// fields for the most frequent line of all.
pub fn record(
    id: &RequestId,
    method: &'static str,
    path: &str,
    route: &str,
    status: StatusCode,
    elapsed: Duration,
    client: ClientIp,
) {
    tracing::info!(
        parent: None,
        request_id = id.as_str(),
        method,
        path,
        route,
        status = status.as_u16(),
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        client_ip = %client.0,
        "request served"
    );
}
