//! From a scenario file, a profile and the command line to what runs: numbers scaled,
//! templates split, metrics defined, thresholds parsed and checked against the
//! metrics' types. Every mistake a file can hold is found here, before a request.

use crate::{
    duration,
    metrics::{Contains, Kind, MetricId, Registry, StepTags},
    scenario::{self, Executor, File, Iterations, RecordValue, Sleep, StageSpec, Step},
    schedule::{self, Arrivals, Stage},
    template::{self, JsonTemplate, Template, Vars},
    threshold::{MetricKey, Threshold, ThresholdSpec},
};
use reqwest::{Method, header::HeaderName};
use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::{Duration, Instant},
};

/// What the command line adds to a file.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub base_url: Option<String>,
    pub profile: Option<String>,
    /// Multiplies the load (VUs, iterations, rates, accounts) and the durations.
    pub scale: f64,
    pub vars: Vec<(String, String)>,
    /// Only these scenarios (after the profile's choice).
    pub scenarios: Vec<String>,
}

/// A run, ready to go.
pub struct Plan {
    pub base_url: String,
    pub timeout: Duration,
    pub vars: Vars,
    pub accounts: u64,
    pub setup: Vec<StepPlan>,
    pub teardown: Vec<StepPlan>,
    pub scenarios: Vec<ScenarioPlan>,
    pub thresholds: Vec<Threshold>,
    pub registry: Registry,
    pub profile: Option<String>,
    pub scale: f64,
}

pub struct ScenarioPlan {
    pub name: Arc<str>,
    pub executor: ExecutorPlan,
    pub start_time: Duration,
    pub graceful_stop: Duration,
    pub steps: Vec<StepPlan>,
}

/// An executor with its numbers scaled and its schedule worked out.
#[derive(Clone, Debug)]
pub enum ExecutorPlan {
    SharedIterations {
        vus: u64,
        iterations: u64,
        max_duration: Duration,
    },
    PerVuIterations {
        vus: u64,
        iterations: u64,
        max_duration: Duration,
    },
    ConstantVus {
        vus: u64,
        duration: Duration,
    },
    RampingVus {
        changes: Vec<(Duration, u64)>,
        duration: Duration,
        graceful_ramp_down: Duration,
    },
    ArrivalRate {
        arrivals: Arrivals,
        duration: Duration,
        pre_allocated: u64,
        max_vus: u64,
        ramping: bool,
    },
}

impl ExecutorPlan {
    pub fn name(&self) -> &'static str {
        match self {
            ExecutorPlan::SharedIterations { .. } => "shared-iterations",
            ExecutorPlan::PerVuIterations { .. } => "per-vu-iterations",
            ExecutorPlan::ConstantVus { .. } => "constant-vus",
            ExecutorPlan::RampingVus { .. } => "ramping-vus",
            ExecutorPlan::ArrivalRate { ramping: false, .. } => "constant-arrival-rate",
            ExecutorPlan::ArrivalRate { ramping: true, .. } => "ramping-arrival-rate",
        }
    }

    /// The most VUs it may run.
    pub fn max_vus(&self) -> u64 {
        match self {
            ExecutorPlan::SharedIterations { vus, .. }
            | ExecutorPlan::PerVuIterations { vus, .. }
            | ExecutorPlan::ConstantVus { vus, .. } => *vus,
            ExecutorPlan::RampingVus { changes, .. } => {
                changes.iter().map(|c| c.1).max().unwrap_or(0)
            }
            ExecutorPlan::ArrivalRate { max_vus, .. } => *max_vus,
        }
    }

    /// How long it runs before its graceful stop (the most, for iteration executors).
    pub fn duration(&self) -> Duration {
        match self {
            ExecutorPlan::SharedIterations { max_duration, .. }
            | ExecutorPlan::PerVuIterations { max_duration, .. } => *max_duration,
            ExecutorPlan::ConstantVus { duration, .. }
            | ExecutorPlan::RampingVus { duration, .. }
            | ExecutorPlan::ArrivalRate { duration, .. } => *duration,
        }
    }

    /// A one-line description for the run's header, as k6 prints it.
    pub fn describe(&self) -> String {
        let d = |d: &Duration| duration::show(*d);
        match self {
            ExecutorPlan::SharedIterations {
                vus,
                iterations,
                max_duration,
            } => {
                format!(
                    "{iterations} iterations shared among {vus} VUs (maxDuration: {})",
                    d(max_duration)
                )
            }
            ExecutorPlan::PerVuIterations {
                vus,
                iterations,
                max_duration,
            } => {
                format!(
                    "{iterations} iterations for each of {vus} VUs (maxDuration: {})",
                    d(max_duration)
                )
            }
            ExecutorPlan::ConstantVus { vus, duration } => {
                format!("{vus} looping VUs for {}", d(duration))
            }
            ExecutorPlan::RampingVus { duration, .. } => {
                format!("up to {} looping VUs for {}", self.max_vus(), d(duration))
            }
            ExecutorPlan::ArrivalRate {
                duration,
                pre_allocated,
                max_vus,
                ..
            } => format!(
                "arrival rate for {} (preAllocatedVUs: {pre_allocated}, maxVUs: {max_vus})",
                d(duration)
            ),
        }
    }
}

