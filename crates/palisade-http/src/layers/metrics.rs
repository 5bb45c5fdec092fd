//! `http_requests_total`, `http_request_duration_seconds` and
//! `http_requests_in_progress`, labelled by method, route template and status code.

use std::time::Duration;

use http::{Method, StatusCode};

/// Methods outside the standard set share one label, so a client inventing methods
/// cannot create unbounded label values.
pub fn method_label(m: &Method) -> &'static str {
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

/// Counts a request in progress until dropped, even when the request future is
/// dropped mid-way.
pub struct InProgress(&'static str);

impl InProgress {
    pub fn start(method: &'static str) -> Self {
        metrics::gauge!("http_requests_in_progress", "method" => method).increment(1.0);
        InProgress(method)
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        metrics::gauge!("http_requests_in_progress", "method" => self.0).decrement(1.0);
    }
}

/// Records one answered request.
pub fn record(method: &'static str, route: &str, status: StatusCode, elapsed: Duration) {
    let labels = [
        metrics::Label::from_static_parts("method", method),
        metrics::Label::new("route", route.to_owned()),
        metrics::Label::new("status_code", status_label(status)),
    ];
    metrics::histogram!("http_request_duration_seconds", labels.to_vec())
        .record(elapsed.as_secs_f64());
    metrics::counter!("http_requests_total", Vec::from(labels)).increment(1);
}

/// The status code as a `'static` label value: a table built once, instead of a string
/// formatted per request.
fn status_label(status: StatusCode) -> &'static str {
    static LABELS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let labels = LABELS.get_or_init(|| (0..600u16).map(|c| c.to_string()).collect());
    labels
        .get(usize::from(status.as_u16()))
        .map(String::as_str)
        .unwrap_or("other")
}
