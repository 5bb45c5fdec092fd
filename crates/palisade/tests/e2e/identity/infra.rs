//! `admin:infra` actions: the permission, and a second factor within 10 minutes (step-up).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::api::{now, token, totp};
use crate::backends::{AUDIENCE, Env, ISSUER, PASSWORD, claims_of, subject};

const CLEAR: &str = "/api/v1/admin/infra/cache/clear";

async fn infra_actions_refuse_members_and_password_only_admins(e: Env) {
    let api = &e.api;
    let member = api.signed_up("plain@example.com", PASSWORD).await;
    let member_at = token(&member, "access_token");
    let denied = api
        .send_as(Method::POST, CLEAR, &member_at, None)
        .await
        .expect(StatusCode::FORBIDDEN);
    assert_eq!(denied.code(), "auth.forbidden");
    let no_2fa = api.step_up(&member_at, "123456").await;
    assert_eq!(no_2fa.code(), "auth.2fa_disabled", "{}", no_2fa.body);
    let admin = e.admin("infra@example.com").await;
    let pwd_only = api
        .send_as(Method::POST, CLEAR, &token(&admin, "access_token"), None)
        .await
        .expect(StatusCode::FORBIDDEN);
    assert_eq!(pwd_only.code(), "auth.step_up_required");
}

