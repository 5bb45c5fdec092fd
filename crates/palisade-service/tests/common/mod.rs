//! What the in-process tests share: a member, a valid contract, and `on_both!`, which
//! runs each named scenario `async fn(Db)` on a migrated SQLite and PostgreSQL database.

use palisade_auth::amr::AuthMethods;
use palisade_auth::email::Email;
use palisade_auth::ids::SessionId;
use palisade_auth::permissions::{Role, permissions_of};
use palisade_service::contracts::fields::{Money, NewContract};
use palisade_service::identity::Principal;
use palisade_store::Db;
use palisade_store::repo::{now, users};

pub async fn member(db: &Db, email: &str) -> Principal {
    let email = Email::parse(email).expect("email");
    let user = users::User::new(&email, "Member", "!".to_owned(), now());
    let id = user.id;
    users::insert(db, &user, &[Role::Member])
        .await
        .expect("user");
    Principal {
        user_id: id,
        session_id: SessionId::generate(),
        roles: vec![Role::Member],
        perms: permissions_of(&[Role::Member]),
        amr: AuthMethods::from_claim(&["pwd".to_owned()]).expect("amr"),
        auth_time: 0,
    }
}

pub fn new_contract() -> NewContract {
    NewContract {
        title: "Bolts".to_owned(),
        counterparty: "Acme".to_owned(),
        amount: Money {
            amount_cents: 500,
            currency: "EUR".to_owned(),
        },
        starts_on: None,
        ends_on: None,
        description: None,
        tags: None,
    }
}

#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (db, _dir) = palisade_store::testing::migrated_sqlite().await;
                super::$name(db).await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (db, _pg) = palisade_store::testing::migrated_postgres().await;
                super::$name(db).await;
            })*
        }
    };
}
