//! Identity and access, attacked from the outside: the real binary on a loopback port,
//! each scenario run on SQLite and on PostgreSQL (`TEST_DATABASE_URL`).

#[path = "identity/api.rs"]
mod api;
mod common;

use std::time::Duration;

use api::{Api, b64, b64_decode, now, token, totp};
use common::{Server, run_with_stdin};
use palisade_auth::access::{AccessTokens, SigningKey, Subject};
use palisade_store::testing::TempPostgres;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple 42";
const ISSUER: &str = "palisade";
const AUDIENCE: &str = "palisade-api";
const ENCRYPTION_KEY: &str = "3b8f2a9c7e1d6b4a0f5e8c2d9a7b3e1f6c4d8a2b0e9f7c5d3a1b6e8f2c4d9a07";

/// A server, its client, and the key it signs with (so a test can sign tokens that are
/// valid in every way but one).
struct Env {
    api: Api,
    key: SigningKey,
    env: Vec<(String, String)>,
    _server: Server,
    _dir: tempfile::TempDir,
    _pg: Option<TempPostgres>,
}

async fn start(postgres: bool) -> Env {
    // No address of ours is an ops address (TEST-NET-1): only an `admin:infra` token
    // opens the ops endpoints.
    let extra = [
        ("PALISADE_RATE_LIMIT_AUTH", "1000/1m"),
        ("PALISADE_OPS_ALLOW", "192.0.2.0/24"),
    ];
    start_with(postgres, &extra).await
}

/// A server on SQLite, or on PostgreSQL with Redis (`TEST_REDIS_URL`, a key prefix of
/// its own) for shared state, with `extra` settings.
async fn start_with(postgres: bool, extra: &[(&str, &str)]) -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = SigningKey::generate_ed25519();
    let key_file = dir.path().join("signing.pem");
    std::fs::write(&key_file, key.to_pem().expect("pem")).expect("write key");
    let pg = if postgres {
        Some(TempPostgres::create().await)
    } else {
        None
    };
    let db_url = match &pg {
        Some(pg) => pg.url().to_owned(),
        None => format!("sqlite://{}/palisade.db", dir.path().display()),
    };
    let redis = postgres.then(|| {
        std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| {
            panic!("TEST_REDIS_URL is not set: the PostgreSQL scenarios run with Redis")
        })
    });
    let prefix = format!("palisade_test:{}:", uuid::Uuid::now_v7());
    let mut env: Vec<(String, String)> = [
        ("DATABASE_URL", db_url.as_str()),
        ("PALISADE_JWT_KEY_FILE", &key_file.display().to_string()),
        ("ENCRYPTION_KEY", ENCRYPTION_KEY),
        ("PALISADE_REFRESH_GRACE", "1s"),
        ("PALISADE_LOCKOUT_DURATION", "2s"),
        ("PALISADE_COOKIE_SECURE", "false"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    if let Some(url) = redis {
        env.push(("REDIS_URL".into(), url));
        env.push(("PALISADE_REDIS_PREFIX".into(), prefix));
    }
    for (k, v) in extra {
        env.push(((*k).to_owned(), (*v).to_owned()));
    }
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = Server::start(&pairs);
    Env {
        api: Api::new(&server),
        key,
        env,
        _server: server,
        _dir: dir,
        _pg: pg,
    }
}

impl Env {
    /// Runs the CLI against this server's database and keys.
    fn cli(&self, args: &[&str], stdin: &str) -> std::process::Output {
        let pairs: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        run_with_stdin(args, &pairs, stdin)
    }

    fn tokens(&self, audience: &str, issuer: &str, lifetime: u64) -> AccessTokens {
        AccessTokens::new(&self.key, issuer, audience, Duration::from_secs(lifetime))
    }

    /// An admin, created with the CLI; returns the login body.
    async fn admin(&self, email: &str) -> Value {
        let out = self.cli(
            &["user", "create", "--email", email, "--role", "admin"],
            &format!("{PASSWORD}\n"),
        );
        assert!(
            out.status.success(),
            "user create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let l = self.api.login(email, PASSWORD).await;
        assert_eq!(l.status, StatusCode::OK, "{}", l.body);
        l.body
    }
}

/// Claims that are valid for `user`, to be spoiled one at a time.
fn subject<'a>(user_id: &'a str, sid: &'a str, roles: &[&str]) -> Subject<'a> {
    Subject {
        user_id,
        session_id: sid,
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        perms: vec![
            "users:read".into(),
            "audit:read".into(),
            "admin:infra".into(),
        ],
        amr: vec!["pwd".into()],
        auth_time: now(),
    }
}

fn claims_of(access_token: &str) -> Value {
    let payload = access_token.split('.').nth(1).expect("payload");
    serde_json::from_slice(&b64_decode(payload)).expect("claims")
}

// ---- scenarios ------------------------------------------------------------------

async fn a_user_registers_logs_in_refreshes_and_logs_out(e: Env) {
    let api = &e.api;
    let r = api.register(" Alice@Example.COM ", PASSWORD, "Alice").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["email"], "alice@example.com");
    assert_eq!(r.body["roles"], json!(["member"]));
    assert!(r.body.get("password_hash").is_none(), "{}", r.body);

    let again = api.register("alice@example.com", PASSWORD, "Alice").await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::CONFLICT, "auth.email_taken")
    );
    let weak = api
        .register("weak@example.com", "password123", "Weak")
        .await;
    assert_eq!(
        weak.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        weak.body
    );
    assert_eq!(weak.body["errors"][0]["field"], "password");

    let login = api.login("ALICE@example.com", PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    assert_eq!(login.body["token_type"], "Bearer");
    assert_eq!(login.body["expires_in"], 900);
    assert_eq!(login.headers["cache-control"], "no-store");
    let at = token(&login.body, "access_token");
    let c = claims_of(&at);
    assert_eq!(
        (c["iss"].as_str(), c["aud"].as_str()),
        (Some(ISSUER), Some(AUDIENCE))
    );
    assert_eq!(c["amr"], json!(["pwd"]));
    assert!(
        c["perms"]
            .as_array()
            .is_some_and(|p| p.contains(&json!("contracts:read")))
    );

    let me = api.get_as("/api/v1/me", &at).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["email"], "alice@example.com");
    let renamed = api
        .send_as(
            Method::PATCH,
            "/api/v1/me",
            &at,
            Some(json!({"name": "Alice W."})),
        )
        .await;
    assert_eq!(renamed.body["name"], "Alice W.");
    let mass = api
        .send_as(
            Method::PATCH,
            "/api/v1/me",
            &at,
            Some(json!({"roles": ["admin"]})),
        )
        .await;
    assert_eq!(
        mass.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        mass.body
    );

    let refreshed = api
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": token(&login.body, "refresh_token")}),
        )
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    assert_ne!(refreshed.body["refresh_token"], login.body["refresh_token"]);

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

    let out = api
        .send_as(Method::POST, "/api/v1/auth/logout", &at, None)
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    // Logout ends the session at once: its access tokens and refresh token are refused.
    let after = api.get_as("/api/v1/me", &at).await;
    assert_eq!(
        (after.status, after.code()),
        (StatusCode::UNAUTHORIZED, "auth.unauthenticated")
    );
    let later = api
        .get_as("/api/v1/me", &token(&refreshed.body, "access_token"))
        .await;
    assert_eq!(later.status, StatusCode::UNAUTHORIZED);
    let r = api
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": token(&refreshed.body, "refresh_token")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

