//! palisade's application, configured as `palisade serve` is, with one more route:
//! `POST /api/v1/bench/payments`, the payment handler's path (the payment tier, the
//! caller, the body, the permission, the same service call) without the
//! Idempotency-Key store. bench/payments.sh runs both routes on this one server, so
//! the difference between them is what the key store costs.

use anyhow::Context;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use palisade::{app, config, telemetry};
use palisade_auth::permissions::Permission;
use palisade_http::auth::{Authed, RequestProvenance};
use palisade_http::extract::ApiJson;
use palisade_http::layers::rate_limit::Tier;
use palisade_http::problem::Problem;
use palisade_http::routes::{self, Guard, Routes};
use palisade_http::{AppState, server};
use palisade_service::payments::{NewPayment, PaymentView};
use tokio::net::TcpListener;
use utoipa_axum::routes;

/// A payment taken without an Idempotency-Key: every request is a new payment.
#[utoipa::path(post, path = "/api/v1/bench/payments", tag = "bench",
    request_body = NewPayment, responses((status = 201, body = PaymentView)))]
async fn pay_without_key(
    State(state): State<AppState>,
    Authed(who): Authed,
    RequestProvenance(from): RequestProvenance,
    ApiJson(body): ApiJson<NewPayment>,
) -> Result<Response, Problem> {
    state
        .identity
        .require(&who, Permission::PaymentsCreate, &from)
        .await?;
    let view = state.payments.create(&who, &from, None, body).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = config::load(None).into_result()?;
    let _logs = telemetry::init(&config.log_level)?;
    let bench = Routes::default().group(Guard::Limited(Tier::Payment), [routes!(pay_without_key)]);
    let app = app::build_with(&config, routes::all().merge(bench)).await?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(addr = %addr, "listening");
    server::serve(
        listener,
        app.http,
        &config.http,
        app.health,
        server::shutdown_signal(),
    )
    .await;
    app.tasks.stop(std::time::Duration::from_secs(5)).await;
    app.services.db.close().await;
    Ok(())
}
