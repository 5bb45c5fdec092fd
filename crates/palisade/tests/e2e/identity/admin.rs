//! Administration of users: the last active admin stays one, whoever asks.

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

async fn the_last_active_admin_cannot_delete_their_account(e: Env) {
    let root = e.admin("root@example.com").await;
    let at = token(&root, "access_token");
    let r = e
        .api
        .delete_me(&at, PASSWORD, "DELETE")
        .await
        .expect(StatusCode::CONFLICT);
    assert_eq!(r.code(), "users.last_admin", "{}", r.body);
    // Refused before anything was touched: the session and the account are intact.
    let me = e.api.me(&at).await.expect(StatusCode::OK);
    assert_eq!(me.body["roles"], json!(["admin"]));
    e.api
        .login("root@example.com", PASSWORD)
        .await
        .expect(StatusCode::OK);
}

/// Two admins deleting their accounts at once, each through another instance: the
/// check and the deletion are one step serialised in the database, so exactly one goes
/// and the other stays the last admin.
async fn two_admins_leaving_at_once_leave_one(e: Env) {
    let (_other, other) = e.second_instance();
    let mut pair = [
        token(&e.admin("first@example.com").await, "access_token"),
        token(&e.admin("second@example.com").await, "access_token"),
    ];
    for round in 0..3 {
        let (a, b) = tokio::join!(
            e.api.delete_me(&pair[0], PASSWORD, "DELETE"),
            other.delete_me(&pair[1], PASSWORD, "DELETE"),
        );
        let mut statuses = [a.status, b.status];
        statuses.sort_unstable();
        assert_eq!(
            statuses,
            [StatusCode::NO_CONTENT, StatusCode::CONFLICT],
            "round {round}: {} / {}",
            a.body,
            b.body
        );
        let left = usize::from(b.status == StatusCode::NO_CONTENT);
        let stayed = &pair[1 - left];
        let me = e.api.me(stayed).await.expect(StatusCode::OK);
        assert_eq!(me.body["roles"], json!(["admin"]));
        // A new admin takes the place of the one that left, for the next round.
        let email = format!("next{round}@example.com");
        pair[left] = token(&e.admin(&email).await, "access_token");
    }
}

/// An id that names no user, or is no id at all, answers 404 and changes nothing.
async fn an_unknown_user_is_not_found(e: Env) {
    let root = e.admin("root@example.com").await;
    let at = token(&root, "access_token");
    for id in [
        "0190a0d6-0000-7000-8000-000000000000",
        "not-a-uuid",
        "1%20OR%201=1",
    ] {
        let r = patch_user(&e, &at, id, json!({"disabled": true}))
            .await
            .expect(StatusCode::NOT_FOUND);
        assert_eq!(r.code(), "route.not_found", "{id}: {}", r.body);
        let sessions = format!("/api/v1/admin/users/{id}/sessions");
        e.api
            .send_as(Method::DELETE, &sessions, &at, None)
            .await
            .expect(StatusCode::NOT_FOUND);
    }
    e.api.me(&at).await.expect(StatusCode::OK);
}

on_both!(
    an_unknown_user_is_not_found,
    the_last_active_admin_cannot_be_disabled_or_demoted,
    the_last_active_admin_cannot_delete_their_account,
    two_admins_leaving_at_once_leave_one,
);