async fn a_step_up_gives_the_session_a_fresh_second_factor(e: Env) {
    let api = &e.api;
    let admin = e.admin("infra@example.com").await;
    let admin_at = token(&admin, "access_token");
    let (secret, _) = api.enable_2fa(&admin_at, PASSWORD).await;
    let wrong = api.step_up(&admin_at, "000000").await;
    assert_eq!(wrong.code(), "auth.wrong_code", "{}", wrong.body);
    // The confirming code's step is used up: the next step's code.
    let code = totp(&secret, now() + 30);
    let stepped = api.step_up(&admin_at, &code).await.expect(StatusCode::OK);
    assert!(
        stepped.body.get("refresh_token").is_none(),
        "{}",
        stepped.body
    );
    let stepped_at = token(&stepped.body, "access_token");
    let claims = claims_of(&stepped_at);
    assert_eq!(claims["amr"], json!(["pwd", "otp"]));
    assert_eq!(
        claims["sid"],
        claims_of(&admin_at)["sid"],
        "the same session"
    );
    assert!(claims["auth_time"].as_u64().expect("auth_time") + 5 >= now());
    let replayed = api.step_up(&admin_at, &code).await;
    assert_eq!(replayed.code(), "auth.wrong_code", "a used code is refused");
    // The record cache holds the dashboard once read; clearing drops it.
    api.get_as("/api/v1/dashboard", &stepped_at)
        .await
        .expect(StatusCode::OK);
    let cache = api.get_as("/api/v1/admin/infra/cache", &stepped_at).await;
    assert_eq!(cache.body["entries"], 1, "{}", cache.body);
    api.send_as(Method::POST, CLEAR, &stepped_at, None)
        .await
        .expect(StatusCode::NO_CONTENT);
    let cache = api.get_as("/api/v1/admin/infra/cache", &stepped_at).await;
    assert_eq!(cache.body["entries"], 0, "{}", cache.body);
    let audit = api
        .get_as("/api/v1/audit?action=infra.cache_cleared", &stepped_at)
        .await;
    assert_eq!(
        audit.body["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        audit.body
    );
    // The session keeps the step-up: a refresh's token says `otp` too.
    let refreshed = api
        .refresh(&token(&admin, "refresh_token"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        claims_of(&token(&refreshed.body, "access_token"))["amr"],
        json!(["pwd", "otp"])
    );
}

async fn a_second_factor_older_than_ten_minutes_is_not_enough(e: Env) {
    let api = &e.api;
    let admin = e.admin("infra@example.com").await;
    let claims = claims_of(&token(&admin, "access_token"));
    // Tokens signed with the server's key, `otp` 11 and 5 minutes ago, for this very
    // session.
    let user_id = claims["sub"].as_str().expect("sub").to_owned();
    let sid = claims["sid"].as_str().expect("sid").to_owned();
    let signer = e.tokens(AUDIENCE, ISSUER, 900);
    let at_age = |minutes: u64| {
        let mut s = subject(&user_id, &sid, &["admin"]);
        s.amr = vec!["pwd".into(), "otp".into()];
        s.auth_time = now() - minutes * 60;
        signer.issue(s, now())
    };
    let stale = api
        .send_as(Method::POST, CLEAR, &at_age(11), None)
        .await
        .expect(StatusCode::FORBIDDEN);
    assert_eq!(stale.code(), "auth.step_up_required", "{}", stale.body);
    api.send_as(Method::POST, CLEAR, &at_age(5), None)
        .await
        .expect(StatusCode::NO_CONTENT);
}

async fn ops_endpoints_answer_admin_infra_tokens_off_the_allow_list(e: Env) {
    let api = &e.api;
    // No address of this server's is on its allow-list (see `backends::start`).
    api.call(Method::GET, "/metrics", None, &[])
        .await
        .expect(StatusCode::NOT_FOUND);
    let member = api.signed_up("plain@example.com", PASSWORD).await;
    api.get_as("/metrics", &token(&member, "access_token"))
        .await
        .expect(StatusCode::NOT_FOUND);
    let admin = e.admin("infra@example.com").await;
    api.get_as("/metrics", &token(&admin, "access_token"))
        .await
        .expect(StatusCode::OK);
}

async fn parallel_step_up_guesses_stop_at_the_lockout(e: Env) {
    let api = &e.api;
    let admin = e.admin("infra@example.com").await;
    let admin_at = token(&admin, "access_token");
    let (_, backup_codes) = api.enable_2fa(&admin_at, PASSWORD).await;
    let failures = || async {
        let events = api
            .get_as("/api/v1/audit?action=auth.step_up&limit=100", &admin_at)
            .await;
        events.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|e| e["outcome"] == "failure")
            .count()
    };
    let before = failures().await;
    let guess = |n: u32| {
        let code = format!("{:06}", 100_000 + n);
        let at = admin_at.clone();
        async move { api.step_up(&at, &code).await }
    };
    // Of eight at once, five are checked (the threshold) and the rest refused unchecked.
    let answers = tokio::join!(
        guess(1),
        guess(2),
        guess(3),
        guess(4),
        guess(5),
        guess(6),
        guess(7),
        guess(8)
    );
    for a in [
        answers.0, answers.1, answers.2, answers.3, answers.4, answers.5, answers.6, answers.7,
    ] {
        assert_eq!(a.code(), "auth.wrong_code", "{}", a.body);
    }
    assert_eq!(failures().await - before, 5, "checked guesses");
    // Locked: even a valid backup code is refused, and so is the password.
    let locked = api.step_up(&admin_at, &backup_codes[0]).await;
    assert_eq!(locked.code(), "auth.wrong_code", "{}", locked.body);
    assert_eq!(
        api.login("infra@example.com", PASSWORD).await.code(),
        "auth.invalid_credentials"
    );
    // The test's lockout lasts 2 s; then the same backup code works.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    api.step_up(&admin_at, &backup_codes[0])
        .await
        .expect(StatusCode::OK);
}

const VIEWS: [&str; 5] = ["database", "security", "migrations", "system", "cache"];

/// A statistics view, read by a fresh `admin:infra` caller (no step-up needed).
async fn view(e: &Env, name: &str) -> serde_json::Value {
    let admin = e.admin(&format!("ops-{name}@example.com")).await;
    e.api
        .get_as(
            &format!("/api/v1/admin/infra/{name}"),
            &token(&admin, "access_token"),
        )
        .await
        .expect(StatusCode::OK)
        .body
}

async fn infrastructure_statistics_are_for_admin_infra_only(e: Env) {
    let api = &e.api;
    let member = api.signed_up("curious@example.com", PASSWORD).await;
    let member_at = token(&member, "access_token");
    for name in VIEWS {
        let path = format!("/api/v1/admin/infra/{name}");
        let refused = api
            .get_as(&path, &member_at)
            .await
            .expect(StatusCode::FORBIDDEN);
        assert_eq!(refused.code(), "auth.forbidden", "{name}");
        api.call(Method::GET, &path, None, &[])
            .await
            .expect(StatusCode::UNAUTHORIZED);
    }
}

async fn database_statistics_name_the_backend_its_size_and_its_tables(e: Env) {
    // Enough accounts that `users` outgrows every table holding a row or two (the
    // migrations' record, the full-text indexes' bookkeeping).
    let signups = (0..30).map(|i| {
        let api = e.api.clone();
        tokio::spawn(async move {
            api.register(&format!("user{i}@example.com"), PASSWORD, "User")
                .await
                .expect(StatusCode::CREATED);
        })
    });
    for s in signups.collect::<Vec<_>>() {
        s.await.expect("sign-up");
    }
    let db = view(&e, "database").await;
    assert!(
        ["sqlite", "postgres"].contains(&db["backend"].as_str().unwrap_or("")),
        "{db}"
    );
    assert!(db["size_bytes"].as_i64().is_some_and(|n| n > 0), "{db}");
    assert!(
        db["latency_ms"].is_number() && db["pool"]["max"].as_u64().is_some(),
        "{db}"
    );
    let users = db["largest_tables"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "users"))
        .unwrap_or_else(|| panic!("users among the largest tables: {db}"));
    assert!(users["rows"].is_i64(), "{db}");
}

