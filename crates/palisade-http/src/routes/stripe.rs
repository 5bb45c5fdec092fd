//! `POST /api/v1/webhooks/stripe` (`/openapi.json`, tag webhooks): Stripe's events,
//! verified on their raw bytes (`palisade_service::stripe::webhooks`). No session, so
//! no CSRF check; the webhook tier limits it per IP, and the body limit is the usual.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use palisade_service::stripe::webhooks::{Received, WebhookError};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::auth::RequestProvenance;
use crate::layers::rate_limit::Tier;
use crate::problem::Problem;
use crate::routes::{Guard, Routes};
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::default().group(Guard::Limited(Tier::Webhook), [routes!(stripe)])
}

/// The acknowledgement of an event.
#[derive(Serialize, ToSchema)]
#[schema(as = WebhookReceipt)]
pub struct Receipt {
    /// `processed`, `replayed` (handled before) or `ignored` (a type not handled).
    pub outcome: &'static str,
}

/// An event from Stripe, signed in `Stripe-Signature` (`t=…,v1=…`, HMAC-SHA256 of
/// `"{t}.{body}"`, at most 300 s old). 200 for every verified event, also one handled
/// before or of a type not handled.
#[utoipa::path(post, path = "/api/v1/webhooks/stripe", tag = "webhooks",
    params(("Stripe-Signature" = String, Header, description = "`t=<unix>,v1=<hex>[,v1=…]`")),
    request_body(content = Object, content_type = "application/json", description = "A Stripe event, as Stripe sends it"),
    responses((status = 200, body = Receipt),
              (status = 400, description = "webhook.bad_signature, or webhook.malformed: signed but not an event"),
              (status = 404, description = "webhook.not_configured: STRIPE_WEBHOOK_SECRET is not set, so no event can be verified")))]
pub async fn stripe(
    State(state): State<AppState>,
    RequestProvenance(from): RequestProvenance,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Receipt>, Problem> {
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let received = state
        .stripe_webhooks
        .receive(&from, signature, &body)
        .await
        .map_err(problem)?;
    let outcome = match received {
        Received::Processed => "processed",
        Received::Replayed => "replayed",
        Received::Ignored => "ignored",
    };
    Ok(Json(Receipt { outcome }))
}

fn problem(e: WebhookError) -> Problem {
    match e {
        WebhookError::BadSignature(e) => Problem::new(
            StatusCode::BAD_REQUEST,
            "webhook.bad_signature",
            "The Stripe-Signature does not verify",
        )
        .with_detail(e.to_string()),
        WebhookError::Malformed => Problem::new(
            StatusCode::BAD_REQUEST,
            "webhook.malformed",
            "The signed body is not a Stripe event",
        )
        .with_detail("an event has an id, a type, created and data.object"),
        WebhookError::NotConfigured => {
            tracing::warn!("a Stripe webhook arrived, but STRIPE_WEBHOOK_SECRET is not set");
            Problem::new(
                StatusCode::NOT_FOUND,
                "webhook.not_configured",
                "Webhooks are not configured",
            )
            .with_detail("this server takes no Stripe events: STRIPE_WEBHOOK_SECRET is not set")
        }
        WebhookError::Payment(e) => e.into(),
        WebhookError::Billing(e) => e.into(),
        WebhookError::Store(e) => e.into(),
    }
}
