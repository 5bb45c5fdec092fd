//! `GET /api/v1/exports/contracts` and `/payments` (`/openapi.json`): every record a
//! list would show, streamed as CSV or NDJSON as it is read, under the export tier.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use palisade_auth::ids::{ContractId, UserId};
use palisade_auth::permissions::Permission;
use palisade_service::billing::Feature;
use palisade_service::contracts::fields::{Status, Tag};
use palisade_service::exports::{Export, ExportError, Format, MAX_RUNNING};
use palisade_service::payments::{ListQuery as PaymentsQuery, Status as PaymentStatus};
use serde::Deserialize;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use utoipa::IntoParams;
use utoipa_axum::routes;

use crate::auth::{Authed, RequestProvenance};
use crate::extract::ApiQuery;
use crate::layers::rate_limit::Tier;
use crate::problem::Problem;
use crate::routes::contracts::filters;
use crate::routes::{Guard, Routes};
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::default().group(
        Guard::Limited(Tier::Export),
        [routes!(export_contracts), routes!(export_payments)],
    )
}

/// `GET /api/v1/exports/contracts`'s query: the format and the list's filters.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `csv` (default) or `ndjson`.
    #[param(inline)]
    format: Option<Format>,
    #[param(inline)]
    status: Option<Status>,
    /// Only contracts with this tag.
    #[param(inline)]
    tag: Option<Tag>,
    /// Full text, as on the list.
    #[param(min_length = 1, max_length = 200)]
    q: Option<String>,
    /// Only this user's (`records:all` for anyone but oneself).
    #[param(value_type = Option<String>, format = Uuid)]
    owner: Option<UserId>,
    /// Only contracts created after this time (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    created_after: Option<OffsetDateTime>,
    /// Only contracts created before this time (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    created_before: Option<OffsetDateTime>,
}

/// Every contract the list would show for these filters (all pages), newest first:
/// CSV (RFC 4180, a header row, formula-like cells prefixed with `'`) or NDJSON.
/// Streamed as it is read; not cut by the request timeout; at most 2 running per user.
#[utoipa::path(get, path = "/api/v1/exports/contracts", tag = "contracts", security(("bearer" = [])),
    params(ExportQuery),
    responses((status = 200, description = "The rows, streamed (chunked)",
               content((String = "text/csv"), (String = "application/x-ndjson")),
               headers(("Content-Disposition" = String, description = "`attachment; filename=\"contracts-YYYY-MM-DD.csv\"`"))),
              (status = 402, description = "billing.feature_unavailable: the caller's plan lacks `exports`"),
              (status = 403, description = "auth.forbidden: needs exports:run, and records:all for `owner` other than oneself"),
              (status = 422, description = "request.invalid_fields: `q` empty or longer than 200 characters")))]
pub async fn export_contracts(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, Problem> {
    state
        .identity
        .require(&who, Permission::ExportsRun, &from)
        .await?;
    state.billing.require(who.user_id, Feature::Exports).await?;
    let query = filters(
        (q.status, q.tag, q.q.as_deref(), q.owner),
        (q.created_after, q.created_before),
    )?;
    let format = q.format.unwrap_or_default();
    let export = state.exports.contracts(&who, &from, &query, format).await?;
    Ok(streamed(export, format))
}

/// `GET /api/v1/exports/payments`'s query: the format and the list's filters.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PaymentExportQuery {
    /// `csv` (default) or `ndjson`.
    #[param(inline)]
    format: Option<Format>,
    /// Only payments against this contract.
    #[param(value_type = Option<String>, format = Uuid)]
    contract_id: Option<ContractId>,
    #[param(inline)]
    status: Option<PaymentStatus>,
    /// Only this user's payments (`records:all` for anyone but oneself).
    #[param(value_type = Option<String>, format = Uuid)]
    owner: Option<UserId>,
}

/// Every payment the list would show for these filters (all pages), newest first, as
/// the contracts export.
#[utoipa::path(get, path = "/api/v1/exports/payments", tag = "payments", security(("bearer" = [])),
    params(PaymentExportQuery),
    responses((status = 200, description = "The rows, streamed (chunked)",
               content((String = "text/csv"), (String = "application/x-ndjson")),
               headers(("Content-Disposition" = String, description = "`attachment; filename=\"payments-YYYY-MM-DD.csv\"`"))),
              (status = 402, description = "billing.feature_unavailable: the caller's plan lacks `exports`"),
              (status = 403, description = "auth.forbidden: needs exports:run, and records:all for `owner` other than oneself")))]
pub async fn export_payments(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
    ApiQuery(q): ApiQuery<PaymentExportQuery>,
) -> Result<Response, Problem> {
    state
        .identity
        .require(&who, Permission::ExportsRun, &from)
        .await?;
    state.billing.require(who.user_id, Feature::Exports).await?;
    let query = PaymentsQuery {
        contract_id: q.contract_id,
        status: q.status,
        owner: q.owner,
    };
    let format = q.format.unwrap_or_default();
    let export = state.exports.payments(&who, &from, &query, format).await?;
    Ok(streamed(export, format))
}

/// The export as a chunked attachment.
fn streamed(export: Export, format: Format) -> Response {
    let disposition = format!("attachment; filename=\"{}\"", export.filename);
    let mut res = Body::from_stream(Chunks(export.chunks)).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

/// The export's chunks as a body stream.
struct Chunks(mpsc::Receiver<Vec<u8>>);

impl futures_core::Stream for Chunks {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|c| c.map(|c| Ok(Bytes::from(c))))
    }
}

impl From<ExportError> for Problem {
    fn from(e: ExportError) -> Problem {
        match e {
            ExportError::TooManyRunning => Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "exports.too_many_running",
                "Too many exports running",
            )
            .with_detail(format!(
                "at most {MAX_RUNNING} of your exports run at once; retry when one has finished"
            )),
            ExportError::Contract(e) => e.into(),
            ExportError::Payment(e) => e.into(),
        }
    }
}
