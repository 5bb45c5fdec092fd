//! Access and refresh tokens under attack: forged, spoiled, replayed.

use std::time::Duration;

use palisade_auth::access::{AccessTokens, SigningKey};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api::{b64, b64_decode, now, token};
use crate::backends::{AUDIENCE, Env, ISSUER, PASSWORD, claims_of, subject};

async fn forged_access_tokens_are_refused(e: Env) {
    let api = &e.api;
    let login = api.signed_up("forge@example.com", PASSWORD).await;
    let good = token(&login, "access_token");
    assert_eq!(api.me(&good).await.status, StatusCode::OK);
    let c = claims_of(&good);
    let (uid, sid) = (
        c["sub"].as_str().expect("sub"),
        c["sid"].as_str().expect("sid"),
    );
    let mut forged: Vec<(&str, String)> = Vec::new();

    // alg none, with the payload of a valid token.
    let payload = good.split('.').nth(1).expect("payload");
    forged.push((
        "alg none",
        format!(
            "{}.{payload}.",
            b64(&json!({"alg": "none", "typ": "at+jwt"}))
        ),
    ));
    // HS256 signed with the server's public key as the secret.
    let jwks = api
        .call(Method::GET, "/.well-known/jwks.json", None, &[])
        .await;
    let x = jwks.body["keys"][0]["x"].as_str().expect("x");
    let hs = SigningKey::Hs256(b64_decode(x));
    let confused = AccessTokens::new(&hs, ISSUER, AUDIENCE, Duration::from_secs(900));
    forged.push((
        "HS256 with the public key",
        confused.issue(subject(uid, sid, &["admin"]), now()),
    ));
    // The real key, one claim wrong.
    forged.push((
        "wrong aud",
        e.tokens("someone-else", ISSUER, 900)
            .issue(subject(uid, sid, &[]), now()),
    ));
    forged.push((
        "wrong iss",
        e.tokens(AUDIENCE, "https://evil.example", 900)
            .issue(subject(uid, sid, &[]), now()),
    ));
    forged.push((
        "expired",
        e.tokens(AUDIENCE, ISSUER, 60)
            .issue(subject(uid, sid, &[]), now() - 3600),
    ));
    // typ JWT instead of at+jwt: header re-encoded, so the signature no longer fits
    // either; a typ check that ran only after the signature would still refuse it.
    let parts: Vec<&str> = good.split('.').collect();
    let mut header: Value = serde_json::from_slice(&b64_decode(parts[0])).expect("header");
    header["typ"] = json!("JWT");
    forged.push((
        "typ JWT",
        format!("{}.{}.{}", b64(&header), parts[1], parts[2]),
    ));
    // A tampered payload: roles raised to admin.
    let mut claims = c.clone();
    claims["roles"] = json!(["admin"]);
    claims["perms"] = json!(["users:read", "users:write", "audit:read", "admin:infra"]);
    forged.push((
        "tampered payload",
        format!("{}.{}.{}", parts[0], b64(&claims), parts[2]),
    ));
    // An unknown kid.
    let mut header: Value = serde_json::from_slice(&b64_decode(parts[0])).expect("header");
    header["kid"] = json!("other");
    forged.push((
        "unknown kid",
        format!("{}.{}.{}", b64(&header), parts[1], parts[2]),
    ));
    forged.push(("garbage", "not.a.jwt".into()));

    for (what, t) in &forged {
        let r = api.get_as("/api/v1/admin/users", t).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {}", r.body);
        assert_eq!(r.code(), "auth.unauthenticated", "{what}");
        let me = api.me(t).await;
        assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{what}");
    }
    // The same key with every claim right is accepted: the refusals above are the
    // spoiled claim's, not the forger's.
    let valid = e
        .tokens(AUDIENCE, ISSUER, 900)
        .issue(subject(uid, sid, &["member"]), now());
    assert_eq!(api.me(&valid).await.status, StatusCode::OK);
    for bad in ["Bearer", "Basic Zm9vOmJhcg==", "Bearer  "] {
        let r = api
            .call(Method::GET, "/api/v1/me", None, &[("authorization", bad)])
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{bad}");
    }
}

/// A token signed by us naming a role or permission this build does not know (one
/// issued by another release) still signs its holder in; the unknown names grant
/// nothing.
async fn unknown_roles_and_permissions_in_a_token_grant_nothing(e: Env) {
    let api = &e.api;
    let login = api.signed_up("older@example.com", PASSWORD).await;
    let c = claims_of(&token(&login, "access_token"));
    let (uid, sid) = (
        c["sub"].as_str().expect("sub"),
        c["sid"].as_str().expect("sid"),
    );
    let mut claims = subject(uid, sid, &["member", "superuser"]);
    claims.perms = vec!["everything:write".into(), "users:admin".into()];
    let t = e.tokens(AUDIENCE, ISSUER, 900).issue(claims, now());
    api.me(&t).await.expect(StatusCode::OK);
    let r = api.get_as("/api/v1/admin/users", &t).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
}

async fn a_replayed_refresh_token_revokes_the_session(e: Env) {
    let api = &e.api;
    let login = api.signed_up("tabs@example.com", PASSWORD).await;
    let rt1 = token(&login, "refresh_token");
    let at1 = token(&login, "access_token");
    let r = api.refresh(&rt1).await;
    assert_eq!(r.status, StatusCode::OK);
    let rt2 = token(&r.body, "refresh_token");

    // Two tabs refresh with the same token at once: both succeed, with one successor.
    let (a, b) = tokio::join!(api.refresh(&rt2), api.refresh(&rt2),);
    assert_eq!(
        (a.status, b.status),
        (StatusCode::OK, StatusCode::OK),
        "{} {}",
        a.body,
        b.body
    );
    assert_eq!(a.body["refresh_token"], b.body["refresh_token"]);
    let rt3 = token(&a.body, "refresh_token");

    // After the grace window (1 s here), the old token coming back is a theft.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let replay = api.refresh(&rt2).await;
    assert_eq!(
        (replay.status, replay.code()),
        (StatusCode::UNAUTHORIZED, "auth.refresh_reused")
    );
    let r = api.refresh(&rt3).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "the family is revoked: {}",
        r.body
    );
    assert_eq!(api.me(&at1).await.status, StatusCode::UNAUTHORIZED);
    let bogus = api.refresh(&"x".repeat(43)).await;
    assert_eq!(
        (bogus.status, bogus.code()),
        (StatusCode::UNAUTHORIZED, "auth.refresh_invalid")
    );
}

on_both!(
    forged_access_tokens_are_refused,
    unknown_roles_and_permissions_in_a_token_grant_nothing,
    a_replayed_refresh_token_revokes_the_session,
);
