use super::*;

/// A production mail set-up: the cases about other keys start from it (and may
/// override it).
const PRODUCTION_MAIL: [(&str, &str); 3] = [
    (
        "SMTP_URL",
        "smtps://mailer:a-long-password@mail.example.com",
    ),
    ("PALISADE_MAIL_FROM", "Acme <no-reply@example.com>"),
    ("PALISADE_PUBLIC_URL", "https://app.example.com"),
];

fn values(overrides: &[(&'static str, &str)]) -> BTreeMap<&'static str, String> {
    let mut v: BTreeMap<&'static str, String> = KEYS
        .iter()
        .filter_map(|k| k.default.map(|d| (k.env, d.to_owned())))
        .collect();
    if overrides.contains(&("PALISADE_ENV", "production")) {
        for (k, val) in PRODUCTION_MAIL {
            v.insert(k, val.to_owned());
        }
    }
    for (k, val) in overrides {
        v.insert(k, (*val).to_owned());
    }
    v
}

fn problems_of(overrides: &[(&'static str, &str)]) -> Vec<String> {
    build(&values(overrides)).err().unwrap_or_default()
}

fn valid(overrides: &[(&'static str, &str)]) -> Config {
    build(&values(overrides)).unwrap_or_else(|p| panic!("{p:#?}"))
}

#[test]
fn the_defaults_are_a_valid_development_configuration() {
    let c = valid(&[]);
    assert_eq!(c.env, Environment::Development);
    let store = &c.database.store;
    assert_eq!(store.url, "sqlite://data/palisade.db");
    assert_eq!(store.pool_max, 20);
    assert_eq!(store.idle_timeout, Duration::from_secs(30));
    assert_eq!(store.connect_timeout, Duration::from_secs(2));
    assert_eq!(c.http.body_limit, 1 << 20);
    assert_eq!(c.http.request_timeout, Duration::from_secs(30));
    assert_eq!(c.http.header_read_timeout, Duration::from_secs(10));
    assert_eq!(c.http.ops_allow.len(), 2);
    assert_eq!(c.listen.port(), 3000);
    assert!(c.redis.is_none());
}

#[test]
fn every_key_of_the_registry_is_read_and_its_default_parses() {
    let values = values(&[]);
    let mut r = Reader::new(&values);
    let config = sections(&mut r);
    assert!(
        config.is_some() && r.problems.is_empty(),
        "{:#?}",
        r.problems
    );
    for key in KEYS {
        assert!(
            r.read().contains(key.env),
            "{} is in the registry but nothing reads it",
            key.env
        );
    }
}

#[test]
fn an_empty_value_takes_the_default() {
    let empty: Vec<(&'static str, &str)> = KEYS.iter().map(|k| (k.env, "")).collect();
    let c = valid(&empty);
    assert_eq!(c.http.body_limit, 1 << 20);
    assert_eq!(c.http.request_timeout, Duration::from_secs(30));
    assert_eq!(c.database.store.url, "sqlite://data/palisade.db");
    assert_eq!(c.listen.port(), 3000);
    assert!(c.redis.is_none());
    // In production too: an empty secret is still missing, not a default.
    let p = problems_of(&[("PALISADE_ENV", "production"), ("JWT_SECRET", "")]);
    assert!(p.iter().any(|p| p.contains("JWT_SECRET")), "{p:?}");
}

#[test]
fn the_readme_lists_every_key_with_its_default() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let table = registry::markdown_table();
    assert!(
        readme.contains(&table),
        "README.md's configuration table differs from the registry; it should read:\n\n{table}"
    );
}

#[test]
fn reference_style_millisecond_pool_settings_are_understood() {
    let c = valid(&[
        ("DB_IDLE_TIMEOUT", "30000"),
        ("DB_CONNECTION_TIMEOUT", "2000"),
    ]);
    assert_eq!(c.database.store.idle_timeout, Duration::from_secs(30));
    assert_eq!(c.database.store.connect_timeout, Duration::from_secs(2));
}

#[test]
fn every_problem_is_reported_at_once() {
    let p = problems_of(&[
        ("PORT", "eighty"),
        ("DATABASE_URL", "mysql://root:hunter2@db/x"),
        ("DB_POOL_MAX", "0"),
        ("PALISADE_BODY_LIMIT", "20MiB"),
        ("ALLOWED_ORIGINS", "https://ok.example,null"),
        ("PALISADE_TRUSTED_PROXIES", "10.0.0.0/99"),
        ("ENCRYPTION_KEY", "abc"),
        ("LOG_LEVEL", "loud[["),
    ]);
    for key in [
        "PORT",
        "DATABASE_URL",
        "DB_POOL_MAX",
        "PALISADE_BODY_LIMIT",
        "ALLOWED_ORIGINS",
        "PALISADE_TRUSTED_PROXIES",
        "ENCRYPTION_KEY",
        "LOG_LEVEL",
    ] {
        assert!(
            p.iter().any(|m| m.starts_with(key)),
            "no problem for {key}: {p:#?}"
        );
    }
    assert!(
        p.iter().all(|m| !m.contains("hunter2")),
        "a password leaked into a message: {p:#?}"
    );
}

#[test]
fn wildcard_and_null_origins_are_refused_everywhere() {
    assert!(
        problems_of(&[("ALLOWED_ORIGINS", "*")])
            .iter()
            .any(|m| m.contains("`*` is not allowed"))
    );
    assert!(
        problems_of(&[("ALLOWED_ORIGINS", "null")])
            .iter()
            .any(|m| m.contains("`null` origin"))
    );
}

const STRONG_JWT: &str = "6f1c0e5b9a7d4c2e8b3a1f0d9c8e7b6a5f4e3d2c1b0a9f8e";
const STRONG_KEY: &str = "3b8f2a9c7e1d6b4a0f5e8c2d9a7b3e1f6c4d8a2b0e9f7c5d3a1b6e8f2c4d9a07";

#[test]
fn production_refuses_weak_secrets_wildcards_and_plain_http_cookies() {
    let p = problems_of(&[
        ("PALISADE_ENV", "production"),
        ("JWT_SECRET", "your-secret-key-change-me-please-in-prod"),
        ("ENCRYPTION_KEY", &"0".repeat(64)),
        ("PALISADE_COOKIE_SECURE", "false"),
        ("ALLOWED_ORIGINS", "http://app.example.com"),
    ]);
    assert_eq!(p.len(), 4, "{p:#?}");
    assert!(p.iter().any(|m| m.starts_with("JWT_SECRET")));
    assert!(p.iter().any(|m| m.starts_with("ENCRYPTION_KEY")));
    assert!(p.iter().any(|m| m.starts_with("PALISADE_COOKIE_SECURE")));
    assert!(p.iter().any(|m| m.starts_with("ALLOWED_ORIGINS")));
    assert!(
        problems_of(&[("PALISADE_ENV", "production"), ("JWT_SECRET", "short")])
            .iter()
            .any(|m| m.contains("too short"))
    );
}

#[test]
fn production_accepts_strong_settings() {
    let p = problems_of(&[
        ("PALISADE_ENV", "production"),
        ("JWT_SECRET", STRONG_JWT),
        ("ENCRYPTION_KEY", STRONG_KEY),
        ("ALLOWED_ORIGINS", "https://app.example.com"),
    ]);
    assert!(p.is_empty(), "{p:#?}");
}

#[test]
fn the_same_weak_secret_is_tolerated_in_development() {
    assert!(problems_of(&[("JWT_SECRET", "secret-secret-secret-secret-secret")]).is_empty());
}

#[test]
fn hs256_secrets_shorter_than_32_bytes_are_refused_everywhere() {
    let p = problems_of(&[("JWT_SECRET", "secret")]);
    assert!(p.iter().any(|m| m.contains("at least 32 bytes")), "{p:?}");
}

#[test]
fn production_needs_an_explicit_signing_key_and_encryption_key() {
    let p = problems_of(&[
        ("PALISADE_ENV", "production"),
        ("ALLOWED_ORIGINS", "https://app.example.com"),
    ]);
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(p.iter().any(|m| m.contains("PALISADE_JWT_KEY_FILE")));
    assert!(p.iter().any(|m| m.starts_with("ENCRYPTION_KEY")));
}

#[test]
fn production_refuses_a_weakened_lockout() {
    let p = problems_of(&[
        ("PALISADE_ENV", "production"),
        ("JWT_SECRET", STRONG_JWT),
        ("ENCRYPTION_KEY", STRONG_KEY),
        ("PALISADE_LOCKOUT_WINDOW", "0s"),
        ("PALISADE_LOCKOUT_DURATION", "1m"),
        ("PALISADE_LOCKOUT_THRESHOLD", "50"),
    ]);
    assert_eq!(p.len(), 3, "{p:#?}");
    assert!(
        problems_of(&[("PALISADE_LOCKOUT_DURATION", "2s")]).is_empty(),
        "tests may shorten it"
    );
}

#[test]
fn identity_defaults_follow_the_baseline() {
    let c = valid(&[]);
    let id = &c.identity;
    assert_eq!(id.access_ttl, Duration::from_secs(15 * 60));
    assert_eq!(id.settings.refresh_idle, Duration::from_secs(7 * 24 * 3600));
    assert_eq!(
        id.settings.refresh_absolute,
        Duration::from_secs(30 * 24 * 3600)
    );
    assert_eq!(id.settings.refresh_grace, Duration::from_secs(10));
    assert_eq!(id.settings.max_sessions, 10);
    assert_eq!(id.settings.lockout.threshold, 5);
    assert_eq!(id.settings.lockout.window, Duration::from_secs(15 * 60));
    assert!(id.cookie_secure);
    assert_eq!(id.hash_threads, None, "one per core, decided at start");
}

#[test]
fn hash_threads_are_a_count() {
    let c = valid(&[("PALISADE_HASH_THREADS", "3")]);
    assert_eq!(c.identity.hash_threads, Some(3));
    for bad in ["0", "many", "-1", "257"] {
        let problems = problems_of(&[("PALISADE_HASH_THREADS", bad)]);
        assert!(
            problems.iter().any(|p| p.contains("PALISADE_HASH_THREADS")),
            "{bad}: {problems:?}"
        );
    }
}

#[test]
fn production_refuses_allow_lists_of_every_address() {
    for key in [
        "PALISADE_TRUSTED_PROXIES",
        "PALISADE_OPS_ALLOW",
        "PALISADE_RATE_LIMIT_ALLOW",
    ] {
        for everyone in [
            "0.0.0.0/0",
            "10.0.0.0/8,::/0",
            "0.0.0.0/1,128.0.0.0/1",
            "::/1,8000::/1",
        ] {
            let p = problems_of(&[
                ("PALISADE_ENV", "production"),
                ("JWT_SECRET", STRONG_JWT),
                ("ENCRYPTION_KEY", STRONG_KEY),
                (key, everyone),
            ]);
            assert_eq!(p.len(), 1, "{key}={everyone}: {p:#?}");
            assert!(p[0].starts_with(key), "{p:?}");
            assert!(
                problems_of(&[(key, everyone)]).is_empty(),
                "development allows it"
            );
        }
        let half = problems_of(&[
            ("PALISADE_ENV", "production"),
            ("JWT_SECRET", STRONG_JWT),
            ("ENCRYPTION_KEY", STRONG_KEY),
            (key, "0.0.0.0/1,128.0.0.0/2,::1/128"),
        ]);
        assert!(half.is_empty(), "{key}: {half:?}");
    }
}

#[test]
fn production_refuses_a_loose_auth_tier_and_a_long_header_timeout() {
    let production = |extra: (&'static str, &'static str)| {
        problems_of(&[
            ("PALISADE_ENV", "production"),
            ("JWT_SECRET", STRONG_JWT),
            ("ENCRYPTION_KEY", STRONG_KEY),
            extra,
        ])
    };
    // 200/1h is slower than 100/15m, but the tier's burst is its whole count.
    for loose in ["101/15m", "10/1m", "1000/1h", "200/1h", "101/1d"] {
        let p = production(("PALISADE_RATE_LIMIT_AUTH", loose));
        assert!(
            p.len() == 1 && p[0].starts_with("PALISADE_RATE_LIMIT_AUTH"),
            "{loose}: {p:?}"
        );
    }
    for fine in ["100/15m", "10/15m", "5/1m", "100/1h"] {
        assert!(
            production(("PALISADE_RATE_LIMIT_AUTH", fine)).is_empty(),
            "{fine}"
        );
    }
    let p = production(("PALISADE_HEADER_READ_TIMEOUT", "61s"));
    assert!(
        p.len() == 1 && p[0].starts_with("PALISADE_HEADER_READ_TIMEOUT"),
        "{p:?}"
    );
    assert!(production(("PALISADE_HEADER_READ_TIMEOUT", "60s")).is_empty());
    assert!(problems_of(&[("PALISADE_HEADER_READ_TIMEOUT", "5m")]).is_empty());
}

#[test]
fn secrets_are_parsed_once_and_never_debug_printed() {
    let c = valid(&[
        ("JWT_SECRET", STRONG_JWT),
        ("ENCRYPTION_KEY", STRONG_KEY),
        ("REDIS_URL", "redis://:hunter2-redis@cache:6379"),
    ]);
    let shown = format!("{c:?}");
    for secret in [STRONG_JWT, STRONG_KEY, "hunter2-redis"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(matches!(&c.identity.signing, Signing::Hs256(s) if s.expose() == STRONG_JWT));
    assert_eq!(
        c.identity.encryption_key.as_ref().map(|k| k.expose()[0]),
        Some(0x3b)
    );
}

#[test]
fn secrets_are_redacted_when_shown() {
    let jwt = registry::find("JWT_SECRET").expect("key");
    assert_eq!(show(jwt, Some(STRONG_JWT)), "(set, redacted)");
    let db = registry::find("DATABASE_URL").expect("key");
    assert_eq!(
        show(db, Some("postgres://app:pw@h/db")),
        "postgres://app:***@h/db"
    );
}

#[test]
fn billing_is_off_by_default_with_the_default_plans() {
    let c = valid(&[]);
    assert!(!c.billing.enabled);
    let ids: Vec<_> = c
        .billing
        .plans
        .all()
        .iter()
        .map(|p| p.id.as_str())
        .collect();
    assert_eq!(ids, ["free", "pro"]);
}

#[test]
fn billing_through_stripe_needs_its_keys_and_a_plan_for_sale() {
    let p = problems_of(&[("PALISADE_BILLING", "stripe")]);
    for key in [
        "STRIPE_SECRET_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "PALISADE_BILLING_PLANS",
    ] {
        assert!(p.iter().any(|m| m.starts_with(key)), "{key}: {p:?}");
    }
    let plans =
        r#"[{"id":"free","name":"Free"},{"id":"pro","name":"Pro","stripe_price":"price_1"}]"#;
    let c = valid(&[
        ("PALISADE_BILLING", "stripe"),
        ("PALISADE_BILLING_PLANS", plans),
        ("STRIPE_SECRET_KEY", "sk_test_1"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_1"),
    ]);
    assert!(c.billing.enabled);
    let p = problems_of(&[
        ("PALISADE_BILLING", "yes"),
        ("PALISADE_BILLING_PLANS", "[]"),
    ]);
    assert!(p.iter().any(|m| m.contains("off or stripe")), "{p:?}");
    assert!(p.iter().any(|m| m.contains("at least one plan")), "{p:?}");
}

#[test]
fn production_needs_an_smtp_server_a_sender_and_an_https_public_url() {
    let p = problems_of(&[
        ("PALISADE_ENV", "production"),
        ("JWT_SECRET", STRONG_JWT),
        ("ENCRYPTION_KEY", STRONG_KEY),
        ("ALLOWED_ORIGINS", "https://app.example.com"),
        ("SMTP_URL", ""),
        ("PALISADE_MAIL_FROM", ""),
        ("PALISADE_PUBLIC_URL", "http://app.example.com"),
    ]);
    assert_eq!(p.len(), 3, "{p:#?}");
    for key in ["SMTP_URL", "PALISADE_MAIL_FROM", "PALISADE_PUBLIC_URL"] {
        assert!(p.iter().any(|m| m.starts_with(key)), "{key}: {p:#?}");
    }
    // In development, mail without a server goes to files.
    let c = valid(&[]);
    assert!(matches!(c.mail.transport, TransportSettings::Files(_)));
    let p = problems_of(&[("SMTP_URL", "http://mail.example.com")]);
    assert!(p.iter().any(|m| m.starts_with("SMTP_URL")), "{p:#?}");
    // Production: no clear-text SMTP but to this host, a sender of its own domain, and
    // links that are the public site's.
    let p = problems_of(&[
        ("PALISADE_ENV", "production"),
        ("JWT_SECRET", STRONG_JWT),
        ("ENCRYPTION_KEY", STRONG_KEY),
        ("ALLOWED_ORIGINS", "https://app.example.com"),
        ("SMTP_URL", "smtp://mail.example.com:25?tls=none"),
        ("PALISADE_MAIL_FROM", "root@localhost"),
        ("PALISADE_PUBLIC_URL", "https://app.example.com/?next=x"),
    ]);
    assert_eq!(p.len(), 3, "{p:#?}");
    let p = problems_of(&[
        ("PALISADE_ENV", "production"),
        ("JWT_SECRET", STRONG_JWT),
        ("ENCRYPTION_KEY", STRONG_KEY),
        ("ALLOWED_ORIGINS", "https://app.example.com"),
        ("SMTP_URL", "smtp://127.0.0.1:25?tls=none"),
    ]);
    assert!(p.is_empty(), "a relay on this host: {p:#?}");
}
