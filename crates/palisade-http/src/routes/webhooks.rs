//! `/api/v1/admin/webhooks*` (`/openapi.json`, tag webhooks): outbound webhook
//! endpoints, their secrets and their delivery log (`palisade_service::webhooks`).
//! Every handler needs `webhooks:manage` (administrators).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use palisade_auth::permissions::Permission;
use palisade_service::identity::{Principal, Provenance};
use palisade_service::webhooks::{DeliveryView, EndpointPatch, EndpointView, NewEndpoint, TYPES};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::schema::{ArrayBuilder, SchemaType};
use utoipa::openapi::{ObjectBuilder, RefOr, Schema, Type};
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::{Authed, RequestProvenance};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::layers::rate_limit::Tier;
use crate::problem::Problem;
use crate::routes::list::{List, PageQuery};
use crate::routes::{Guard, Routes};
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::default().group(
        Guard::Limited(Tier::General),
        [
            routes!(create_webhook, list_webhooks),
            routes!(get_webhook, update_webhook, delete_webhook),
            routes!(rotate_webhook_secret),
            routes!(list_webhook_deliveries),
            routes!(retry_webhook_delivery),
        ],
    )
}

async fn allowed(state: &AppState, who: &Principal, from: &Provenance) -> Result<(), Problem> {
    state
        .identity
        .require(who, Permission::WebhooksManage, from)
        .await?;
    Ok(())
}

/// A new endpoint.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where events are POSTed: http(s), without credentials, resolving to a public
    /// address.
    #[schema(min_length = 1, max_length = 2048)]
    url: String,
    /// The event types sent to it: `contract.created`, `contract.updated`,
    /// `contract.deleted`, `payment.succeeded`, `payment.failed`, `payment.refunded`,
    /// `user.registered`, `subscription.updated`.
    #[schema(schema_with = event_types)]
    events: Vec<String>,
    #[schema(max_length = 500)]
    description: Option<String>,
}

/// At least one of the event types sent to webhooks, each once.
fn event_types() -> RefOr<Schema> {
    let item = ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .enum_values(Some(TYPES));
    ArrayBuilder::new()
        .items(item)
        .min_items(Some(1))
        .max_items(Some(TYPES.len()))
        .into()
}

/// A new endpoint, with its signing secret: shown this once.
#[derive(Serialize, ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    endpoint: EndpointView,
    /// `whsec_…`: the key of the `webhook-signature` HMAC.
    secret: String,
}

/// Registers an endpoint. Its secret is in this answer only.
#[utoipa::path(post, path = "/api/v1/admin/webhooks", tag = "webhooks", security(("bearer" = [])),
    request_body = CreateWebhook,
    responses((status = 201, body = CreatedWebhook, headers(("Location" = String))),
              (status = 403, description = "auth.forbidden: needs webhooks:manage"),
              (status = 422, description = "request.invalid_fields: a bad or refused URL, an unknown event type")))]
pub async fn create_webhook(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
    ApiJson(body): ApiJson<CreateWebhook>,
) -> Result<Response, Problem> {
    allowed(&state, &who, &from).await?;
    let new = NewEndpoint {
        url: body.url,
        events: body.events,
        description: body.description,
    };
    let (endpoint, secret) = state.webhooks.create(&who, &from, new).await?;
    let location = format!("/api/v1/admin/webhooks/{}", endpoint.id);
    let mut response = (
        StatusCode::CREATED,
        Json(CreatedWebhook { endpoint, secret }),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// The registered endpoints.
#[derive(Serialize, ToSchema)]
pub struct WebhookList {
    items: Vec<EndpointView>,
}

/// Every endpoint, oldest first.
#[utoipa::path(get, path = "/api/v1/admin/webhooks", tag = "webhooks", security(("bearer" = [])),
    responses((status = 200, body = WebhookList),
              (status = 403, description = "auth.forbidden: needs webhooks:manage")))]
pub async fn list_webhooks(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
) -> Result<Json<WebhookList>, Problem> {
    allowed(&state, &who, &from).await?;
    let items = state.webhooks.list().await?;
    Ok(Json(WebhookList { items }))
}

#[utoipa::path(get, path = "/api/v1/admin/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = EndpointView),
              (status = 403, description = "auth.forbidden: needs webhooks:manage"),
              (status = 404, description = "resource.not_found")))]
