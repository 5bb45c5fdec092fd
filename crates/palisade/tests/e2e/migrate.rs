//! `palisade migrate` and migrations at start-up, from the outside: the real binary on
//! SQLite files and on scratch PostgreSQL databases (`TEST_DATABASE_URL`).

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::harness::{Server, client, run, wait_for};
use palisade_store::testing::TempPostgres;
use reqwest::StatusCode;
use serde_json::Value;

fn migrate(url: &str, args: &[&str]) -> Output {
    let mut all = vec!["migrate", "--database-url", url];
    all.extend_from_slice(args);
    run(&all, &[])
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    std::fs::create_dir_all(dir).expect("dir");
    for (name, sql) in files {
        std::fs::write(dir.join(name), sql).expect("write");
    }
}

fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}/db.sqlite", dir.display())
}

fn applied_versions(url: &str, extra: &[&str]) -> Vec<u64> {
    let mut args = vec!["status", "--json"];
    args.extend_from_slice(extra);
    let status = json(&migrate(url, &args));
    status["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["state"] == "applied")
        .map(|e| e["version"].as_u64().expect("version"))
        .collect()
}

#[test]
fn up_status_down_and_their_exit_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(dir.path());

    let status = migrate(&url, &["status", "--json"]);
    assert!(status.status.success(), "{}", stderr(&status));
    assert_eq!(json(&status)["entries"][0]["state"], "pending");

    let dry = migrate(&url, &["up", "--dry-run", "--json"]);
    assert_eq!(json(&dry)["dry_run"], true);
    assert!(
        applied_versions(&url, &[]).is_empty(),
        "a dry run changes nothing"
    );

    let up = migrate(&url, &["up", "--json"]);
    assert!(up.status.success(), "{}", stderr(&up));
    let steps = json(&up)["steps"].as_array().expect("steps").len();
    assert!(steps >= 4, "{steps}");
    assert_eq!(applied_versions(&url, &[]).len(), steps);

    let down = migrate(&url, &["down", "--steps", "2", "--json"]);
    assert!(down.status.success(), "{}", stderr(&down));
    assert_eq!(applied_versions(&url, &[]).len(), steps - 2);
    let pending = json(&migrate(&url, &["pending", "--json"]));
    assert_eq!(pending["entries"].as_array().expect("entries").len(), 2);

    // The table a person reads.
    let table = migrate(&url, &["list"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("0001") && text.contains("applied") && text.contains("pending"),
        "{text}"
    );
}

#[test]
fn a_failing_statement_is_named_and_its_migration_rolled_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mig = dir.path().join("migrations");
    write(
        &mig,
        &[
            (
                "0001_ok.up.sql",
                "CREATE TABLE ok (id INTEGER PRIMARY KEY);",
            ),
            ("0001_ok.down.sql", "DROP TABLE ok;"),
            (
                "0002_broken.up.sql",
                "CREATE TABLE half (id INTEGER);\nINSERT INTO ok (id) VALUES (1);\nINSERT INTO nowhere VALUES (1);\n",
            ),
            ("0002_broken.down.sql", "DROP TABLE half;"),
        ],
    );
    let url = sqlite_url(dir.path());
    let dir_arg = mig.display().to_string();
    let out = migrate(&url, &["--dir", &dir_arg, "up"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("0002_broken.up.sql: statement 3 (line 3, column 1)")
            && err.contains("nowhere")
            && err.contains("rolled back"),
        "{err}"
    );
    assert_eq!(applied_versions(&url, &["--dir", &dir_arg]), [1]);
    // Nothing of 0002 stayed: its first statement can run again.
    write(
        &mig,
        &[(
            "0002_broken.up.sql",
            "CREATE TABLE half (id INTEGER);\nINSERT INTO ok (id) VALUES (1);\n",
        )],
    );
    let again = migrate(&url, &["--dir", &dir_arg, "up"]);
    assert!(again.status.success(), "{}", stderr(&again));
}

#[test]
fn drift_makes_status_fail_and_up_refuse() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mig = dir.path().join("m");
    write(
        &mig,
        &[
            ("0001_a.up.sql", "CREATE TABLE a (id INTEGER);"),
            ("0001_a.down.sql", "DROP TABLE a;"),
        ],
    );
    let url = sqlite_url(dir.path());
    let d = mig.display().to_string();
    assert!(migrate(&url, &["--dir", &d, "up"]).status.success());
    write(
        &mig,
        &[("0001_a.up.sql", "CREATE TABLE a (id INTEGER, b TEXT);")],
    );
    write(
        &mig,
        &[
            ("0002_b.up.sql", "CREATE TABLE b (id INTEGER);"),
            ("0002_b.down.sql", "DROP TABLE b;"),
        ],
    );
    let status = migrate(&url, &["--dir", &d, "status", "--json"]);
    assert_eq!(status.status.code(), Some(1));
    let body = json(&status);
    assert_eq!(body["entries"][0]["state"], "drifted");
    assert!(
        body["problems"][0]
            .as_str()
            .is_some_and(|p| p.contains("changed"))
    );
    let up = migrate(&url, &["--dir", &d, "up"]);
    assert!(!up.status.success());
    assert!(stderr(&up).contains("nothing was run"), "{}", stderr(&up));
}

