//! Accounts: registration, sign-in, refresh and sign-out; deletion; hostile input.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api::token;
use crate::backends::{AUDIENCE, Env, ISSUER, PASSWORD, claims_of};

async fn registration_folds_the_email_and_refuses_a_taken_or_weak_one(e: Env) {
    let api = &e.api;
    let r = api
        .register(" Alice@Example.COM ", PASSWORD, "Alice")
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(r.body["email"], "alice@example.com");
    assert_eq!(r.body["roles"], json!(["member"]));
    assert!(r.body.get("password_hash").is_none(), "{}", r.body);
    let again = api
        .register("alice@example.com", PASSWORD, "Alice")
        .await
        .expect(StatusCode::CONFLICT);
    assert_eq!(again.code(), "auth.email_taken");
    let weak = api
        .register("weak@example.com", "password123", "Weak")
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(weak.body["errors"][0]["field"], "password");
}

async fn a_login_issues_tokens_that_say_how_the_user_signed_in(e: Env) {
    let api = &e.api;
    api.register("alice@example.com", PASSWORD, "Alice")
        .await
        .expect(StatusCode::CREATED);
    let login = api
        .login("ALICE@example.com", PASSWORD)
        .await
        .expect(StatusCode::OK);
    assert_eq!(login.body["token_type"], "Bearer");
    assert_eq!(login.body["expires_in"], 900);
    assert_eq!(login.headers["cache-control"], "no-store");
    let c = claims_of(&token(&login.body, "access_token"));
    assert_eq!(
        (c["iss"].as_str(), c["aud"].as_str()),
        (Some(ISSUER), Some(AUDIENCE))
    );
    assert_eq!(c["amr"], json!(["pwd"]));
    assert_eq!(c["roles"], json!(["member"]));
    assert_eq!(
        c["perms"],
        json!([
            "contracts:read",
            "contracts:write",
            "exports:run",
            "payments:create"
        ]),
        "a member works on their own records only"
    );
}

