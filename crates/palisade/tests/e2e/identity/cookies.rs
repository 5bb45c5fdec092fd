//! Cookie mode: the session cookie and the double-submit CSRF token.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::api::{Answer, Api, token};
use crate::backends::{Env, PASSWORD};

/// Signs in in cookie mode; the answer, and the `Cookie` header a browser would send.
async fn cookie_login(api: &Api) -> (Answer, String) {
    api.register("cookie@example.com", PASSWORD, "Cookie")
        .await
        .expect(StatusCode::CREATED);
    let l = api
        .post(
            "/api/v1/auth/login",
            json!({"email": "cookie@example.com", "password": PASSWORD, "mode": "cookie"}),
        )
        .await
        .expect(StatusCode::OK);
    let jar = l.cookies();
    let cookie = format!(
        "__Host-palisade_session={}; __Host-palisade_csrf={}",
        jar["__Host-palisade_session"], jar["__Host-palisade_csrf"]
    );
    (l, cookie)
}

async fn a_cookie_mode_login_sets_the_session_and_csrf_cookies(e: Env) {
    let (l, _) = cookie_login(&e.api).await;
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
}

async fn a_cookie_refresh_needs_the_csrf_token_and_an_allowed_origin(e: Env) {
    let api = &e.api;
    let (l, cookie) = cookie_login(api).await;
    let csrf = &l.cookies()["__Host-palisade_csrf"];
    let refresh = |headers: Vec<(&'static str, String)>| {
        let cookie = cookie.clone();
        async move {
            let mut all = vec![("cookie", cookie)];
            all.extend(headers);
            let pairs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
            api.call(Method::POST, "/api/v1/auth/refresh", None, &pairs)
                .await
        }
    };
    let missing = refresh(vec![]).await.expect(StatusCode::FORBIDDEN);
    assert_eq!(missing.code(), "auth.csrf");
    let wrong = refresh(vec![("x-csrf-token", "AAAA.BBBB".into())])
        .await
        .expect(StatusCode::FORBIDDEN);
    assert_eq!(wrong.code(), "auth.csrf");
    let foreign = refresh(vec![
        ("x-csrf-token", csrf.clone()),
        ("origin", "https://evil.example".into()),
    ])
    .await
    .expect(StatusCode::FORBIDDEN);
    assert_eq!(foreign.code(), "auth.csrf");
    let ok = refresh(vec![("x-csrf-token", csrf.clone())])
        .await
        .expect(StatusCode::OK);
    // The refreshed cookies and tokens are the session from now on: signing out with
    // them works.
    let jar = ok.cookies();
    let fresh_csrf = &jar["__Host-palisade_csrf"];
    let fresh_cookie = format!(
        "__Host-palisade_session={}; __Host-palisade_csrf={fresh_csrf}",
        jar["__Host-palisade_session"]
    );
    let auth = format!("Bearer {}", token(&ok.body, "access_token"));
    api.call(
        Method::POST,
        "/api/v1/auth/logout",
        None,
        &[
            ("authorization", &auth),
            ("cookie", &fresh_cookie),
            ("x-csrf-token", fresh_csrf),
        ],
    )
    .await
    .expect(StatusCode::NO_CONTENT);
}

async fn a_bearer_request_with_the_session_cookie_is_in_cookie_mode(e: Env) {
    let api = &e.api;
    let (l, cookie) = cookie_login(api).await;
    let csrf = l.cookies()["__Host-palisade_csrf"].clone();
    let auth = format!("Bearer {}", token(&l.body, "access_token"));
    let body = json!({"current_password": PASSWORD, "new_password": "another fine passphrase 77"});
    let cookie_mode = api
        .call(
            Method::POST,
            "/api/v1/me/password",
            Some(body.clone()),
            &[("authorization", &auth), ("cookie", &cookie)],
        )
        .await
        .expect(StatusCode::FORBIDDEN);
    assert_eq!(cookie_mode.code(), "auth.csrf");
    // Bearer clients need no CSRF token.
    api.call(
        Method::POST,
        "/api/v1/me/password",
        Some(body),
        &[("authorization", &auth)],
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    let logout = api
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            None,
            &[
                ("authorization", &auth),
                ("cookie", &cookie),
                ("x-csrf-token", &csrf),
            ],
        )
        .await
        .expect(StatusCode::NO_CONTENT);
    assert_eq!(logout.headers["clear-site-data"], "\"cookies\"");
}

on_both!(
    a_cookie_mode_login_sets_the_session_and_csrf_cookies,
    a_cookie_refresh_needs_the_csrf_token_and_an_allowed_origin,
    a_bearer_request_with_the_session_cookie_is_in_cookie_mode,
);
