//! Account e-mail against a real SMTP server (aiosmtpd, STARTTLS with a certificate
//! from a test authority): the token taken from each received mail completes its flow;
//! a used or expired token is refused; a reset ends every session; mail queued while
//! the server is down arrives once it is up; a fourth mail to one address within the
//! hour is not sent; an unverified address cannot sign in when that is required.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::api::token;
use crate::backends::{Env, PASSWORD, start_with};
use crate::peers::SmtpServer;

const NEW_PASSWORD: &str = "a brand new passphrase for 2027";
const WAIT: Duration = Duration::from_secs(15);

async fn env_with(pg: bool, smtp: &SmtpServer, extra: &[(&'static str, &str)]) -> Env {
    let settings = smtp.settings();
    let mut all: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(&[
        ("PALISADE_RATE_LIMIT_AUTH", "1000/1m"),
        ("PALISADE_PUBLIC_URL", "https://app.example.com"),
        ("PALISADE_MAIL_FROM", "Palisade <no-reply@example.com>"),
    ]);
    all.extend_from_slice(extra);
    start_with(pg, &all).await
}

async fn verify(e: &Env, token: &str) -> StatusCode {
    e.api
        .post("/api/v1/auth/verify-email", json!({ "token": token }))
        .await
        .status
}

async fn forgot(e: &Env, email: &str) {
    e.api
        .post("/api/v1/auth/password/forgot", json!({ "email": email }))
        .await
        .expect(StatusCode::ACCEPTED);
}

async fn request_verification(e: &Env, at: &str, want: StatusCode) {
    e.api
        .send_as(Method::POST, "/api/v1/auth/verify-email/request", at, None)
        .await
        .expect(want);
}

async fn every_flow_completes_from_the_mail_it_sends(pg: bool) {
    let smtp = SmtpServer::start(true);
    let e = env_with(pg, &smtp, &[]).await;
    let signed = e.api.signed_up("ada@example.com", PASSWORD).await;
    let at = token(&signed, "access_token");
    let refresh = token(&signed, "refresh_token");
    assert_eq!(signed["user"]["email_verified"], false);

    // Verification.
    request_verification(&e, &at, StatusCode::ACCEPTED).await;
    let mail = smtp
        .wait_for("ada@example.com", "Confirm your e-mail", WAIT)
        .await;
    assert!(mail.from.contains("no-reply@example.com"), "{mail:?}");
    assert!(
        mail.text
            .contains("https://app.example.com/verify-email#token="),
        "{mail:?}"
    );
    assert!(mail.html.contains("<a href="), "an HTML part too: {mail:?}");
    let t = mail.token();
    assert_eq!(t.len(), 43, "256 bits, base64url: {t}");
    assert_eq!(verify(&e, "not-a-token").await, StatusCode::NOT_FOUND);
    assert_eq!(verify(&e, &t).await, StatusCode::NO_CONTENT);
    assert_eq!(verify(&e, &t).await, StatusCode::NOT_FOUND, "single use");
    let me = e.api.get_as("/api/v1/me", &at).await.expect(StatusCode::OK);
    assert_eq!(me.body["email_verified"], true);

    // A forgotten password: a weak new one keeps the token; the reset ends every
    // session.
    forgot(&e, "ADA@example.com").await;
    let mail = smtp
        .wait_for("ada@example.com", "Reset your password", WAIT)
        .await;
    let t = mail.token();
    let reset = |password: &'static str, t: String| {
        let api = e.api.clone();
        async move {
            api.post(
                "/api/v1/auth/password/reset",
                json!({"token": t, "new_password": password}),
            )
            .await
        }
    };
    reset("password1234", t.clone())
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    reset(NEW_PASSWORD, t.clone())
        .await
        .expect(StatusCode::NO_CONTENT);
    reset(NEW_PASSWORD, t).await.expect(StatusCode::NOT_FOUND);
    e.api
        .get_as("/api/v1/me", &at)
        .await
        .expect(StatusCode::UNAUTHORIZED);
    e.api
        .post("/api/v1/auth/refresh", json!({ "refresh_token": refresh }))
        .await
        .expect(StatusCode::UNAUTHORIZED);
    e.api
        .login("ada@example.com", PASSWORD)
        .await
        .expect(StatusCode::UNAUTHORIZED);
    let login = e
        .api
        .login("ada@example.com", NEW_PASSWORD)
        .await
        .expect(StatusCode::OK);
    let at = token(&login.body, "access_token");
    // The password change is also a security notice by mail.
    smtp.wait_for("ada@example.com", "Password changed", WAIT)
        .await;

    // A change of address: password required; the new address confirms; the old one
    // is told.
    let change = |body: serde_json::Value| {
        let (api, at) = (e.api.clone(), at.clone());
        async move {
            api.send_as(Method::POST, "/api/v1/me/email", &at, Some(body))
                .await
        }
    };
    change(json!({"new_email": "ada@new.example.com", "password": "wrong password 123"}))
        .await
        .expect(StatusCode::FORBIDDEN);
    change(json!({"new_email": "not an address", "password": NEW_PASSWORD}))
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    change(json!({"new_email": "ada@new.example.com", "password": NEW_PASSWORD}))
        .await
        .expect(StatusCode::ACCEPTED);
    smtp.wait_for("ada@example.com", "change of your e-mail address", WAIT)
        .await;
    let mail = smtp
        .wait_for("ada@new.example.com", "Confirm your new e-mail", WAIT)
        .await;
    let me = e.api.get_as("/api/v1/me", &at).await.expect(StatusCode::OK);
    assert_eq!(me.body["email"], "ada@example.com", "not before the link");
    assert_eq!(verify(&e, &mail.token()).await, StatusCode::NO_CONTENT);
    let me = e.api.get_as("/api/v1/me", &at).await.expect(StatusCode::OK);
    assert_eq!(me.body["email"], "ada@new.example.com");
    assert_eq!(me.body["email_verified"], true);
    smtp.wait_for("ada@example.com", "address was changed", WAIT)
        .await;
    e.api
        .login("ada@new.example.com", NEW_PASSWORD)
        .await
        .expect(StatusCode::OK);
    e.api
        .login("ada@example.com", NEW_PASSWORD)
        .await
        .expect(StatusCode::UNAUTHORIZED);

    // A forgotten password for an address without an account: the same answer, and
    // no mail.
    let before = smtp.received().len();
    let r = e
        .api
        .post(
            "/api/v1/auth/password/forgot",
            json!({"email": "nobody@example.com"}),
        )
        .await
        .expect(StatusCode::ACCEPTED);
    assert_eq!(r.body, serde_json::Value::Null);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(smtp.received().len(), before);
}

/// A token past its time is refused, as an unknown one.
async fn an_expired_token_is_refused(pg: bool) {
    let smtp = SmtpServer::start(true);
    let e = env_with(pg, &smtp, &[]).await;
    e.api.signed_up("bob@example.com", PASSWORD).await;
    forgot(&e, "bob@example.com").await;
    let mail = smtp
        .wait_for("bob@example.com", "Reset your password", WAIT)
        .await;
    expire_tokens(&e).await;
    e.api
        .post(
            "/api/v1/auth/password/reset",
            json!({"token": mail.token(), "new_password": NEW_PASSWORD}),
        )
        .await
        .expect(StatusCode::NOT_FOUND);
}

/// Moves every link's expiry to the past, in the server's database.
async fn expire_tokens(e: &Env) {
    let url = e.database_url();
    if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(url).await.expect("postgres");
        sqlx::query("UPDATE account_tokens SET expires_at = now() - interval '1 minute'")
            .execute(&pool)
            .await
            .expect("expire");
    } else {
        let pool = sqlx::SqlitePool::connect(url).await.expect("sqlite");
        sqlx::query("UPDATE account_tokens SET expires_at = '2000-01-01T00:00:00Z'")
            .execute(&pool)
            .await
            .expect("expire");
    }
}

