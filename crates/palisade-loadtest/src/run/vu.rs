//! A virtual user: its own HTTP client (so its connections are its own and reused
//! across its iterations, as k6's are), its variables, and the samples of its current
//! iteration, handed to the registry when the iteration ends or is cut short.

use super::{
    Shared,
    http::{Http, Outgoing},
};
use crate::{
    metrics::{Sample, Tags, id},
    plan::{Body, ScenarioPlan, StepPlan, StreamPlan},
    scenario::RecordValue,
    template::{Context, Vars},
};
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

pub struct Vu {
    pub id: u64,
    pub account: u64,
    pub iter: u64,
    http: Http,
    vars: Vars,
    samples: Vec<Sample>,
    /// When the last request started: a stream's trigger.
    last_request: Instant,
}

/// Why an iteration ended before its last step.
pub struct Broken(pub String);

/// The answer to one request, as the checks and captures read it.
struct Answer {
    status: u16,
    body: AnswerBody,
    passed: bool,
}

/// An answer's body, parsed as JSON at most once.
struct AnswerBody {
    raw: Vec<u8>,
    json: Option<Option<Value>>,
}

impl AnswerBody {
    fn new(raw: Vec<u8>) -> AnswerBody {
        AnswerBody { raw, json: None }
    }

    /// The body as JSON; none if it is not.
    fn json(&mut self) -> Option<&Value> {
        if self.json.is_none() {
            self.json = Some(serde_json::from_slice(&self.raw).ok());
        }
        self.json.as_ref().and_then(Option::as_ref)
    }
}

impl Vu {
    /// The `index`-th VU (from 0) of its scenario: it acts as account `index` mod the
    /// number of accounts, so each scenario's VUs spread evenly over them (per-user
    /// caps, such as streams or running exports, see at most ⌈VUs ÷ accounts⌉).
    pub fn new(shared: &Shared, index: u64) -> Vu {
        let id = shared
            .next_vu
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let accounts = shared.accounts.get().map_or(&[][..], Vec::as_slice);
        let account = index % accounts.len().max(1) as u64;
        let mut vars = shared.vars.clone();
        if let Some(a) = accounts.get(account as usize) {
            vars.extend(a.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        Vu {
            id,
            ..Vu::for_account(shared, account, vars)
        }
    }

    /// A VU for the setup or teardown of `account`, with that account's variables.
    pub fn for_account(shared: &Shared, account: u64, vars: Vars) -> Vu {
        Vu {
            id: 0,
            account,
            iter: 0,
            http: Http::new(shared.timeout),
            vars,
            samples: Vec::new(),
            last_request: Instant::now(),
        }
    }

    pub fn into_vars(self) -> Vars {
        self.vars
    }

    /// One iteration: every step, then `iterations` and `iteration_duration` (from
    /// `started`, the scheduled start under an arrival rate).
    pub async fn iteration(
        &mut self,
        sc: &ScenarioPlan,
        shared: &Shared,
        started: Instant,
    ) -> Result<(), Broken> {
        for step in &sc.steps {
            self.step(step, shared, &sc.name).await?;
        }
        let tags = Tags::of(&sc.steps[0].tags);
        let now = Instant::now();
        self.push(id::ITERATIONS, 1.0, tags.clone(), now);
        self.push(
            id::ITERATION_DURATION,
            ms(now.saturating_duration_since(started)),
            tags,
            now,
        );
        Ok(())
    }

    /// Runs steps outside any scenario (setup, teardown): a failed check or an
    /// unexpected status is an error that names the step.
    pub async fn unmeasured(
        &mut self,
        steps: &[StepPlan],
        shared: &Shared,
        phase: &str,
    ) -> Result<(), String> {
        for step in steps {
            let answer = self
                .request(step, shared, phase)
                .await
                .map_err(|Broken(e)| format!("{phase} `{}`: {e}", step.tags.name))?;
            if !answer.passed {
                // An error's body says why; a success's may hold tokens, so it is not shown.
                let excerpt: String = if answer.status >= 400 {
                    String::from_utf8_lossy(&answer.body.raw)
                        .chars()
                        .take(300)
                        .collect()
                } else {
                    "(a success's body is not shown)".to_owned()
                };
                return Err(format!(
                    "{phase} `{}` answered {}{}: {excerpt}",
                    step.tags.name,
                    answer.status,
                    if answer.status == 429 {
                        " (is the load generator exempt from the target's rate limits?)"
                    } else {
                        ""
                    }
                ));
            }
        }
        self.samples.clear();
        Ok(())
    }

    async fn step(
        &mut self,
        step: &StepPlan,
        shared: &Shared,
        scenario: &str,
    ) -> Result<(), Broken> {
        match &step.stream {
            Some(stream) => Box::pin(self.stream(step, stream, shared, scenario)).await?,
            None => {
                self.request(step, shared, scenario).await?;
            }
        }
        if let Some((min, max)) = step.sleep {
            let d = min + (max - min).mul_f64(rand::random::<f64>());
            tokio::time::sleep(d).await;
        }
        Ok(())
    }

    fn context<'a>(&'a self, scenario: &'a str, run: &'a str) -> Context<'a> {
        Context {
            vu: self.id,
            iter: self.iter,
            scenario,
            account: self.account,
            run,
            vars: &self.vars,
        }
    }

