//! Palisade's business rules. Nothing here knows about HTTP: handlers in
//! `palisade-http` call these services and map their results to responses.
//!
//! Response types derive `utoipa::ToSchema` so the OpenAPI document describes exactly
//! what the service returns; that is documentation, not an HTTP dependency.

pub mod audit;
pub mod billing;
pub mod contracts;
pub mod dashboard;
pub mod dispatch;
pub mod events;
pub mod exports;
pub mod health;
pub mod idempotency;
pub mod identity;
pub mod infra;
pub mod jobs;
pub mod mail;
pub mod notifications;
pub mod page;
pub mod payments;
pub mod search;
pub mod seed;
pub mod stripe;
pub mod webhooks;

pub use health::{DetailedHealth, HealthService, Readiness};
