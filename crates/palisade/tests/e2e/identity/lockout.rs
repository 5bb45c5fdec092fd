//! Account lockout: failures counted per account, in parallel too, and lifted by an admin.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::api::token;
use crate::backends::{Env, PASSWORD};

async fn five_failures_lock_the_account_until_the_window_ends(e: Env) {
    let api = &e.api;
    api.register("lock@example.com", PASSWORD, "Lock").await;
    let wrong = api.login("lock@example.com", "wrong password 1234").await;
    let unknown = api.login("nobody@example.com", PASSWORD).await;
    let shape =
        |a: &crate::api::Answer| (a.status, a.body["code"].clone(), a.body["title"].clone());
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
    let _released = api
        .login("lock@example.com", PASSWORD)
        .await
        .expect(StatusCode::OK);
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
    let _patched = api
        .send_as(
            Method::PATCH,
            &format!("/api/v1/admin/users/{id}"),
            &at,
            Some(json!({"locked": false})),
        )
        .await
        .expect(StatusCode::OK);
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
    assert_eq!(api.me(&user_at).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        api.login("locked2@example.com", PASSWORD).await.code(),
        "auth.invalid_credentials"
    );
    let list = api.get_as("/api/v1/admin/users?limit=1", &at).await;
    assert_eq!(list.body["items"].as_array().map(Vec::len), Some(1));
    assert!(list.body["next_cursor"].is_string(), "{}", list.body);
}

on_both!(
    five_failures_lock_the_account_until_the_window_ends,
    parallel_failures_each_count,
    an_admin_lifts_a_lockout,
);