    fn build(&self, step: &StepPlan, shared: &Shared, scenario: &str) -> Result<Outgoing, Broken> {
        let cx = self.context(scenario, &shared.run_id);
        let mut headers = Vec::with_capacity(step.headers.len());
        for (name, value) in &step.headers {
            headers.push((name.clone(), value.render(&cx).map_err(Broken)?));
        }
        let body = match &step.body {
            Body::None => None,
            Body::Json(t) => {
                let v = t.render(&cx).map_err(Broken)?;
                Some((
                    serde_json::to_vec(&v).map_err(|e| Broken(e.to_string()))?,
                    Some("application/json"),
                ))
            }
            Body::Text(t) => Some((t.render(&cx).map_err(Broken)?.into_bytes(), None)),
        };
        Ok(Outgoing {
            method: step.method.clone(),
            url: step.url.render(&cx).map_err(Broken)?,
            headers,
            body,
        })
    }

    /// Sends one request and records it as k6 does: `http_reqs`, `http_req_duration`
    /// (to the body's end), `http_req_waiting` (to the head), `http_req_failed`,
    /// `data_received`; then the checks, captures and the step's own metrics.
    async fn request(
        &mut self,
        step: &StepPlan,
        shared: &Shared,
        scenario: &str,
    ) -> Result<Answer, Broken> {
        let out = self.build(step, shared, scenario)?;
        let start = Instant::now();
        self.last_request = start;
        let (status, waiting, raw, head_bytes) = match self.http.send(out, false).await {
            Ok(answer) => {
                let waiting = start.elapsed();
                let status = answer.status();
                let head = answer.head_bytes();
                match answer.bytes().await {
                    Ok(b) => (status, waiting, b.to_vec(), head),
                    Err(e) => {
                        shared.note_error(&format!("{}: reading the body: {e}", step.tags.name));
                        (0, waiting, Vec::new(), head)
                    }
                }
            }
            Err(e) => {
                shared.note_error(&format!("{}: {e}", step.tags.name));
                (0, start.elapsed(), Vec::new(), 0)
            }
        };
        let end = Instant::now();
        let duration = end.saturating_duration_since(start);
        let (tags, expected) = self.answered(step, status, waiting, end);
        self.push(id::HTTP_REQ_DURATION, ms(duration), tags.clone(), end);
        self.push(
            id::DATA_RECEIVED,
            (raw.len() + head_bytes) as f64,
            tags.clone(),
            end,
        );

        let mut answer = Answer {
            status,
            body: AnswerBody::new(raw),
            passed: expected,
        };
        for check in &step.checks {
            let mut ok = check.status.as_ref().is_none_or(|s| s.contains(&status));
            if let Some(p) = &check.pointer {
                let wanted = match &check.equals {
                    Some(t) => Some(
                        t.render(&self.context(scenario, &shared.run_id))
                            .map_err(Broken)?,
                    ),
                    None => None,
                };
                let found = answer.body.json().and_then(|j| j.pointer(p));
                ok &= match (found, wanted) {
                    (None, _) => false,
                    (Some(_), None) => true,
                    (Some(v), Some(w)) => *v == w,
                };
            }
            answer.passed &= ok;
            let mut t = tags.clone();
            t.check = Some(check.name.clone());
            self.push(id::CHECKS, if ok { 1.0 } else { 0.0 }, t, end);
        }
        for (var, p) in &step.captures {
            if let Some(v) = answer.body.json().and_then(|j| j.pointer(p)) {
                self.vars.insert(var.clone(), v.clone());
            } else {
                // A later template that needs it breaks the iteration, with this reason.
                self.vars.remove(var);
            }
        }
        for (metric, value) in &step.records {
            let v = match value {
                RecordValue::Passed => f64::from(u8::from(answer.passed)),
                RecordValue::Failed => f64::from(u8::from(!answer.passed)),
                RecordValue::Duration => ms(duration),
                RecordValue::One => 1.0,
            };
            self.push(*metric, v, tags.clone(), end);
        }
        Ok(answer)
    }

