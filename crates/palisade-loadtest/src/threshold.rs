//! Thresholds in k6's syntax: a metric (optionally narrowed by tags,
//! `http_req_duration{scenario:payments}`) and expressions such as `p(95)<900`,
//! `rate<0.03` or `count>100`, each optionally `abortOnFail`.
//!
//! The aggregations each metric type offers are k6's: trends `avg`, `min`, `max`,
//! `med`, `p(N)`; rates `rate`; counters `count` and `rate` (per second of the run);
//! gauges `value`, `min`, `max`. A metric that received no sample is all zeros, so
//! `count>100` fails on it and `p(95)<900` passes, as in k6.

use crate::metrics::{Kind, Values};
use serde::Deserialize;
use std::{fmt, time::Duration};

/// A metric name and the tags a sample must carry to count.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetricKey {
    pub name: String,
    pub tags: Vec<(String, String)>,
}

impl MetricKey {
    /// `name` or `name{tag:value, tag:value}`.
    pub fn parse(text: &str) -> Result<MetricKey, String> {
        let text = text.trim();
        let (name, tags) = match text.find('{') {
            None => (text, Vec::new()),
            Some(open) => {
                let inner = text[open + 1..]
                    .strip_suffix('}')
                    .ok_or_else(|| format!("`{text}`: the tag filter does not end with `}}`"))?;
                let mut tags = Vec::new();
                for pair in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    let (k, v) = pair
                        .split_once(':')
                        .ok_or_else(|| format!("`{text}`: `{pair}` is not tag:value"))?;
                    let unquote =
                        |s: &str| s.trim().trim_matches('"').trim_matches('\'').to_owned();
                    tags.push((unquote(k), unquote(v)));
                }
                if tags.is_empty() {
                    return Err(format!("`{text}`: an empty tag filter"));
                }
                tags.sort();
                (text[..open].trim(), tags)
            }
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "`{text}`: a metric name is letters, digits and underscores"
            ));
        }
        Ok(MetricKey {
            name: name.to_owned(),
            tags,
        })
    }

    pub fn plain(name: &str) -> MetricKey {
        MetricKey {
            name: name.to_owned(),
            tags: Vec::new(),
        }
    }

    pub fn with_tag(name: &str, tag: &str, value: &str) -> MetricKey {
        MetricKey {
            name: name.to_owned(),
            tags: vec![(tag.to_owned(), value.to_owned())],
        }
    }
}

impl fmt::Display for MetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if !self.tags.is_empty() {
            f.write_str("{")?;
            for (i, (k, v)) in self.tags.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{k}:{v}")?;
            }
            f.write_str("}")?;
        }
        Ok(())
    }
}

/// What is compared: one of a metric's summary values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Aggregation {
    Avg,
    Min,
    Max,
    Med,
    Percentile(f64),
    Count,
    Rate,
    Value,
}

impl Aggregation {
    fn parse(text: &str) -> Result<Aggregation, String> {
        Ok(match text {
            "avg" => Aggregation::Avg,
            "min" => Aggregation::Min,
            "max" => Aggregation::Max,
            "med" => Aggregation::Med,
            "count" => Aggregation::Count,
            "rate" => Aggregation::Rate,
            "value" => Aggregation::Value,
            p if p.starts_with("p(") && p.ends_with(')') => {
                let n: f64 = p[2..p.len() - 1]
                    .trim()
                    .parse()
                    .map_err(|_| format!("`{p}`: the percentile is not a number"))?;
                if !(0.0..=100.0).contains(&n) {
                    return Err(format!("`{p}`: a percentile is between 0 and 100"));
                }
                Aggregation::Percentile(n)
            }
            other => {
                return Err(format!(
                    "`{other}`: not an aggregation (avg, min, max, med, p(N), count, rate, value)"
                ));
            }
        })
    }

    /// Whether a metric of `kind` has this value, as k6 allows.
    pub fn applies_to(self, kind: Kind) -> bool {
        use Aggregation::*;
        match kind {
            Kind::Trend => matches!(self, Avg | Min | Max | Med | Percentile(_)),
            Kind::Rate => matches!(self, Rate),
            Kind::Counter => matches!(self, Count | Rate),
            Kind::Gauge => matches!(self, Value | Min | Max),
        }
    }

