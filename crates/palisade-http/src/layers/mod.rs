//! The tower layers every request passes through, outermost first:
//!
//! 1. `request_id`: assigns the id everything below logs and returns.
//! 2. `client_ip`: resolves the caller's address (trusted proxies).
//! 3. `access_log`: a span per request and one log line when it is served.
//! 4. `metrics`: counts and times the request by route template.
//! 5. `security_headers`: headers on every response, errors included.
//! 6. `problem::render`: turns every error into problem+json with the request id.
//! 7. catch-panic: a panicking handler becomes a 500 problem.
//! 8. timeout: a request that takes longer than `PALISADE_REQUEST_TIMEOUT` gets 503.
//! 9. CORS: preflights and allow-listed origins.
//! 10. `body`: 413 for a declared length over the limit, 415 for a non-JSON body.
//!
//! Routes then add their own (`route::tag` on every route, `ops_access` on the
//! operations endpoints). The header-read timeout and header limits live in the
//! connection itself (`server`).

pub mod access_log;
pub mod body;
pub mod client_ip;
pub mod cors;
pub mod metrics;
pub mod ops_access;
pub mod request_id;
pub mod route;
pub mod security_headers;
