//! Erasing an account empties it at once and purges only erased rows, later.

use palisade_auth::email::Email;
use palisade_auth::permissions::Role;
use palisade_store::repo::{now, users};
use time::Duration;

fn user(email: &str) -> users::User {
    let at = now();
    let email = Email::parse(email).expect("email");
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".to_owned();
    users::User {
        totp_secret: Some(vec![1, 2, 3]),
        totp_enabled_at: Some(at),
        ..users::User::new(&email, "Someone", hash, at)
    }
}

#[tokio::test]
async fn erased_accounts_are_emptied_then_purged_and_nothing_else_is() {
    let (db, _dir) = palisade_store::testing::migrated_sqlite().await;
    let (leaver, stayer) = (user("leaver@example.com"), user("stayer@example.com"));
    users::insert(&db, &leaver, &[Role::Member])
        .await
        .expect("insert");
    users::insert(&db, &stayer, &[Role::Member])
        .await
        .expect("insert");

    assert!(users::erase(&db, leaver.id, now()).await.expect("erase"));
    let erased = users::by_id(&db, leaver.id)
        .await
        .expect("read")
        .expect("row kept");
    assert_eq!(
        erased.email,
        format!("{}@{}", leaver.id, users::ERASED_DOMAIN)
    );
    assert_eq!(erased.name, "");
    assert!(erased.totp_secret.is_none() && erased.disabled_at.is_some());
    assert!(
        users::by_email(&db, &Email::parse("leaver@example.com").expect("email"))
            .await
            .expect("read")
            .is_none()
    );

    // Not yet: the cut-off is before the erasure.
    let early = users::purge_erased(&db, now() - Duration::hours(1))
        .await
        .expect("purge");
    assert_eq!(early, 0);
    let purged = users::purge_erased(&db, now() + Duration::seconds(1))
        .await
        .expect("purge");
    assert_eq!(purged, 1);
    assert!(users::by_id(&db, leaver.id).await.expect("read").is_none());
    assert!(
        users::by_id(&db, stayer.id).await.expect("read").is_some(),
        "others stay"
    );
}