pub struct StepPlan {
    pub tags: Arc<StepTags>,
    pub method: Method,
    pub url: Template,
    pub headers: Vec<(HeaderName, Template)>,
    pub body: Body,
    pub expect: Option<Vec<u16>>,
    pub checks: Vec<CheckPlan>,
    pub captures: Vec<(String, String)>,
    pub records: Vec<(MetricId, RecordValue)>,
    pub sleep: Option<(Duration, Duration)>,
    pub stream: Option<StreamPlan>,
}

pub enum Body {
    None,
    Json(JsonTemplate),
    Text(Template),
}

pub struct CheckPlan {
    pub name: Arc<str>,
    pub status: Option<Vec<u16>>,
    pub pointer: Option<String>,
    pub equals: Option<JsonTemplate>,
}

pub struct StreamPlan {
    pub during: Vec<StepPlan>,
    pub event: Option<String>,
    pub pointer: Option<String>,
    pub equals: Option<Template>,
    pub timeout: Duration,
    pub trend: MetricId,
    pub check: Arc<str>,
}

impl StepPlan {
    /// Whether `status` counts as success (k6's default: 200–399).
    pub fn expected(&self, status: u16) -> bool {
        match &self.expect {
            Some(list) => list.contains(&status),
            None => (200..400).contains(&status),
        }
    }
}

struct Scale {
    load: f64,
    time: f64,
}

impl Scale {
    fn count(&self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            ((n as f64 * self.load).round() as u64).max(1)
        }
    }
    fn rate(&self, r: f64) -> f64 {
        r * self.load
    }
    fn time(&self, d: Duration) -> Duration {
        d.mul_f64(self.time)
    }
    fn stages(&self, stages: &[StageSpec], vus: bool) -> Vec<Stage> {
        stages
            .iter()
            .map(|s| Stage {
                duration: self.time(s.duration),
                target: if vus {
                    self.count(s.target.max(0.0).round() as u64) as f64
                } else {
                    self.rate(s.target)
                },
            })
            .collect()
    }
}

