//! The findings in the forms CI tools read: text for people, JSON, SARIF 2.1.0 (GitHub
//! code scanning) and GitHub workflow commands (annotations on the pull request).

use serde_json::{Value, json};

use super::{Finding, Severity, catalog};

/// `file:line:column: severity[rule]: message`, with the rule's why under it.
pub fn text(findings: &[Finding], dir: &str) -> String {
    let mut out = String::new();
    for f in findings {
        out.push_str(&format!(
            "{}:{}:{}: {}[{}]: {}\n    why: {}\n",
            path(dir, &f.file),
            f.line,
            f.column,
            severity(f.severity),
            f.rule,
            f.message,
            f.why
        ));
    }
    out
}

/// A SARIF 2.1.0 log with one run: every rule as the tool's rule list, every finding
/// as a result located by its path (relative to the repository when `dir` is).
pub fn sarif(findings: &[Finding], dir: &str) -> Value {
    let rules: Vec<Value> = catalog::RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "shortDescription": { "text": r.why },
                "defaultConfiguration": {
                    "level": match r.default {
                        catalog::Level::Off => "none",
                        catalog::Level::Warning => "warning",
                        catalog::Level::Error => "error",
                    },
                    "enabled": r.default != catalog::Level::Off,
                },
            })
        })
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            json!({
                "ruleId": f.rule,
                "ruleIndex": catalog::RULES.iter().position(|r| r.id == f.rule),
                "level": severity(f.severity),
                "message": { "text": format!("{} (why: {})", f.message, f.why) },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": path(dir, &f.file) },
                        "region": { "startLine": f.line, "startColumn": f.column },
                    }
                }],
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "palisade migrate lint",
                    "version": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                }
            },
            "results": results,
        }],
    })
}

/// One `::error` or `::warning` workflow command per finding: GitHub shows each as an
/// annotation on the file's line in the pull request.
pub fn github(findings: &[Finding], dir: &str) -> String {
    let mut out = String::new();
    for f in findings {
        out.push_str(&format!(
            "::{} file={},line={},col={},title={}::{}\n",
            severity(f.severity),
            property(&path(dir, &f.file)),
            f.line,
            f.column,
            property(f.rule),
            data(&format!("{}\nwhy: {}", f.message, f.why)),
        ));
    }
    out
}

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

fn path(dir: &str, file: &str) -> String {
    if dir.is_empty() {
        file.to_owned()
    } else {
        format!("{}/{file}", dir.trim_end_matches('/'))
    }
}

/// A workflow command's message: `%`, CR and LF escaped.
fn data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value: also `:` and `,` escaped.
fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding() -> Finding {
        Finding {
            rule: "ban-drop-column",
            severity: Severity::Warning,
            file: "0002_drop, name.up.sql".into(),
            line: 3,
            column: 5,
            message: "column `users.name` is dropped: 100% gone".into(),
            why: "code still running fails",
        }
    }

    #[test]
    fn github_commands_escape_their_data_and_properties() {
        assert_eq!(
            github(&[finding()], "db/migrations"),
            "::warning file=db/migrations/0002_drop%2C name.up.sql,line=3,col=5,\
             title=ban-drop-column::column `users.name` is dropped: 100%25 gone%0Awhy: code \
             still running fails\n"
        );
    }

    #[test]
    fn sarif_results_point_at_their_rule_and_place() {
        let log = sarif(&[finding()], "db/migrations/");
        assert_eq!(log["version"], "2.1.0");
        let run = &log["runs"][0];
        let index = run["results"][0]["ruleIndex"]
            .as_u64()
            .expect("a rule index");
        let rule = &run["tool"]["driver"]["rules"][usize::try_from(index).expect("small")];
        assert_eq!(rule["id"], "ban-drop-column");
        assert_eq!(run["results"][0]["level"], "warning");
        let place = &run["results"][0]["locations"][0]["physicalLocation"];
        assert_eq!(
            place["artifactLocation"]["uri"],
            "db/migrations/0002_drop, name.up.sql"
        );
        assert_eq!(place["region"]["startLine"], 3);
        assert_eq!(place["region"]["startColumn"], 5);
        assert_eq!(
            run["tool"]["driver"]["rules"].as_array().map(Vec::len),
            Some(catalog::RULES.len())
        );
    }
}
