//! Rate-limit tiers on the `/api/v1` routes (docs/SECURITY.md § Rate-limit tiers):
//! per IP before authentication, per user after. A route's tier is given where its
//! group is registered ([`crate::routes`]); its counter lives in the shared limiter
//! ([`palisade_store::ratelimit`]). Every answer carries `RateLimit-Policy` and
//! `RateLimit` (draft-ietf-httpapi-ratelimit-headers-10); a refusal is a 429
//! problem+json with `Retry-After`. Addresses in `PALISADE_RATE_LIMIT_ALLOW` pass.
//!
//! A bearer token is verified here to key the general tier by user; the verified
//! caller rides in the request's extensions so [`crate::auth::Authed`] does not verify
//! it again.

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode};
use ipnet::IpNet;
use palisade_service::audit::{Action, Actor, Entry, Outcome};
use palisade_store::ratelimit::{Quota, Verdict};

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::client_ip::ClientIp;
use super::request_id::RequestId;
use crate::auth::{Verified, bearer_caller};
use crate::problem::Problem;
use crate::state::AppState;

const QUOTA_EXCEEDED: &str = "https://iana.org/assignments/http-problem-types#quota-exceeded";

/// The tiers and who bypasses them.
#[derive(Clone, Debug)]
pub struct RateLimitSettings {
    pub general: Quota,
    pub auth: Quota,
    pub export: Quota,
    pub payment: Quota,
    pub webhook: Quota,
    /// `PALISADE_RATE_LIMIT_ALLOW`.
    pub allow: Vec<IpNet>,
}

/// A route's tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// Everything not below: per user once signed in, else per IP.
    General,
    /// Whatever checks a password or a second factor: per IP.
    Auth,
    /// Exports: per user.
    Export,
    /// Payments and refunds: per user.
    Payment,
    /// Inbound webhooks: per IP.
    Webhook,
}

impl Tier {
    pub fn name(self) -> &'static str {
        match self {
            Tier::General => "general",
            Tier::Auth => "auth",
            Tier::Export => "export",
            Tier::Payment => "payment",
            Tier::Webhook => "webhook",
        }
    }

    fn quota(self, s: &RateLimitSettings) -> &Quota {
        match self {
            Tier::General => &s.general,
            Tier::Auth => &s.auth,
            Tier::Export => &s.export,
            Tier::Payment => &s.payment,
            Tier::Webhook => &s.webhook,
        }
    }
}

/// A request the limiter let through: the headers its answer carries.
pub struct Admitted {
    tier: Tier,
    quota: Quota,
    verdict: Verdict,
}

impl Admitted {
    pub fn headers(&self, h: &mut HeaderMap) {
        headers(h, self.tier, &self.quota, &self.verdict);
    }
}

/// Counts `req` against its tier: `Ok(None)` when the client is not limited (allow-
/// listed, or no address), `Ok(Some)` when it is within its quota, the 429 otherwise.
pub async fn admit(
    state: &AppState,
    tier: Tier,
    req: &mut Request,
) -> Result<Option<Admitted>, Response> {
    let Some(ip) = req.extensions().get::<ClientIp>().map(|c| c.0) else {
        return Ok(None);
    };
    let settings = &state.rate_limits;
    if settings.allow.iter().any(|n| n.contains(&ip)) {
        return Ok(None);
    }
    let key = match tier {
        Tier::Auth | Tier::Webhook => format!("{}:ip:{ip}", tier.name()),
        Tier::General | Tier::Export | Tier::Payment => {
            match bearer_caller(state, req.headers()).await {
                Some(p) => {
                    let key = format!("{}:user:{}", tier.name(), p.user_id);
                    req.extensions_mut().insert(Verified(p));
                    key
                }
                None => format!("{}:ip:{ip}", tier.name()),
            }
        }
    };
    let quota = *tier.quota(settings);
    let verdict = state.limiter.check(&key, &quota).await;
    let admitted = Admitted {
        tier,
        quota,
        verdict,
    };
    if admitted.verdict.allowed {
        return Ok(Some(admitted));
    }
    metrics::counter!("rate_limited_total", "tier" => tier.name()).increment(1);
    tracing::warn!(tier = tier.name(), client_ip = %ip, "rate limit exceeded");
    if first_block_in_a_while(&key) {
        let actor = Actor {
            user_id: req.extensions().get::<Verified>().map(|v| v.0.user_id),
            ip: Some(ip.to_string()),
            request_id: req
                .extensions()
                .get::<RequestId>()
                .map(|r| r.as_str().to_owned()),
        };
        let entry = Entry::new(Action::RateLimited, Outcome::Denied).detail("tier", tier.name());
        state.identity.audit().record_or_log(&actor, entry).await;
    }
    let mut res = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limit.exceeded",
        "Too Many Requests",
    )
    .with_detail(format!("the {} limit is reached; retry later", tier.name()))
    .typed(QUOTA_EXCEEDED)
    .into_response();
    let wait = admitted.verdict.retry_after;
    let retry = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    res.headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from(retry.max(1)));
    admitted.headers(res.headers_mut());
    Err(res)
}

/// How often one key's refusals reach the audit trail: each refusal is logged and
/// counted, but a flood must not become a flood of audit rows.
const AUDIT_EVERY: Duration = Duration::from_secs(60);

/// Whether `key`'s refusal is the first since [`AUDIT_EVERY`].
fn first_block_in_a_while(key: &str) -> bool {
    static LAST: OnceLock<Mutex<HashMap<String, Instant>>> = OnceLock::new();
    let mut last = LAST
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if last.len() > 10_000 {
        last.retain(|_, at| at.elapsed() < AUDIT_EVERY);
    }
    match last.get(key) {
        Some(at) if at.elapsed() < AUDIT_EVERY => false,
        _ => {
            last.insert(key.to_owned(), Instant::now());
            true
        }
    }
}

fn headers(h: &mut HeaderMap, tier: Tier, q: &Quota, v: &Verdict) {
    let policy = format!("\"{}\";q={};w={}", tier.name(), q.count, q.window.as_secs());
    let reset = v.reset.as_secs() + u64::from(v.reset.subsec_nanos() > 0);
    let now = format!("\"{}\";r={};t={}", tier.name(), v.remaining, reset);
    for (name, value) in [("ratelimit-policy", policy), ("ratelimit", now)] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
}
