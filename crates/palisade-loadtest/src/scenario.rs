//! Scenario files (TOML): k6's executors and options by k6's names, a setup that makes
//! accounts through the API, steps that are HTTP requests, and thresholds. The
//! built-in scenarios are such a file (`builtin/reference.toml`). Parsing checks
//! everything it can before a request is sent: unknown fields, durations, templates
//! naming variables nothing defines, thresholds on metrics no step records.

use crate::{duration::serde_k6, metrics::Kind, threshold::ThresholdSpec};
use serde::Deserialize;
use serde_json::Value;
use std::{collections::BTreeMap, time::Duration};

/// A whole scenario file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    #[serde(default)]
    pub options: Options,
    /// Metric (optionally `{tag:value}`) → its thresholds.
    #[serde(default)]
    pub thresholds: BTreeMap<String, Vec<ThresholdSpec>>,
    pub setup: Option<Setup>,
    pub teardown: Option<Teardown>,
    pub scenarios: BTreeMap<String, Scenario>,
    /// Named variants of the file (`--profile`).
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The target, unless `--base-url` names one.
    pub base_url: Option<String>,
    /// A request's deadline (k6's default: 60 s).
    #[serde(default, with = "serde_k6::option")]
    pub timeout: Option<Duration>,
    /// Defaults of variables `--var name=value` may override.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
}

/// Run before the scenarios: `accounts` times, the steps (with `{{account}}` its
/// number); the variables each run captures are given to the VUs of that account
/// (the n-th VU of each scenario acts as account n mod accounts). Nothing here is measured.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setup {
    #[serde(default = "one")]
    pub accounts: u64,
    /// Whether `accounts` grows with the load factor (a profile's `load`, `--scale`).
    #[serde(default)]
    pub scale_accounts: bool,
    pub steps: Vec<Step>,
}

/// Run after the scenarios, once per account, with its variables. Not measured.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Teardown {
    pub steps: Vec<Step>,
}

fn one() -> u64 {
    1
}

fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}

fn ten_minutes() -> Duration {
    Duration::from_secs(600)
}

fn one_second() -> Duration {
    Duration::from_secs(1)
}

/// A scenario: an executor and what each iteration does.
#[derive(Clone, Debug, Deserialize)]
pub struct Scenario {
    #[serde(flatten)]
    pub executor: Executor,
    #[serde(rename = "startTime", default, with = "serde_k6::option")]
    pub start_time: Option<Duration>,
    /// How long iterations still running at the scenario's end may finish.
    #[serde(rename = "gracefulStop", default, with = "serde_k6::option")]
    pub graceful_stop: Option<Duration>,
    /// Tags on every sample of the scenario (`scenario` is always one).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub steps: Vec<Step>,
}

/// k6's executors, with k6's option names and defaults.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "executor", deny_unknown_fields)]
pub enum Executor {
    /// `iterations` shared by `vus` VUs, each taking the next while any are left.
    #[serde(rename = "shared-iterations")]
    SharedIterations(Iterations),
    /// `iterations` by each of `vus` VUs.
    #[serde(rename = "per-vu-iterations")]
    PerVuIterations(Iterations),
    /// `vus` VUs looping for `duration`.
    #[serde(rename = "constant-vus")]
    ConstantVus {
        #[serde(default = "one")]
        vus: u64,
        #[serde(with = "serde_k6")]
        duration: Duration,
    },
    /// VUs looping, their number following the stages.
    #[serde(rename = "ramping-vus")]
    RampingVus {
        #[serde(rename = "startVUs", default = "one")]
        start_vus: u64,
        stages: Vec<StageSpec>,
        #[serde(
            rename = "gracefulRampDown",
            default = "thirty_seconds",
            with = "serde_k6"
        )]
        graceful_ramp_down: Duration,
    },
    /// `rate` iterations per `timeUnit`, whatever their answers' latency.
    #[serde(rename = "constant-arrival-rate")]
    ConstantArrivalRate {
        rate: f64,
        #[serde(rename = "timeUnit", default = "one_second", with = "serde_k6")]
        time_unit: Duration,
        #[serde(with = "serde_k6")]
        duration: Duration,
        #[serde(rename = "preAllocatedVUs")]
        pre_allocated_vus: u64,
        #[serde(rename = "maxVUs")]
        max_vus: Option<u64>,
    },
    /// An arrival rate following the stages.
    #[serde(rename = "ramping-arrival-rate")]
    RampingArrivalRate {
        #[serde(rename = "startRate", default)]
        start_rate: f64,
        #[serde(rename = "timeUnit", default = "one_second", with = "serde_k6")]
        time_unit: Duration,
        stages: Vec<StageSpec>,
        #[serde(rename = "preAllocatedVUs")]
        pre_allocated_vus: u64,
        #[serde(rename = "maxVUs")]
        max_vus: Option<u64>,
    },
}

