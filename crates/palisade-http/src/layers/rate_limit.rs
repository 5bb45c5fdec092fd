//! Rate-limit tiers on the `/api/v1` routes (SECURITY-BASELINE.md § Rate-limit tiers):
//! per IP before authentication, per user after. The tier of a request comes from its
//! route ([`tier_of`]); its counter from the shared limiter
//! ([`palisade_store::ratelimit`]). Every answer carries `RateLimit-Policy` and
//! `RateLimit` (draft-ietf-httpapi-ratelimit-headers-10); a refusal is a 429
//! problem+json with `Retry-After`. Addresses in `PALISADE_RATE_LIMIT_ALLOW` pass.
//!
//! A bearer token is verified here to key the general tier by user; the verified
//! caller rides in the request's extensions so [`crate::auth::Authed`] does not verify
//! it again.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use ipnet::IpNet;
use palisade_service::identity::Principal;
use palisade_store::ratelimit::{Quota, Verdict};

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use palisade_service::audit::{Actor, Entry};

use super::client_ip::ClientIp;
use super::request_id::RequestId;
use crate::problem::Problem;
use crate::state::AppState;

const QUOTA_EXCEEDED: &str = "https://iana.org/assignments/http-problem-types#quota-exceeded";

/// The tiers and who bypasses them.
#[derive(Clone, Debug)]
pub struct RateLimitSettings {
    pub general: Quota,
    pub auth: Quota,
    pub payment: Quota,
    pub export: Quota,
    /// `PALISADE_RATE_LIMIT_ALLOW`.
    pub allow: Vec<IpNet>,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        let per = |count, secs, burst| Quota {
            count,
            window: Duration::from_secs(secs),
            burst,
        };
        RateLimitSettings {
            general: per(300, 60, 100),
            auth: per(10, 900, 10),
            payment: per(60, 60, 60),
            export: per(10, 60, 10),
            allow: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    General,
    Auth,
}

impl Tier {
    fn name(self) -> &'static str {
        match self {
            Tier::General => "general",
            Tier::Auth => "auth",
        }
    }

    fn quota(self, s: &RateLimitSettings) -> &Quota {
        match self {
            Tier::General => &s.general,
            Tier::Auth => &s.auth,
        }
    }
}

/// The tier of a request: credentials and second factors are the auth tier.
pub fn tier_of(method: &Method, path: &str) -> Tier {
    // Everything that checks a password or a code: account deletion too.
    let deletes_account = *method == Method::DELETE && path == "/api/v1/me";
    let auth = deletes_account
        || *method == Method::POST
            && (matches!(
                path,
                "/api/v1/auth/register"
                    | "/api/v1/auth/login"
                    | "/api/v1/auth/login/mfa"
                    | "/api/v1/auth/refresh"
                    | "/api/v1/auth/step-up"
                    | "/api/v1/me/password"
            ) || path.starts_with("/api/v1/me/2fa/"));
    if auth { Tier::Auth } else { Tier::General }
}

/// The caller verified by this layer, for `Authed`.
#[derive(Clone)]
pub struct Verified(pub Principal);

pub async fn layer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(ip) = req.extensions().get::<ClientIp>().map(|c| c.0) else {
        return next.run(req).await;
    };
    let settings = &state.rate_limits;
    if settings.allow.iter().any(|n| n.contains(&ip)) {
        return next.run(req).await;
    }
    let tier = tier_of(req.method(), req.uri().path());
    let key = match tier {
        Tier::Auth => format!("auth:ip:{ip}"),
        Tier::General => match crate::auth::bearer_caller(&state, req.headers()).await {
            Some(p) => {
                let key = format!("general:user:{}", p.user_id);
                req.extensions_mut().insert(Verified(p));
                key
            }
            None => format!("general:ip:{ip}"),
        },
    };
    let quota = tier.quota(settings);
    let verdict = state.limiter.check(&key, quota).await;
    if !verdict.allowed {
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
            let entry = Entry::new("rate_limit.blocked", "denied").detail("tier", tier.name());
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
        let retry =
            verdict.retry_after.as_secs() + u64::from(verdict.retry_after.subsec_nanos() > 0);
        res.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from(retry.max(1)));
        headers(res.headers_mut(), tier, quota, &verdict);
        return res;
    }
    let mut res = next.run(req).await;
    headers(res.headers_mut(), tier, quota, &verdict);
    res
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_second_factors_are_the_auth_tier() {
        for p in [
            "/api/v1/auth/login",
            "/api/v1/auth/register",
            "/api/v1/auth/refresh",
            "/api/v1/auth/step-up",
            "/api/v1/me/2fa/setup",
            "/api/v1/me/password",
        ] {
            assert_eq!(tier_of(&Method::POST, p), Tier::Auth, "{p}");
        }
        assert_eq!(tier_of(&Method::DELETE, "/api/v1/me"), Tier::Auth);
        for (m, p) in [
            (Method::GET, "/api/v1/me"),
            (Method::POST, "/api/v1/auth/logout"),
            (Method::GET, "/api/v1/auth/login"),
        ] {
            assert_eq!(tier_of(&m, p), Tier::General, "{m} {p}");
        }
    }
}