async fn the_profile_is_read_and_renamed_but_not_mass_assigned(e: Env) {
    let api = &e.api;
    let at = token(
        &api.signed_up("alice@example.com", PASSWORD).await,
        "access_token",
    );
    let me = api.me(&at).await.expect(StatusCode::OK);
    assert_eq!(me.body["email"], "alice@example.com");
    let renamed = api
        .patch_me(&at, json!({"name": "Alice W."}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(renamed.body["name"], "Alice W.");
    api.patch_me(&at, json!({"roles": ["admin"]}))
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(api.me(&at).await.body["roles"], json!(["member"]));
}

async fn sessions_are_listed_newest_first_a_page_at_a_time(e: Env) {
    let api = &e.api;
    let login = api.signed_up("alice@example.com", PASSWORD).await;
    let at = token(&login, "access_token");
    let sessions = api.get_as("/api/v1/me/sessions", &at).await;
    assert_eq!(sessions.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(sessions.body["items"][0]["current"], true);
    // Two more sign-ins: three sessions, in pages of two, newest first.
    let mut sids = vec![claims_of(&at)["sid"].clone()];
    for _ in 0..2 {
        let l = api.login("alice@example.com", PASSWORD).await;
        sids.push(claims_of(&token(&l.body, "access_token"))["sid"].clone());
    }
    let first = api.get_as("/api/v1/me/sessions?limit=2", &at).await;
    let ids = |page: &Value| -> Vec<Value> {
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|s| s["id"].clone())
            .collect()
    };
    assert_eq!(
        ids(&first.body),
        vec![sids[2].clone(), sids[1].clone()],
        "{}",
        first.body
    );
    let cursor = token(&first.body, "next_cursor");
    let second = api
        .get_as(&format!("/api/v1/me/sessions?limit=2&cursor={cursor}"), &at)
        .await;
    assert_eq!(ids(&second.body), vec![sids[0].clone()], "{}", second.body);
    assert_eq!(second.body["items"][0]["current"], true);
    assert_eq!(second.body["next_cursor"], Value::Null);
    for bad in ["limit=0", "limit=101", "cursor=not-a-cursor"] {
        let r = api.get_as(&format!("/api/v1/me/sessions?{bad}"), &at).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }
}

async fn logout_ends_the_session_and_its_refreshed_tokens_at_once(e: Env) {
    let api = &e.api;
    let login = api.signed_up("alice@example.com", PASSWORD).await;
    let at = token(&login, "access_token");
    let refreshed = api
        .refresh(&token(&login, "refresh_token"))
        .await
        .expect(StatusCode::OK);
    assert_ne!(refreshed.body["refresh_token"], login["refresh_token"]);
    api.logout(&at).await.expect(StatusCode::NO_CONTENT);
    let after = api.me(&at).await.expect(StatusCode::UNAUTHORIZED);
    assert_eq!(after.code(), "auth.unauthenticated");
    api.me(&token(&refreshed.body, "access_token"))
        .await
        .expect(StatusCode::UNAUTHORIZED);
    api.refresh(&token(&refreshed.body, "refresh_token"))
        .await
        .expect(StatusCode::UNAUTHORIZED);
}

async fn a_deleted_account_stays_signed_out(e: Env) {
    let api = &e.api;
    let login = api.signed_up("leaver@example.com", PASSWORD).await;
    let at = token(&login, "access_token");
    let other = token(
        &api.login("leaver@example.com", PASSWORD).await.body,
        "access_token",
    );
    let no = api.delete_me(&at, PASSWORD, "yes").await;
    assert_eq!(no.status, StatusCode::UNPROCESSABLE_ENTITY);
    let bad = api.delete_me(&at, "not mine at all", "DELETE").await;
    assert_eq!(bad.status, StatusCode::FORBIDDEN);
    let _gone = api
        .delete_me(&at, PASSWORD, "DELETE")
        .await
        .expect(StatusCode::NO_CONTENT);
    // Refused now, and still after the revocation set has been reloaded.
    assert_eq!(api.me(&other).await.status, StatusCode::UNAUTHORIZED);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for t in [&at, &other] {
        assert_eq!(api.me(t).await.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        api.login("leaver@example.com", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    // The email is free again.
    assert_eq!(
        api.register("leaver@example.com", PASSWORD, "Back")
            .await
            .status,
        StatusCode::CREATED
    );
}

async fn injection_strings_are_data(e: Env) {
    let api = &e.api;
    let nasty = [
        "' OR '1'='1",
        "admin'--",
        "\"; DROP TABLE users; --",
        "<script>alert(1)</script>",
        "${jndi:ldap://x}",
        "{{7*7}}",
        "\u{0000}\u{202e}",
        "../../etc/passwd",
    ];
    let base = api.signed_up("victim@example.com", PASSWORD).await;
    for s in nasty {
        let email = format!("{s}@example.com");
        // Some of these are valid emails or names: then they are an account like any.
        let registered = api.register(&email, PASSWORD, s).await;
        assert!(
            [StatusCode::CREATED, StatusCode::UNPROCESSABLE_ENTITY].contains(&registered.status),
            "{s}: {} {}",
            registered.status,
            registered.body
        );
        let login = api.login(&email, PASSWORD).await;
        let want = if registered.status == StatusCode::CREATED {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(login.status, want, "{s}: {}", login.body);
        for r in [
            api.register("ok@example.com", s, s).await,
            api.login(s, s).await,
            api.refresh(s).await,
            api.login_mfa(s, s).await,
        ] {
            assert!(r.status.is_client_error(), "{s}: {} {}", r.status, r.body);
        }
    }
    // Stored as typed, shown as typed.
    let r = api
        .register("script@example.com", PASSWORD, "<script>alert(1)</script>")
        .await;
    assert_eq!(r.body["name"], "<script>alert(1)</script>");
    // Every table is still there and the victim still logs in.
    assert_eq!(
        api.login("victim@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
    assert_eq!(
        api.me(&token(&base, "access_token")).await.status,
        StatusCode::OK
    );
}

/// Addresses that are not one, or that would look like another account's, and names
/// that hide what they say, are refused; spellings of one address are one account.
async fn look_alike_addresses_and_names_are_refused(e: Env) {
    let api = &e.api;
    for bad in [
        "eve@x@example.com",
        "<script>@example.com",
        "eve\u{200b}@example.com",
        "eve@example.com.",
        "eve@localhost",
        "\"eve\"@example.com",
    ] {
        let r = api
            .register(bad, PASSWORD, "Eve")
            .await
            .expect(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.body["errors"][0]["field"], "email", "{bad:?}: {}", r.body);
    }
    let long = format!("{}@example.com", "e".repeat(65));
    let r = api
        .register(&long, PASSWORD, "Eve")
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["errors"][0]["field"], "email", "{}", r.body);
    for name in ["Alice\u{202e}gnp.exe", "Al\u{200b}ice"] {
        let r = api
            .register("named@example.com", PASSWORD, name)
            .await
            .expect(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.body["errors"][0]["field"], "name", "{name:?}: {}", r.body);
    }
    let first = api
        .register("ana@bücher.example", PASSWORD, "Ana")
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(first.body["email"], "ana@xn--bcher-kva.example");
    for twin in ["ana@xn--bcher-kva.example", "ANA@Bücher.Example"] {
        let r = api
            .register(twin, PASSWORD, "Twin")
            .await
            .expect(StatusCode::CONFLICT);
        assert_eq!(r.code(), "auth.email_taken", "{twin:?}");
    }
    api.register("r\u{e9}ne@example.com", PASSWORD, "René")
        .await
        .expect(StatusCode::CREATED);
    api.register("re\u{301}ne@example.com", PASSWORD, "René again")
        .await
        .expect(StatusCode::CONFLICT);
    // Any spelling signs in.
    api.login("RE\u{301}NE@example.com", PASSWORD)
        .await
        .expect(StatusCode::OK);
    let at = token(
        &api.login("ana@xn--bcher-kva.example", PASSWORD)
            .await
            .expect(StatusCode::OK)
            .body,
        "access_token",
    );
    api.patch_me(&at, json!({"name": "Ana\u{202e}"}))
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
}

on_both!(
    look_alike_addresses_and_names_are_refused,
    registration_folds_the_email_and_refuses_a_taken_or_weak_one,
    a_login_issues_tokens_that_say_how_the_user_signed_in,
    the_profile_is_read_and_renamed_but_not_mass_assigned,
    sessions_are_listed_newest_first_a_page_at_a_time,
    logout_ends_the_session_and_its_refreshed_tokens_at_once,
    a_deleted_account_stays_signed_out,
    injection_strings_are_data,
);
