//! The identity flows in-process, on a migrated database: the rules as the service
//! applies them, without HTTP in between. Each test runs on SQLite and, where the
//! database matters (uniqueness, the one-time fix), on PostgreSQL too.

use std::sync::Arc;
use std::time::Duration;

use palisade_auth::access::{AccessTokens, SigningKey};
use palisade_auth::email::Email;
use palisade_auth::ids::UserId;
use palisade_auth::password::{BASELINE, Passwords};
use palisade_auth::permissions::Role;
use palisade_auth::refresh::RefreshTokens;
use palisade_auth::secretbox::SecretBox;
use palisade_service::audit::Audit;
use palisade_service::events::EventLog;
use palisade_service::identity::{
    Hasher, Identity, IdentityError, IdentityKeys, IdentitySettings, LockoutPolicy, LoginOutcome,
    Provenance,
};
use palisade_service::mail::{Mail, MailSettings, TransportSettings};
use palisade_store::Db;
use palisade_store::cache::ScopeVersions;
use palisade_store::repo::{now, users};

const PASSWORD: &str = "correct horse battery staple 42";

fn identity(db: &Db) -> Identity {
    let key = SigningKey::generate_ed25519();
    Identity::new(
        db.clone(),
        Hasher::new(Passwords::new(BASELINE).expect("argon2"), 1),
        IdentityKeys {
            access: AccessTokens::new(&key, "palisade", "palisade-api", Duration::from_secs(900)),
            refresh: RefreshTokens::new(&key.derive("refresh")).expect("key"),
            secrets: SecretBox::new(&key.derive("box")).expect("key"),
        },
        Audit::new(db.clone()),
        IdentitySettings {
            refresh_idle: Duration::from_secs(3600),
            refresh_absolute: Duration::from_secs(7200),
            refresh_grace: Duration::from_secs(10),
            max_sessions: 10,
            lockout: LockoutPolicy {
                threshold: 3,
                window: Duration::from_secs(900),
                duration: Duration::from_secs(900),
            },
            require_verified_email: false,
        },
        EventLog::new(Arc::new(ScopeVersions::new(db.clone()))),
        mail(db, &key),
    )
}

/// Mail written to files in a directory of the test's own.
fn mail(db: &Db, key: &SigningKey) -> Mail {
    let dir = tempfile::tempdir().expect("tempdir").keep();
    let settings = MailSettings {
        from: "Palisade <no-reply@example.com>".parse().expect("mailbox"),
        public_url: "https://app.example.com".to_owned(),
        transport: TransportSettings::Files(dir),
    };
    Mail::new(
        db.clone(),
        SecretBox::new(&key.derive("mail")).expect("key"),
        settings,
    )
    .expect("mail")
}

fn from() -> Provenance {
    Provenance::default()
}

async fn signed_in(id: &Identity, email: &str) -> palisade_service::identity::TokenPair {
    match id.login(email, PASSWORD, &from()).await.expect("login") {
        LoginOutcome::Tokens(pair) => *pair,
        LoginOutcome::MfaRequired { .. } => panic!("no 2FA here"),
    }
}

#[tokio::test]
async fn a_session_is_signed_into_refreshed_and_ended() {
    let (db, _dir) = palisade_store::testing::migrated_sqlite().await;
    let id = identity(&db);
    let user = id
        .register(" Ada@Example.COM ", PASSWORD, " Ada ", &from())
        .await
        .expect("register");
    assert_eq!(
        (user.email.as_str(), user.name.as_str()),
        ("ada@example.com", "Ada")
    );
    assert_eq!(user.roles, vec![Role::Member]);
    let pair = signed_in(&id, "ADA@example.com").await;
    let who = id.authenticate(&pair.access_token).await.expect("valid");
    assert_eq!(who.user_id, user.id);
    let next = id
        .refresh(&pair.refresh_token, &from())
        .await
        .expect("refresh");
    assert_eq!(next.session_id, pair.session_id);
    id.logout(&who, &from()).await.expect("logout");
    assert!(matches!(
        id.authenticate(&next.access_token).await,
        Err(IdentityError::Unauthenticated)
    ));
}

#[tokio::test]
async fn failures_lock_the_account_and_a_locked_account_answers_like_a_wrong_password() {
    let (db, _dir) = palisade_store::testing::migrated_sqlite().await;
    let id = identity(&db);
    id.register("bob@example.com", PASSWORD, "Bob", &from())
        .await
        .expect("register");
    for _ in 0..3 {
        assert!(matches!(
            id.login("bob@example.com", "not the password at all", &from())
                .await,
            Err(IdentityError::InvalidCredentials)
        ));
    }
    assert!(
        matches!(
            id.login("bob@example.com", PASSWORD, &from()).await,
            Err(IdentityError::InvalidCredentials)
        ),
        "locked after the threshold, the right password included"
    );
}

