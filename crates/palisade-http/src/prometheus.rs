//! The process-wide Prometheus registry.
//!
//! The `metrics` facade has one global recorder per process, so the registry is built
//! once ([`Metrics::global`]) and shared by every router (tests build several).

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::layers::metrics::HttpMetrics;

/// How often [`Metrics::upkeep`] should run.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Latency buckets in seconds: 1 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

pub struct Metrics {
    handle: PrometheusHandle,
    /// The request metrics' handles.
    pub http: HttpMetrics,
}

impl Metrics {
    pub fn global() -> &'static Metrics {
        static METRICS: OnceLock<Metrics> = OnceLock::new();
        METRICS.get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_duration_seconds".into()),
                    LATENCY_BUCKETS,
                )
                .expect("non-empty bucket list")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            describe();
            metrics_process::Collector::default().describe();
            Metrics {
                handle,
                http: HttpMetrics::default(),
            }
        })
    }

    /// The text exposition, with process metrics sampled now.
    pub fn render(&self) -> String {
        metrics_process::Collector::default().collect();
        self.handle.render()
    }

    /// Folds the samples histograms keep; run every [`UPKEEP_EVERY`].
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}

fn describe() {
    describe_histogram!(
        "http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request, by method, route template and status code."
    );
    describe_counter!(
        "http_requests_total",
        Unit::Count,
        "HTTP requests answered, by method, route template and status code."
    );
    describe_gauge!(
        "http_requests_in_progress",
        Unit::Count,
        "HTTP requests being served, by method."
    );
    describe_histogram!(
        "database_query_duration_seconds",
        Unit::Seconds,
        "Time of one database statement, by operation and table."
    );
    describe_counter!(
        "database_errors_total",
        Unit::Count,
        "Database statements that failed, by operation and table."
    );
    describe_gauge!(
        "db_pool_connections",
        Unit::Count,
        "Database pool connections, by pool and state (idle, in_use, total, max)."
    );
    describe_counter!(
        "jobs_total",
        Unit::Count,
        "Jobs run, by kind and outcome (done, retry, dead, released at shutdown, lost lease)."
    );
    describe_gauge!(
        "jobs_queue_depth",
        Unit::Count,
        "Jobs waiting in the queue, by kind."
    );
    describe_histogram!(
        "job_duration_seconds",
        Unit::Seconds,
        "Time of one run of a job, by kind."
    );
    describe_counter!(
        "events_dispatched_total",
        Unit::Count,
        "Events dispatched to their consumers."
    );
    describe_histogram!(
        "event_dispatch_lag_seconds",
        Unit::Seconds,
        "Time from an event's recording to its dispatch."
    );
    describe_counter!(
        "webhook_deliveries_total",
        Unit::Count,
        "Outbound webhook attempts, by outcome (ok, failed)."
    );
    describe_counter!(
        "emails_total",
        Unit::Count,
        "Account e-mail, by template and outcome (sent, failed, capped: the address's hourly cap)."
    );
    describe_counter!(
        "notifications_total",
        Unit::Count,
        "Notifications made, by kind."
    );
    describe_gauge!(
        "database_up",
        Unit::Count,
        "1 when the last background database check succeeded, else 0."
    );
}
