//! `http_requests_total`, `http_request_duration_seconds` and
//! `http_requests_in_progress`, labelled by method, route template and status code.

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::Method;

use super::route::RouteTemplate;

/// Methods outside the standard set share one label, so a client inventing methods
/// cannot create unbounded label values.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// Decrements the in-progress gauge even when the request future is dropped mid-way.
struct InProgress(&'static str);

impl InProgress {
    fn start(method: &'static str) -> Self {
        metrics::gauge!("http_requests_in_progress", "method" => method).increment(1.0);
        InProgress(method)
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        metrics::gauge!("http_requests_in_progress", "method" => self.0).decrement(1.0);
    }
}

pub async fn layer(req: Request, next: Next) -> Response {
    let method = method_label(req.method());
    let _in_progress = InProgress::start(method);
    let start = Instant::now();
    let res = next.run(req).await;
    let route = res
        .extensions()
        .get::<RouteTemplate>()
        .map(|r| r.0.clone())
        .unwrap_or_else(|| "unmatched".into());
    let labels = [
        ("method", method.to_owned()),
        ("route", route),
        ("status_code", res.status().as_u16().to_string()),
    ];
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(start.elapsed().as_secs_f64());
    metrics::counter!("http_requests_total", &labels).increment(1);
    res
}
