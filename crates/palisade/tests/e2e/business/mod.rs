//! The business API: contracts, search, the dashboard, exports, payments, billing,
//! notifications and outbound webhooks.

mod billing;
mod contracts;
mod dashboard;
mod exports;
mod notifications;
mod payments;
mod search;
mod stripe;
mod webhooks;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api::{Answer, token};
use crate::backends::{Env, PASSWORD};

/// A signed-in caller: their access token and user id.
#[derive(Clone)]
pub struct Caller {
    pub at: String,
    pub id: String,
}

impl Caller {
    fn of(login: &Value) -> Caller {
        Caller {
            at: token(login, "access_token"),
            id: login["user"]["id"].as_str().expect("user id").to_owned(),
        }
    }
}

/// A member who registered through the API.
pub async fn member(e: &Env, email: &str) -> Caller {
    Caller::of(&e.api.signed_up(email, PASSWORD).await)
}

/// A user with `role`, created with the CLI.
pub async fn with_role(e: &Env, email: &str, role: &str) -> Caller {
    Caller::of(&e.user_with_role(email, role).await)
}

/// A valid new contract titled `title`.
pub fn draft(title: &str) -> Value {
    json!({
        "title": title,
        "counterparty": "Acme GmbH",
        "amount": {"amount_cents": 125_000, "currency": "EUR"},
    })
}

pub async fn create(e: &Env, who: &Caller, body: Value) -> Answer {
    e.api
        .send_as(Method::POST, "/api/v1/contracts", &who.at, Some(body))
        .await
}

/// Creates `body` and returns the contract.
pub async fn created(e: &Env, who: &Caller, body: Value) -> Value {
    create(e, who, body).await.expect(StatusCode::CREATED).body
}

pub async fn get(e: &Env, who: &Caller, path: &str) -> Answer {
    e.api.get_as(path, &who.at).await
}

pub async fn patch(e: &Env, who: &Caller, id: &str, if_match: Option<&str>, body: Value) -> Answer {
    let auth = format!("Bearer {}", who.at);
    let mut headers = vec![("authorization", auth.as_str())];
    if let Some(v) = if_match {
        headers.push(("if-match", v));
    }
    e.api
        .call(
            Method::PATCH,
            &format!("/api/v1/contracts/{id}"),
            Some(body),
            &headers,
        )
        .await
}

/// The ids of a list answer's items.
pub fn ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_owned())
        .collect()
}
