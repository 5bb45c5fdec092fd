//! The end-of-test summary: k6's layout on the terminal (thresholds with ✓/✗, checks,
//! every metric by group, trends as avg/min/med/max/p(90)/p(95)/p(99)), and the same
//! data in the shape of k6's summary object for `--summary-export`.

use crate::{
    metrics::{Contains, Kind, Metric, Registry, Sink, Values},
    run::Finished,
    threshold::{Aggregation, MetricKey, Threshold},
};
use serde_json::{Map, Value, json};
use std::{collections::BTreeMap, fmt::Write, time::Duration};

/// The trend statistics shown and exported (k6's `summaryTrendStats`).
pub const TREND_STATS: &[Aggregation] = &[
    Aggregation::Avg,
    Aggregation::Min,
    Aggregation::Med,
    Aggregation::Max,
    Aggregation::Percentile(90.0),
    Aggregation::Percentile(95.0),
    Aggregation::Percentile(99.0),
];

/// A number as k6 prints it: at most 6 decimals, no trailing zeros.
pub fn number(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_owned() }
}

/// A time in milliseconds as k6 prints it: `850µs`, `12.34ms`, `1.2s`, `1m2s`.
pub fn time(ms: f64) -> String {
    if ms < 1.0 {
        format!("{}µs", number((ms * 1000.0).round()))
    } else if ms < 1000.0 {
        format!("{}ms", number((ms * 100.0).round() / 100.0))
    } else if ms < 60_000.0 {
        format!("{}s", number((ms / 10.0).round() / 100.0))
    } else {
        let s = ms / 1000.0;
        format!(
            "{}m{}s",
            (s / 60.0).floor(),
            number((s % 60.0 * 10.0).round() / 10.0)
        )
    }
}

fn bytes(v: f64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = v;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    format!("{} {}", number((v * 10.0).round() / 10.0), units[i])
}

fn show(contains: Contains, v: f64) -> String {
    match contains {
        Contains::Time => time(v),
        Contains::Data => bytes(v),
        Contains::Default => number((v * 1e6).round() / 1e6),
    }
}

fn percent(r: f64) -> String {
    format!("{:.2}%", r * 100.0)
}

