use std::time::Duration;

use http::HeaderValue;
use ipnet::IpNet;

/// What the HTTP layer needs from the configuration; built by the binary.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// `ALLOWED_ORIGINS`: exact origins allowed to call with CORS.
    pub allowed_origins: Vec<HeaderValue>,
    /// `PALISADE_TRUSTED_PROXIES`: peers whose forwarding headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// `PALISADE_OPS_ALLOW`: who may read `/metrics` and `/health/detailed`.
    pub ops_allow: Vec<IpNet>,
    /// `PALISADE_BEHIND_TLS`: send HSTS.
    pub behind_tls: bool,
    /// `PALISADE_BODY_LIMIT`: largest request body in bytes.
    pub body_limit: usize,
    /// `PALISADE_REQUEST_TIMEOUT`: longest a request may take to answer.
    pub request_timeout: Duration,
    /// `PALISADE_HEADER_READ_TIMEOUT`: longest a client may take to send a request's
    /// head, counted from its connection (or, on a kept-alive HTTP/1 connection, from
    /// the last answer).
    pub header_read_timeout: Duration,
    /// `PALISADE_IDLE_TIMEOUT`: a connection (HTTP/1 or HTTP/2) with no request in
    /// flight for this long is closed. On HTTP/1 the header-read timeout between
    /// requests may close it sooner.
    pub idle_timeout: Duration,
    /// `PALISADE_MAX_CONNECTIONS_PER_CLIENT`: open connections one peer address may
    /// hold; trusted proxies are exempt.
    pub max_connections_per_client: usize,
    /// `PALISADE_SHUTDOWN_DELAY`: after a shutdown signal, how long to keep accepting
    /// (answering `/ready` with 503) so load balancers notice before the drain.
    pub shutdown_delay: Duration,
    /// `PALISADE_SHUTDOWN_TIMEOUT`: longest wait for in-flight requests to finish.
    pub shutdown_timeout: Duration,
}