#[test]
fn lint_and_verify_fail_on_bad_migrations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mig = dir.path().join("m");
    write(
        &mig,
        &[
            ("0001_t.up.sql", "CREATE TABLE t (id INTEGER PRIMARY KEY);"),
            ("0001_t.down.sql", "DROP TABLE t;"),
            (
                "0002_col.up.sql",
                "ALTER TABLE t ADD COLUMN c TEXT NOT NULL;",
            ),
            // Leaves the column behind.
            ("0002_col.down.sql", "SELECT 1;"),
        ],
    );
    let url = sqlite_url(dir.path());
    let d = mig.display().to_string();
    // On a database where 0001 is applied, `t` is live: adding a required column fails.
    // (On a fresh one both would run in one `up`, on an empty table.)
    let live = tempfile::tempdir().expect("tempdir");
    let live_url = sqlite_url(live.path());
    assert!(
        migrate(&live_url, &["--dir", &d, "up", "--to", "1"])
            .status
            .success()
    );
    let lint = migrate(&live_url, &["--dir", &d, "lint", "--json"]);
    assert_eq!(lint.status.code(), Some(1));
    let body = json(&lint);
    assert!(body["errors"].as_u64().is_some_and(|n| n >= 1), "{body}");
    assert!(
        body["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .any(|f| f["rule"] == "adding-required-field" && f["file"] == "0002_col.up.sql"),
        "{body}"
    );

    // With a default it adds fine, but the down still does not undo it.
    write(
        &mig,
        &[(
            "0002_col.up.sql",
            "ALTER TABLE t ADD COLUMN c TEXT NOT NULL DEFAULT '';",
        )],
    );
    assert!(migrate(&url, &["--dir", &d, "lint"]).status.success());
    let verify = migrate(&url, &["--dir", &d, "verify", "--json"]);
    assert_eq!(verify.status.code(), Some(1));
    let body = json(&verify);
    let last = &body["checked"].as_array().expect("checked")[1];
    assert_eq!(last["id"], "0002_col");
    assert_eq!(last["outcome"], "down_does_not_restore");
    assert!(
        applied_versions(&url, &["--dir", &d]).is_empty(),
        "verify used a scratch database"
    );

    write(
        &mig,
        &[("0002_col.down.sql", "ALTER TABLE t DROP COLUMN c;")],
    );
    let verify = migrate(&url, &["--dir", &d, "verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

#[test]
fn lint_gates_on_warnings_reads_rule_levels_and_speaks_sarif_and_github() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mig = dir.path().join("m");
    write(
        &mig,
        &[
            (
                "0001_t.up.sql",
                "CREATE TABLE t (id bigint PRIMARY KEY, a text, b text);",
            ),
            ("0001_t.down.sql", "DROP TABLE t;"),
            (
                "0002_drop.up.sql",
                "ALTER TABLE t DROP COLUMN a;\n-- palisade:ignore ban-drop-column\nALTER TABLE t DROP COLUMN b;",
            ),
            (
                "0002_drop.down.sql",
                "ALTER TABLE t ADD COLUMN a text, ADD COLUMN b text;",
            ),
        ],
    );
    let url = sqlite_url(dir.path());
    let d = mig.display().to_string();
    let lint = |extra: &[&str]| {
        let mut args = vec!["--dir", d.as_str(), "lint", "--dialect", "postgres"];
        args.extend_from_slice(extra);
        migrate(&url, &args)
    };
    // One warning (the ignored statement is let through): it passes unless denied.
    let text = lint(&[]);
    assert!(text.status.success(), "{}", stderr(&text));
    let out = String::from_utf8_lossy(&text.stdout).to_string();
    assert!(
        out.contains("0002_drop.up.sql:1:1: warning[ban-drop-column]"),
        "{out}"
    );
    assert!(out.contains("0 errors, 1 warnings"), "{out}");
    assert_eq!(lint(&["--deny-warnings"]).status.code(), Some(1));

    let github = lint(&["--format", "github"]);
    let out = String::from_utf8_lossy(&github.stdout).to_string();
    assert!(
        out.starts_with(&format!(
            "::warning file={d}/0002_drop.up.sql,line=1,col=1,title=ban-drop-column::"
        )),
        "{out}"
    );
    let sarif = json(&lint(&["--format", "sarif"]));
    let results = sarif["runs"][0]["results"].as_array().expect("results");
    assert_eq!(results.len(), 1, "{sarif}");
    assert_eq!(results[0]["ruleId"], "ban-drop-column");
    assert_eq!(
        results[0]["locations"][0]["physicalLocation"]["region"]["startLine"],
        1
    );

    // A project turns the rule into an error, or off; a misspelt rule is refused.
    let config = dir.path().join("palisade.toml");
    let with_config = |toml: &str, extra: &[&str]| {
        std::fs::write(&config, toml).expect("write config");
        let c = config.display().to_string();
        let mut args = vec![
            "--config",
            c.as_str(),
            "migrate",
            "--database-url",
            url.as_str(),
            "--dir",
            d.as_str(),
            "lint",
            "--dialect",
            "postgres",
        ];
        args.extend_from_slice(extra);
        run(&args, &[])
    };
    let strict = with_config("[lint.rules]\nban-drop-column = \"error\"\n", &["--json"]);
    assert_eq!(strict.status.code(), Some(1));
    assert_eq!(json(&strict)["errors"], 1);
    let off = with_config(
        "[lint.rules]\nban-drop-column = \"off\"\n",
        &["--deny-warnings"],
    );
    assert!(off.status.success(), "{}", stderr(&off));
    let typo = with_config("[lint.rules]\nban-drop-colum = \"off\"\n", &[]);
    assert!(!typo.status.success());
    assert!(
        stderr(&typo).contains("unknown lint rule `ban-drop-colum`"),
        "{}",
        stderr(&typo)
    );
    let typo = with_config("[lint.rule]\nban-drop-column = \"off\"\n", &[]);
    assert!(!typo.status.success());
    assert!(
        stderr(&typo).contains("unknown key `lint.rule`"),
        "{}",
        stderr(&typo)
    );
}

#[test]
fn new_creates_the_next_pair_of_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mig = dir.path().join("m");
    write(&mig.join("sqlite"), &[("0007_x.up.sql", "")]);
    std::fs::create_dir_all(mig.join("postgres")).expect("dir");
    let d = mig.display().to_string();
    let out = run(&["migrate", "--dir", &d, "new", "add_things"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    for dialect in ["sqlite", "postgres"] {
        for kind in ["up", "down"] {
            assert!(
                mig.join(dialect)
                    .join(format!("0008_add_things.{kind}.sql"))
                    .is_file()
            );
        }
    }
    let bad = run(&["migrate", "--dir", &d, "new", "Bad Name"], &[]);
    assert!(!bad.status.success());
}

/// Starts `n` `palisade migrate up` processes at once on `url`; every one succeeds.
fn concurrent_ups(url: &str, n: usize) {
    let children: Vec<_> = (0..n)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_palisade"))
                .args(["migrate", "--database-url", url, "up", "--json"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let mut applied = 0;
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "{}", stderr(&out));
        applied += json(&out)["steps"].as_array().expect("steps").len();
    }
    let versions = applied_versions(url, &[]);
    assert_eq!(
        applied,
        versions.len(),
        "each migration applied by exactly one process"
    );
    assert!(versions.len() >= 4);
}

#[test]
fn processes_started_together_apply_each_migration_once_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    concurrent_ups(&sqlite_url(dir.path()), 6);
}

#[tokio::test]
async fn processes_started_together_apply_each_migration_once_on_postgres() {
    let pg = TempPostgres::create().await;
    let url = pg.url().to_owned();
    tokio::task::spawn_blocking(move || concurrent_ups(&url, 6))
        .await
        .expect("join");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_migrate_once_on_postgres() {
    let pg = TempPostgres::create().await;
    let env = [("DATABASE_URL", pg.url())];
    let servers: Vec<Server> = std::thread::scope(|s| {
        let starting: Vec<_> = (0..3).map(|_| s.spawn(|| Server::start(&env))).collect();
        starting
            .into_iter()
            .map(|t| t.join().expect("start"))
            .collect()
    });
    for server in &servers {
        let res = client()
            .get(server.url("/ready"))
            .send()
            .await
            .expect("ready");
        assert_eq!(res.status(), StatusCode::OK);
    }
    let url = pg.url().to_owned();
    let versions = tokio::task::spawn_blocking(move || applied_versions(&url, &[]))
        .await
        .expect("join");
    assert!(versions.len() >= 4, "{versions:?}");
    let detailed: Value = client()
        .get(servers[0].url("/health/detailed"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(detailed["migrations"]["pending"], 0);
    assert_eq!(detailed["migrations"]["applied"], versions.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_migrate_on_start_ready_waits_for_the_migrations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(dir.path());
    let server = Server::start(&[
        ("DATABASE_URL", &url),
        ("PALISADE_MIGRATE_ON_START", "false"),
        ("PALISADE_DB_HEALTH_INTERVAL", "200ms"),
    ]);
    let res = client()
        .get(server.url("/ready"))
        .send()
        .await
        .expect("ready");
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["code"], "service.migrations_pending");
    server.wait_for_log("migrations are pending");

    let u = url.clone();
    let up = tokio::task::spawn_blocking(move || migrate(&u, &["up"]))
        .await
        .expect("join");
    assert!(up.status.success(), "{}", stderr(&up));
    wait_for(
        &server.url("/ready"),
        StatusCode::OK,
        Duration::from_secs(10),
    )
    .await;
}
