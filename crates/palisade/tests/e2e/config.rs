//! `palisade config check` and start-up refusal, through the real binary.

use crate::harness::run;

#[test]
fn a_bad_configuration_names_every_problem_and_exits_2() {
    let out = run(
        &["serve"],
        &[
            ("PORT", "eighty"),
            ("ALLOWED_ORIGINS", "*"),
            ("DB_POOL_MAX", "-1"),
            ("PALISADE_TRUSTED_PROXYS", "10.0.0.0/8"),
            ("DATABASE_URL", "mysql://root:hunter2@db/x"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("invalid configuration (5 problems):"),
        "{err}"
    );
    for needle in [
        "PORT",
        "ALLOWED_ORIGINS",
        "DB_POOL_MAX",
        "PALISADE_TRUSTED_PROXYS",
        "DATABASE_URL",
    ] {
        assert!(err.contains(needle), "{needle} not named in:\n{err}");
    }
    assert!(
        !err.contains("panicked") && !err.contains("backtrace") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "password printed:\n{err}");
    assert!(out.stdout.is_empty(), "nothing starts");
}

#[test]
fn production_refuses_weak_settings() {
    let out = run(
        &["config", "check"],
        &[
            ("PALISADE_ENV", "production"),
            ("JWT_SECRET", "secret"),
            ("PALISADE_COOKIE_SECURE", "false"),
            ("ALLOWED_ORIGINS", "http://app.example.com"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in ["JWT_SECRET", "PALISADE_COOKIE_SECURE", "ALLOWED_ORIGINS"] {
        assert!(err.contains(needle), "{needle} not named in:\n{err}");
    }
}

/// A production configuration with strong secrets and a mail server: valid as it is.
const PRODUCTION: [(&str, &str); 6] = [
    ("PALISADE_ENV", "production"),
    (
        "SMTP_URL",
        "smtps://mailer:a-long-password@mail.example.com",
    ),
    ("PALISADE_MAIL_FROM", "Acme <no-reply@example.com>"),
    ("PALISADE_PUBLIC_URL", "https://app.example.com"),
    (
        "JWT_SECRET",
        "6f1c0e5b9a7d4c2e8b3a1f0d9c8e7b6a5f4e3d2c1b0a9f8e",
    ),
    (
        "ENCRYPTION_KEY",
        "3b8f2a9c7e1d6b4a0f5e8c2d9a7b3e1f6c4d8a2b0e9f7c5d3a1b6e8f2c4d9a07",
    ),
];

#[test]
fn production_refuses_allow_lists_of_everyone_a_loose_auth_tier_and_a_long_header_timeout() {
    let strong = PRODUCTION;
    let ok = run(&["config", "check"], &strong);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let mut weak = strong.to_vec();
    weak.extend([
        ("PALISADE_TRUSTED_PROXIES", "0.0.0.0/0"),
        ("PALISADE_OPS_ALLOW", "::/0"),
        ("PALISADE_RATE_LIMIT_ALLOW", "10.0.0.0/8,0.0.0.0/0"),
        ("PALISADE_RATE_LIMIT_AUTH", "1000/15m"),
        ("PALISADE_HEADER_READ_TIMEOUT", "2m"),
    ]);
    let out = run(&["config", "check"], &weak);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("invalid configuration (5 problems):"),
        "{err}"
    );
    for needle in [
        "PALISADE_TRUSTED_PROXIES",
        "PALISADE_OPS_ALLOW",
        "PALISADE_RATE_LIMIT_ALLOW",
        "PALISADE_RATE_LIMIT_AUTH",
        "PALISADE_HEADER_READ_TIMEOUT",
    ] {
        assert!(err.contains(needle), "{needle} not named in:\n{err}");
    }
    // Development takes the same values.
    let dev: Vec<(&str, &str)> = weak[3..].to_vec();
    assert_eq!(run(&["config", "check"], &dev).status.code(), Some(0));
}

#[test]
fn config_check_prints_the_effective_values_with_secrets_redacted() {
    let secret = "6f1c0e5b9a7d4c2e8b3a1f0d9c8e7b6a5f4e3d2c1b0a9f8e";
    let out = run(
        &["config", "check"],
        &[
            ("JWT_SECRET", secret),
            ("DATABASE_URL", "postgres://app:pw-123@db.internal/app"),
            ("DB_POOL_MAX", "7"),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains(secret) && !text.contains("pw-123"),
        "a secret was printed:\n{text}"
    );
    assert!(
        text.contains("JWT_SECRET") && text.contains("(set, redacted)"),
        "{text}"
    );
    assert!(
        text.contains("postgres://app:***@db.internal/app"),
        "{text}"
    );
    let pool = text
        .lines()
        .find(|l| l.starts_with("DB_POOL_MAX"))
        .expect("pool line");
    assert!(
        pool.contains(" 7 ") && pool.contains("environment"),
        "{pool}"
    );
    assert!(text.contains("configuration OK"));
}

#[test]
fn a_toml_file_is_read_and_the_environment_wins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("palisade.toml");
    std::fs::write(
        &file,
        "db_pool_max = 9\nport = 4000\nlog_levle = \"debug\"\n",
    )
    .expect("write");
    let path = file.to_string_lossy().into_owned();
    let out = run(&["config", "check", "--config", &path], &[("PORT", "4001")]);
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.lines()
            .any(|l| l.starts_with("DB_POOL_MAX") && l.contains(" 9 ")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("PORT") && l.contains(" 4001 ")),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(2), "the misspelt key is a problem");
    assert!(err.contains("unknown key `log_levle`"), "{err}");
}

#[test]
fn an_empty_variable_leaves_the_file_and_the_default_in_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("palisade.toml");
    std::fs::write(&file, "palisade_env = \"production\"\ndb_pool_max = \"\"\n").expect("write");
    let path = file.to_string_lossy().into_owned();
    let out = run(
        &["config", "check", "--config", &path],
        &[("PALISADE_ENV", ""), ("PORT", "")],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    let line = |key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("no {key} line in:\n{text}"))
            .to_owned()
    };
    assert!(line("PALISADE_ENV").contains("production"), "{text}");
    assert!(
        line("PORT ").contains(" 3000 ") && line("PORT ").contains("default"),
        "{text}"
    );
    assert!(line("DB_POOL_MAX").contains(" 20 "), "{text}");
    // Still production: its floors apply.
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("ENCRYPTION_KEY"), "{err}");
}

#[test]
fn the_seed_refuses_a_production_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/palisade.db", dir.path().display());
    let mut env = PRODUCTION.to_vec();
    env.push(("DATABASE_URL", url.as_str()));
    let out = run(
        &["db", "seed", "--users", "1", "--contracts-per-user", "1"],
        &env,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("refuses to run with PALISADE_ENV=production"),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("passphrase"));
}
