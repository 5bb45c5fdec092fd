//! Stripe's REST API (or a compatible server's, at `STRIPE_API_BASE`), as payments and
//! billing call it: form-encoded requests with the secret key, Stripe's own
//! `Idempotency-Key` on every create, TLS through rustls, 10 s per call. And the
//! webhook events Stripe sends back ([`webhooks`]).
//!
//! An unreachable Stripe, a 429, a 5xx or a refused key is [`Unavailable`]: the
//! caller's state is left as it was and a retry asks again. Any other answer is the
//! caller's to read.

pub mod webhooks;

use std::time::Duration;

use reqwest::StatusCode;

/// How long one call to Stripe may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Stripe could not be asked, or did not answer: try again later.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

/// A client of Stripe's API. Cheap to clone.
#[derive(Clone)]
pub struct StripeApi {
    http: reqwest::Client,
    api_base: String,
    secret_key: String,
}

impl StripeApi {
    /// A client of the API at `api_base` (`https://api.stripe.com`), with `secret_key`.
    pub fn new(api_base: &str, secret_key: &str) -> Result<StripeApi, Unavailable> {
        // sqlx's TLS uses ring too; whichever installs it first, the other finds it.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("palisade/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Unavailable(format!("HTTP client: {e}")))?;
        Ok(StripeApi {
            http,
            api_base: api_base.trim_end_matches('/').to_owned(),
            secret_key: secret_key.to_owned(),
        })
    }

    /// `POST {path}` with `form`, under Stripe's `Idempotency-Key`: a retry with the
    /// same key is answered from Stripe's record of the first call.
    pub async fn post(
        &self,
        path: &str,
        idempotency_key: &str,
        form: &[(&str, String)],
    ) -> Result<(StatusCode, Vec<u8>), Unavailable> {
        let request = self
            .http
            .post(format!("{}{path}", self.api_base))
            .header("Idempotency-Key", idempotency_key)
            .form(form);
        self.send(request).await
    }

    /// `GET {path}`.
    pub async fn get(&self, path: &str) -> Result<(StatusCode, Vec<u8>), Unavailable> {
        self.send(self.http.get(format!("{}{path}", self.api_base)))
            .await
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, Vec<u8>), Unavailable> {
        let res = request
            .bearer_auth(&self.secret_key)
            .send()
            .await
            .map_err(|e| Unavailable(describe(&e)))?;
        let status = res.status();
        let body = res.bytes().await.map_err(|e| Unavailable(describe(&e)))?;
        if status == StatusCode::TOO_MANY_REQUESTS
            || status.is_server_error()
            || status == StatusCode::UNAUTHORIZED
            || status == StatusCode::FORBIDDEN
        {
            return Err(Unavailable(format!("Stripe answered {status}")));
        }
        Ok((status, body.to_vec()))
    }
}

/// What went wrong with a call, in words that name no URL or header.
fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    format!("Stripe: {what}")
}
