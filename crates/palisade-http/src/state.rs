use std::ops::Deref;
use std::sync::Arc;

use bytes::Bytes;
use http::HeaderValue;
use ipnet::IpNet;
use palisade_auth::csrf::Csrf;
use palisade_service::HealthService;
use palisade_service::billing::Billing;
use palisade_service::contracts::Contracts;
use palisade_service::dashboard::Dashboard;
use palisade_service::exports::Exports;
use palisade_service::idempotency::Idempotency;
use palisade_service::identity::Identity;
use palisade_service::infra::Infra;
use palisade_service::notifications::Notifications;
use palisade_service::payments::Payments;
use palisade_service::stripe::webhooks::StripeWebhooks;
use palisade_service::webhooks::Webhooks;
use palisade_store::Db;
use palisade_store::ratelimit::RateLimiter;

use crate::layers::rate_limit::RateLimitSettings;

use crate::prometheus::Metrics;

/// What handlers share: one `Arc`, so the clone each handler's `State` takes is one
/// reference count.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The contents of [`AppState`].
pub struct Shared {
    pub db: Db,
    pub health: HealthService,
    pub identity: Identity,
    pub contracts: Contracts,
    pub dashboard: Dashboard,
    pub exports: Exports,
    pub payments: Payments,
    pub billing: Billing,
    pub notifications: Notifications,
    pub webhooks: Webhooks,
    /// The Idempotency-Key store of every POST that takes one.
    pub idempotency: Idempotency,
    pub stripe_webhooks: StripeWebhooks,
    pub infra: Infra,
    pub csrf: Csrf,
    /// `PALISADE_COOKIE_SECURE`: mark cookies `Secure`.
    pub cookie_secure: bool,
    /// `ALLOWED_ORIGINS`, for the `Origin` check of cookie-mode requests.
    pub allowed_origins: Arc<[HeaderValue]>,
    pub limiter: Arc<RateLimiter>,
    pub rate_limits: RateLimitSettings,
    pub metrics: &'static Metrics,
    pub ops_allow: Arc<[IpNet]>,
    /// `PALISADE_BODY_LIMIT`: how much of a body of a refused type is read before the
    /// 415 (so the connection stays usable).
    pub body_limit: usize,
    /// `/openapi.json`, rendered once.
    pub openapi: Bytes,
}

impl From<Shared> for AppState {
    fn from(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
