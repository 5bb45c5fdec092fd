//! TOTP two-factor sign-in with backup codes.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api::{now, token, totp};
use crate::backends::{Env, PASSWORD, claims_of};

async fn two_factor_login_with_totp_and_backup_codes(e: Env) {
    let api = &e.api;
    let login = api.signed_up("otp@example.com", PASSWORD).await;
    let at = token(&login, "access_token");
    let wrong_pw = api.setup_2fa(&at, "nope nope nope").await;
    assert_eq!(wrong_pw.status, StatusCode::FORBIDDEN);
    let setup = api.setup_2fa(&at, PASSWORD).await.expect(StatusCode::OK);
    let secret = token(&setup.body, "secret");
    assert!(token(&setup.body, "otpauth_uri").starts_with("otpauth://totp/"));
    assert!(token(&setup.body, "qr_svg").contains("<svg"));
    // Not on until confirmed.
    assert_eq!(
        api.login("otp@example.com", PASSWORD).await.body["mfa_required"],
        Value::Null
    );

    let bad = api
        .send_as(
            Method::POST,
            "/api/v1/me/2fa/confirm",
            &at,
            Some(json!({"code": "000000"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::FORBIDDEN);
    let confirm = api
        .send_as(
            Method::POST,
            "/api/v1/me/2fa/confirm",
            &at,
            Some(json!({"code": totp(&secret, now())})),
        )
        .await
        .expect(StatusCode::OK);
    let codes: Vec<String> = confirm.body["backup_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_owned())
        .collect();
    assert_eq!(codes.len(), 10);

    let step1 = api.login("otp@example.com", PASSWORD).await;
    assert_eq!(step1.body["mfa_required"], true, "{}", step1.body);
    assert!(step1.body.get("access_token").is_none());
    let mfa = token(&step1.body, "mfa_token");
    // The next step's code (±1 step is accepted; the confirming code's step is used up).
    let code = totp(&secret, now() + 30);
    let step2 = api.login_mfa(&mfa, &code).await.expect(StatusCode::OK);
    assert_eq!(
        claims_of(&token(&step2.body, "access_token"))["amr"],
        json!(["pwd", "otp"])
    );
    // The mfa token is single use, and the code is refused a second time.
    let again = api.login_mfa(&mfa, &code).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    let fresh = token(
        &api.login("otp@example.com", PASSWORD).await.body,
        "mfa_token",
    );
    let replay = api.login_mfa(&fresh, &code).await;
    assert_eq!(
        replay.status,
        StatusCode::UNAUTHORIZED,
        "a used code is refused"
    );

    // A backup code works once.
    let fresh = token(
        &api.login("otp@example.com", PASSWORD).await.body,
        "mfa_token",
    );
    let _backup = api
        .login_mfa(&fresh, &codes[0].to_lowercase())
        .await
        .expect(StatusCode::OK);
    let fresh = token(
        &api.login("otp@example.com", PASSWORD).await.body,
        "mfa_token",
    );
    let reused = api.login_mfa(&fresh, &codes[0]).await;
    assert_eq!(reused.status, StatusCode::UNAUTHORIZED);
}

/// `palisade user reset-2fa` for a lost device: 2FA off, every session ended.
async fn an_operator_resets_a_lost_second_factor(e: Env) {
    let api = &e.api;
    let login = api.signed_up("lost-phone@example.com", PASSWORD).await;
    let at = token(&login, "access_token");
    api.enable_2fa(&at, PASSWORD).await;
    let mfa = api
        .login("lost-phone@example.com", PASSWORD)
        .await
        .expect(StatusCode::OK);
    assert_eq!(mfa.body["mfa_required"], true, "{}", mfa.body);
    let out = e.cli(
        &["user", "reset-2fa", "--email", "lost-phone@example.com"],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The server sees another process's revocation within a second.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    api.me(&at).await.expect(StatusCode::UNAUTHORIZED);
    let again = api
        .login("lost-phone@example.com", PASSWORD)
        .await
        .expect(StatusCode::OK);
    assert!(
        again.body["access_token"].is_string(),
        "no second step: {}",
        again.body
    );
}

on_both!(
    an_operator_resets_a_lost_second_factor,
    two_factor_login_with_totp_and_backup_codes,
);
