//! The outermost layer: the bookkeeping of every request, in one middleware so the
//! stack below is not cloned once per concern (axum's `from_fn` clones its inner
//! service on every call). Each concern is a function of its own module:
//!
//! - on the way in: [`request_id::assign`], [`client_ip::assign`], a span
//!   ([`access_log::span`]) and the in-progress gauge;
//! - on the way out: [`problem::finish`] (every error as problem+json),
//!   [`security_headers::apply`], [`request_id::echo`], [`metrics::record`] and
//!   [`access_log::record`].

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;
use tracing::Instrument;

use super::route::RouteTemplate;
use super::{access_log, client_ip, metrics, request_id, security_headers};
use crate::problem;

/// What the bookkeeping needs from the configuration.
pub struct Observe {
    pub trusted_proxies: Vec<IpNet>,
    pub behind_tls: bool,
}

pub async fn layer(State(cfg): State<Arc<Observe>>, mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let id = request_id::assign(&mut req);
    let client = client_ip::assign(&mut req, &cfg.trusted_proxies);
    let method = metrics::method_label(req.method());
    let _in_progress = metrics::InProgress::start(method);
    let span = access_log::span(&id);
    let path = req.uri().path().to_owned();

    let res = next.run(req).instrument(span.clone()).await;

    let route = res.extensions().get::<RouteTemplate>().map(|r| r.0.clone());
    let route = route.as_deref().unwrap_or("unmatched");
    let mut res = problem::finish(res, &id);
    security_headers::apply(res.headers_mut(), cfg.behind_tls);
    request_id::echo(&mut res, &id);
    let elapsed = start.elapsed();
    metrics::record(method, route, res.status(), elapsed);
    access_log::record(&id, method, &path, route, res.status(), elapsed, client);
    res
}