/// The statistics count an account as locked exactly when the policy refuses it: a
/// lock running, or the hourly cap of failures reached within the hour.
#[tokio::test]
async fn the_locked_count_agrees_with_the_policy() {
    use palisade_service::identity::lockout::HOURLY_CAP;
    use palisade_store::repo::lockout::{self, Failures};
    let (db, _dir) = palisade_store::testing::migrated_sqlite().await;
    let id = identity(&db);
    let at = now();
    let minutes = |m: i64| time::Duration::minutes(m);
    let cap = i32::try_from(HOURLY_CAP).expect("cap");
    let rows = [
        ("locked", Some(at + minutes(5)), 3, cap, at),
        ("lock ended", Some(at - minutes(5)), 0, 0, at),
        ("at the cap this hour", None, 0, cap, at - minutes(50)),
        ("at the cap an hour ago", None, 0, cap, at - minutes(70)),
        ("under the cap", None, 2, cap - 1, at - minutes(10)),
    ];
    let policy = LockoutPolicy {
        threshold: 3,
        window: Duration::from_secs(900),
        duration: Duration::from_secs(900),
    };
    let mut refused = 0;
    for (i, (what, locked_until, failures, hour_failures, hour_started_at)) in
        rows.into_iter().enumerate()
    {
        let user = id
            .register(&format!("u{i}@example.com"), PASSWORD, "U", &from())
            .await
            .expect("register");
        let f = Failures {
            user_id: user.id,
            failures,
            window_started_at: at,
            locked_until,
            lockouts: 0,
            hour_failures,
            hour_started_at,
        };
        lockout::put(&db, &f).await.expect("put");
        let locked = policy.is_locked(Some(&f), at);
        assert_eq!(locked, matches!(i, 0 | 2), "{what}");
        refused += i64::from(locked);
    }
    let counted = lockout::locked_at(&db, at, HOURLY_CAP, at - Duration::from_secs(3600))
        .await
        .expect("count");
    assert_eq!(counted, refused);
}

/// Registers the spellings in turn: the first is accepted, the others are taken.
async fn one_account_per_address(id: &Identity) {
    for spellings in [
        [
            "ana@bücher.example",
            "ana@xn--bcher-kva.example",
            "ANA@BÜCHER.example",
        ],
        [
            "re\u{301}ne@example.com",
            "r\u{e9}ne@example.com",
            " RE\u{301}NE@example.com",
        ],
    ] {
        id.register(spellings[0], PASSWORD, "First", &from())
            .await
            .expect("the first spelling");
        for other in &spellings[1..] {
            assert!(
                matches!(
                    id.register(other, PASSWORD, "Look-alike", &from()).await,
                    Err(IdentityError::EmailTaken)
                ),
                "{other:?} is {:?}'s address",
                spellings[0]
            );
        }
        signed_in(id, spellings[2]).await;
    }
}

#[tokio::test]
async fn spellings_of_one_address_are_one_account_on_sqlite() {
    let (db, _dir) = palisade_store::testing::migrated_sqlite().await;
    one_account_per_address(&identity(&db)).await;
}

#[tokio::test]
async fn spellings_of_one_address_are_one_account_on_postgres() {
    let (db, _pg) = palisade_store::testing::migrated_postgres().await;
    one_account_per_address(&identity(&db)).await;
}

/// A row as an older build stored it: the address as typed, trimmed and lower-cased.
async fn legacy_row(db: &Db, email: &str) -> UserId {
    let placeholder = Email::parse("legacy@example.com").expect("email");
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".to_owned();
    let mut user = users::User::new(&placeholder, "Legacy", hash, now());
    user.email = email.to_owned();
    users::insert(db, &user, &[Role::Member])
        .await
        .expect("insert a legacy row");
    user.id
}

async fn stored_addresses_are_made_canonical_once(db: &Db) {
    let id = identity(db);
    let canonical = legacy_row(db, "plain@example.com").await;
    let nfd = legacy_row(db, "zoe\u{308}@example.com").await;
    let u_label = legacy_row(db, "ana@bücher.example").await;
    let twin_a = legacy_row(db, "twin@xn--bcher-kva.example").await;
    let twin_b = legacy_row(db, "twin@bücher.example").await;
    let script = legacy_row(db, "<script>@example.com").await;
    let report = id
        .canonicalise_stored_emails()
        .await
        .expect("fix")
        .expect("made the first time");
    let mut changed = report.changed.clone();
    changed.sort();
    let mut want = vec![nfd, u_label];
    want.sort();
    assert_eq!(changed, want);
    assert_eq!(
        report.collisions,
        vec![{
            let mut twins = vec![twin_a, twin_b];
            twins.sort();
            twins
        }]
    );
    assert_eq!(report.invalid, vec![script]);
    let email_of =
        |u: UserId| async move { users::by_id(db, u).await.expect("read").expect("row").email };
    assert_eq!(email_of(canonical).await, "plain@example.com");
    assert_eq!(email_of(nfd).await, "zo\u{eb}@example.com");
    assert_eq!(email_of(u_label).await, "ana@xn--bcher-kva.example");
    assert_eq!(
        email_of(twin_b).await,
        "twin@bücher.example",
        "a collision is left alone"
    );
    assert!(
        id.canonicalise_stored_emails()
            .await
            .expect("fix")
            .is_none(),
        "made once per database"
    );
}

#[tokio::test]
async fn stored_addresses_are_made_canonical_once_on_sqlite() {
    let (db, _dir) = palisade_store::testing::migrated_sqlite().await;
    stored_addresses_are_made_canonical_once(&db).await;
}

#[tokio::test]
async fn stored_addresses_are_made_canonical_once_on_postgres() {
    let (db, _pg) = palisade_store::testing::migrated_postgres().await;
    stored_addresses_are_made_canonical_once(&db).await;
}