    /// The value's name in the summary (`p(95)`, `avg`).
    pub fn label(self) -> String {
        match self {
            Aggregation::Avg => "avg".into(),
            Aggregation::Min => "min".into(),
            Aggregation::Max => "max".into(),
            Aggregation::Med => "med".into(),
            Aggregation::Percentile(p) => format!("p({})", crate::summary::number(p)),
            Aggregation::Count => "count".into(),
            Aggregation::Rate => "rate".into(),
            Aggregation::Value => "value".into(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

/// One expression, `p(95)<900`.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub source: String,
    pub aggregation: Aggregation,
    pub op: Op,
    pub bound: f64,
}

impl Expr {
    pub fn parse(text: &str) -> Result<Expr, String> {
        let source = text.trim().to_owned();
        // The longest operators first, so `<=` is not read as `<`.
        let ops = [
            ("===", Op::Eq),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("<", Op::Lt),
            (">", Op::Gt),
        ];
        let (at, len, op) = ops
            .iter()
            .filter_map(|(s, op)| source.find(s).map(|at| (at, s.len(), *op)))
            .min_by_key(|(at, len, _)| (*at, usize::MAX - len))
            .ok_or_else(|| format!("`{source}`: no comparison (<, <=, >, >=, ==, !=)"))?;
        let aggregation = Aggregation::parse(source[..at].trim())?;
        let bound: f64 = source[at + len..].trim().parse().map_err(|_| {
            format!(
                "`{source}`: `{}` is not a number",
                source[at + len..].trim()
            )
        })?;
        Ok(Expr {
            source,
            aggregation,
            op,
            bound,
        })
    }

    /// The value compared, from a metric's summary values.
    pub fn observed(&self, values: &Values) -> f64 {
        values.get(self.aggregation)
    }

    pub fn holds(&self, values: &Values) -> bool {
        let v = self.observed(values);
        match self.op {
            Op::Lt => v < self.bound,
            Op::Le => v <= self.bound,
            Op::Gt => v > self.bound,
            Op::Ge => v >= self.bound,
            Op::Eq => v == self.bound,
            Op::Ne => v != self.bound,
        }
    }
}

/// A threshold as a scenario file writes it: the expression alone, or with k6's
/// `abortOnFail` and `delayAbortEval`.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum ThresholdSpec {
    Plain(String),
    Full {
        threshold: String,
        #[serde(rename = "abortOnFail", default)]
        abort_on_fail: bool,
        #[serde(
            rename = "delayAbortEval",
            default,
            with = "crate::duration::serde_k6::option"
        )]
        delay_abort_eval: Option<Duration>,
    },
}

/// A parsed threshold on one metric.
#[derive(Clone, Debug)]
pub struct Threshold {
    pub key: MetricKey,
    pub expr: Expr,
    pub abort_on_fail: bool,
    pub delay_abort_eval: Duration,
}

