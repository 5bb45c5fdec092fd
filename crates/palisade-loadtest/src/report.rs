//! `--report FILE.html`: the run on one self-contained page: thresholds, checks, the
//! metrics, and SVG charts drawn with plotters (latency percentiles, requests and
//! errors per second, active VUs), each second of the run one point.

use crate::{
    metrics::{Registry, Second},
    run::Finished,
    summary,
};
use plotters::prelude::*;
use std::fmt::Write;

/// The page.
pub fn html(f: &Finished, title: &str) -> Result<String, String> {
    let r = &f.registry;
    let mut page = String::new();
    let verdict = if f.thresholds_failed() {
        "✗ thresholds failed"
    } else {
        "✓ thresholds passed"
    };
    let _ = write!(
        page,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>body{{font:14px/1.4 sans-serif;margin:2em;color:#222}}h1{{font-size:1.5em}}\
         table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}\
         .ok{{color:#1a7f37}}.fail{{color:#cf222e}}figure{{margin:1.5em 0}}</style></head><body>\
         <h1>{t}</h1><p class=\"{cls}\"><strong>{verdict}</strong> · ran {ran}</p>",
        t = escape(title),
        cls = if f.thresholds_failed() { "fail" } else { "ok" },
        ran = summary::time(f.elapsed.as_secs_f64() * 1000.0),
    );

    if !f.thresholds.is_empty() {
        page.push_str("<h2>Thresholds</h2><table><tr><th></th><th>metric</th><th>threshold</th><th>value</th></tr>");
        for (t, ok, observed) in &f.thresholds {
            let _ = write!(
                page,
                "<tr><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                if *ok { "ok" } else { "fail" },
                if *ok { "✓" } else { "✗" },
                escape(&t.key.to_string()),
                escape(&t.expr.source),
                escape(&summary::observed_value(r, t, *observed))
            );
        }
        page.push_str("</table>");
    }

    page.push_str("<h2>Charts</h2>");
    for chart in [
        latency(&r.seconds),
        requests(&r.seconds),
        errors(&r.seconds),
        vus(&r.seconds),
    ] {
        let _ = write!(page, "<figure>{}</figure>", chart?);
    }

    if !r.checks.is_empty() {
        page.push_str(
            "<h2>Checks</h2><table><tr><th></th><th>check</th><th>passes</th><th>fails</th></tr>",
        );
        for (name, (p, fl)) in &r.checks {
            let _ = write!(
                page,
                "<tr><td class=\"{}\">{}</td><td>{}</td><td>{p}</td><td>{fl}</td></tr>",
                if *fl == 0 { "ok" } else { "fail" },
                if *fl == 0 { "✓" } else { "✗" },
                escape(name)
            );
        }
        page.push_str("</table>");
    }

    page.push_str("<h2>Metrics</h2><table><tr><th>metric</th><th>values</th></tr>");
    for (name, values) in metric_rows(r, f.elapsed) {
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td></tr>",
            escape(&name),
            escape(&values)
        );
    }
    page.push_str("</table><h2>Scenarios</h2><table><tr><th>scenario</th><th>executor</th><th>iterations</th><th>interrupted</th><th>dropped</th></tr>");
    for (name, executor, c) in &f.scenarios {
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{executor}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(name),
            c.iterations,
            c.interrupted,
            c.dropped
        );
    }
    page.push_str("</table></body></html>\n");
    Ok(page)
}

fn metric_rows(r: &Registry, elapsed: std::time::Duration) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    for m in &r.metrics {
        let mut sinks = vec![(m.name.clone(), &m.sink)];
        for (tags, s) in &m.subs {
            let label: Vec<String> = tags.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            sinks.push((format!("{}{{{}}}", m.name, label.join(",")), s));
        }
        for (name, sink) in sinks {
            if let Some(v) = summary::values_line(m, sink, elapsed) {
                rows.push((name, v));
            }
        }
    }
    rows
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const SIZE: (u32, u32) = (960, 300);

/// A chart's line: its legend, colour and points.
type Line<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

/// One chart: lines over the run's seconds.
fn chart(title: &str, y_desc: &str, lines: &[Line]) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let x_max = lines
            .iter()
            .flat_map(|(_, _, pts)| pts.iter().map(|p| p.0))
            .fold(1.0f64, f64::max);
        let y_max = lines
            .iter()
            .flat_map(|(_, _, pts)| pts.iter().map(|p| p.1))
            .fold(0.0f64, f64::max);
        let y_max = if y_max <= 0.0 { 1.0 } else { y_max * 1.1 };
        let mut c = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max)
            .map_err(|e| e.to_string())?;
        c.configure_mesh()
            .x_desc("seconds into the run")
            .y_desc(y_desc)
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| e.to_string())?;
        for (label, color, pts) in lines {
            let color = *color;
            c.draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(*label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        c.configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

const BLUE_: RGBColor = RGBColor(31, 119, 180);
const ORANGE: RGBColor = RGBColor(255, 127, 14);
const RED_: RGBColor = RGBColor(214, 39, 40);
const GREEN_: RGBColor = RGBColor(44, 160, 44);
const PURPLE: RGBColor = RGBColor(148, 103, 189);

fn series(seconds: &[Second], f: impl Fn(&Second) -> Option<f64>) -> Vec<(f64, f64)> {
    seconds
        .iter()
        .enumerate()
        .filter_map(|(i, s)| f(s).map(|v| (i as f64 + 0.5, v)))
        .collect()
}

fn latency(seconds: &[Second]) -> Result<String, String> {
    let p = |q: f64| {
        series(seconds, move |s| {
            (s.latency.count > 0).then(|| s.latency.percentile(q))
        })
    };
    chart(
        "Request duration (http_req_duration) per second",
        "milliseconds",
        &[
            ("p50", BLUE_, p(50.0)),
            ("p95", ORANGE, p(95.0)),
            ("p99", RED_, p(99.0)),
        ],
    )
}

fn requests(seconds: &[Second]) -> Result<String, String> {
    chart(
        "Requests and iterations per second",
        "per second",
        &[
            (
                "http_reqs",
                BLUE_,
                series(seconds, |s| Some(s.requests as f64)),
            ),
            (
                "iterations",
                GREEN_,
                series(seconds, |s| Some(s.iterations as f64)),
            ),
        ],
    )
}

fn errors(seconds: &[Second]) -> Result<String, String> {
    chart(
        "Errors per second",
        "per second",
        &[
            (
                "http_req_failed",
                RED_,
                series(seconds, |s| Some(s.failed as f64)),
            ),
            (
                "dropped_iterations",
                PURPLE,
                series(seconds, |s| Some(s.dropped as f64)),
            ),
        ],
    )
}

fn vus(seconds: &[Second]) -> Result<String, String> {
    chart(
        "Active VUs",
        "VUs",
        &[("vus", GREEN_, series(seconds, |s| Some(s.vus)))],
    )
}