/// Builds the plan. `started` only seeds the registry; the run resets it.
pub fn build(file: &File, settings: &Settings) -> Result<Plan, String> {
    let profile = match &settings.profile {
        None => None,
        Some(name) => Some(file.profiles.get(name).ok_or_else(|| {
            let known: Vec<_> = file.profiles.keys().map(String::as_str).collect();
            format!("no profile `{name}` (this file has: {})", known.join(", "))
        })?),
    };
    let factor = if settings.scale > 0.0 {
        settings.scale
    } else {
        1.0
    };
    let scale = Scale {
        load: profile.map_or(1.0, |p| p.load) * factor,
        time: profile.map_or(1.0, |p| p.time) * factor,
    };

    let base_url = settings
        .base_url
        .clone()
        .or_else(|| file.options.base_url.clone())
        .ok_or("no target: give --base-url (or options.base_url in the file)")?;
    let parsed =
        reqwest::Url::parse(&base_url).map_err(|e| format!("--base-url `{base_url}`: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("--base-url `{base_url}`: http or https"));
    }
    let base_url = base_url.trim_end_matches('/').to_owned();

    let mut vars = Vars::new();
    for (k, v) in &file.options.vars {
        vars.insert(k.clone(), v.clone().into());
    }
    for (k, v) in &settings.vars {
        vars.insert(k.clone(), v.clone().into());
    }

    // Which scenarios run.
    let mut chosen: Vec<&String> = file.scenarios.keys().collect();
    if let Some(list) = profile.and_then(|p| p.scenarios.as_ref()) {
        for name in list {
            if !file.scenarios.contains_key(name) {
                return Err(format!(
                    "the profile names scenario `{name}`, which the file lacks"
                ));
            }
        }
        chosen.retain(|n| list.contains(n));
    }
    if !settings.scenarios.is_empty() {
        for name in &settings.scenarios {
            if !file.scenarios.contains_key(name) {
                return Err(format!("no scenario `{name}` in the file"));
            }
        }
        chosen.retain(|n| settings.scenarios.contains(n));
    }
    if chosen.is_empty() {
        return Err("no scenario to run".into());
    }

    let mut registry = Registry::new(Instant::now());
    let globals: BTreeSet<String> = vars.keys().cloned().collect();

    // Every metric the file records exists, whichever scenarios run: a threshold on
    // one is judged (on no samples) rather than refused.
    for sc in file.scenarios.values() {
        define_recorded(&mut registry, &sc.steps)?;
    }
    let mut builder = Builder {
        registry: &mut registry,
        base_url: &base_url,
    };
    // What each phase may use: the globals, what the setup captured, its own captures.
    let no_tags = BTreeMap::new();
    let setup_steps = file.setup.as_ref().map_or(&[][..], |s| &s.steps[..]);
    let after_setup = known(&globals, setup_steps);
    let setup = builder.steps("setup", setup_steps, &no_tags, &after_setup)?;
    let teardown_steps = file.teardown.as_ref().map_or(&[][..], |t| &t.steps[..]);
    let teardown = builder.steps(
        "teardown",
        teardown_steps,
        &no_tags,
        &known(&after_setup, teardown_steps),
    )?;

    // Start times count from the earliest scenario chosen, so a profile or
    // `--scenario` that leaves out the first ones does not wait for them.
    let earliest = chosen
        .iter()
        .map(|n| file.scenarios[*n].start_time.unwrap_or_default())
        .min()
        .unwrap_or_default();
    let mut scenarios = Vec::new();
    for name in chosen {
        let sc = &file.scenarios[name];
        let steps = builder.steps(name, &sc.steps, &sc.tags, &known(&after_setup, &sc.steps))?;
        if steps.is_empty() {
            return Err(format!("scenario `{name}` has no step"));
        }
        scenarios.push(ScenarioPlan {
            name: name.as_str().into(),
            executor: executor(name, &sc.executor, &scale)?,
            start_time: scale.time(sc.start_time.unwrap_or_default() - earliest),
            graceful_stop: sc.graceful_stop.unwrap_or(Duration::from_secs(30)),
            steps,
        });
    }

    // Thresholds: the file's, with the profile's replacing those on the same metric.
    let mut specs: BTreeMap<&String, &Vec<ThresholdSpec>> = file.thresholds.iter().collect();
    if let Some(p) = profile {
        for (k, v) in &p.thresholds {
            specs.insert(k, v);
        }
    }
    let mut thresholds = Vec::new();
    for (key, list) in specs {
        let key = MetricKey::parse(key)?;
        if list.is_empty() {
            continue;
        }
        registry
            .watch(&key)
            .map_err(|e| format!("threshold on `{key}`: {e}"))?;
        let kind = registry.metrics[registry.id(&key.name).map_or(0, |i| i.0)].kind;
        for spec in list {
            let t = Threshold::new(&key, spec).map_err(|e| format!("threshold on `{key}`: {e}"))?;
            if !t.expr.aggregation.applies_to(kind) {
                return Err(format!(
                    "threshold `{}` on `{key}`: a {} has no `{}`",
                    t.expr.source,
                    kind.name(),
                    t.expr.aggregation.label()
                ));
            }
            thresholds.push(t);
        }
    }
    // The summary shows each scenario's request duration.
    for s in &scenarios {
        registry.watch(&MetricKey::with_tag(
            "http_req_duration",
            "scenario",
            &s.name,
        ))?;
    }
    registry.watch(&MetricKey::with_tag(
        "http_req_duration",
        "expected_response",
        "true",
    ))?;

    let accounts = match &file.setup {
        Some(s) if s.scale_accounts => scale.count(s.accounts),
        Some(s) => s.accounts.max(1),
        None => 1,
    };
    Ok(Plan {
        base_url,
        timeout: file.options.timeout.unwrap_or(Duration::from_secs(60)),
        vars,
        accounts,
        setup,
        teardown,
        scenarios,
        thresholds,
        registry,
        profile: settings.profile.clone(),
        scale: factor,
    })
}

fn define_recorded(registry: &mut Registry, steps: &[Step]) -> Result<(), String> {
    for s in steps {
        for r in &s.record {
            let contains = if r.value == RecordValue::Duration {
                Contains::Time
            } else {
                Contains::Default
            };
            registry.define(&r.metric, r.kind.kind(), contains)?;
        }
        if let Some(stream) = &s.stream {
            registry.define(&stream.trend, Kind::Trend, Contains::Time)?;
            define_recorded(registry, &stream.during)?;
        }
    }
    Ok(())
}

/// The variables steps may use: those already `defined`, and what the steps capture.
fn known(defined: &BTreeSet<String>, steps: &[Step]) -> BTreeSet<String> {
    defined.iter().cloned().chain(captures_of(steps)).collect()
}

fn captures_of(steps: &[Step]) -> Vec<String> {
    let mut out = Vec::new();
    for s in steps {
        out.extend(s.capture.keys().cloned());
        if let Some(stream) = &s.stream {
            out.extend(captures_of(&stream.during));
        }
    }
    out
}

fn executor(name: &str, e: &Executor, scale: &Scale) -> Result<ExecutorPlan, String> {
    let positive = |what: &str, d: Duration| {
        if d.is_zero() {
            Err(format!("scenario `{name}`: {what} must be more than 0"))
        } else {
            Ok(d)
        }
    };
    Ok(match e {
        Executor::SharedIterations(Iterations {
            vus,
            iterations,
            max_duration,
        }) => {
            let (vus, iterations) = (scale.count(*vus), scale.count(*iterations));
            ExecutorPlan::SharedIterations {
                // k6 runs no more VUs than there are iterations.
                vus: vus.min(iterations),
                iterations,
                max_duration: positive("maxDuration", scale.time(*max_duration))?,
            }
        }
        Executor::PerVuIterations(Iterations {
            vus,
            iterations,
            max_duration,
        }) => ExecutorPlan::PerVuIterations {
            vus: scale.count(*vus),
            // Each VU's share is the load per VU: scaling VUs is enough.
            iterations: *iterations,
            max_duration: positive("maxDuration", scale.time(*max_duration))?,
        },
        Executor::ConstantVus { vus, duration } => ExecutorPlan::ConstantVus {
            vus: scale.count(*vus),
            duration: positive("duration", scale.time(*duration))?,
        },
        Executor::RampingVus {
            start_vus,
            stages,
            graceful_ramp_down,
        } => {
            if stages.is_empty() {
                return Err(format!("scenario `{name}`: ramping-vus needs stages"));
            }
            let stages = scale.stages(stages, true);
            ExecutorPlan::RampingVus {
                changes: schedule::vu_changes(scale.count(*start_vus), &stages),
                duration: positive("the stages' total", schedule::total(&stages))?,
                graceful_ramp_down: *graceful_ramp_down,
            }
        }
        Executor::ConstantArrivalRate {
            rate,
            time_unit,
            duration,
            pre_allocated_vus,
            max_vus,
        } => {
            if *rate <= 0.0 {
                return Err(format!("scenario `{name}`: rate must be more than 0"));
            }
            let duration = positive("duration", scale.time(*duration))?;
            let pre = scale.count(*pre_allocated_vus).max(1);
            ExecutorPlan::ArrivalRate {
                arrivals: Arrivals::constant(
                    scale.rate(*rate),
                    positive("timeUnit", *time_unit)?,
                    duration,
                ),
                duration,
                pre_allocated: pre,
                max_vus: max_vus.map_or(pre, |m| scale.count(m).max(pre)),
                ramping: false,
            }
        }
        Executor::RampingArrivalRate {
            start_rate,
            time_unit,
            stages,
            pre_allocated_vus,
            max_vus,
        } => {
            if stages.is_empty() {
                return Err(format!(
                    "scenario `{name}`: ramping-arrival-rate needs stages"
                ));
            }
            let stages = scale.stages(stages, false);
            let pre = scale.count(*pre_allocated_vus).max(1);
            ExecutorPlan::ArrivalRate {
                arrivals: Arrivals::ramping(
                    scale.rate(*start_rate),
                    positive("timeUnit", *time_unit)?,
                    &stages,
                ),
                duration: positive("the stages' total", schedule::total(&stages))?,
                pre_allocated: pre,
                max_vus: max_vus.map_or(pre, |m| scale.count(m).max(pre)),
                ramping: true,
            }
        }
    })
}

struct Builder<'a> {
    registry: &'a mut Registry,
    base_url: &'a str,
}