/// The options of both iteration-count executors.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Iterations {
    #[serde(default = "one")]
    pub vus: u64,
    #[serde(default = "one")]
    pub iterations: u64,
    #[serde(rename = "maxDuration", default = "ten_minutes", with = "serde_k6")]
    pub max_duration: Duration,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    #[serde(with = "serde_k6")]
    pub duration: Duration,
    pub target: f64,
}

/// One step of an iteration: an HTTP request, or a held event stream.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The `name` tag (default: method and path as written).
    pub name: Option<String>,
    #[serde(default = "get")]
    pub method: String,
    /// Relative to the base URL; or `url`, absolute.
    pub path: Option<String>,
    pub url: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON body, with templates in its strings.
    pub json: Option<Value>,
    /// A raw body (a template), sent as written.
    pub body: Option<String>,
    /// Statuses that count as success for `http_req_failed` (default 200–399).
    pub expect: Option<Vec<u16>>,
    #[serde(default)]
    pub checks: Vec<Check>,
    /// Variable → JSON pointer into the answer.
    #[serde(default)]
    pub capture: BTreeMap<String, String>,
    /// Custom metrics this step adds to.
    #[serde(default)]
    pub record: Vec<Record>,
    /// Think time after the step.
    pub sleep: Option<Sleep>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Hold the answer (server-sent events) open while `during` runs, and time the
    /// event it waits for.
    pub stream: Option<Stream>,
}

fn get() -> String {
    "GET".to_owned()
}

/// A check: a named condition on the answer, counted in `checks`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    pub name: String,
    /// The status must be one of these.
    pub status: Option<StatusSpec>,
    /// A JSON pointer into the answer that must exist, and, with `equals`, hold that
    /// value (a string may be a template).
    pub pointer: Option<String>,
    pub equals: Option<Value>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum StatusSpec {
    One(u16),
    Any(Vec<u16>),
}

impl StatusSpec {
    pub fn list(&self) -> Vec<u16> {
        match self {
            StatusSpec::One(s) => vec![*s],
            StatusSpec::Any(v) => v.clone(),
        }
    }
}

/// A custom metric sample from a step.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub metric: String,
    #[serde(rename = "type")]
    pub kind: MetricType,
    pub value: RecordValue,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MetricType {
    Counter,
    Rate,
    Trend,
    Gauge,
}

impl MetricType {
    pub fn kind(self) -> Kind {
        match self {
            MetricType::Counter => Kind::Counter,
            MetricType::Rate => Kind::Rate,
            MetricType::Trend => Kind::Trend,
            MetricType::Gauge => Kind::Gauge,
        }
    }
}

/// What a record adds: 1 when the step passed (expected status, every check), 1 when
/// it failed, its duration in ms, or 1 always.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RecordValue {
    Passed,
    Failed,
    Duration,
    One,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Sleep {
    Fixed(String),
    Between { min: String, max: String },
}

/// A held stream of server-sent events.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stream {
    /// The steps run while the stream is open; the last one's start is when the
    /// awaited event's clock starts.
    pub during: Vec<Step>,
    /// The SSE `event:` name awaited (any, if absent).
    pub event: Option<String>,
    /// A JSON pointer into the event's data that must equal `equals` (a template).
    pub pointer: Option<String>,
    pub equals: Option<String>,
    #[serde(default = "ten_seconds", with = "serde_k6")]
    pub timeout: Duration,
    /// The trend the time from the trigger to the event goes to.
    pub trend: String,
}

fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}

/// A variant of the file: which scenarios, scaled how, with which thresholds.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The scenarios run (default: all).
    pub scenarios: Option<Vec<String>>,
    /// Multiplies VUs, iterations, rates and accounts.
    #[serde(default = "unit")]
    pub load: f64,
    /// Multiplies durations and start times.
    #[serde(default = "unit")]
    pub time: f64,
    /// Thresholds that replace the file's for the same metric (an empty list removes
    /// them).
    #[serde(default)]
    pub thresholds: BTreeMap<String, Vec<ThresholdSpec>>,
    pub description: Option<String>,
}

fn unit() -> f64 {
    1.0
}

impl File {
    pub fn parse(text: &str) -> Result<File, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_executor_reads_with_k6_names_and_defaults() {
        let f = File::parse(
            r#"
            [scenarios.a]
            executor = "shared-iterations"
            vus = 3
            iterations = 9
            steps = [{ path = "/health" }]
            [scenarios.b]
            executor = "per-vu-iterations"
            steps = [{ path = "/health" }]
            [scenarios.c]
            executor = "constant-vus"
            vus = 2
            duration = "30s"
            startTime = "5s"
            gracefulStop = "2s"
            tags = { kind = "read" }
            steps = [{ path = "/health" }]
            [scenarios.d]
            executor = "ramping-vus"
            startVUs = 0
            stages = [{ duration = "10s", target = 5 }]
            steps = [{ path = "/health" }]
            [scenarios.e]
            executor = "constant-arrival-rate"
            rate = 30
            timeUnit = "1m"
            duration = "1m"
            preAllocatedVUs = 2
            maxVUs = 5
            steps = [{ path = "/health" }]
            [scenarios.f]
            executor = "ramping-arrival-rate"
            stages = [{ duration = "10s", target = 50 }]
            preAllocatedVUs = 10
            steps = [{ path = "/health" }]
            "#,
        )
        .unwrap();
        match &f.scenarios["a"].executor {
            Executor::SharedIterations(Iterations {
                vus,
                iterations,
                max_duration,
            }) => {
                assert_eq!(
                    (*vus, *iterations, *max_duration),
                    (3, 9, Duration::from_secs(600))
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            f.scenarios["b"].executor,
            Executor::PerVuIterations(Iterations {
                vus: 1,
                iterations: 1,
                ..
            })
        ));
        let c = &f.scenarios["c"];
        assert_eq!(c.start_time, Some(Duration::from_secs(5)));
        assert_eq!(c.graceful_stop, Some(Duration::from_secs(2)));
        assert!(
            matches!(f.scenarios["d"].executor, Executor::RampingVus { start_vus: 0, graceful_ramp_down, .. } if graceful_ramp_down == Duration::from_secs(30))
        );
        assert!(matches!(
            f.scenarios["e"].executor,
            Executor::ConstantArrivalRate {
                max_vus: Some(5),
                ..
            }
        ));
        assert!(matches!(
            f.scenarios["f"].executor,
            Executor::RampingArrivalRate {
                start_rate: 0.0,
                max_vus: None,
                ..
            }
        ));
    }

    #[test]
    fn unknown_fields_and_executors_are_refused() {
        let bad = [
            r#"[scenarios.a]
               executor = "constant-vus"
               duration = "1s"
               steps = [{ path = "/", mehtod = "GET" }]"#,
            r#"[scenarios.a]
               executor = "externally-controlled"
               steps = []"#,
            r#"[scenarios.a]
               executor = "shared-iterations"
               duration = "1s"
               steps = []"#,
            r#"[scenarios.a]
               executor = "constant-vus"
               duration = "ten seconds"
               steps = []"#,
            r#"[scenarios.a]
               executor = "ramping-vus"
               vus = 3
               stages = []
               steps = []"#,
            r#"wat = 1
               [scenarios.a]
               executor = "constant-vus"
               duration = "1s"
               steps = []"#,
        ];
        for text in bad {
            assert!(File::parse(text).is_err(), "{text}");
        }
    }
}
