//! The Stripe calls billing makes (customers, Checkout and billing-portal sessions,
//! subscriptions) and the subscription object as Stripe shows it.

use palisade_auth::ids::UserId;
use reqwest::StatusCode;
use serde_json::Value;
use time::OffsetDateTime;

use super::BillingError;
use super::transition::StripeSubscription;
use crate::stripe::{StripeApi, Unavailable};

impl From<Unavailable> for BillingError {
    fn from(e: Unavailable) -> Self {
        BillingError::Unavailable(e.0)
    }
}

/// A successful answer's JSON; Stripe's refusal as [`BillingError::Refused`].
fn answer(status: StatusCode, body: &[u8]) -> Result<Value, BillingError> {
    let json: Value = serde_json::from_slice(body)
        .map_err(|_| BillingError::Unavailable(format!("Stripe answered {status} without JSON")))?;
    if !status.is_success() {
        let message = json
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("no message");
        return Err(BillingError::Refused(format!("{status}: {message}")));
    }
    Ok(json)
}

fn text(json: &Value, pointer: &str) -> Result<String, BillingError> {
    json.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| BillingError::Unavailable(format!("Stripe's answer lacks {pointer}")))
}

/// Creates the customer of `user`. Stripe's idempotency key is the user's id, so two
/// concurrent first needs get one customer.
pub async fn create_customer(
    api: &StripeApi,
    user: UserId,
    email: &str,
) -> Result<String, BillingError> {
    let form = [
        ("email", email.to_owned()),
        ("metadata[palisade_user]", user.to_string()),
    ];
    let (status, body) = api
        .post("/v1/customers", &format!("palisade-customer-{user}"), &form)
        .await?;
    text(&answer(status, &body)?, "/id")
}

/// A Checkout Session subscribing `customer` to `price`: its URL.
pub async fn checkout_session(
    api: &StripeApi,
    user: UserId,
    customer: &str,
    price: &str,
    return_url: &str,
) -> Result<String, BillingError> {
    let form = [
        ("mode", "subscription".to_owned()),
        ("customer", customer.to_owned()),
        ("client_reference_id", user.to_string()),
        ("line_items[0][price]", price.to_owned()),
        ("line_items[0][quantity]", "1".to_owned()),
        (
            "success_url",
            format!("{return_url}?checkout=success&session_id={{CHECKOUT_SESSION_ID}}"),
        ),
        ("cancel_url", format!("{return_url}?checkout=canceled")),
        ("metadata[palisade_user]", user.to_string()),
    ];
    // Every checkout is a new session: the key only guards this one call's retries.
    let key = format!("palisade-checkout-{}", uuid::Uuid::now_v7());
    let (status, body) = api.post("/v1/checkout/sessions", &key, &form).await?;
    text(&answer(status, &body)?, "/url")
}

/// A billing-portal session of `customer`: its URL.
pub async fn portal_session(
    api: &StripeApi,
    customer: &str,
    return_url: &str,
) -> Result<String, BillingError> {
    let form = [
        ("customer", customer.to_owned()),
        ("return_url", return_url.to_owned()),
    ];
    let key = format!("palisade-portal-{}", uuid::Uuid::now_v7());
    let (status, body) = api.post("/v1/billing_portal/sessions", &key, &form).await?;
    text(&answer(status, &body)?, "/url")
}

/// Sets `subscription` to end at its period's end: the subscription as Stripe now
/// holds it.
pub async fn cancel_at_period_end(
    api: &StripeApi,
    subscription: &str,
) -> Result<StripeSubscription, BillingError> {
    let form = [("cancel_at_period_end", "true".to_owned())];
    let path = format!("/v1/subscriptions/{}", path_segment(subscription)?);
    let key = format!("palisade-cancel-{subscription}");
    let (status, body) = api.post(&path, &key, &form).await?;
    subscription_of(&answer(status, &body)?)
}

/// The subscription as Stripe holds it now.
pub async fn fetch_subscription(
    api: &StripeApi,
    subscription: &str,
) -> Result<StripeSubscription, BillingError> {
    let path = format!("/v1/subscriptions/{}", path_segment(subscription)?);
    let (status, body) = api.get(&path).await?;
    subscription_of(&answer(status, &body)?)
}

/// A Stripe id fit for a URL path (`sub_…`): letters, digits and `_` only.
fn path_segment(id: &str) -> Result<&str, BillingError> {
    let ok = !id.is_empty()
        && id.len() <= 255
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    ok.then_some(id)
        .ok_or_else(|| BillingError::Refused("not a Stripe id".to_owned()))
}

/// A subscription object (an event's `data.object`, or an API answer). Its price is
/// read where Stripe's API versions put it: the first item's `price`, else its legacy
/// `plan`, else the subscription's own `plan`.
pub fn subscription_of(object: &Value) -> Result<StripeSubscription, BillingError> {
    let price = [
        "/items/data/0/price/id",
        "/items/data/0/plan/id",
        "/plan/id",
    ]
    .iter()
    .find_map(|p| object.pointer(p).and_then(Value::as_str))
    .map(str::to_owned);
    let current_period_end = ["/current_period_end", "/items/data/0/current_period_end"]
        .iter()
        .find_map(|p| object.pointer(p).and_then(Value::as_i64))
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok());
    Ok(StripeSubscription {
        id: text(object, "/id")?,
        customer: customer_of(object)?,
        status: text(object, "/status")?,
        price,
        current_period_end,
        cancel_at_period_end: object
            .get("cancel_at_period_end")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// An object's `customer`: an id, or the expanded customer.
pub fn customer_of(object: &Value) -> Result<String, BillingError> {
    text(object, "/customer").or_else(|_| text(object, "/customer/id"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subscriptions_read_in_either_api_shape() {
        let current = json!({"id":"sub_1","customer":"cus_1","status":"active",
            "cancel_at_period_end":true,
            "items":{"data":[{"price":{"id":"price_pro"},"current_period_end":1900000000}]}});
        let s = subscription_of(&current).unwrap();
        assert_eq!(s.price.as_deref(), Some("price_pro"));
        assert!(s.cancel_at_period_end);
        assert_eq!(s.current_period_end.unwrap().unix_timestamp(), 1900000000);
        let legacy = json!({"id":"sub_2","customer":{"id":"cus_2"},"status":"past_due",
            "current_period_end":1800000000,"plan":{"id":"plan_pro"}});
        let s = subscription_of(&legacy).unwrap();
        assert_eq!(
            (s.price.as_deref(), s.customer.as_str()),
            (Some("plan_pro"), "cus_2")
        );
        assert!(!s.cancel_at_period_end);
        assert!(subscription_of(&json!({"id":"sub_3"})).is_err());
    }

    #[test]
    fn only_stripe_ids_go_into_a_path() {
        assert!(path_segment("sub_1Abc").is_ok());
        for bad in ["", "../v1/charges", "sub_1?x=1", "sub 1", "sub_1/x"] {
            assert!(path_segment(bad).is_err(), "{bad}");
        }
    }
}