impl Builder<'_> {
    fn steps(
        &mut self,
        scenario: &str,
        steps: &[Step],
        tags: &BTreeMap<String, String>,
        known: &BTreeSet<String>,
    ) -> Result<Vec<StepPlan>, String> {
        steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                self.step(scenario, s, tags, known)
                    .map_err(|e| format!("scenario `{scenario}`, step {}: {e}", i + 1))
            })
            .collect()
    }

    fn step(
        &mut self,
        scenario: &str,
        s: &Step,
        scenario_tags: &BTreeMap<String, String>,
        known: &BTreeSet<String>,
    ) -> Result<StepPlan, String> {
        let check_names = |t: &Template| -> Result<(), String> {
            for n in t.names() {
                if !template::BUILT_IN.contains(&n) && !known.contains(n) {
                    return Err(format!(
                        "`{{{{{n}}}}}`: no capture, setup capture or --var defines it"
                    ));
                }
            }
            Ok(())
        };
        let method: Method = s
            .method
            .to_ascii_uppercase()
            .parse()
            .map_err(|_| format!("`{}` is not an HTTP method", s.method))?;
        let target = match (&s.path, &s.url) {
            (Some(p), None) if p.starts_with('/') => format!("{}{p}", self.base_url),
            (Some(p), None) => return Err(format!("path `{p}` must start with /")),
            (None, Some(u)) => u.clone(),
            _ => return Err("a step has one of `path` or `url`".into()),
        };
        let url = Template::parse(&target)?;
        check_names(&url)?;
        let mut headers = Vec::new();
        for (k, v) in &s.headers {
            let name: HeaderName = k
                .parse()
                .map_err(|_| format!("`{k}` is not a header name"))?;
            let t = Template::parse(v)?;
            check_names(&t)?;
            headers.push((name, t));
        }
        let body = match (&s.json, &s.body) {
            (Some(_), Some(_)) => return Err("a step has `json` or `body`, not both".into()),
            (Some(j), None) => {
                let t = JsonTemplate::parse(j)?;
                for n in t.names() {
                    check_names(&Template::parse(&format!("{{{{{n}}}}}"))?)?;
                }
                Body::Json(t)
            }
            (None, Some(b)) => {
                let t = Template::parse(b)?;
                check_names(&t)?;
                Body::Text(t)
            }
            (None, None) => Body::None,
        };
        let shown = s.path.as_deref().or(s.url.as_deref()).unwrap_or_default();
        let name = s
            .name
            .clone()
            .unwrap_or_else(|| format!("{method} {shown}"));
        let mut extra: Vec<(String, String)> = scenario_tags
            .iter()
            .chain(&s.tags)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        extra.sort();
        let tags = Arc::new(StepTags {
            scenario: scenario.into(),
            name: name.as_str().into(),
            method: method.as_str().into(),
            extra,
        });
        let mut checks = Vec::new();
        for c in &s.checks {
            if c.status.is_none() && c.pointer.is_none() {
                return Err(format!(
                    "check `{}` tests nothing: give `status` or `pointer`",
                    c.name
                ));
            }
            if c.equals.is_some() && c.pointer.is_none() {
                return Err(format!("check `{}`: `equals` needs a `pointer`", c.name));
            }
            if let Some(p) = &c.pointer {
                pointer(p)?;
            }
            let equals = c.equals.as_ref().map(JsonTemplate::parse).transpose()?;
            for n in equals.iter().flat_map(|e| e.names()) {
                check_names(&Template::parse(&format!("{{{{{n}}}}}"))?)?;
            }
            checks.push(CheckPlan {
                name: c.name.as_str().into(),
                status: c.status.as_ref().map(scenario::StatusSpec::list),
                pointer: c.pointer.clone(),
                equals,
            });
        }
        for p in s.capture.values() {
            pointer(p)?;
        }
        let mut records = Vec::new();
        for r in &s.record {
            let contains = if r.value == RecordValue::Duration {
                Contains::Time
            } else {
                Contains::Default
            };
            let id = self.registry.define(&r.metric, r.kind.kind(), contains)?;
            records.push((id, r.value));
        }
        let sleep = match &s.sleep {
            None => None,
            Some(Sleep::Fixed(d)) => {
                let d = duration::parse(d)?;
                Some((d, d))
            }
            Some(Sleep::Between { min, max }) => {
                let (a, b) = (duration::parse(min)?, duration::parse(max)?);
                if a > b {
                    return Err("sleep: min is more than max".into());
                }
                Some((a, b))
            }
        };
        let stream = match &s.stream {
            None => None,
            Some(st) => {
                if st.during.is_empty() {
                    return Err(
                        "a stream needs `during` steps (what causes the awaited event)".into(),
                    );
                }
                if st.equals.is_some() != st.pointer.is_some() {
                    return Err("a stream's `pointer` and `equals` go together".into());
                }
                if let Some(p) = &st.pointer {
                    pointer(p)?;
                }
                let equals = st.equals.as_deref().map(Template::parse).transpose()?;
                if let Some(e) = &equals {
                    check_names(e)?;
                }
                let during = self.steps(scenario, &st.during, scenario_tags, known)?;
                Some(StreamPlan {
                    during,
                    event: st.event.clone(),
                    pointer: st.pointer.clone(),
                    equals,
                    timeout: st.timeout,
                    trend: self
                        .registry
                        .define(&st.trend, Kind::Trend, Contains::Time)?,
                    check: format!("{name}: event received").into(),
                })
            }
        };
        Ok(StepPlan {
            tags,
            method,
            url,
            headers,
            body,
            expect: s.expect.clone(),
            checks,
            captures: s
                .capture
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            records,
            sleep,
            stream,
        })
    }
}

