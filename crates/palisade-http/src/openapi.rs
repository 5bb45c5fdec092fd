//! The OpenAPI 3.1 document served at `/openapi.json`, generated from the handlers'
//! `#[utoipa::path]` annotations. Every new endpoint is listed in `paths(...)`.

use utoipa::OpenApi;

use crate::routes::ops;

#[derive(OpenApi)]
#[openapi(
    info(title = "Palisade", description = "A production-hardened JSON API backend."),
    paths(ops::live, ops::ready, ops::health, ops::health_detailed, ops::metrics, ops::openapi),
    tags((name = "operations", description = "Probes, metrics and this document")),
)]
pub struct ApiDoc;

/// The document as JSON text.
pub fn document() -> String {
    ApiDoc::openapi()
        .to_json()
        .unwrap_or_else(|_| "{}".to_owned())
}