async fn forged_access_tokens_are_refused(e: Env) {
    let api = &e.api;
    let login = api.signed_up("forge@example.com", PASSWORD).await;
    let good = token(&login, "access_token");
    assert_eq!(api.get_as("/api/v1/me", &good).await.status, StatusCode::OK);
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
        let me = api.get_as("/api/v1/me", t).await;
        assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{what}");
    }
    // The same key with every claim right is accepted: the refusals above are the
    // spoiled claim's, not the forger's.
    let valid = e
        .tokens(AUDIENCE, ISSUER, 900)
        .issue(subject(uid, sid, &["member"]), now());
    assert_eq!(
        api.get_as("/api/v1/me", &valid).await.status,
        StatusCode::OK
    );
    for bad in ["Bearer", "Basic Zm9vOmJhcg==", "Bearer  "] {
        let r = api
            .call(Method::GET, "/api/v1/me", None, &[("authorization", bad)])
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{bad}");
    }
}

async fn a_replayed_refresh_token_revokes_the_session(e: Env) {
    let api = &e.api;
    let login = api.signed_up("tabs@example.com", PASSWORD).await;
    let rt1 = token(&login, "refresh_token");
    let at1 = token(&login, "access_token");
    let r = api
        .post("/api/v1/auth/refresh", json!({"refresh_token": rt1}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let rt2 = token(&r.body, "refresh_token");

    // Two tabs refresh with the same token at once: both succeed, with one successor.
    let (a, b) = tokio::join!(
        api.post("/api/v1/auth/refresh", json!({"refresh_token": rt2})),
        api.post("/api/v1/auth/refresh", json!({"refresh_token": rt2})),
    );
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
    let replay = api
        .post("/api/v1/auth/refresh", json!({"refresh_token": rt2}))
        .await;
    assert_eq!(
        (replay.status, replay.code()),
        (StatusCode::UNAUTHORIZED, "auth.refresh_reused")
    );
    let r = api
        .post("/api/v1/auth/refresh", json!({"refresh_token": rt3}))
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "the family is revoked: {}",
        r.body
    );
    assert_eq!(
        api.get_as("/api/v1/me", &at1).await.status,
        StatusCode::UNAUTHORIZED
    );
    let bogus = api
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": "x".repeat(43)}),
        )
        .await;
    assert_eq!(
        (bogus.status, bogus.code()),
        (StatusCode::UNAUTHORIZED, "auth.refresh_invalid")
    );
}