fn pointer(p: &str) -> Result<(), String> {
    if p.is_empty() || p.starts_with('/') {
        Ok(())
    } else {
        Err(format!(
            "`{p}` is not a JSON pointer (RFC 6901: empty, or starting with /)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str, settings: Settings) -> Result<Plan, String> {
        let file = File::parse(text)?;
        build(
            &file,
            &Settings {
                base_url: Some("http://127.0.0.1:1".into()),
                ..settings
            },
        )
    }

    const FILE: &str = r#"
        [thresholds]
        "http_req_duration{scenario:a}" = ["p(95)<100"]
        done = ["count>5"]
        [setup]
        accounts = 4
        scale_accounts = true
        steps = [{ method = "POST", path = "/login", capture = { token = "/access_token" } }]
        [scenarios.a]
        executor = "constant-vus"
        vus = 10
        duration = "20s"
        [[scenarios.a.steps]]
        path = "/x"
        headers = { Authorization = "Bearer {{token}}" }
        capture = { id = "/id" }
        record = [{ metric = "done", type = "counter", value = "passed" }]
        [[scenarios.a.steps]]
        path = "/x/{{id}}"
        [scenarios.b]
        executor = "shared-iterations"
        vus = 10
        iterations = 4
        steps = [{ path = "/y" }]
        [profiles.small]
        scenarios = ["a"]
        load = 0.5
        time = 0.1
        thresholds = { done = ["count>1"] }
    "#;

    #[test]
    fn a_profile_and_the_scale_shrink_the_run() {
        let p = plan(
            FILE,
            Settings {
                profile: Some("small".into()),
                scale: 0.4,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(p.scenarios.len(), 1);
        match &p.scenarios[0].executor {
            ExecutorPlan::ConstantVus { vus, duration } => {
                assert_eq!(*vus, 2); // 10 × 0.5 × 0.4
                assert_eq!(*duration, Duration::from_secs_f64(0.8)); // 20 s × 0.1 × 0.4
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(p.accounts, 1); // 4 × 0.2, at least 1
        let done: Vec<_> = p
            .thresholds
            .iter()
            .filter(|t| t.key.name == "done")
            .collect();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].expr.source, "count>1");
    }

    #[test]
    fn shared_iterations_run_no_more_vus_than_iterations() {
        let p = plan(
            FILE,
            Settings {
                scenarios: vec!["b".into()],
                ..Default::default()
            },
        )
        .unwrap();
        assert!(matches!(
            p.scenarios[0].executor,
            ExecutorPlan::SharedIterations {
                vus: 4,
                iterations: 4,
                ..
            }
        ));
    }

    #[test]
    fn mistakes_are_found_before_the_run() {
        let cases = [
            (FILE.replace("Bearer {{token}}", "Bearer {{tokn}}"), "tokn"),
            (
                FILE.replace("count>5", "p(95)<5"),
                "a counter has no `p(95)`",
            ),
            (
                FILE.replace("\"http_req_duration{scenario:a}\"", "nosuch"),
                "no metric `nosuch`",
            ),
            (
                FILE.replace("path = \"/y\"", "path = \"y\""),
                "must start with /",
            ),
            (
                FILE.replace("capture = { id = \"/id\" }", "capture = { id = \"id\" }"),
                "JSON pointer",
            ),
            (FILE.replace("type = \"counter\"", "type = \"rate\""), ""),
        ];
        for (text, needle) in &cases[..5] {
            let err = plan(text, Settings::default()).err().unwrap_or_default();
            assert!(err.contains(needle), "{needle}: {err}");
        }
        // `done` as a rate: the threshold's `count` no longer applies.
        assert!(plan(&cases[5].0, Settings::default()).is_err());
        assert!(
            plan(
                FILE,
                Settings {
                    profile: Some("huge".into()),
                    ..Default::default()
                }
            )
            .is_err()
        );
        let err = build(&File::parse(FILE).unwrap(), &Settings::default())
            .err()
            .unwrap();
        assert!(err.contains("--base-url"), "{err}");
    }
}