async fn security_statistics_count_failed_sign_ins_by_kind(e: Env) {
    let api = &e.api;
    api.signed_up("curious@example.com", PASSWORD).await;
    api.login("curious@example.com", "not the password at all")
        .await
        .expect(StatusCode::UNAUTHORIZED);
    let security = view(&e, "security").await;
    assert_eq!(security["lockouts_active"], 0, "{security}");
    let hour = &security["windows"][0];
    assert_eq!(hour["window"], "1h", "{security}");
    let wrong_passwords = hour["events"]
        .as_array()
        .and_then(|e| {
            e.iter().find(|e| {
                e["action"] == "auth.login"
                    && e["outcome"] == "failure"
                    && e["reason"] == "password"
            })
        })
        .unwrap_or_else(|| panic!("the failed sign-in is counted: {security}"));
    assert_eq!(wrong_passwords["count"], 1, "{security}");
    assert_eq!(security["windows"][1]["window"], "24h", "{security}");
}

async fn migration_statistics_list_every_applied_migration(e: Env) {
    let migrations = view(&e, "migrations").await;
    assert_eq!(migrations["pending"], 0, "{migrations}");
    assert_eq!(migrations["problems"], 0, "{migrations}");
    let listed = migrations["migrations"].as_array().expect("migrations");
    assert_eq!(
        listed.len() as u64,
        migrations["applied"].as_u64().unwrap_or(0)
    );
    assert!(
        listed
            .iter()
            .all(|m| m["state"] == "applied" && m["applied_at"].is_string())
    );
}

async fn system_and_cache_statistics_describe_this_instance(e: Env) {
    let system = view(&e, "system").await;
    assert!(
        system["version"].as_str().is_some_and(|v| !v.is_empty()),
        "{system}"
    );
    assert!(
        system["open_descriptors"].as_u64().is_some_and(|n| n > 2),
        "{system}"
    );
    assert!(
        system["threads"].as_u64().is_some_and(|n| n >= 1),
        "{system}"
    );
    assert!(
        system["hashing"]["threads"]
            .as_u64()
            .is_some_and(|n| n >= 1),
        "{system}"
    );
    assert_eq!(system["hashing"]["busy"], 0, "{system}");
    let cache = view(&e, "cache").await;
    let names: Vec<&str> = cache["caches"]
        .as_array()
        .expect("caches")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["user_views", "revocations", "rate_limits"],
        "{cache}"
    );
}

on_both!(
    infrastructure_statistics_are_for_admin_infra_only,
    database_statistics_name_the_backend_its_size_and_its_tables,
    security_statistics_count_failed_sign_ins_by_kind,
    migration_statistics_list_every_applied_migration,
    system_and_cache_statistics_describe_this_instance,
    infra_actions_refuse_members_and_password_only_admins,
    a_step_up_gives_the_session_a_fresh_second_factor,
    a_second_factor_older_than_ten_minutes_is_not_enough,
    ops_endpoints_answer_admin_infra_tokens_off_the_allow_list,
    parallel_step_up_guesses_stop_at_the_lockout,
);
