//! Administration of users: the last active admin stays one.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api::{Answer, token};
use crate::backends::{Env, PASSWORD};

async fn patch_user(e: &Env, at: &str, id: &str, body: Value) -> Answer {
    e.api
        .send_as(
            Method::PATCH,
            &format!("/api/v1/admin/users/{id}"),
            at,
            Some(body),
        )
        .await
}

async fn the_last_active_admin_cannot_be_disabled_or_demoted(e: Env) {
    let root = e.admin("root@example.com").await;
    let at = token(&root, "access_token");
    let id = root["user"]["id"].as_str().expect("id").to_owned();
    for change in [
        json!({"disabled": true}),
        json!({"roles": ["member"]}),
        json!({"roles": ["manager"]}),
    ] {
        let r = patch_user(&e, &at, &id, change.clone())
            .await
            .expect(StatusCode::CONFLICT);
        assert_eq!(r.code(), "users.last_admin", "{change}: {}", r.body);
    }
    let r = patch_user(&e, &at, &id, json!({"roles": []}))
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["errors"][0]["field"], "roles", "{}", r.body);
    // Nothing was changed by the refusals: still an admin, still enabled.
    let me = e.api.me(&at).await.expect(StatusCode::OK);
    assert_eq!(me.body["roles"], json!(["admin"]));
    assert_eq!(me.body["disabled"], false);
    // Nor through the command line.
    let out = e.cli(&["user", "disable", "--email", "root@example.com"], "");
    assert!(!out.status.success(), "the CLI disabled the last admin");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("last active admin"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // With a second admin, the first may step down.
    let second = e.admin("second@example.com").await;
    let second_at = token(&second, "access_token");
    let r = patch_user(&e, &second_at, &id, json!({"roles": ["member"]}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(r.body["roles"], json!(["member"]));
    // And the second is now the last.
    let second_id = second["user"]["id"].as_str().expect("id");
    patch_user(&e, &second_at, second_id, json!({"disabled": true}))
        .await
        .expect(StatusCode::CONFLICT);
    e.api
        .login("root@example.com", PASSWORD)
        .await
        .expect(StatusCode::OK);
}

on_both!(the_last_active_admin_cannot_be_disabled_or_demoted);
