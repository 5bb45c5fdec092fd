//! Templates in strings and JSON bodies: `{{name}}` is replaced by a variable: a
//! built-in (`uuid`, `vu`, `iter`, `scenario`, `account`, `run`, `timestamp_ms`) or a
//! value captured from an earlier answer, made by the setup, or given with `--var`.
//! A JSON string that is exactly one `{{name}}` takes the variable's own JSON value,
//! so a captured number stays a number.

use serde_json::Value;
use std::collections::HashMap;

/// The variables a VU sees.
pub type Vars = HashMap<String, Value>;

/// Names every template may use without defining them.
pub const BUILT_IN: &[&str] = &[
    "uuid",
    "vu",
    "iter",
    "scenario",
    "account",
    "run",
    "timestamp_ms",
];

/// What a VU knows of itself when a template is rendered.
pub struct Context<'a> {
    pub vu: u64,
    pub iter: u64,
    pub scenario: &'a str,
    pub account: u64,
    pub run: &'a str,
    pub vars: &'a Vars,
}

impl Context<'_> {
    fn lookup(&self, name: &str) -> Result<Value, String> {
        Ok(match name {
            "uuid" => Value::String(uuid::Uuid::new_v4().to_string()),
            "vu" => self.vu.into(),
            "iter" => self.iter.into(),
            "scenario" => self.scenario.into(),
            "account" => self.account.into(),
            "run" => self.run.into(),
            "timestamp_ms" => (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
                .to_string()
                .into(),
            other => self.vars.get(other).cloned().ok_or_else(|| {
                format!("`{{{{{other}}}}}` has no value yet (a capture that did not match?)")
            })?,
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Part {
    Text(String),
    Var(String),
}

/// A string with placeholders, split once when the plan is made.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let close = rest[open..]
                .find("}}")
                .ok_or_else(|| format!("`{text}`: `{{{{` without `}}}}`"))?;
            let name = rest[open + 2..open + close].trim();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("`{text}`: `{name}` is not a variable name"));
            }
            parts.push(Part::Var(name.to_owned()));
            rest = &rest[open + close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    /// The variables it uses.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(n) => Some(n.as_str()),
            Part::Text(_) => None,
        })
    }

    pub fn render(&self, cx: &Context) -> Result<String, String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Var(name) => match cx.lookup(name)? {
                    Value::String(s) => out.push_str(&s),
                    other => out.push_str(&other.to_string()),
                },
            }
        }
        Ok(out)
    }

    /// A template that is exactly one variable: its name.
    fn sole(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Var(n)] => Some(n),
            _ => None,
        }
    }
}

/// A JSON body with templates in its strings (keys stay as written).
#[derive(Clone, Debug, PartialEq)]
pub enum JsonTemplate {
    Literal(Value),
    Text(Template),
    Array(Vec<JsonTemplate>),
    Object(Vec<(String, JsonTemplate)>),
}

impl JsonTemplate {
    pub fn parse(v: &Value) -> Result<JsonTemplate, String> {
        Ok(match v {
            Value::String(s) if s.contains("{{") => JsonTemplate::Text(Template::parse(s)?),
            Value::Array(a) => JsonTemplate::Array(
                a.iter()
                    .map(JsonTemplate::parse)
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(o) => JsonTemplate::Object(
                o.iter()
                    .map(|(k, v)| Ok((k.clone(), JsonTemplate::parse(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => JsonTemplate::Literal(other.clone()),
        })
    }

    pub fn names(&self) -> Vec<&str> {
        match self {
            JsonTemplate::Literal(_) => Vec::new(),
            JsonTemplate::Text(t) => t.names().collect(),
            JsonTemplate::Array(a) => a.iter().flat_map(JsonTemplate::names).collect(),
            JsonTemplate::Object(o) => o.iter().flat_map(|(_, v)| v.names()).collect(),
        }
    }

    pub fn render(&self, cx: &Context) -> Result<Value, String> {
        Ok(match self {
            JsonTemplate::Literal(v) => v.clone(),
            JsonTemplate::Text(t) => match t.sole() {
                Some(name) => cx.lookup(name)?,
                None => Value::String(t.render(cx)?),
            },
            JsonTemplate::Array(a) => {
                Value::Array(a.iter().map(|v| v.render(cx)).collect::<Result<_, _>>()?)
            }
            JsonTemplate::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| Ok((k.clone(), v.render(cx)?)))
                    .collect::<Result<_, String>>()?,
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cx(vars: &Vars) -> Context<'_> {
        Context {
            vu: 7,
            iter: 3,
            scenario: "payments",
            account: 2,
            run: "r1",
            vars,
        }
    }

    #[test]
    fn strings_take_built_ins_and_variables() {
        let mut vars = Vars::new();
        vars.insert("token".into(), json!("abc"));
        vars.insert("n".into(), json!(5));
        let t = Template::parse("Bearer {{token}} vu={{ vu }} it={{iter}} n={{n}} {{scenario}}")
            .unwrap();
        assert_eq!(
            t.render(&cx(&vars)).unwrap(),
            "Bearer abc vu=7 it=3 n=5 payments"
        );
        let u = Template::parse("{{uuid}}").unwrap();
        let (a, b) = (u.render(&cx(&vars)).unwrap(), u.render(&cx(&vars)).unwrap());
        assert_ne!(a, b, "a fresh uuid each time");
        assert!(uuid::Uuid::parse_str(&a).is_ok());
        assert!(
            Template::parse("{{missing}}")
                .unwrap()
                .render(&cx(&vars))
                .is_err()
        );
        for bad in ["{{", "{{a b}}", "{{}}", "x {{ y"] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_bodies_keep_the_types_of_sole_variables() {
        let mut vars = Vars::new();
        vars.insert("contract".into(), json!("c-1"));
        vars.insert("cents".into(), json!(1500));
        let body = json!({"contract_id": "{{contract}}", "amount": {"amount_cents": "{{cents}}", "currency": "EUR"},
                          "note": "vu {{vu}}", "tags": ["{{iter}}", 1]});
        let t = JsonTemplate::parse(&body).unwrap();
        let mut names = t.names();
        names.sort();
        assert_eq!(names, vec!["cents", "contract", "iter", "vu"]);
        assert_eq!(
            t.render(&cx(&vars)).unwrap(),
            json!({"contract_id": "c-1", "amount": {"amount_cents": 1500, "currency": "EUR"},
                   "note": "vu 7", "tags": [3, 1]})
        );
    }
}