async fn five_failures_lock_the_account_until_the_window_ends(e: Env) {
    let api = &e.api;
    api.register("lock@example.com", PASSWORD, "Lock").await;
    let wrong = api.login("lock@example.com", "wrong password 1234").await;
    let unknown = api.login("nobody@example.com", PASSWORD).await;
    let shape = |a: &api::Answer| (a.status, a.body["code"].clone(), a.body["title"].clone());
    assert_eq!(
        shape(&wrong),
        (
            StatusCode::UNAUTHORIZED,
            json!("auth.invalid_credentials"),
            wrong.body["title"].clone()
        )
    );
    assert_eq!(
        shape(&unknown),
        shape(&wrong),
        "unknown email answers as a wrong password"
    );
    for _ in 0..4 {
        assert_eq!(
            api.login("lock@example.com", "wrong password 1234")
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
    }
    // Locked: the right password gets the wrong-password answer.
    let locked = api.login("lock@example.com", PASSWORD).await;
    assert_eq!(shape(&locked), shape(&wrong));
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let released = api.login("lock@example.com", PASSWORD).await;
    assert_eq!(released.status, StatusCode::OK, "{}", released.body);
}

async fn parallel_failures_each_count(e: Env) {
    let api = &e.api;
    api.register("burst@example.com", PASSWORD, "Burst").await;
    let wrong = || api.login("burst@example.com", "wrong password 1234");
    let all = tokio::join!(wrong(), wrong(), wrong(), wrong(), wrong());
    for r in [all.0, all.1, all.2, all.3, all.4] {
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = api.login("burst@example.com", PASSWORD).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "five failures at once lock: {}",
        r.body
    );
}

async fn a_deleted_account_stays_signed_out(e: Env) {
    let api = &e.api;
    let login = api.signed_up("leaver@example.com", PASSWORD).await;
    let at = token(&login, "access_token");
    let other = token(
        &api.login("leaver@example.com", PASSWORD).await.body,
        "access_token",
    );
    let no = api
        .send_as(
            Method::DELETE,
            "/api/v1/me",
            &at,
            Some(json!({"password": PASSWORD, "confirm": "yes"})),
        )
        .await;
    assert_eq!(no.status, StatusCode::UNPROCESSABLE_ENTITY);
    let bad = api
        .send_as(
            Method::DELETE,
            "/api/v1/me",
            &at,
            Some(json!({"password": "not mine at all", "confirm": "DELETE"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::FORBIDDEN);
    let gone = api
        .send_as(
            Method::DELETE,
            "/api/v1/me",
            &at,
            Some(json!({"password": PASSWORD, "confirm": "DELETE"})),
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.body);
    // Refused now, and still after the revocation set has been reloaded.
    assert_eq!(
        api.get_as("/api/v1/me", &other).await.status,
        StatusCode::UNAUTHORIZED
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for t in [&at, &other] {
        assert_eq!(
            api.get_as("/api/v1/me", t).await.status,
            StatusCode::UNAUTHORIZED
        );
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

async fn an_admin_lifts_a_lockout(e: Env) {
    let api = &e.api;
    let admin = e.admin("root@example.com").await;
    let at = token(&admin, "access_token");
    let user = api.register("locked2@example.com", PASSWORD, "L").await;
    let id = user.body["id"].as_str().expect("id").to_owned();
    for _ in 0..5 {
        api.login("locked2@example.com", "wrong password 1234")
            .await;
    }
    assert_eq!(
        api.login("locked2@example.com", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    let patched = api
        .send_as(
            Method::PATCH,
            &format!("/api/v1/admin/users/{id}"),
            &at,
            Some(json!({"locked": false})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(
        api.login("locked2@example.com", PASSWORD).await.status,
        StatusCode::OK
    );

    // Disabling ends the user's sessions at once.
    let l = api.login("locked2@example.com", PASSWORD).await;
    let user_at = token(&l.body, "access_token");
    api.send_as(
        Method::PATCH,
        &format!("/api/v1/admin/users/{id}"),
        &at,
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(
        api.get_as("/api/v1/me", &user_at).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.login("locked2@example.com", PASSWORD).await.code(),
        "auth.invalid_credentials"
    );
    let list = api.get_as("/api/v1/admin/users?limit=1", &at).await;
    assert_eq!(list.body["items"].as_array().map(Vec::len), Some(1));
    assert!(list.body["next_cursor"].is_string(), "{}", list.body);
}

async fn cookie_mode_needs_the_csrf_token(e: Env) {
    let api = &e.api;
    api.register("cookie@example.com", PASSWORD, "Cookie").await;
    let l = api
        .post(
            "/api/v1/auth/login",
            json!({"email": "cookie@example.com", "password": PASSWORD, "mode": "cookie"}),
        )
        .await;
    assert_eq!(l.status, StatusCode::OK, "{}", l.body);
    assert!(l.body.get("refresh_token").is_none(), "{}", l.body);
    let set_cookie: Vec<&str> = l
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert!(
        set_cookie
            .iter()
            .any(|c| c.starts_with("__Host-palisade_session=")
                && c.contains("HttpOnly")
                && c.contains("SameSite=Lax")
                && c.contains("Path=/")),
        "{set_cookie:?}"
    );
    assert!(
        set_cookie
            .iter()
            .any(|c| c.starts_with("__Host-palisade_csrf=") && !c.contains("HttpOnly")),
        "{set_cookie:?}"
    );
    let jar = l.cookies();
    let session = &jar["__Host-palisade_session"];
    let csrf = &jar["__Host-palisade_csrf"];
    let cookie = format!("__Host-palisade_session={session}; __Host-palisade_csrf={csrf}");

    let missing = api
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            &[("cookie", &cookie)],
        )
        .await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::FORBIDDEN, "auth.csrf")
    );
    let wrong = api
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            &[("cookie", &cookie), ("x-csrf-token", "AAAA.BBBB")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let evil = api
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            &[
                ("cookie", &cookie),
                ("x-csrf-token", csrf),
                ("origin", "https://evil.example"),
            ],
        )
        .await;
    assert_eq!(evil.status, StatusCode::FORBIDDEN);
    let ok = api
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            &[("cookie", &cookie), ("x-csrf-token", csrf)],
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert!(ok.cookies().contains_key("__Host-palisade_session"));

    // A bearer request that also carries the session cookie is in cookie mode.
    let at = token(&ok.body, "access_token");
    let new_jar = ok.cookies();
    let cookie = format!(
        "__Host-palisade_session={}; __Host-palisade_csrf={}",
        new_jar["__Host-palisade_session"], new_jar["__Host-palisade_csrf"]
    );
    let auth = format!("Bearer {at}");
    let body = json!({"current_password": PASSWORD, "new_password": "another fine passphrase 77"});
    let no_csrf = api
        .call(
            Method::POST,
            "/api/v1/me/password",
            Some(body.clone()),
            &[("authorization", &auth), ("cookie", &cookie)],
        )
        .await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
    // Bearer clients need no CSRF token.
    let bearer_only = api
        .call(
            Method::POST,
            "/api/v1/me/password",
            Some(body),
            &[("authorization", &auth)],
        )
        .await;
    assert_eq!(
        bearer_only.status,
        StatusCode::NO_CONTENT,
        "{}",
        bearer_only.body
    );
    let logout = api
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            None,
            &[
                ("authorization", &auth),
                ("cookie", &cookie),
                ("x-csrf-token", &new_jar["__Host-palisade_csrf"]),
            ],
        )
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT);
    assert_eq!(logout.headers["clear-site-data"], "\"cookies\"");
}

async fn two_factor_login_with_totp_and_backup_codes(e: Env) {
    let api = &e.api;
    let login = api.signed_up("otp@example.com", PASSWORD).await;
    let at = token(&login, "access_token");
    let wrong_pw = api
        .send_as(
            Method::POST,
            "/api/v1/me/2fa/setup",
            &at,
            Some(json!({"password": "nope nope nope"})),
        )
        .await;
    assert_eq!(wrong_pw.status, StatusCode::FORBIDDEN);
    let setup = api
        .send_as(
            Method::POST,
            "/api/v1/me/2fa/setup",
            &at,
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(setup.status, StatusCode::OK, "{}", setup.body);
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
        .await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.body);
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
    let step2 = api
        .post(
            "/api/v1/auth/login/mfa",
            json!({"mfa_token": mfa, "code": code}),
        )
        .await;
    assert_eq!(step2.status, StatusCode::OK, "{}", step2.body);
    assert_eq!(
        claims_of(&token(&step2.body, "access_token"))["amr"],
        json!(["pwd", "otp"])
    );
    // The mfa token is single use, and the code is refused a second time.
    let again = api
        .post(
            "/api/v1/auth/login/mfa",
            json!({"mfa_token": mfa, "code": code}),
        )
        .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    let fresh = token(
        &api.login("otp@example.com", PASSWORD).await.body,
        "mfa_token",
    );
    let replay = api
        .post(
            "/api/v1/auth/login/mfa",
            json!({"mfa_token": fresh, "code": code}),
        )
        .await;
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
    let backup = api
        .post(
            "/api/v1/auth/login/mfa",
            json!({"mfa_token": fresh, "code": codes[0].to_lowercase()}),
        )
        .await;
    assert_eq!(backup.status, StatusCode::OK, "{}", backup.body);
    let fresh = token(
        &api.login("otp@example.com", PASSWORD).await.body,
        "mfa_token",
    );
    let reused = api
        .post(
            "/api/v1/auth/login/mfa",
            json!({"mfa_token": fresh, "code": codes[0]}),
        )
        .await;
    assert_eq!(reused.status, StatusCode::UNAUTHORIZED);
}

/// Turns 2FA on for the signed-in user; returns the TOTP secret and the backup codes.
async fn enable_2fa(api: &Api, access_token: &str) -> (String, Vec<String>) {
    let setup = api
        .send_as(
            Method::POST,
            "/api/v1/me/2fa/setup",
            access_token,
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(setup.status, StatusCode::OK, "{}", setup.body);
    let secret = token(&setup.body, "secret");
    let confirm = api
        .send_as(
            Method::POST,
            "/api/v1/me/2fa/confirm",
            access_token,
            Some(json!({"code": totp(&secret, now())})),
        )
        .await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.body);
    let codes = confirm.body["backup_codes"]
        .as_array()
        .expect("backup codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_owned())
        .collect();
    (secret, codes)
}

async fn infra_actions_need_admin_infra_and_a_recent_second_factor(e: Env) {
    let api = &e.api;
    let clear = "/api/v1/admin/infra/cache/clear";
    let member = api.signed_up("plain@example.com", PASSWORD).await;
    let member_at = token(&member, "access_token");
    let denied = api.send_as(Method::POST, clear, &member_at, None).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "{}", denied.body);
    assert_eq!(denied.code(), "auth.forbidden");
    let no_2fa = api
        .send_as(
            Method::POST,
            "/api/v1/auth/step-up",
            &member_at,
            Some(json!({"code": "123456"})),
        )
        .await;
    assert_eq!(no_2fa.code(), "auth.2fa_disabled", "{}", no_2fa.body);

    // A password-only admin token is not enough.
    let admin = e.admin("infra@example.com").await;
    let admin_at = token(&admin, "access_token");
    let pwd_only = api.send_as(Method::POST, clear, &admin_at, None).await;
    assert_eq!(pwd_only.status, StatusCode::FORBIDDEN);
    assert_eq!(pwd_only.code(), "auth.step_up_required");

    let (secret, backup_codes) = enable_2fa(api, &admin_at).await;
    let wrong = api
        .send_as(
            Method::POST,
            "/api/v1/auth/step-up",
            &admin_at,
            Some(json!({"code": "000000"})),
        )
        .await;
    assert_eq!(wrong.code(), "auth.wrong_code", "{}", wrong.body);
    // The confirming code's step is used up: the next step's code.
    let code = totp(&secret, now() + 30);
    let stepped = api
        .send_as(
            Method::POST,
            "/api/v1/auth/step-up",
            &admin_at,
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(stepped.status, StatusCode::OK, "{}", stepped.body);
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
    let replayed = api
        .send_as(
            Method::POST,
            "/api/v1/auth/step-up",
            &admin_at,
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(replayed.code(), "auth.wrong_code", "a used code is refused");

    let cleared = api.send_as(Method::POST, clear, &stepped_at, None).await;
    assert_eq!(cleared.status, StatusCode::NO_CONTENT, "{}", cleared.body);
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
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": token(&admin, "refresh_token")}),
        )
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    assert_eq!(
        claims_of(&token(&refreshed.body, "access_token"))["amr"],
        json!(["pwd", "otp"])
    );

    // The window is 10 minutes: tokens signed with the server's key, `otp` 11 and 5
    // minutes ago, for this very session.
    let user_id = claims["sub"].as_str().expect("sub").to_owned();
    let sid = claims["sid"].as_str().expect("sid").to_owned();
    let signer = e.tokens(AUDIENCE, ISSUER, 900);
    let at_age = |minutes: u64| {
        let mut s = subject(&user_id, &sid, &["admin"]);
        s.amr = vec!["pwd".into(), "otp".into()];
        s.auth_time = now() - minutes * 60;
        signer.issue(s, now())
    };
    let stale = api.send_as(Method::POST, clear, &at_age(11), None).await;
    assert_eq!(stale.code(), "auth.step_up_required", "{}", stale.body);
    let recent = api.send_as(Method::POST, clear, &at_age(5), None).await;
    assert_eq!(recent.status, StatusCode::NO_CONTENT, "{}", recent.body);

    // Ops endpoints: 404 to anyone off the allow-list, unless their token holds
    // `admin:infra`.
    let anonymous = api.call(Method::GET, "/metrics", None, &[]).await;
    assert_eq!(anonymous.status, StatusCode::NOT_FOUND);
    let m = api.get_as("/metrics", &member_at).await;
    assert_eq!(m.status, StatusCode::NOT_FOUND, "/metrics for a member");
    let m = api.get_as("/metrics", &admin_at).await;
    assert_eq!(
        m.status,
        StatusCode::OK,
        "/metrics for an admin:infra token"
    );

    // Wrong step-up codes count toward the lockout, and parallel guesses stop at it:
    // of eight at once, five are checked (the threshold) and the rest refused unchecked.
    let failures = || async {
        let events = api
            .get_as("/api/v1/audit?action=auth.step_up&limit=100", &stepped_at)
            .await;
        events.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|e| e["outcome"] == "failure")
            .count()
    };
    // A good step-up first (a backup code) resets the count the replay above left.
    let reset = api
        .send_as(
            Method::POST,
            "/api/v1/auth/step-up",
            &admin_at,
            Some(json!({"code": backup_codes[1]})),
        )
        .await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.body);
    let before = failures().await;
    let guess = |n: u32| {
        let code = format!("{:06}", 100_000 + n);
        let at = admin_at.clone();
        async move {
            api.send_as(
                Method::POST,
                "/api/v1/auth/step-up",
                &at,
                Some(json!({"code": code})),
            )
            .await
        }
    };
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
    let backup = json!({"code": backup_codes[0]});
    let locked = api
        .send_as(
            Method::POST,
            "/api/v1/auth/step-up",
            &admin_at,
            Some(backup.clone()),
        )
        .await;
    assert_eq!(locked.code(), "auth.wrong_code", "{}", locked.body);
    assert_eq!(
        api.login("infra@example.com", PASSWORD).await.code(),
        "auth.invalid_credentials"
    );
    // The test's lockout lasts 2 s; then the same backup code works.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let freed = api
        .send_as(
            Method::POST,
            "/api/v1/auth/step-up",
            &admin_at,
            Some(backup),
        )
        .await;
    assert_eq!(freed.status, StatusCode::OK, "{}", freed.body);
}

async fn a_member_cannot_reach_what_is_not_theirs(e: Env) {
    let api = &e.api;
    let alice = api.signed_up("alice2@example.com", PASSWORD).await;
    let bob = api.signed_up("bob2@example.com", PASSWORD).await;
    let (alice_at, bob_at) = (token(&alice, "access_token"), token(&bob, "access_token"));
    let alice_sid = claims_of(&alice_at)["sid"]
        .as_str()
        .expect("sid")
        .to_owned();
    let r = api
        .send_as(
            Method::DELETE,
            &format!("/api/v1/me/sessions/{alice_sid}"),
            &bob_at,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert_eq!(
        api.get_as("/api/v1/me", &alice_at).await.status,
        StatusCode::OK,
        "alice's session survives"
    );
    for path in ["/api/v1/admin/users", "/api/v1/audit"] {
        let r = api.get_as(path, &bob_at).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::FORBIDDEN, "auth.forbidden"),
            "{path}"
        );
    }
    // Alice ends her own session: 204, and its token is refused.
    let own = api
        .send_as(
            Method::DELETE,
            &format!("/api/v1/me/sessions/{alice_sid}"),
            &alice_at,
            None,
        )
        .await;
    assert_eq!(own.status, StatusCode::NO_CONTENT);
    assert_eq!(
        api.get_as("/api/v1/me", &alice_at).await.status,
        StatusCode::UNAUTHORIZED
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
            api.post("/api/v1/auth/refresh", json!({"refresh_token": s}))
                .await,
            api.post("/api/v1/auth/login/mfa", json!({"mfa_token": s, "code": s}))
                .await,
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
        api.get_as("/api/v1/me", &token(&base, "access_token"))
            .await
            .status,
        StatusCode::OK
    );
}

async fn the_audit_trail_records_and_detects_an_edited_row(e: Env) {
    let api = &e.api;
    let admin = e.admin("auditor@example.com").await;
    let at = token(&admin, "access_token");
    api.register("someone@example.com", PASSWORD, "S").await;
    api.login("someone@example.com", "wrong password 1234")
        .await;
    let events = api.get_as("/api/v1/audit?limit=100", &at).await;
    assert_eq!(events.status, StatusCode::OK, "{}", events.body);
    let actions: Vec<&str> = events.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for want in ["auth.register", "auth.login"] {
        assert!(actions.contains(&want), "{want} in {actions:?}");
    }
    let failures = api
        .get_as("/api/v1/audit?action=auth.login&limit=100", &at)
        .await;
    assert!(
        failures.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|e| e["outcome"] == "failure")
    );
    let body = events.body.to_string();
    assert!(
        !body.contains(PASSWORD) && !body.contains("wrong password"),
        "no password in the audit trail"
    );

    let ok = e.cli(&["audit", "verify"], "");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let out = String::from_utf8_lossy(&ok.stdout).into_owned();
    assert!(out.contains("intact"), "{out}");
    // The head it names is an anchor for later runs.
    let head = out
        .lines()
        .find_map(|l| l.strip_prefix("head: "))
        .and_then(|l| l.split_whitespace().next())
        .expect("a head line")
        .to_owned();
    let anchored = e.cli(&["audit", "verify", "--anchor", &head], "");
    assert!(
        anchored.status.success(),
        "{}",
        String::from_utf8_lossy(&anchored.stdout)
    );
    // An anchor beyond the end: rows were cut off.
    let (seq, hash) = head.split_once(':').expect("SEQ:HASH");
    let beyond = format!("{}:{hash}", seq.parse::<i64>().expect("seq") + 1000);
    let cut = e.cli(&["audit", "verify", "--json", "--anchor", &beyond], "");
    assert_eq!(cut.status.code(), Some(1));
    let verdict: Value = serde_json::from_slice(&cut.stdout).expect("json verdict");
    assert_eq!(
        verdict["Truncated"]["seq"],
        seq.parse::<i64>().expect("seq") + 1000
    );
    let garbled = e.cli(&["audit", "verify", "--anchor", "7:nothex"], "");
    assert_eq!(garbled.status.code(), Some(2), "a usage error");

    // Someone with database access edits a row (they must drop the guard first).
    tamper(&e).await;
    let bad = e.cli(&["audit", "verify", "--json"], "");
    assert_eq!(
        bad.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&bad.stdout)
    );
    let verdict: Value = serde_json::from_slice(&bad.stdout).expect("json verdict");
    assert_eq!(verdict, json!({"Changed": {"seq": 2}}));
}

/// Changes the outcome of audit row 2, as an intruder with database access would.
async fn tamper(e: &Env) {
    let url = &e
        .env
        .iter()
        .find(|(k, _)| k == "DATABASE_URL")
        .expect("url")
        .1;
    let db = palisade_store::Db::connect(&palisade_store::StoreSettings::new(url.clone()))
        .await
        .expect("db");
    let sql: &'static str = match db.backend() {
        palisade_store::Backend::Sqlite => {
            "DROP TRIGGER audit_log_no_update; UPDATE audit_log SET outcome = 'failure' WHERE seq = 2"
        }
        palisade_store::Backend::Postgres => {
            "DROP TRIGGER audit_log_append_only ON audit_log; UPDATE audit_log SET outcome = 'failure' WHERE seq = 2"
        }
    };
    db.execute_script(sql).await.expect("tamper");
    db.close().await;
}

async fn the_auth_tier_answers_429_with_its_headers(postgres: bool) {
    let e = start_with(postgres, &[("PALISADE_RATE_LIMIT_AUTH", "3/1m")]).await;
    let api = &e.api;
    for i in 0..3 {
        let r = api.login("nobody@example.com", "wrong password 1234").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {i}");
        assert_eq!(r.headers["ratelimit-policy"], "\"auth\";q=3;w=60");
        assert_eq!(
            r.headers["ratelimit"]
                .to_str()
                .ok()
                .map(|v| v.starts_with(&format!("\"auth\";r={};", 2 - i))),
            Some(true),
            "{:?}",
            r.headers["ratelimit"]
        );
    }
    let r = api.login("nobody@example.com", "wrong password 1234").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert_eq!(
        r.body["type"],
        "https://iana.org/assignments/http-problem-types#quota-exceeded"
    );
    assert_eq!(r.headers["content-type"], "application/problem+json");
    let retry: u64 = r.headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=20).contains(&retry), "retry-after {retry}");
    // Other routes are the general tier, counted apart.
    let me = api.call(Method::GET, "/api/v1/me", None, &[]).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(me.headers["ratelimit-policy"], "\"general\";q=300;w=60");

    let detailed = api.call(Method::GET, "/health/detailed", None, &[]).await;
    if postgres {
        assert_eq!(
            detailed.body["redis"]["reachable"], true,
            "{}",
            detailed.body
        );
        assert!(detailed.body["redis"]["latency_ms"].is_number());
    } else {
        assert_eq!(detailed.body["redis"], Value::Null, "no Redis configured");
    }

    if postgres {
        // A second instance on the same Redis shares the limit.
        let pairs: Vec<(&str, &str)> = e
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let other = Server::start(&pairs);
        let r = Api::new(&other)
            .login("nobody@example.com", "wrong password 1234")
            .await;
        assert_eq!(
            r.status,
            StatusCode::TOO_MANY_REQUESTS,
            "the limit is shared: {}",
            r.body
        );
    }
}

