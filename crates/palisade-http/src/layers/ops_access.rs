//! Operations endpoints (`/health/detailed`, `/metrics`) answer only callers whose
//! address is in `PALISADE_OPS_ALLOW` (default: loopback). Everyone else gets the same
//! 404 as an unknown path, so their existence is not disclosed.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;

use super::client_ip::ClientIp;
use crate::problem::Problem;

pub async fn layer(State(allow): State<Arc<[IpNet]>>, req: Request, next: Next) -> Response {
    let allowed = req
        .extensions()
        .get::<ClientIp>()
        .is_some_and(|ip| allow.iter().any(|n| n.contains(&ip.0)));
    if allowed {
        next.run(req).await
    } else {
        Problem::not_found().into_response()
    }
}
