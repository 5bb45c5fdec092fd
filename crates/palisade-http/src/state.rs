use std::sync::Arc;

use bytes::Bytes;
use ipnet::IpNet;
use palisade_service::HealthService;
use palisade_store::Db;

use crate::telemetry::Metrics;

/// What handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub health: HealthService,
    pub metrics: &'static Metrics,
    pub ops_allow: Arc<[IpNet]>,
    /// `/openapi.json`, rendered once.
    pub openapi: Bytes,
}