/// At most three mails an hour to one address, whoever asks and through whichever
/// instance: the verification request says so (429), the forgotten password does not
/// (its answer tells nothing).
async fn a_fourth_mail_within_the_hour_is_not_sent(pg: bool) {
    let smtp = SmtpServer::start(true);
    let e = env_with(pg, &smtp, &[]).await;
    let signed = e.api.signed_up("cap@example.com", PASSWORD).await;
    let at = token(&signed, "access_token");
    for _ in 0..2 {
        request_verification(&e, &at, StatusCode::ACCEPTED).await;
    }
    forgot(&e, "cap@example.com").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The count is the database's: another instance refuses the fourth as well.
    let (_second, other) = e.second_instance();
    let r = other
        .send_as(Method::POST, "/api/v1/auth/verify-email/request", &at, None)
        .await
        .expect(StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.body["code"], "mail.too_many");
    request_verification(&e, &at, StatusCode::TOO_MANY_REQUESTS).await;
    forgot(&e, "cap@example.com").await;
    let deadline = Instant::now() + WAIT;
    while smtp.received().len() < 3 {
        assert!(Instant::now() < deadline, "{:#?}", smtp.received());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(smtp.received().len(), 3, "{:#?}", smtp.received());
}

/// With verification required, a right password for an unverified address answers
/// 403 (a wrong one still 401); after the link, the sign-in goes through.
async fn an_unverified_address_cannot_sign_in_when_required(pg: bool) {
    let smtp = SmtpServer::start(true);
    let e = env_with(pg, &smtp, &[("PALISADE_REQUIRE_VERIFIED_EMAIL", "true")]).await;
    e.api
        .register("eve@example.com", PASSWORD, "Eve")
        .await
        .expect(StatusCode::CREATED);
    e.api
        .login("eve@example.com", "a wrong password 1234")
        .await
        .expect(StatusCode::UNAUTHORIZED);
    let r = e
        .api
        .login("eve@example.com", PASSWORD)
        .await
        .expect(StatusCode::FORBIDDEN);
    assert_eq!(r.body["code"], "auth.email_unverified");
    // Registration mailed the link, since sign-in needs it; the refused sign-in with
    // the right password mailed a new one, which ended the first.
    let deadline = Instant::now() + WAIT;
    let links = loop {
        let links: Vec<_> = smtp
            .received()
            .into_iter()
            .filter(|m| {
                m.to.contains("eve@example.com") && m.subject.contains("Confirm your e-mail")
            })
            .collect();
        if links.len() == 2 {
            break links;
        }
        assert!(Instant::now() < deadline, "{links:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (first, second) = (links[0].token(), links[1].token());
    assert_ne!(first, second);
    // (The Maildir does not say which came first.) One verifies; the other is refused.
    let mut answers = [verify(&e, &first).await, verify(&e, &second).await];
    answers.sort();
    assert_eq!(answers, [StatusCode::NO_CONTENT, StatusCode::NOT_FOUND]);
    e.api
        .login("eve@example.com", PASSWORD)
        .await
        .expect(StatusCode::OK);
}

on_both_backends!(
    every_flow_completes_from_the_mail_it_sends,
    an_expired_token_is_refused,
    a_fourth_mail_within_the_hour_is_not_sent,
    an_unverified_address_cannot_sign_in_when_required,
    mail_queued_while_the_smtp_server_is_down_arrives_once,
    a_reset_ends_the_links_mailed_before,
    a_change_of_address_with_2fa_needs_a_code,
    a_reset_lifts_a_lockout_and_logs_hold_no_secret,
);

/// The SMTP server is down when the mail is queued: sending fails and is retried;
/// once the server is up the mail arrives, once.
async fn mail_queued_while_the_smtp_server_is_down_arrives_once(pg: bool) {
    let mut smtp = SmtpServer::unstarted(false);
    let e = env_with(pg, &smtp, &[]).await;
    e.api.signed_up("dan@example.com", PASSWORD).await;
    forgot(&e, "dan@example.com").await;
    let deadline = Instant::now() + WAIT;
    while failed_sends(&e).await == 0 {
        assert!(
            Instant::now() < deadline,
            "no failed attempt while the server is down"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    smtp.restart();
    smtp.wait_for(
        "dan@example.com",
        "Reset your password",
        Duration::from_secs(20),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let resets = smtp
        .received()
        .iter()
        .filter(|m| m.subject.contains("Reset"))
        .count();
    assert_eq!(resets, 1);
}

/// `emails_total{outcome="failed"}` of the server, summed over templates.
async fn failed_sends(e: &Env) -> u64 {
    let metrics = e
        .api
        .http
        .get(format!("{}/metrics", e.api.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics");
    metrics
        .lines()
        .filter(|l| l.starts_with("emails_total{") && l.contains("outcome=\"failed\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// A forgotten-password request takes the same time for a registered and an
/// unregistered address, measured as bench/login_timing.py measures it (interleaved
/// pairs, the difference of the medians). The answer comes before any lookup, so the
/// two differ by noise only; work done in the request for a known address (a lookup, a
/// token, a queued mail: milliseconds) would show above the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_password_takes_the_same_time_for_any_address() {
    let smtp = SmtpServer::start(true);
    let e = env_with(false, &smtp, &[("PALISADE_LOCKOUT_THRESHOLD", "100")]).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/login_timing.py");
    let out = tokio::process::Command::new("python3")
        .args([script, e.api.base.trim_end_matches('/'), "60", "forgot"])
        .output()
        .await
        .expect("python3");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let diff: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("median difference: "))
        .and_then(|l| l.split(' ').next()?.parse().ok())
        .expect("the median difference");
    assert!(diff.abs() < 1.5, "{text}");
}

/// With 2FA on, a change of address needs a code besides the password; a wrong one is
/// refused, a backup code does.
async fn a_change_of_address_with_2fa_needs_a_code(pg: bool) {
    let smtp = SmtpServer::start(true);
    let e = env_with(pg, &smtp, &[]).await;
    let signed = e.api.signed_up("gus@example.com", PASSWORD).await;
    let at = token(&signed, "access_token");
    let (_, backup) = e.api.enable_2fa(&at, PASSWORD).await;
    let change = |extra: serde_json::Value| {
        let (api, at) = (e.api.clone(), at.clone());
        let mut body = json!({"new_email": "gus@new.example.com", "password": PASSWORD});
        if let (Some(b), serde_json::Value::Object(x)) = (body.as_object_mut(), extra) {
            b.extend(x);
        }
        async move {
            api.send_as(Method::POST, "/api/v1/me/email", &at, Some(body))
                .await
        }
    };
    let r = change(json!({}))
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["errors"][0]["field"], "code", "{}", r.body);
    let r = change(json!({"code": "000000"}))
        .await
        .expect(StatusCode::FORBIDDEN);
    assert_eq!(r.body["code"], "auth.wrong_code");
    change(json!({"code": backup[0]}))
        .await
        .expect(StatusCode::ACCEPTED);
    smtp.wait_for("gus@new.example.com", "Confirm your new e-mail", WAIT)
        .await;
}

/// A reset lifts a lockout; no token of any link, and no password, reaches the logs.
async fn a_reset_lifts_a_lockout_and_logs_hold_no_secret(pg: bool) {
    let smtp = SmtpServer::start(true);
    let e = env_with(pg, &smtp, &[("PALISADE_LOCKOUT_THRESHOLD", "3")]).await;
    e.api.signed_up("hal@example.com", PASSWORD).await;
    for _ in 0..3 {
        e.api
            .login("hal@example.com", "a wrong password 1234")
            .await
            .expect(StatusCode::UNAUTHORIZED);
    }
    e.api
        .login("hal@example.com", PASSWORD)
        .await
        .expect(StatusCode::UNAUTHORIZED);
    forgot(&e, "hal@example.com").await;
    let mail = smtp
        .wait_for("hal@example.com", "Reset your password", WAIT)
        .await;
    e.api
        .post(
            "/api/v1/auth/password/reset",
            json!({"token": mail.token(), "new_password": NEW_PASSWORD}),
        )
        .await
        .expect(StatusCode::NO_CONTENT);
    e.api
        .login("hal@example.com", NEW_PASSWORD)
        .await
        .expect(StatusCode::OK);
    let logs = e.server().logs();
    for secret in [mail.token().as_str(), NEW_PASSWORD, PASSWORD] {
        assert!(!logs.contains(secret), "{secret} logged:\n{logs}");
    }
}

/// A reset ends the links mailed before it: a pending change of address cannot be
/// confirmed after the owner took their account back.
async fn a_reset_ends_the_links_mailed_before(pg: bool) {
    let smtp = SmtpServer::start(true);
    let e = env_with(pg, &smtp, &[]).await;
    let signed = e.api.signed_up("fay@example.com", PASSWORD).await;
    let at = token(&signed, "access_token");
    e.api
        .send_as(
            Method::POST,
            "/api/v1/me/email",
            &at,
            Some(json!({"new_email": "thief@example.com", "password": PASSWORD})),
        )
        .await
        .expect(StatusCode::ACCEPTED);
    let change = smtp
        .wait_for("thief@example.com", "Confirm your new e-mail", WAIT)
        .await;
    forgot(&e, "fay@example.com").await;
    let reset = smtp
        .wait_for("fay@example.com", "Reset your password", WAIT)
        .await;
    e.api
        .post(
            "/api/v1/auth/password/reset",
            json!({"token": reset.token(), "new_password": NEW_PASSWORD}),
        )
        .await
        .expect(StatusCode::NO_CONTENT);
    assert_eq!(verify(&e, &change.token()).await, StatusCode::NOT_FOUND);
    e.api
        .login("fay@example.com", NEW_PASSWORD)
        .await
        .expect(StatusCode::OK);
}
