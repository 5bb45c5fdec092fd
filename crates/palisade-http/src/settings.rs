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
    /// `PALISADE_HEADER_READ_TIMEOUT`: longest a client may take to send its headers.
    pub header_read_timeout: Duration,
    /// `PALISADE_SHUTDOWN_DELAY`: after a shutdown signal, how long to keep accepting
    /// (answering `/ready` with 503) so load balancers notice before the drain.
    pub shutdown_delay: Duration,
    /// `PALISADE_SHUTDOWN_TIMEOUT`: longest wait for in-flight requests to finish.
    pub shutdown_timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            ops_allow: vec![
                "127.0.0.0/8".parse().expect("valid"),
                "::1/128".parse().expect("valid"),
            ],
            behind_tls: false,
            body_limit: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            shutdown_delay: Duration::ZERO,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}
