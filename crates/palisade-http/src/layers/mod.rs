//! What every request goes through, outermost first. [`edge::Edge`] runs the whole list
//! as one service, one function per concern from the modules below:
//!
//! 1. on the way in: the request id ([`request_id`]), the client address behind
//!    trusted proxies ([`client_ip`]), the span every log line of the request carries
//!    ([`access_log`]), the in-progress gauge ([`metrics`]), the head's rules (`Host`,
//!    the header count: [`head`]), a watch on the body's arrival ([`upload`]);
//! 2. CORS: preflights answered, the origin looked up in the allow-list ([`cors`]);
//! 3. the body's declared length: 413 over the limit ([`body`]);
//! 4. the router, with every panic caught (500) and the request timeout (503, or 408
//!    while the client is still sending its body);
//! 5. on the way out: every error as problem+json ([`crate::problem`]), CORS and
//!    security headers ([`security_headers`]), the request id echoed, request metrics
//!    by route template ([`route`] carries it out of the router) and the access-log
//!    line.
//!
//! Routes add their own, after routing: [`ops_access`] on the operations endpoints,
//! [`guard`] (the rate-limit tier, then the body's media type) on the `/api/v1`
//! routes. The header-read
//! timeout and header limits live in the connection itself ([`crate::server`]).

pub mod access_log;
pub mod body;
pub mod client_ip;
pub mod cors;
pub mod edge;
pub mod guard;
pub mod head;
pub mod metrics;
pub mod ops_access;
pub mod rate_limit;
pub mod request_id;
pub mod route;
pub mod security_headers;
pub mod upload;