impl Threshold {
    pub fn new(key: &MetricKey, spec: &ThresholdSpec) -> Result<Threshold, String> {
        let (text, abort_on_fail, delay) = match spec {
            ThresholdSpec::Plain(t) => (t.as_str(), false, None),
            ThresholdSpec::Full {
                threshold,
                abort_on_fail,
                delay_abort_eval,
            } => (threshold.as_str(), *abort_on_fail, *delay_abort_eval),
        };
        Ok(Threshold {
            key: key.clone(),
            expr: Expr::parse(text)?,
            abort_on_fail,
            delay_abort_eval: delay.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Values;

    fn trend(avg: f64, min: f64, med: f64, max: f64, p95: f64) -> Values {
        Values::Trend {
            avg,
            min,
            med,
            max,
            percentile: Box::new(move |p| if p == 95.0 { p95 } else { max }),
            count: 10,
        }
    }

    #[test]
    fn metric_keys_with_and_without_tags() {
        assert_eq!(
            MetricKey::parse("http_reqs").unwrap(),
            MetricKey::plain("http_reqs")
        );
        let k = MetricKey::parse("http_req_duration{ scenario:payments, method:POST }").unwrap();
        assert_eq!(k.name, "http_req_duration");
        assert_eq!(
            k.tags,
            vec![
                ("method".into(), "POST".into()),
                ("scenario".into(), "payments".into())
            ]
        );
        // A value may hold a colon: the first one splits.
        let k = MetricKey::parse("http_req_duration{url:http://a/b}").unwrap();
        assert_eq!(k.tags, vec![("url".into(), "http://a/b".into())]);
        for bad in ["", "a b", "x{", "x{}", "x{novalue}", "{a:b}"] {
            assert!(MetricKey::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn expressions_parse_as_k6_writes_them() {
        let cases: &[(&str, Aggregation, Op, f64)] = &[
            ("p(95)<900", Aggregation::Percentile(95.0), Op::Lt, 900.0),
            (
                "p(99.9) <= 1500",
                Aggregation::Percentile(99.9),
                Op::Le,
                1500.0,
            ),
            ("rate<0.03", Aggregation::Rate, Op::Lt, 0.03),
            ("count>100", Aggregation::Count, Op::Gt, 100.0),
            ("avg>=2", Aggregation::Avg, Op::Ge, 2.0),
            ("med==3", Aggregation::Med, Op::Eq, 3.0),
            ("max===3", Aggregation::Max, Op::Eq, 3.0),
            ("min!=0", Aggregation::Min, Op::Ne, 0.0),
            ("value>1e3", Aggregation::Value, Op::Gt, 1000.0),
        ];
        for (text, agg, op, bound) in cases {
            let e = Expr::parse(text).unwrap();
            assert_eq!(
                (e.aggregation, e.op, e.bound),
                (*agg, *op, *bound),
                "{text}"
            );
        }
        for bad in ["p95<1", "p(101)<1", "avg", "avg<", "avg<x", "mean<3", "<3"] {
            assert!(Expr::parse(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn evaluation_compares_the_named_value() {
        let t = trend(100.0, 1.0, 80.0, 2000.0, 950.0);
        let table: &[(&str, bool)] = &[
            ("p(95)<1000", true),
            ("p(95)<900", false),
            ("p(95)<=950", true),
            ("avg<100", false),
            ("avg<=100", true),
            ("med>79", true),
            ("max<2000", false),
            ("min==1", true),
            ("min!=1", false),
        ];
        for (text, holds) in table {
            assert_eq!(Expr::parse(text).unwrap().holds(&t), *holds, "{text}");
        }
        let rate = Values::Rate {
            passes: 3,
            fails: 97,
        };
        assert!(Expr::parse("rate<0.05").unwrap().holds(&rate));
        assert!(!Expr::parse("rate<0.03").unwrap().holds(&rate));
        assert!(!Expr::parse("rate<0.03").unwrap().holds(&Values::Rate {
            passes: 3,
            fails: 0
        }));
        let counter = Values::Counter {
            count: 101.0,
            per_second: 2.0,
        };
        assert!(Expr::parse("count>100").unwrap().holds(&counter));
        assert!(!Expr::parse("rate>2").unwrap().holds(&counter));
        let gauge = Values::Gauge {
            value: 50.0,
            min: 0.0,
            max: 200.0,
        };
        assert!(Expr::parse("max<=200").unwrap().holds(&gauge));
        assert!(!Expr::parse("value>50").unwrap().holds(&gauge));
    }

    #[test]
    fn empty_metrics_are_zero_as_in_k6() {
        let none = Values::empty(Kind::Counter);
        assert!(!Expr::parse("count>100").unwrap().holds(&none));
        let none = Values::empty(Kind::Trend);
        assert!(Expr::parse("p(95)<900").unwrap().holds(&none));
        let none = Values::empty(Kind::Rate);
        assert!(Expr::parse("rate<0.03").unwrap().holds(&none));
    }

    #[test]
    fn aggregations_belong_to_metric_types() {
        let p = Aggregation::Percentile(95.0);
        assert!(p.applies_to(Kind::Trend));
        assert!(!p.applies_to(Kind::Rate));
        assert!(Aggregation::Rate.applies_to(Kind::Counter));
        assert!(!Aggregation::Count.applies_to(Kind::Rate));
        assert!(Aggregation::Value.applies_to(Kind::Gauge));
        assert!(!Aggregation::Avg.applies_to(Kind::Gauge));
    }

    #[test]
    fn specs_read_plain_or_with_abort() {
        #[derive(Deserialize)]
        struct T {
            t: Vec<ThresholdSpec>,
        }
        let t: T = toml::from_str(
            r#"t = ["p(95)<900", { threshold = "rate<0.01", abortOnFail = true, delayAbortEval = "10s" }]"#,
        )
        .unwrap();
        let key = MetricKey::plain("x");
        let a = Threshold::new(&key, &t.t[0]).unwrap();
        assert!(!a.abort_on_fail);
        let b = Threshold::new(&key, &t.t[1]).unwrap();
        assert!(b.abort_on_fail);
        assert_eq!(b.delay_abort_eval, Duration::from_secs(10));
    }
}