pub async fn get_webhook(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<EndpointView>, Problem> {
    allowed(&state, &who, &from).await?;
    Ok(Json(state.webhooks.get(id).await?))
}

/// A change to an endpoint; absent fields stay.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchWebhook {
    #[schema(min_length = 1, max_length = 2048)]
    url: Option<String>,
    #[schema(schema_with = event_types)]
    events: Option<Vec<String>>,
    #[schema(max_length = 500)]
    description: Option<String>,
    /// `true` stops deliveries (they are logged as not sent); `false` resumes them and
    /// forgets the failures so far.
    disabled: Option<bool>,
}

#[utoipa::path(patch, path = "/api/v1/admin/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = PatchWebhook,
    responses((status = 200, body = EndpointView),
              (status = 403, description = "auth.forbidden: needs webhooks:manage"),
              (status = 404, description = "resource.not_found"),
              (status = 422, description = "request.invalid_fields")))]
pub async fn update_webhook(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<PatchWebhook>,
) -> Result<Json<EndpointView>, Problem> {
    allowed(&state, &who, &from).await?;
    let patch = EndpointPatch {
        url: body.url,
        events: body.events,
        description: body.description,
        disabled: body.disabled,
    };
    Ok(Json(state.webhooks.update(&who, &from, id, patch).await?))
}

/// Deletes the endpoint and its delivery log; deliveries still queued are dropped.
#[utoipa::path(delete, path = "/api/v1/admin/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204, description = "Deleted"),
              (status = 403, description = "auth.forbidden: needs webhooks:manage"),
              (status = 404, description = "resource.not_found")))]
pub async fn delete_webhook(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, Problem> {
    allowed(&state, &who, &from).await?;
    state.webhooks.delete(&who, &from, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new signing secret.
#[derive(Serialize, ToSchema)]
pub struct RotatedSecret {
    /// `whsec_…`; the one it replaces signs beside it for 24 hours.
    secret: String,
}

/// Replaces the signing secret. For 24 hours every message carries two signatures,
/// one per secret, so receivers can switch without losing any.
#[utoipa::path(post, path = "/api/v1/admin/webhooks/{id}/rotate-secret", tag = "webhooks",
    security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = RotatedSecret),
              (status = 403, description = "auth.forbidden: needs webhooks:manage"),
              (status = 404, description = "resource.not_found")))]
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<RotatedSecret>, Problem> {
    allowed(&state, &who, &from).await?;
    let secret = state.webhooks.rotate_secret(&who, &from, id).await?;
    Ok(Json(RotatedSecret { secret }))
}

/// The endpoint's attempts, newest first.
#[utoipa::path(get, path = "/api/v1/admin/webhooks/{id}/deliveries", tag = "webhooks",
    security(("bearer" = [])), params(("id" = Uuid, Path), PageQuery),
    responses((status = 200, body = List<DeliveryView>),
              (status = 403, description = "auth.forbidden: needs webhooks:manage"),
              (status = 404, description = "resource.not_found")))]
pub async fn list_webhook_deliveries(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<List<DeliveryView>>, Problem> {
    allowed(&state, &who, &from).await?;
    let page = state
        .webhooks
        .deliveries(id, q.cursor.as_ref(), q.limit.unwrap_or_default())
        .await?;
    Ok(Json(page.into()))
}

/// Sends the delivery's event to the endpoint again, under the same `webhook-id`, with
/// a fresh schedule of attempts: a delivery still queued, waiting or dead is run again
/// now.
#[utoipa::path(post, path = "/api/v1/admin/webhooks/{id}/deliveries/{delivery}/retry", tag = "webhooks",
    security(("bearer" = [])), params(("id" = Uuid, Path), ("delivery" = Uuid, Path)),
    responses((status = 202, description = "Queued"),
              (status = 403, description = "auth.forbidden: needs webhooks:manage"),
              (status = 404, description = "resource.not_found")))]
pub async fn retry_webhook_delivery(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
    ApiPath((id, delivery)): ApiPath<(Uuid, Uuid)>,
) -> Result<StatusCode, Problem> {
    allowed(&state, &who, &from).await?;
    state.webhooks.retry(&who, &from, id, delivery).await?;
    Ok(StatusCode::ACCEPTED)
}
