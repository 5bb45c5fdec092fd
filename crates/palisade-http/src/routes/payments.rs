//! `/api/v1/payments` (`/openapi.json`, tag payments): take a payment against a
//! contract, list and read payments, refund them. Taking and refunding need an
//! `Idempotency-Key` ([`crate::idempotent`]) and count against the payment tier.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use palisade_auth::ids::{ContractId, PaymentId, UserId};
use palisade_auth::permissions::Permission;
use palisade_service::page::{Cursor, Limit};
use palisade_service::payments::{
    ListQuery, NewPayment, NewRefund, PaymentView, RefundView, Status,
};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::routes;

use crate::auth::{Authed, RequestProvenance};
use crate::extract::{ApiPath, ApiQuery};
use crate::idempotent::Idempotent;
use crate::layers::rate_limit::Tier;
use crate::problem::Problem;
use crate::routes::list::List;
use crate::routes::{Guard, Routes};
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::default()
        .group(
            Guard::Limited(Tier::Payment),
            [routes!(pay), routes!(refund)],
        )
        .group(
            Guard::Limited(Tier::General),
            [routes!(list_payments), routes!(read_payment)],
        )
}

/// Takes a payment against one of the caller's active contracts, in its currency. The
/// answer is 201 whatever the provider said: a refused card is a `failed` payment
/// with its `failure_code`.
#[utoipa::path(post, path = "/api/v1/payments", tag = "payments", security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header, description = "1..255 printable ASCII characters, unique per payment; send it again to retry")),
    request_body = NewPayment,
    responses((status = 201, body = PaymentView, description = "The payment (`succeeded`, `failed` or `pending`)",
               headers(("Location" = String, description = "The payment's URL"),
                       ("Idempotent-Replayed" = String, description = "`true` on the answer to a retry"))),
              (status = 400, description = "idempotency.key_missing or idempotency.key_invalid"),
              (status = 403, description = "auth.forbidden: needs payments:create"),
              (status = 404, description = "not_found: no such contract of the caller's"),
              (status = 409, description = "payments.contract_not_active, payments.exceeds_balance or idempotency.in_progress"),
              (status = 422, description = "request.invalid_fields, payments.currency_mismatch or idempotency.key_reused"),
              (status = 502, description = "payments.provider_unavailable: retry with the same key")))]
pub async fn pay(
    State(state): State<AppState>,
    RequestProvenance(from): RequestProvenance,
    request: Idempotent<NewPayment>,
) -> Response {
    let Idempotent { who, body, held } = request;
    let answer = async {
        state
            .identity
            .require(&who, Permission::PaymentsCreate, &from)
            .await?;
        let view = state
            .payments
            .create(&who, &from, Some(held.claim()), body)
            .await?;
        let location = format!("/api/v1/payments/{}", view.id);
        let mut response = (StatusCode::CREATED, Json(view)).into_response();
        if let Ok(v) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::LOCATION, v);
        }
        Ok::<_, Problem>(response)
    }
    .await;
    held.finish(answer.unwrap_or_else(IntoResponse::into_response))
        .await
}

/// `GET /api/v1/payments`'s query.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PaymentsQuery {
    /// Items per page, 1..=100 (default 20).
    #[param(inline)]
    limit: Option<Limit>,
    /// The `next_cursor` of the page before.
    #[param(inline)]
    cursor: Option<Cursor>,
    /// Only payments against this contract.
    #[param(value_type = Option<String>, format = Uuid)]
    contract_id: Option<ContractId>,
    #[param(inline)]
    status: Option<Status>,
    /// Only this user's payments (`records:all` for anyone but oneself).
    #[param(value_type = Option<String>, format = Uuid)]
    owner: Option<UserId>,
}

/// The payments the caller made (everyone's with `records:all`), newest first.
#[utoipa::path(get, path = "/api/v1/payments", tag = "payments", security(("bearer" = [])),
    params(PaymentsQuery),
    responses((status = 200, body = List<PaymentView>),
              (status = 403, description = "auth.forbidden: needs contracts:read, and records:all for `owner` other than oneself")))]
pub async fn list_payments(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
    ApiQuery(q): ApiQuery<PaymentsQuery>,
) -> Result<Json<List<PaymentView>>, Problem> {
    state
        .identity
        .require(&who, Permission::ContractsRead, &from)
        .await?;
    let query = ListQuery {
        contract_id: q.contract_id,
        status: q.status,
        owner: q.owner,
    };
    let page = state
        .payments
        .list(&who, &query, q.cursor.as_ref(), q.limit.unwrap_or_default())
        .await?;
    Ok(Json(page.into()))
}

#[utoipa::path(get, path = "/api/v1/payments/{id}", tag = "payments", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = PaymentView),
              (status = 403, description = "auth.forbidden: needs contracts:read")))]
pub async fn read_payment(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
    ApiPath(id): ApiPath<PaymentId>,
) -> Result<Json<PaymentView>, Problem> {
    state
        .identity
        .require(&who, Permission::ContractsRead, &from)
        .await?;
    Ok(Json(state.payments.get(&who, id).await?))
}

/// Refunds (part of) a succeeded payment: by default all that is left of it.
#[utoipa::path(post, path = "/api/v1/payments/{id}/refunds", tag = "payments", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid),
           ("Idempotency-Key" = String, Header, description = "1..255 printable ASCII characters, unique per refund; send it again to retry")),
    request_body = NewRefund,
    responses((status = 201, body = RefundView,
               headers(("Idempotent-Replayed" = String, description = "`true` on the answer to a retry"))),
              (status = 400, description = "idempotency.key_missing or idempotency.key_invalid"),
              (status = 403, description = "auth.forbidden: needs payments:create"),
              (status = 409, description = "payments.refund_exceeds_payment or idempotency.in_progress"),
              (status = 422, description = "request.invalid_fields or idempotency.key_reused"),
              (status = 502, description = "payments.provider_unavailable: retry with the same key")))]
pub async fn refund(
    State(state): State<AppState>,
    RequestProvenance(from): RequestProvenance,
    ApiPath(id): ApiPath<PaymentId>,
    request: Idempotent<NewRefund>,
) -> Response {
    let Idempotent { who, body, held } = request;
    let answer = async {
        state
            .identity
            .require(&who, Permission::PaymentsCreate, &from)
            .await?;
        let view = state
            .payments
            .refund(&who, &from, held.claim(), id, body)
            .await?;
        Ok::<_, Problem>((StatusCode::CREATED, Json(view)).into_response())
    }
    .await;
    held.finish(answer.unwrap_or_else(IntoResponse::into_response))
        .await
}