    /// Opens an event stream, runs `during` while it is held, and times the awaited
    /// event from the start of the last `during` request (the trigger) to its arrival.
    async fn stream(
        &mut self,
        step: &StepPlan,
        stream: &StreamPlan,
        shared: &Shared,
        scenario: &str,
    ) -> Result<(), Broken> {
        let mut out = self.build(step, shared, scenario)?;
        out.headers
            .push((::http::header::ACCEPT, "text/event-stream".to_owned()));
        let start = Instant::now();
        let resp = self.http.send(out, true).await;
        let head = Instant::now();
        let status = resp.as_ref().map_or(0, |r| r.status());
        // A held stream's duration is how long it was held: only its head is timed.
        let (tags, expected) = self.answered(step, status, head - start, head);
        let mut resp = match resp {
            Ok(r) if expected => r,
            Ok(r) => {
                shared.note_error(&format!(
                    "{}: stream answered {}",
                    step.tags.name,
                    r.status()
                ));
                self.stream_result(stream, &tags, None);
                return Ok(());
            }
            Err(e) => {
                shared.note_error(&format!("{}: {e}", step.tags.name));
                self.stream_result(stream, &tags, None);
                return Ok(());
            }
        };
        // The reader keeps every event with its arrival time; matching waits until the
        // trigger's captures are known.
        let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Option<String>, String)>();
        let reader = tokio::spawn(async move {
            let mut parser = Sse::default();
            while let Some(chunk) = resp.chunk().await {
                let at = Instant::now();
                for (event, data) in parser.feed(&chunk) {
                    if tx.send((at, event, data)).is_err() {
                        return;
                    }
                }
            }
        });
        let outcome = async {
            for s in &stream.during {
                Box::pin(self.step(s, shared, scenario)).await?;
            }
            let trigger = self.last_request;
            let wanted = match &stream.equals {
                Some(t) => Some(Value::String(
                    t.render(&self.context(scenario, &shared.run_id))
                        .map_err(Broken)?,
                )),
                None => None,
            };
            let deadline = tokio::time::Instant::from_std(trigger + stream.timeout);
            loop {
                let Ok(Some((at, event, data))) =
                    tokio::time::timeout_at(deadline, rx.recv()).await
                else {
                    return Ok(None);
                };
                if stream
                    .event
                    .as_ref()
                    .is_some_and(|e| event.as_ref() != Some(e))
                {
                    continue;
                }
                if let (Some(p), Some(w)) = (&stream.pointer, &wanted) {
                    let json: Option<Value> = serde_json::from_str(&data).ok();
                    if json.as_ref().and_then(|j| j.pointer(p)) != Some(w) {
                        continue;
                    }
                }
                return Ok(Some(at.saturating_duration_since(trigger)));
            }
        }
        .await;
        reader.abort();
        self.stream_result(stream, &tags, outcome?);
        Ok(())
    }

    /// Records what every answer gets, a stream's too: `http_reqs`, `http_req_waiting`
    /// and `http_req_failed`, tagged with the status. Returns the tags and whether the
    /// status was expected.
    fn answered(
        &mut self,
        step: &StepPlan,
        status: u16,
        waiting: Duration,
        at: Instant,
    ) -> (Tags, bool) {
        let expected = status != 0 && step.expected(status);
        let mut tags = Tags::of(&step.tags);
        tags.status = Some(status);
        tags.expected_response = Some(expected);
        self.push(id::HTTP_REQS, 1.0, tags.clone(), at);
        self.push(id::HTTP_REQ_WAITING, ms(waiting), tags.clone(), at);
        self.push(
            id::HTTP_REQ_FAILED,
            if expected { 0.0 } else { 1.0 },
            tags.clone(),
            at,
        );
        (tags, expected)
    }

    /// The awaited event's time into its trend, and its check.
    fn stream_result(&mut self, stream: &StreamPlan, tags: &Tags, latency: Option<Duration>) {
        let now = Instant::now();
        if let Some(l) = latency {
            self.push(stream.trend, ms(l), tags.clone(), now);
        }
        let mut t = tags.clone();
        t.check = Some(stream.check.clone());
        self.push(
            id::CHECKS,
            if latency.is_some() { 1.0 } else { 0.0 },
            t,
            now,
        );
    }

    fn push(&mut self, metric: crate::metrics::MetricId, value: f64, tags: Tags, at: Instant) {
        self.samples.push(Sample {
            metric,
            value,
            tags,
            at,
        });
    }

    /// Hands the samples to the registry and the scenario's live counters.
    pub fn flush(&mut self, shared: &Shared, stats: Option<&super::ScenarioStats>) {
        if self.samples.is_empty() {
            return;
        }
        if let Some(stats) = stats {
            use std::sync::atomic::Ordering::Relaxed;
            for s in &self.samples {
                match s.metric {
                    id::HTTP_REQS => stats.requests.fetch_add(1, Relaxed),
                    id::HTTP_REQ_FAILED if s.value != 0.0 => stats.failed.fetch_add(1, Relaxed),
                    id::ITERATIONS => stats.iterations.fetch_add(1, Relaxed),
                    _ => 0,
                };
            }
        }
        shared.record(&self.samples);
        self.samples.clear();
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Server-sent events (the WHATWG event-stream format): `event:` and `data:` lines,
/// an event ending at a blank line.
#[derive(Default)]
pub struct Sse {
    line: Vec<u8>,
    event: Option<String>,
    data: Vec<String>,
}

impl Sse {
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<(Option<String>, String)> {
        let mut out = Vec::new();
        for &b in chunk {
            if b != b'\n' {
                self.line.push(b);
                continue;
            }
            let mut line = String::from_utf8_lossy(&self.line).into_owned();
            self.line.clear();
            if line.ends_with('\r') {
                line.pop();
            }
            if line.is_empty() {
                if !self.data.is_empty() {
                    out.push((self.event.take(), self.data.join("\n")));
                }
                self.data.clear();
                self.event = None;
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line.as_str(), ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => self.event = Some(value.to_owned()),
                "data" => self.data.push(value.to_owned()),
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Sse;

    #[test]
    fn server_sent_events_split_across_chunks() {
        let mut p = Sse::default();
        assert!(
            p.feed(b": keep-alive\n\nid: 1\nevent: payment.succeeded\nda")
                .is_empty()
        );
        let got = p.feed(b"ta: {\"a\":1}\ndata: x\r\n\nevent: other\ndata: 2\n\n");
        assert_eq!(
            got,
            vec![
                (Some("payment.succeeded".into()), "{\"a\":1}\nx".into()),
                (Some("other".into()), "2".into())
            ]
        );
    }
}
