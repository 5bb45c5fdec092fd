//! `/api/v1/billing/*` (`/openapi.json`, tag billing): the plans, the caller's
//! subscription, and the Stripe pages that change it (Checkout, the billing portal).
//! With billing off, the plans and the subscription are shown and the rest is 404
//! `billing.disabled`.

use axum::Json;
use axum::extract::State;
use palisade_service::billing::{Plan, SubscriptionView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::auth::{Authed, RequestProvenance};
use crate::extract::ApiJson;
use crate::layers::rate_limit::Tier;
use crate::problem::Problem;
use crate::routes::{Guard, Routes};
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::default()
        .group(
            Guard::Limited(Tier::General),
            [routes!(plans), routes!(subscription)],
        )
        // These call Stripe: the payment tier.
        .group(
            Guard::Limited(Tier::Payment),
            [routes!(checkout), routes!(portal), routes!(cancel)],
        )
}

/// The plans, the default (a user without a subscription) first.
#[utoipa::path(get, path = "/api/v1/billing/plans", tag = "billing",
    responses((status = 200, body = Vec<Plan>)))]
pub async fn plans(State(state): State<AppState>) -> Json<Vec<Plan>> {
    Json(state.billing.plans().to_vec())
}

/// The caller's plan and subscription, with what the plan allows now.
#[utoipa::path(get, path = "/api/v1/billing/subscription", tag = "billing", security(("bearer" = [])),
    responses((status = 200, body = SubscriptionView)))]
pub async fn subscription(
    State(state): State<AppState>,
    Authed(who): Authed,
) -> Result<Json<SubscriptionView>, Problem> {
    Ok(Json(state.billing.subscription(who.user_id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    /// A plan id from `GET /api/v1/billing/plans`.
    pub plan: String,
}

/// A page of Stripe's to send the customer to.
#[derive(Serialize, ToSchema)]
#[schema(as = BillingRedirect)]
pub struct Redirect {
    pub url: String,
}

/// A Stripe Checkout page subscribing the caller to `plan`. The subscription starts
/// when Stripe reports it (its webhook), not when this answers.
#[utoipa::path(post, path = "/api/v1/billing/checkout", tag = "billing", security(("bearer" = [])),
    request_body = CheckoutRequest,
    responses((status = 200, body = Redirect),
              (status = 404, description = "billing.disabled"),
              (status = 409, description = "billing.already_subscribed: use the portal"),
              (status = 422, description = "request.invalid_fields (no such plan) or billing.plan_not_for_sale"),
              (status = 502, description = "billing.provider_unavailable: nothing changed, try again")))]
pub async fn checkout(
    State(state): State<AppState>,
    Authed(who): Authed,
    ApiJson(body): ApiJson<CheckoutRequest>,
) -> Result<Json<Redirect>, Problem> {
    let url = state.billing.checkout(who.user_id, &body.plan).await?;
    Ok(Json(Redirect { url }))
}

/// A Stripe billing-portal page where the caller manages their subscription.
#[utoipa::path(post, path = "/api/v1/billing/portal", tag = "billing", security(("bearer" = [])),
    responses((status = 200, body = Redirect),
              (status = 404, description = "billing.disabled"),
              (status = 409, description = "billing.no_subscription: the caller is not a Stripe customer yet"),
              (status = 502, description = "billing.provider_unavailable: nothing changed, try again")))]
pub async fn portal(
    State(state): State<AppState>,
    Authed(who): Authed,
) -> Result<Json<Redirect>, Problem> {
    let url = state.billing.portal(who.user_id).await?;
    Ok(Json(Redirect { url }))
}

/// Ends the caller's subscription at the end of the period paid for; the plan holds
/// until then.
#[utoipa::path(post, path = "/api/v1/billing/cancel", tag = "billing", security(("bearer" = [])),
    responses((status = 200, body = SubscriptionView),
              (status = 404, description = "billing.disabled"),
              (status = 409, description = "billing.no_subscription"),
              (status = 502, description = "billing.provider_unavailable: nothing changed, try again")))]
pub async fn cancel(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
) -> Result<Json<SubscriptionView>, Problem> {
    Ok(Json(state.billing.cancel(&from, who.user_id).await?))
}
