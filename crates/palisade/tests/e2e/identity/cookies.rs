//! Cookie mode: the session cookie and the double-submit CSRF token.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::api::token;
use crate::backends::{Env, PASSWORD};

async fn cookie_mode_needs_the_csrf_token(e: Env) {
    let api = &e.api;
    api.register("cookie@example.com", PASSWORD, "Cookie").await;
    let l = api
        .post(
            "/api/v1/auth/login",
            json!({"email": "cookie@example.com", "password": PASSWORD, "mode": "cookie"}),
        )
        .await
        .expect(StatusCode::OK);
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
        .await
        .expect(StatusCode::OK);
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

on_both!(cookie_mode_needs_the_csrf_token,);
