//! `http_requests_total`, `http_request_duration_seconds` and
//! `http_requests_in_progress`, labelled by method, route template and status code.
//!
//! The handles are looked up once per label set and kept: the `metrics` macros build,
//! hash and compare the whole label set on every call, which showed in profiles of
//! the request path. Label values are bounded: route templates, not paths; ten method
//! labels; status codes.

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};
use std::time::Duration;

use http::{Method, StatusCode};
use metrics::{Counter, Gauge, Histogram, Label};

const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "other",
];

/// A request method as a metric label. Methods outside the standard set share one
/// label, so a client inventing methods cannot create unbounded label values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MethodLabel(usize);

impl MethodLabel {
    pub fn of(m: &Method) -> Self {
        MethodLabel(match *m {
            Method::GET => 0,
            Method::HEAD => 1,
            Method::POST => 2,
            Method::PUT => 3,
            Method::PATCH => 4,
            Method::DELETE => 5,
            Method::OPTIONS => 6,
            Method::TRACE => 7,
            Method::CONNECT => 8,
            _ => 9,
        })
    }

    pub fn as_str(self) -> &'static str {
        METHODS[self.0]
    }
}

/// The request metrics' handles.
#[derive(Default)]
pub struct HttpMetrics {
    in_progress: [OnceLock<Gauge>; METHODS.len()],
    /// By route template, then (method, status).
    answered: RwLock<HashMap<Box<str>, Vec<Answered>>>,
}

struct Answered {
    method: MethodLabel,
    status: u16,
    duration: Histogram,
    total: Counter,
}

/// Counts a request in progress until dropped, even when the request future is
/// dropped mid-way.
pub struct InProgress(&'static Gauge);

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

impl HttpMetrics {
    pub fn start(&'static self, method: MethodLabel) -> InProgress {
        let gauge = self.in_progress[method.0].get_or_init(
            || metrics::gauge!("http_requests_in_progress", "method" => method.as_str()),
        );
        gauge.increment(1.0);
        InProgress(gauge)
    }

    /// Records one answered request.
    pub fn record(&self, method: MethodLabel, route: &str, status: StatusCode, elapsed: Duration) {
        let status = status.as_u16();
        let seconds = elapsed.as_secs_f64();
        let observe = |a: &Answered| {
            a.duration.record(seconds);
            a.total.increment(1);
        };
        {
            let answered = self.answered.read().unwrap_or_else(|e| e.into_inner());
            let known = answered
                .get(route)
                .and_then(|v| v.iter().find(|a| a.method == method && a.status == status));
            if let Some(a) = known {
                return observe(a);
            }
        }
        let labels = [
            Label::from_static_parts("method", method.as_str()),
            Label::new("route", route.to_owned()),
            Label::new("status_code", status_label(status)),
        ];
        let a = Answered {
            method,
            status,
            duration: metrics::histogram!("http_request_duration_seconds", labels.to_vec()),
            total: metrics::counter!("http_requests_total", labels.to_vec()),
        };
        observe(&a);
        let mut answered = self.answered.write().unwrap_or_else(|e| e.into_inner());
        let slot = answered.entry(route.into()).or_default();
        // Another request may have added the same label set meanwhile; its handles and
        // these are the same series, so either may stay.
        if !slot
            .iter()
            .any(|x| x.method == method && x.status == status)
        {
            slot.push(a);
        }
    }
}

/// The status code as a `'static` label value: a table built once, instead of a string
/// formatted per label set.
fn status_label(status: u16) -> &'static str {
    static LABELS: OnceLock<Vec<String>> = OnceLock::new();
    let labels = LABELS.get_or_init(|| (0..600u16).map(|c| c.to_string()).collect());
    labels
        .get(usize::from(status))
        .map(String::as_str)
        .unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(MethodLabel::of(&Method::PATCH).as_str(), "PATCH");
        let invented = Method::from_bytes(b"BREW").expect("method");
        assert_eq!(MethodLabel::of(&invented).as_str(), "other");
    }

    #[test]
    fn handles_are_kept_per_label_set() {
        let m = HttpMetrics::default();
        let get = MethodLabel::of(&Method::GET);
        m.record(get, "/a", StatusCode::OK, Duration::from_millis(1));
        m.record(get, "/a", StatusCode::OK, Duration::from_millis(1));
        m.record(get, "/a", StatusCode::NOT_FOUND, Duration::from_millis(1));
        m.record(get, "/b", StatusCode::OK, Duration::from_millis(1));
        let answered = m.answered.read().expect("lock");
        assert_eq!(answered["/a"].len(), 2);
        assert_eq!(answered["/b"].len(), 1);
    }
}