/// A sink's one-line summary.
fn line(metric: &Metric, sink: &Sink, elapsed: Duration) -> String {
    let values = sink.values(elapsed);
    match &values {
        Values::Counter { count, per_second } => format!(
            "{:<7} {}/s",
            show(metric.contains, *count),
            show(metric.contains, *per_second)
        ),
        Values::Gauge { value, min, max } => format!(
            "{:<7} min={} max={}",
            number(*value),
            number(*min),
            number(*max)
        ),
        Values::Rate { passes, fails } => format!(
            "{:<7} {passes} out of {}",
            percent(values.get(Aggregation::Rate)),
            passes + fails
        ),
        Values::Trend { .. } => TREND_STATS
            .iter()
            .map(|a| format!("{}={}", a.label(), show(metric.contains, values.get(*a))))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

fn dotted(out: &mut String, indent: usize, label: &str, value: &str) {
    let width = 40usize.saturating_sub(indent);
    let dots = width.saturating_sub(label.chars().count()).max(3);
    let _ = writeln!(
        out,
        "{}{label}{}: {value}",
        " ".repeat(indent),
        ".".repeat(dots)
    );
}

fn group(name: &str) -> &'static str {
    match name {
        "http_reqs" | "http_req_duration" | "http_req_waiting" | "http_req_failed" => "HTTP",
        "iterations" | "iteration_duration" | "dropped_iterations" | "vus" | "vus_max" => {
            "EXECUTION"
        }
        "data_received" => "NETWORK",
        "checks" => "CHECKS",
        _ => "CUSTOM",
    }
}

/// The value a threshold compared, in its metric's unit (a rate as a percentage).
pub fn observed_value(r: &Registry, t: &Threshold, observed: f64) -> String {
    let metric = r.id(&t.key.name).map(|i| &r.metrics[i.0]);
    match (t.expr.aggregation, metric) {
        (Aggregation::Rate, Some(m)) if m.kind == Kind::Rate => percent(observed),
        (Aggregation::Rate, Some(m)) => format!("{}/s", show(m.contains, observed)),
        (_, Some(m)) => show(m.contains, observed),
        (_, None) => number(observed),
    }
}

/// The checks' totals, then each check with ✓, or ✗ and its share of passes.
fn checks(out: &mut String, r: &Registry, elapsed: Duration, passes: u64, fails: u64) {
    let all = passes + fails;
    let per_s = all as f64 / elapsed.as_secs_f64().max(1e-9);
    let share = |n: u64| percent(n as f64 / all as f64);
    dotted(
        out,
        4,
        "checks_total",
        &format!("{all:<7} {}/s", number((per_s * 1e6).round() / 1e6)),
    );
    dotted(
        out,
        4,
        "checks_succeeded",
        &format!("{:<7} {passes} out of {all}", share(passes)),
    );
    dotted(
        out,
        4,
        "checks_failed",
        &format!("{:<7} {fails} out of {all}", share(fails)),
    );
    out.push('\n');
    for (name, (p, fl)) in &r.checks {
        if *fl == 0 {
            let _ = writeln!(out, "    ✓ {name}");
        } else {
            let _ = writeln!(
                out,
                "    ✗ {name}\n      ↳  {}% — ✓ {p} / ✗ {fl}",
                (*p as f64 * 100.0 / (*p + *fl) as f64).floor()
            );
        }
    }
    out.push('\n');
}

/// The summary as printed at the end of a run.
pub fn text(f: &Finished) -> String {
    let r = &f.registry;
    let mut out = String::new();
    if !f.thresholds.is_empty() {
        out.push_str("\n  █ THRESHOLDS\n");
        let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (t, ok, observed) in &f.thresholds {
            let contains = r
                .id(&t.key.name)
                .map_or(Contains::Default, |i| r.metrics[i.0].contains);
            let shown = match t.expr.aggregation {
                Aggregation::Rate
                    if r.id(&t.key.name)
                        .is_some_and(|i| r.metrics[i.0].kind == Kind::Rate) =>
                {
                    percent(*observed)
                }
                _ => show(contains, *observed),
            };
            by_key.entry(t.key.to_string()).or_default().push(format!(
                "    {} '{}' {}={shown}",
                if *ok { "✓" } else { "✗" },
                t.expr.source,
                t.expr.aggregation.label()
            ));
        }
        for (key, lines) in by_key {
            let _ = writeln!(out, "\n    {key}");
            for l in lines {
                let _ = writeln!(out, "{l}");
            }
        }
    }
    out.push_str("\n\n  █ TOTAL RESULTS\n\n");
    if let Some((_, Sink::Rate { passes, fails })) = r.sink(&MetricKey::plain("checks"))
        && passes + fails > 0
    {
        checks(&mut out, r, f.elapsed, *passes, *fails);
    }
    for g in ["CUSTOM", "HTTP", "EXECUTION", "NETWORK"] {
        let metrics: Vec<&Metric> = r
            .metrics
            .iter()
            .filter(|m| group(&m.name) == g && has_samples(&m.sink))
            .collect();
        if metrics.is_empty() {
            continue;
        }
        let _ = writeln!(out, "    {g}");
        let mut sorted = metrics;
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        for m in sorted {
            dotted(&mut out, 4, &m.name, &line(m, &m.sink, f.elapsed));
            for (tags, sink) in &m.subs {
                if !has_samples(sink) {
                    continue;
                }
                let label: Vec<String> = tags.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                dotted(
                    &mut out,
                    6,
                    &format!("{{ {} }}", label.join(", ")),
                    &line(m, sink, f.elapsed),
                );
            }
        }
        out.push('\n');
    }
    out.push_str("\n  █ SCENARIOS\n\n");
    for (name, executor, c) in &f.scenarios {
        let _ = writeln!(
            out,
            "    {name} ({executor}): {} complete and {} interrupted iterations{}",
            c.iterations,
            c.interrupted,
            if c.dropped > 0 {
                format!(", {} dropped", c.dropped)
            } else {
                String::new()
            }
        );
    }
    let _ = writeln!(
        out,
        "\n    running for {}",
        time(f.elapsed.as_secs_f64() * 1000.0)
    );
    if f.errors.count > 0 {
        let _ = writeln!(out, "\n  █ ERRORS ({})\n", f.errors.count);
        for e in &f.errors.first {
            let _ = writeln!(out, "    {e}");
        }
    }
    if let Some(t) = &f.aborted_by {
        let _ = writeln!(out, "\n  stopped early: threshold {t} failed (abortOnFail)");
    }
    if f.interrupted_by_user {
        let _ = writeln!(out, "\n  stopped early: interrupted");
    }
    out
}

/// A metric's one-line summary, if it has samples.
pub fn values_line(metric: &Metric, sink: &Sink, elapsed: Duration) -> Option<String> {
    has_samples(sink).then(|| line(metric, sink, elapsed))
}

fn has_samples(sink: &Sink) -> bool {
    match sink {
        Sink::Counter { seen, .. } => *seen,
        Sink::Gauge { seen, .. } => *seen,
        Sink::Rate { passes, fails } => passes + fails > 0,
        Sink::Trend(t) => t.count > 0,
    }
}

fn values_json(sink: &Sink, elapsed: Duration) -> Value {
    let v = sink.values(elapsed);
    match &v {
        Values::Counter { count, per_second } => json!({"count": count, "rate": per_second}),
        Values::Gauge { value, min, max } => json!({"value": value, "min": min, "max": max}),
        Values::Rate { passes, fails } => {
            json!({"rate": v.get(Aggregation::Rate), "passes": passes, "fails": fails})
        }
        Values::Trend { .. } => {
            let mut m = Map::new();
            for a in TREND_STATS {
                m.insert(a.label(), json!(v.get(*a)));
            }
            Value::Object(m)
        }
    }
}

/// The summary in the shape of k6's summary object (`handleSummary(data)`):
/// `metrics.<name>` (and `<name>{tag:value}` for sub-metrics) with `type`,
/// `contains`, `values` and `thresholds.<expression>.ok`; `root_group.checks`;
/// `options`; `state.testRunDurationMs`.
pub fn json(f: &Finished, stdout_tty: bool, stderr_tty: bool) -> Value {
    let r = &f.registry;
    let mut metrics = Map::new();
    let mut thresholds: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for (t, ok, _) in &f.thresholds {
        thresholds
            .entry(t.key.to_string())
            .or_default()
            .insert(t.expr.source.clone(), json!({"ok": ok}));
    }
    for m in &r.metrics {
        let mut entries = vec![(m.name.clone(), &m.sink)];
        for (tags, sink) in &m.subs {
            let key = MetricKey {
                name: m.name.clone(),
                tags: tags.clone(),
            };
            entries.push((key.to_string(), sink));
        }
        for (key, sink) in entries {
            let listed = thresholds.contains_key(&key);
            if !has_samples(sink) && !listed {
                continue;
            }
            let mut entry = json!({
                "type": m.kind.name(),
                "contains": m.contains.name(),
                "values": values_json(sink, f.elapsed),
            });
            if let Some(t) = thresholds.get(&key) {
                entry["thresholds"] = Value::Object(t.clone());
            }
            metrics.insert(key, entry);
        }
    }
    let checks: Vec<Value> = r
        .checks
        .iter()
        .map(|(name, (p, fl))| json!({"name": &**name, "path": format!("::{name}"), "passes": p, "fails": fl}))
        .collect();
    json!({
        "root_group": {"name": "", "path": "", "groups": [], "checks": checks},
        "options": {
            "summaryTrendStats": TREND_STATS.iter().map(|a| a.label()).collect::<Vec<_>>(),
            "summaryTimeUnit": "",
            "noColor": false,
        },
        "state": {
            "isStdOutTTY": stdout_tty,
            "isStdErrTTY": stderr_tty,
            "testRunDurationMs": f.elapsed.as_secs_f64() * 1000.0,
        },
        "metrics": metrics,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_numbers_print_as_k6_prints_them() {
        assert_eq!(time(0.5), "500µs");
        assert_eq!(time(148.214), "148.21ms");
        assert_eq!(time(1234.0), "1.23s");
        assert_eq!(time(62_000.0), "1m2s");
        assert_eq!(number(95.0), "95");
        assert_eq!(number(99.9), "99.9");
        assert_eq!(bytes(1_234_567.0), "1.2 MB");
    }
}
