//! The `stripe` provider: a PaymentIntent created and confirmed in one call to
//! Stripe's REST API (`POST /v1/payment_intents`, form-encoded), refunds through
//! `POST /v1/refunds`. Every call carries Stripe's own `Idempotency-Key`, derived from
//! the payment's or refund's id, so a retried call is answered from Stripe's record and
//! never charges twice (the client: [`crate::stripe`]).
//!
//! Outcomes: an intent `succeeded` is a success; `processing` (and a confirmation that
//! needs the customer) is pending, settled by the webhook; a refused card (HTTP 402,
//! or `requires_payment_method` with `last_payment_error`) fails with Stripe's
//! `decline_code`, else its `code`. A request Stripe refuses as malformed fails with
//! its error code. An unreachable Stripe, a 429, a 5xx or a refused key is
//! [`ProviderError::Unavailable`]: the payment stays pending and the client's retry,
//! with the same key, asks Stripe again.

use serde::Deserialize;

use super::provider::{
    Charge, ChargeRequest, PaymentProvider, ProviderError, ProviderFuture, RefundRequest,
};
use crate::stripe::{StripeApi, Unavailable};

impl From<Unavailable> for ProviderError {
    fn from(e: Unavailable) -> Self {
        ProviderError::Unavailable(e.0)
    }
}

/// The `stripe` payment provider.
pub struct Stripe {
    api: StripeApi,
}

impl Stripe {
    pub fn new(api: StripeApi) -> Stripe {
        Stripe { api }
    }
}

#[derive(Deserialize)]
struct Intent {
    id: String,
    status: String,
    last_payment_error: Option<StripeError>,
}

#[derive(Deserialize)]
struct StripeError {
    code: Option<String>,
    decline_code: Option<String>,
    payment_intent: Option<IntentRef>,
}

#[derive(Deserialize)]
struct IntentRef {
    id: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: StripeError,
}

#[derive(Deserialize)]
struct RefundBody {
    id: String,
}

impl StripeError {
    fn code(&self) -> String {
        self.decline_code
            .clone()
            .or_else(|| self.code.clone())
            .unwrap_or_else(|| "declined".to_owned())
    }
}

/// Stripe's answer to a confirmed PaymentIntent, as a [`Charge`].
fn charge_of(status: reqwest::StatusCode, body: &[u8]) -> Result<Charge, ProviderError> {
    if !status.is_success() {
        let e: ErrorBody = serde_json::from_slice(body).map_err(|_| {
            ProviderError::Unavailable(format!("Stripe answered {status} without an error"))
        })?;
        return Ok(Charge::Failed {
            code: e.error.code(),
            reference: e.error.payment_intent.map(|p| p.id),
        });
    }
    let intent: Intent = serde_json::from_slice(body)
        .map_err(|e| ProviderError::Unavailable(format!("Stripe's PaymentIntent: {e}")))?;
    Ok(match intent.status.as_str() {
        "succeeded" => Charge::Succeeded {
            reference: intent.id,
        },
        "processing" | "requires_capture" => Charge::Pending {
            reference: intent.id,
        },
        "requires_action" => Charge::Failed {
            code: "authentication_required".to_owned(),
            reference: Some(intent.id),
        },
        _ => Charge::Failed {
            code: intent
                .last_payment_error
                .map(|e| e.code())
                .unwrap_or_else(|| intent.status.clone()),
            reference: Some(intent.id),
        },
    })
}

impl PaymentProvider for Stripe {
    fn name(&self) -> &'static str {
        "stripe"
    }

    /// Any payment-method id; Stripe says whether it can be charged.
    fn accepts(&self, method: &str) -> bool {
        method.starts_with("pm_")
            && method.len() <= 255
            && method
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    }

    fn charge<'a>(&'a self, request: ChargeRequest<'a>) -> ProviderFuture<'a, Charge> {
        Box::pin(async move {
            let mut form = vec![
                ("amount", request.amount_cents.to_string()),
                ("currency", request.currency.to_ascii_lowercase()),
                ("payment_method", request.payment_method.to_owned()),
                ("payment_method_types[]", "card".to_owned()),
                ("confirm", "true".to_owned()),
                ("metadata[palisade_key]", request.idempotency_key.clone()),
            ];
            if let Some(d) = request.description {
                form.push(("metadata[description]", d.to_owned()));
            }
            let (status, body) = self
                .api
                .post("/v1/payment_intents", &request.idempotency_key, &form)
                .await?;
            charge_of(status, &body)
        })
    }

    fn refund<'a>(&'a self, request: RefundRequest<'a>) -> ProviderFuture<'a, String> {
        Box::pin(async move {
            let form = [
                ("payment_intent", request.reference.to_owned()),
                ("amount", request.amount_cents.to_string()),
            ];
            let (status, body) = self
                .api
                .post("/v1/refunds", &request.idempotency_key, &form)
                .await?;
            if !status.is_success() {
                return Err(ProviderError::Unavailable(format!(
                    "Stripe refused the refund: {status}"
                )));
            }
            let refund: RefundBody = serde_json::from_slice(&body)
                .map_err(|e| ProviderError::Unavailable(format!("Stripe's refund: {e}")))?;
            Ok(refund.id)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    #[test]
    fn stripes_answers_become_charges() {
        let ok = br#"{"id":"pi_1","status":"succeeded","last_payment_error":null}"#;
        assert_eq!(
            charge_of(StatusCode::OK, ok).unwrap(),
            Charge::Succeeded {
                reference: "pi_1".into()
            }
        );
        let pending = br#"{"id":"pi_2","status":"processing"}"#;
        assert_eq!(
            charge_of(StatusCode::OK, pending).unwrap(),
            Charge::Pending {
                reference: "pi_2".into()
            }
        );
        let declined = br#"{"error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds","payment_intent":{"id":"pi_3"}}}"#;
        assert_eq!(
            charge_of(StatusCode::PAYMENT_REQUIRED, declined).unwrap(),
            Charge::Failed {
                code: "insufficient_funds".into(),
                reference: Some("pi_3".into())
            }
        );
        let refused = br#"{"id":"pi_4","status":"requires_payment_method","last_payment_error":{"code":"card_declined"}}"#;
        assert_eq!(
            charge_of(StatusCode::OK, refused).unwrap(),
            Charge::Failed {
                code: "card_declined".into(),
                reference: Some("pi_4".into())
            }
        );
        assert!(charge_of(StatusCode::PAYMENT_REQUIRED, b"<html>").is_err());
    }
}
