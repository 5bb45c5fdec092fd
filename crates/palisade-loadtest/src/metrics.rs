//! The run's metrics: k6's built-in ones and a scenario file's own, each a counter,
//! gauge, rate or trend; sub-metrics narrowed by tags for the thresholds that name
//! them; and one-second buckets for the report's charts.
//!
//! Trends keep every sample in an HDR histogram (3 significant digits, so a
//! percentile is within 0.1 % of the exact value), not a reservoir: p(99) of a
//! million requests is as exact as p(50).

use crate::threshold::{Aggregation, MetricKey};
use hdrhistogram::Histogram;
use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

/// k6's four metric types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Rate,
    Trend,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Rate => "rate",
            Kind::Trend => "trend",
        }
    }
}

/// What a metric's values are: milliseconds, bytes, or plain numbers (k6's `contains`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contains {
    Time,
    Data,
    Default,
}

impl Contains {
    pub fn name(self) -> &'static str {
        match self {
            Contains::Time => "time",
            Contains::Data => "data",
            Contains::Default => "default",
        }
    }
}

/// The built-in metrics, with k6's names, types and meanings.
pub const BUILT_IN: &[(&str, Kind, Contains)] = &[
    ("http_reqs", Kind::Counter, Contains::Default),
    ("http_req_duration", Kind::Trend, Contains::Time),
    ("http_req_waiting", Kind::Trend, Contains::Time),
    ("http_req_failed", Kind::Rate, Contains::Default),
    ("iterations", Kind::Counter, Contains::Default),
    ("iteration_duration", Kind::Trend, Contains::Time),
    ("dropped_iterations", Kind::Counter, Contains::Default),
    ("checks", Kind::Rate, Contains::Default),
    ("data_received", Kind::Counter, Contains::Data),
    ("vus", Kind::Gauge, Contains::Default),
    ("vus_max", Kind::Gauge, Contains::Default),
];

/// A metric's index in the registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricId(pub usize);

/// The ids of the built-in metrics, fixed by their order in [`BUILT_IN`].
pub mod id {
    use super::MetricId;
    pub const HTTP_REQS: MetricId = MetricId(0);
    pub const HTTP_REQ_DURATION: MetricId = MetricId(1);
    pub const HTTP_REQ_WAITING: MetricId = MetricId(2);
    pub const HTTP_REQ_FAILED: MetricId = MetricId(3);
    pub const ITERATIONS: MetricId = MetricId(4);
    pub const ITERATION_DURATION: MetricId = MetricId(5);
    pub const DROPPED_ITERATIONS: MetricId = MetricId(6);
    pub const CHECKS: MetricId = MetricId(7);
    pub const DATA_RECEIVED: MetricId = MetricId(8);
    pub const VUS: MetricId = MetricId(9);
    pub const VUS_MAX: MetricId = MetricId(10);
}

/// The tags every sample of a step carries: fixed when the run is planned.
#[derive(Debug, Default)]
pub struct StepTags {
    pub scenario: Arc<str>,
    /// The step's name, else its method and path template (k6's `name`).
    pub name: Arc<str>,
    pub method: Arc<str>,
    /// The scenario's and the step's own tags.
    pub extra: Vec<(String, String)>,
}

/// A sample's tags: its step's, and what the answer added.
#[derive(Clone, Debug)]
pub struct Tags {
    pub step: Arc<StepTags>,
    pub status: Option<u16>,
    pub expected_response: Option<bool>,
    pub check: Option<Arc<str>>,
}

impl Tags {
    pub fn of(step: &Arc<StepTags>) -> Tags {
        Tags {
            step: step.clone(),
            status: None,
            expected_response: None,
            check: None,
        }
    }

    /// Whether this sample carries `value` under `key`.
    pub fn has(&self, key: &str, value: &str) -> bool {
        match key {
            "scenario" => &*self.step.scenario == value,
            "name" => &*self.step.name == value,
            "method" => &*self.step.method == value,
            "status" => self.status.is_some_and(|s| value.parse() == Ok(s)),
            "expected_response" => self
                .expected_response
                .is_some_and(|e| value == if e { "true" } else { "false" }),
            "check" => self.check.as_deref() == Some(value),
            other => self
                .step
                .extra
                .iter()
                .any(|(k, v)| k == other && v == value),
        }
    }
}

/// One measurement.
#[derive(Clone, Debug)]
pub struct Sample {
    pub metric: MetricId,
    pub value: f64,
    pub tags: Tags,
    pub at: Instant,
}

