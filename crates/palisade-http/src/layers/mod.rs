//! The tower layers every request passes through, outermost first:
//!
//! 1. `observe`: request id, client IP (trusted proxies), span and access log, request
//!    metrics, problem+json for every error, security headers on every response.
//! 2. catch-panic: a panicking handler becomes a 500 problem.
//! 3. timeout: a request that takes longer than `PALISADE_REQUEST_TIMEOUT` gets 503.
//! 4. CORS: preflights and allow-listed origins.
//! 5. `body`: 413 for a declared length over the limit, 415 for a non-JSON body.
//!
//! Routes then add their own (`route::tag` on every route, `ops_access` on the
//! operations endpoints). The header-read timeout and header limits live in the
//! connection itself (`server`).

pub mod access_log;
pub mod body;
pub mod client_ip;
pub mod cors;
pub mod metrics;
pub mod observe;
pub mod ops_access;
pub mod request_id;
pub mod route;
pub mod security_headers;
