//! Object-level authorization: a member reaches only what is theirs.

use reqwest::{Method, StatusCode};

use crate::api::token;
use crate::backends::{Env, PASSWORD, claims_of};

async fn a_member_cannot_reach_what_is_not_theirs(e: Env) {
    let api = &e.api;
    let alice = api.signed_up("alice2@example.com", PASSWORD).await;
    let bob = api.signed_up("bob2@example.com", PASSWORD).await;
    let (alice_at, bob_at) = (token(&alice, "access_token"), token(&bob, "access_token"));
    let alice_sid = claims_of(&alice_at)["sid"]
        .as_str()
        .expect("sid")
        .to_owned();
    let _r = api
        .send_as(
            Method::DELETE,
            &format!("/api/v1/me/sessions/{alice_sid}"),
            &bob_at,
            None,
        )
        .await
        .expect(StatusCode::NOT_FOUND);
    assert_eq!(
        api.me(&alice_at).await.status,
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
    assert_eq!(api.me(&alice_at).await.status, StatusCode::UNAUTHORIZED);
}

on_both!(a_member_cannot_reach_what_is_not_theirs,);