/// A metric's aggregate.
#[derive(Clone, Debug)]
pub enum Sink {
    /// `seen`: whether any sample came (a counter without samples is not shown).
    Counter {
        sum: f64,
        seen: bool,
    },
    Gauge {
        last: f64,
        min: f64,
        max: f64,
        seen: bool,
    },
    Rate {
        passes: u64,
        fails: u64,
    },
    Trend(Trend),
}

/// A trend: exact count, sum, min and max; percentiles from the histogram, which holds
/// values in thousandths (microseconds for times in milliseconds).
#[derive(Clone, Debug)]
pub struct Trend {
    pub hist: Histogram<u64>,
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl Trend {
    pub fn new() -> Trend {
        Trend::with_precision(3)
    }

    pub fn with_precision(digits: u8) -> Trend {
        Trend {
            // Auto-resizing: no sample is ever refused for being too large.
            hist: Histogram::new(digits).expect("valid histogram precision"),
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    pub fn add(&mut self, value: f64) {
        // Negative values are recorded as 0 in the histogram; sum, min and max keep them.
        let scaled = (value.max(0.0) * 1000.0).round() as u64;
        if self.hist.record(scaled).is_err() {
            self.hist.saturating_record(scaled);
        }
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    pub fn percentile(&self, p: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        // The histogram's bucket value is its highest equivalent; clamp to what was seen.
        (self.hist.value_at_percentile(p) as f64 / 1000.0).clamp(self.min.max(0.0), self.max)
    }
}

impl Default for Trend {
    fn default() -> Self {
        Trend::new()
    }
}

impl Sink {
    pub fn new(kind: Kind) -> Sink {
        match kind {
            Kind::Counter => Sink::Counter {
                sum: 0.0,
                seen: false,
            },
            Kind::Gauge => Sink::Gauge {
                last: 0.0,
                min: 0.0,
                max: 0.0,
                seen: false,
            },
            Kind::Rate => Sink::Rate {
                passes: 0,
                fails: 0,
            },
            Kind::Trend => Sink::Trend(Trend::new()),
        }
    }

    pub fn add(&mut self, value: f64) {
        match self {
            Sink::Counter { sum, seen } => {
                *sum += value;
                *seen = true;
            }
            Sink::Gauge {
                last,
                min,
                max,
                seen,
            } => {
                *last = value;
                if *seen {
                    *min = min.min(value);
                    *max = max.max(value);
                } else {
                    (*min, *max, *seen) = (value, value, true);
                }
            }
            // A rate counts non-zero values as passes, as k6's Rate.add does.
            Sink::Rate { passes, fails } => {
                if value != 0.0 {
                    *passes += 1
                } else {
                    *fails += 1
                }
            }
            Sink::Trend(t) => t.add(value),
        }
    }

    /// The summary values, with counters' rates over `elapsed`.
    pub fn values(&self, elapsed: Duration) -> Values {
        match self {
            Sink::Counter { sum, .. } => Values::Counter {
                count: *sum,
                per_second: if elapsed.is_zero() {
                    0.0
                } else {
                    sum / elapsed.as_secs_f64()
                },
            },
            Sink::Gauge { last, min, max, .. } => Values::Gauge {
                value: *last,
                min: *min,
                max: *max,
            },
            Sink::Rate { passes, fails } => Values::Rate {
                passes: *passes,
                fails: *fails,
            },
            Sink::Trend(t) => {
                let hist = t.clone();
                Values::Trend {
                    avg: if t.count == 0 {
                        0.0
                    } else {
                        t.sum / t.count as f64
                    },
                    min: if t.count == 0 { 0.0 } else { t.min },
                    med: t.percentile(50.0),
                    max: if t.count == 0 { 0.0 } else { t.max },
                    percentile: Box::new(move |p| hist.percentile(p)),
                    count: t.count,
                }
            }
        }
    }
}

/// A metric's summary values, as thresholds and the summary read them.
pub enum Values {
    Counter {
        count: f64,
        per_second: f64,
    },
    Gauge {
        value: f64,
        min: f64,
        max: f64,
    },
    /// `passes` are the non-zero samples; the rate is passes over all.
    Rate {
        passes: u64,
        fails: u64,
    },
    Trend {
        avg: f64,
        min: f64,
        med: f64,
        max: f64,
        percentile: Box<dyn Fn(f64) -> f64 + Send + Sync>,
        count: u64,
    },
}

impl Values {
    pub fn empty(kind: Kind) -> Values {
        Sink::new(kind).values(Duration::ZERO)
    }

    /// One value by its aggregation; 0 where the metric has no such value (a threshold's
    /// aggregation is checked against the metric's type before the run).
    pub fn get(&self, aggregation: Aggregation) -> f64 {
        use Aggregation::*;
        match (self, aggregation) {
            (Values::Counter { count, .. }, Count) => *count,
            (Values::Counter { per_second, .. }, Rate) => *per_second,
            (Values::Gauge { value, .. }, Value) => *value,
            (Values::Gauge { min, .. }, Min) => *min,
            (Values::Gauge { max, .. }, Max) => *max,
            (Values::Rate { passes, fails }, Rate) => {
                let all = passes + fails;
                if all == 0 {
                    0.0
                } else {
                    *passes as f64 / all as f64
                }
            }
            (Values::Trend { avg, .. }, Avg) => *avg,
            (Values::Trend { min, .. }, Min) => *min,
            (Values::Trend { med, .. }, Med) => *med,
            (Values::Trend { max, .. }, Max) => *max,
            (Values::Trend { percentile, .. }, Percentile(p)) => percentile(p),
            _ => 0.0,
        }
    }
}

/// A metric: its definition, its aggregate, and its sub-metrics.
pub struct Metric {
    pub name: String,
    pub kind: Kind,
    pub contains: Contains,
    pub sink: Sink,
    /// Sub-metrics, each narrowed by tags: those the thresholds name, and the summary's
    /// per-scenario view of `http_req_duration`.
    pub subs: Vec<(Vec<(String, String)>, Sink)>,
}

/// One second of the run, for the report's charts.
#[derive(Clone, Debug)]
pub struct Second {
    pub requests: u64,
    pub failed: u64,
    pub iterations: u64,
    pub dropped: u64,
    pub latency: Trend,
    pub vus: f64,
}

impl Default for Second {
    fn default() -> Self {
        Second {
            requests: 0,
            failed: 0,
            iterations: 0,
            dropped: 0,
            latency: Trend::with_precision(2),
            vus: 0.0,
        }
    }
}

/// Every metric of a run, the samples' one destination.
pub struct Registry {
    pub metrics: Vec<Metric>,
    by_name: BTreeMap<String, MetricId>,
    pub started: Instant,
    pub seconds: Vec<Second>,
    /// Each check's passes and fails, by name.
    pub checks: BTreeMap<Arc<str>, (u64, u64)>,
}

impl Registry {
    pub fn new(started: Instant) -> Registry {
        let mut r = Registry {
            metrics: Vec::new(),
            by_name: BTreeMap::new(),
            started,
            seconds: Vec::new(),
            checks: BTreeMap::new(),
        };
        for (name, kind, contains) in BUILT_IN {
            r.define(name, *kind, *contains)
                .expect("built-in metrics are defined once");
        }
        r
    }

    /// Adds a metric; a name already defined with another type is an error.
    pub fn define(
        &mut self,
        name: &str,
        kind: Kind,
        contains: Contains,
    ) -> Result<MetricId, String> {
        if let Some(id) = self.by_name.get(name) {
            let m = &self.metrics[id.0];
            if m.kind != kind {
                return Err(format!(
                    "metric `{name}` is a {}, not a {}",
                    m.kind.name(),
                    kind.name()
                ));
            }
            return Ok(*id);
        }
        let id = MetricId(self.metrics.len());
        self.metrics.push(Metric {
            name: name.to_owned(),
            kind,
            contains,
            sink: Sink::new(kind),
            subs: Vec::new(),
        });
        self.by_name.insert(name.to_owned(), id);
        Ok(id)
    }

    pub fn id(&self, name: &str) -> Option<MetricId> {
        self.by_name.get(name).copied()
    }

    /// Keeps a sub-metric for `key` (its metric must exist).
    pub fn watch(&mut self, key: &MetricKey) -> Result<(), String> {
        let id = self
            .id(&key.name)
            .ok_or_else(|| format!("no metric `{}` in this run", key.name))?;
        if key.tags.is_empty() {
            return Ok(());
        }
        let m = &mut self.metrics[id.0];
        if !m.subs.iter().any(|(t, _)| *t == key.tags) {
            m.subs.push((key.tags.clone(), Sink::new(m.kind)));
        }
        Ok(())
    }

    /// The aggregate for `key`: the metric's, or its sub-metric's.
    pub fn sink(&self, key: &MetricKey) -> Option<(&Metric, &Sink)> {
        let m = &self.metrics[self.id(&key.name)?.0];
        if key.tags.is_empty() {
            return Some((m, &m.sink));
        }
        m.subs
            .iter()
            .find(|(t, _)| *t == key.tags)
            .map(|(_, s)| (m, s))
    }

    pub fn add(&mut self, sample: &Sample) {
        let Some(m) = self.metrics.get_mut(sample.metric.0) else {
            return;
        };
        m.sink.add(sample.value);
        if let (id::CHECKS, Some(name)) = (sample.metric, &sample.tags.check) {
            let c = self.checks.entry(name.clone()).or_default();
            if sample.value != 0.0 {
                c.0 += 1
            } else {
                c.1 += 1
            }
        }
        for (filter, sink) in &mut m.subs {
            if filter.iter().all(|(k, v)| sample.tags.has(k, v)) {
                sink.add(sample.value);
            }
        }
        let second = sample.at.saturating_duration_since(self.started).as_secs() as usize;
        if self.seconds.len() <= second {
            self.seconds.resize_with(second + 1, Second::default);
        }
        let s = &mut self.seconds[second];
        match sample.metric {
            id::HTTP_REQS => s.requests += sample.value as u64,
            id::HTTP_REQ_FAILED if sample.value != 0.0 => s.failed += 1,
            id::HTTP_REQ_DURATION => s.latency.add(sample.value),
            id::ITERATIONS => s.iterations += sample.value as u64,
            id::DROPPED_ITERATIONS => s.dropped += sample.value as u64,
            id::VUS => s.vus = sample.value,
            _ => {}
        }
    }

    pub fn add_all(&mut self, samples: &[Sample]) {
        for s in samples {
            self.add(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(scenario: &str, status: u16) -> Tags {
        Tags {
            step: Arc::new(StepTags {
                scenario: scenario.into(),
                name: "GET /x".into(),
                method: "GET".into(),
                extra: vec![("kind".into(), "read".into())],
            }),
            status: Some(status),
            expected_response: Some(status < 400),
            check: None,
        }
    }

    #[test]
    fn sub_metrics_take_only_matching_samples() {
        let t0 = Instant::now();
        let mut r = Registry::new(t0);
        let key = MetricKey::parse("http_req_duration{scenario:a,status:200}").unwrap();
        r.watch(&key).unwrap();
        let kind = MetricKey::parse("http_req_duration{kind:read}").unwrap();
        r.watch(&kind).unwrap();
        for (scenario, status, ms) in [("a", 200, 10.0), ("a", 500, 20.0), ("b", 200, 30.0)] {
            r.add(&Sample {
                metric: id::HTTP_REQ_DURATION,
                value: ms,
                tags: tags(scenario, status),
                at: t0,
            });
        }
        let count = |k: &MetricKey| match r.sink(k).unwrap().1 {
            Sink::Trend(t) => t.count,
            _ => unreachable!(),
        };
        assert_eq!(count(&MetricKey::plain("http_req_duration")), 3);
        assert_eq!(count(&key), 1);
        assert_eq!(count(&kind), 3);
    }

    #[test]
    fn trends_are_exact_within_the_histograms_precision() {
        let mut t = Trend::new();
        for v in 1..=10_000 {
            t.add(v as f64 / 10.0);
        }
        let p = |q: f64| t.percentile(q);
        assert!((p(50.0) - 500.0).abs() / 500.0 < 0.001, "{}", p(50.0));
        assert!((p(99.0) - 990.0).abs() / 990.0 < 0.001, "{}", p(99.0));
        assert_eq!(t.min, 0.1);
        assert_eq!(t.max, 1000.0);
    }

    #[test]
    fn a_rate_counts_non_zero_as_passes_and_a_counter_sums() {
        let mut rate = Sink::new(Kind::Rate);
        for v in [1.0, 0.0, 0.0, 5.0] {
            rate.add(v);
        }
        assert_eq!(rate.values(Duration::ZERO).get(Aggregation::Rate), 0.5);
        let mut c = Sink::new(Kind::Counter);
        c.add(3.0);
        c.add(7.0);
        let v = c.values(Duration::from_secs(5));
        assert_eq!(v.get(Aggregation::Count), 10.0);
        assert_eq!(v.get(Aggregation::Rate), 2.0);
    }

    #[test]
    fn a_name_keeps_its_type() {
        let mut r = Registry::new(Instant::now());
        assert!(
            r.define("http_reqs", Kind::Trend, Contains::Default)
                .is_err()
        );
        let a = r.define("mine", Kind::Rate, Contains::Default).unwrap();
        assert_eq!(r.define("mine", Kind::Rate, Contains::Default).unwrap(), a);
        assert!(r.watch(&MetricKey::parse("nope{a:b}").unwrap()).is_err());
    }
}