async fn allow_listed_addresses_bypass_the_limits(postgres: bool) {
    let e = start_with(
        postgres,
        &[
            ("PALISADE_RATE_LIMIT_AUTH", "2/1m"),
            ("PALISADE_RATE_LIMIT_ALLOW", "127.0.0.0/8"),
        ],
    )
    .await;
    for _ in 0..4 {
        let r = e
            .api
            .login("nobody@example.com", "wrong password 1234")
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(r.headers.get("ratelimit").is_none());
    }
}

/// Redis failing every command: limits fall back to the instance and keep limiting,
/// `/health/detailed` says so, and sign-in goes on.
async fn a_failing_redis_degrades_to_local_limits() {
    let url = palisade_store::testing::failing_redis().await;
    let e = start_with(
        false,
        &[("REDIS_URL", &url), ("PALISADE_RATE_LIMIT_AUTH", "3/1m")],
    )
    .await;
    let detailed = e.api.call(Method::GET, "/health/detailed", None, &[]).await;
    assert_eq!(
        detailed.body["redis"]["reachable"], false,
        "{}",
        detailed.body
    );
    assert_eq!(detailed.body["status"], "degraded");
    let r = e.api.register("fallback@example.com", PASSWORD, "F").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        e.api.login("fallback@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
    assert_eq!(
        e.api.login("fallback@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
    let r = e.api.login("fallback@example.com", PASSWORD).await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the local limit still holds"
    );
}

/// Redis is down when the server starts: `/health/detailed` says so and the limits are
/// the instance's own; once Redis answers, the health turns and the limits move there.
async fn a_redis_down_at_start_is_used_once_it_answers() {
    let addr = palisade_store::testing::free_port();
    let prefix = format!("palisade_test:{}:", uuid::Uuid::now_v7());
    let e = start_with(
        false,
        &[
            ("REDIS_URL", &format!("redis://{addr}")),
            ("PALISADE_REDIS_PREFIX", &prefix),
        ],
    )
    .await;
    let detailed = e.api.call(Method::GET, "/health/detailed", None, &[]).await;
    assert_eq!(
        detailed.body["redis"]["reachable"], false,
        "{}",
        detailed.body
    );
    let r = e.api.register("early@example.com", PASSWORD, "E").await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "limited in-process: {}",
        r.body
    );

    let redis_url = std::env::var("TEST_REDIS_URL").expect("TEST_REDIS_URL is not set");
    let _redis = palisade_store::testing::tcp_proxy(addr, &redis_url).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let d = e.api.call(Method::GET, "/health/detailed", None, &[]).await;
        if d.body["redis"]["reachable"] == true {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "Redis never came back: {}",
            d.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut redis = redis::Client::open(redis_url)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        e.api.login("early@example.com", PASSWORD).await;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}rl:*"))
            .query_async(&mut redis)
            .await
            .expect("KEYS");
        if !keys.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the limits never moved to Redis"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

mod rate_limits {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failing_redis_falls_back() {
        super::a_failing_redis_degrades_to_local_limits().await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_down_at_start() {
        super::a_redis_down_at_start_is_used_once_it_answers().await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_auth_tier() {
        super::the_auth_tier_answers_429_with_its_headers(false).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_redis_auth_tier_shared_by_two_instances() {
        super::the_auth_tier_answers_429_with_its_headers(true).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_allow_list() {
        super::allow_listed_addresses_bypass_the_limits(false).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_redis_allow_list() {
        super::allow_listed_addresses_bypass_the_limits(true).await;
    }
}

// ---- one test per scenario and backend -----------------------------------------

macro_rules! on_both {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::start(false).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::start(true).await).await;
                }
            )*
        }
    };
}

on_both!(
    a_user_registers_logs_in_refreshes_and_logs_out,
    parallel_failures_each_count,
    a_deleted_account_stays_signed_out,
    forged_access_tokens_are_refused,
    a_replayed_refresh_token_revokes_the_session,
    five_failures_lock_the_account_until_the_window_ends,
    an_admin_lifts_a_lockout,
    cookie_mode_needs_the_csrf_token,
    two_factor_login_with_totp_and_backup_codes,
    infra_actions_need_admin_infra_and_a_recent_second_factor,
    a_member_cannot_reach_what_is_not_theirs,
    injection_strings_are_data,
    the_audit_trail_records_and_detects_an_edited_row,
);
