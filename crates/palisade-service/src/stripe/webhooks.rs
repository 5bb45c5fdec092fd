//! Stripe's webhook events (README § Stripe webhooks). The raw body is verified
//! against `Stripe-Signature` before anything parses it
//! ([`palisade_auth::stripe_signature`]); an event already processed is answered
//! without being processed again; an event of a type not handled is acknowledged and
//! ignored. Handled: `payment_intent.succeeded` and `payment_intent.payment_failed`,
//! which settle a pending payment (one already settled is never moved back);
//! `customer.subscription.created|updated|deleted`, `checkout.session.completed` and
//! `invoice.payment_succeeded|failed`, which move a user's subscription
//! ([`crate::billing`]: an older state never replaces a newer one).
//!
//! An event is recorded once its processing committed: a delivery that fails is
//! retried by Stripe and processed then. Two deliveries of one event at once may both
//! process it; settling is conditional on the payment being pending, so only one
//! changes anything.

use palisade_auth::stripe_signature::{self, SignatureError};
use palisade_store::repo::{now, stripe_events};
use palisade_store::{Db, StoreError};
use serde::Deserialize;
use serde_json::Value;

use crate::billing::{Billing, BillingError};
use crate::identity::Provenance;
use crate::payments::provider::Charge;
use crate::payments::{PaymentError, Payments};

/// What became of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    Processed,
    /// Processed before: nothing done.
    Replayed,
    /// A type not handled: acknowledged.
    Ignored,
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("STRIPE_WEBHOOK_SECRET is not set")]
    NotConfigured,
    #[error(transparent)]
    BadSignature(#[from] SignatureError),
    /// Signed, but not an event.
    #[error("the body is not a Stripe event")]
    Malformed,
    #[error(transparent)]
    Payment(#[from] PaymentError),
    #[error(transparent)]
    Billing(#[from] BillingError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The events billing follows.
const BILLING_EVENTS: [&str; 6] = [
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "checkout.session.completed",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
];

#[derive(Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created: i64,
    data: EventData,
}

#[derive(Deserialize)]
struct EventData {
    object: Value,
}

#[derive(Clone)]
pub struct StripeWebhooks {
    db: Db,
    payments: Payments,
    billing: Billing,
    /// The endpoint's `whsec_…` secret.
    secret: Option<String>,
}

impl StripeWebhooks {
    pub fn new(
        db: Db,
        payments: Payments,
        billing: Billing,
        secret: Option<String>,
    ) -> StripeWebhooks {
        StripeWebhooks {
            db,
            payments,
            billing,
            secret,
        }
    }

    /// Verifies and handles one delivery.
    pub async fn receive(
        &self,
        from: &Provenance,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<Received, WebhookError> {
        // A request without a signature is malformed whether or not events are taken.
        let signature = signature.ok_or(SignatureError::Malformed)?;
        let secret = self.secret.as_deref().ok_or(WebhookError::NotConfigured)?;
        let now_unix = u64::try_from(now().unix_timestamp()).unwrap_or(0);
        stripe_signature::verify(signature, body, secret, now_unix)?;
        let event: Event = serde_json::from_slice(body).map_err(|_| WebhookError::Malformed)?;
        if stripe_events::seen(&self.db, &event.id).await? {
            return Ok(Received::Replayed);
        }
        let object = &event.data.object;
        let handled = match event.kind.as_str() {
            "payment_intent.succeeded" => {
                let reference = text(object, "/id")?;
                self.payments
                    .settle_by_reference(
                        from,
                        reference,
                        Charge::Succeeded {
                            reference: reference.to_owned(),
                        },
                    )
                    .await?;
                true
            }
            "payment_intent.payment_failed" => {
                let reference = text(object, "/id")?;
                let code = [
                    "/last_payment_error/decline_code",
                    "/last_payment_error/code",
                ]
                .iter()
                .find_map(|p| object.pointer(p).and_then(Value::as_str))
                .unwrap_or("declined");
                let charge = Charge::Failed {
                    code: code.to_owned(),
                    reference: Some(reference.to_owned()),
                };
                self.payments
                    .settle_by_reference(from, reference, charge)
                    .await?;
                true
            }
            // With billing off, subscriptions are not ours to follow.
            kind if BILLING_EVENTS.contains(&kind) && !self.billing.enabled() => false,
            "customer.subscription.created"
            | "customer.subscription.updated"
            | "customer.subscription.deleted" => {
                self.billing
                    .subscription_event(from, object, event.created)
                    .await?
            }
            "checkout.session.completed" => self.billing.checkout_completed(from, object).await?,
            "invoice.payment_succeeded" | "invoice.payment_failed" => {
                self.billing.invoice_event(from, object).await?
            }
            _ => false,
        };
        stripe_events::insert_if_absent(&self.db, &event.id, &event.kind, event.created, now())
            .await?;
        Ok(if handled {
            Received::Processed
        } else {
            Received::Ignored
        })
    }
}

fn text<'a>(object: &'a Value, pointer: &str) -> Result<&'a str, WebhookError> {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .ok_or(WebhookError::Malformed)
}
