//! Who moves the money: one small trait, [`PaymentProvider`], and its implementations.
//! `simulated` (the default) settles at once by the test payment methods' names;
//! Stripe confirms a PaymentIntent.
//!
//! Every call carries an idempotency key derived from the payment's (or refund's) own
//! identity, so the provider itself ignores a repeated call: a retry after a crash
//! never charges or refunds twice.

use std::future::Future;
use std::pin::Pin;

/// A boxed future, so the trait can be used as `dyn PaymentProvider`.
pub type ProviderFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, ProviderError>> + Send + 'a>>;

/// A charge to make.
#[derive(Clone, Debug)]
pub struct ChargeRequest<'a> {
    pub amount_cents: i64,
    pub currency: &'a str,
    pub payment_method: &'a str,
    pub description: Option<&'a str>,
    /// The same for every attempt at this payment.
    pub idempotency_key: String,
}

/// What the provider said of a charge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Charge {
    Succeeded {
        reference: String,
    },
    Failed {
        code: String,
        reference: Option<String>,
    },
    /// The provider will say later (a webhook settles it).
    Pending {
        reference: String,
    },
}

/// A refund to make of a charge.
#[derive(Clone, Debug)]
pub struct RefundRequest<'a> {
    /// The charge's reference, as [`Charge`] gave it.
    pub reference: &'a str,
    pub amount_cents: i64,
    /// The same for every attempt at this refund.
    pub idempotency_key: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider could not be reached or answered with an error of its own; trying
    /// again later may succeed.
    #[error("the payment provider is unavailable: {0}")]
    Unavailable(String),
}

pub trait PaymentProvider: Send + Sync {
    /// `simulated`, `stripe`: stored with each payment.
    fn name(&self) -> &'static str;
    /// Whether `method` can be charged at all (checked before anything is stored).
    fn accepts(&self, method: &str) -> bool;
    fn charge<'a>(&'a self, request: ChargeRequest<'a>) -> ProviderFuture<'a, Charge>;
    /// Refunds; returns the refund's reference.
    fn refund<'a>(&'a self, request: RefundRequest<'a>) -> ProviderFuture<'a, String>;
}

/// Settles at once, by the payment method's name (Stripe's test methods): Visa and
/// Mastercard succeed, `pm_card_chargeDeclined` fails with `card_declined`,
/// `pm_card_insufficientFunds` with `insufficient_funds`; any other method is refused
/// before the payment is stored.
pub struct Simulated;

const SIMULATED: [(&str, Option<&str>); 4] = [
    ("pm_card_visa", None),
    ("pm_card_mastercard", None),
    ("pm_card_chargeDeclined", Some("card_declined")),
    ("pm_card_insufficientFunds", Some("insufficient_funds")),
];

impl PaymentProvider for Simulated {
    fn name(&self) -> &'static str {
        "simulated"
    }

    fn accepts(&self, method: &str) -> bool {
        SIMULATED.iter().any(|(m, _)| *m == method)
    }

    fn charge<'a>(&'a self, request: ChargeRequest<'a>) -> ProviderFuture<'a, Charge> {
        Box::pin(async move {
            // The reference follows from the key: a repeated call answers the same.
            let reference = format!("sim_{}", request.idempotency_key);
            let outcome = SIMULATED
                .iter()
                .find(|(m, _)| *m == request.payment_method)
                .and_then(|(_, failure)| *failure);
            Ok(match outcome {
                None => Charge::Succeeded { reference },
                Some(code) => Charge::Failed {
                    code: code.to_owned(),
                    reference: Some(reference),
                },
            })
        })
    }

    fn refund<'a>(&'a self, request: RefundRequest<'a>) -> ProviderFuture<'a, String> {
        Box::pin(async move { Ok(format!("simre_{}", request.idempotency_key)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn charge(method: &str) -> ChargeRequest<'_> {
        ChargeRequest {
            amount_cents: 100,
            currency: "EUR",
            payment_method: method,
            description: None,
            idempotency_key: "k1".into(),
        }
    }

    #[tokio::test]
    async fn the_simulated_provider_answers_by_method() {
        let p = Simulated;
        assert!(p.accepts("pm_card_visa") && !p.accepts("pm_card_unknown"));
        assert_eq!(
            p.charge(charge("pm_card_mastercard")).await.unwrap(),
            Charge::Succeeded {
                reference: "sim_k1".into()
            }
        );
        assert_eq!(
            p.charge(charge("pm_card_chargeDeclined")).await.unwrap(),
            Charge::Failed {
                code: "card_declined".into(),
                reference: Some("sim_k1".into())
            }
        );
        assert!(matches!(
            p.charge(charge("pm_card_insufficientFunds")).await.unwrap(),
            Charge::Failed { code, .. } if code == "insufficient_funds"
        ));
    }
}
