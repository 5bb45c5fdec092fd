//! Operations endpoints (`/health/detailed`, `/metrics`) answer only operators: a
//! caller whose address is in `PALISADE_OPS_ALLOW` (default: loopback), or one bearing
//! a valid access token with `admin:infra` (`/openapi.json`, tag operations). Everyone
//! else gets the same 404 as an unknown path, so their existence is not disclosed.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use palisade_auth::permissions::Permission;

use super::client_ip::ClientIp;
use crate::auth::bearer_caller;
use crate::problem::Problem;
use crate::state::AppState;

pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let from_allowed_address = req
        .extensions()
        .get::<ClientIp>()
        .is_some_and(|ip| state.ops_allow.iter().any(|n| n.contains(&ip.0)));
    if from_allowed_address
        || bearer_caller(&state, req.headers())
            .await
            .is_some_and(|p| p.can(Permission::AdminInfra))
    {
        next.run(req).await
    } else {
        Problem::not_found().into_response()
    }
}
