//! What the in-process tests share: a member, a valid contract.

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
