//! Payments (README § Payments): taken against an active contract of the caller's in
//! its currency, never beyond what is left to pay, refunded never beyond what was
//! paid; an audit entry and a domain event in the transaction of every change.
//!
//! A payment is stored `pending` first, in a transaction that locks its contract and
//! checks the balance (pending payments count, so two concurrent payments cannot
//! together overpay), then charged through the [`provider`], then settled. Both steps
//! note on the request's idempotency claim what they committed, so a retry after a
//! crash continues the same payment: the provider sees the same idempotency key and
//! charges once.
//!
//! Scope: a caller sees the payments they made; `records:all` sees everyone's.

pub mod provider;
pub mod stripe;

use std::sync::Arc;

use palisade_auth::ids::{ContractId, PaymentId, RefundId, UserId};
use palisade_auth::permissions::Permission;
use palisade_store::repo::contracts as contracts_repo;
use palisade_store::repo::now;
use palisade_store::repo::payments::{self as repo, PaymentRow, RefundRow};
use palisade_store::{Db, StoreError, Tx};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::{self, Action, Entry, Outcome};
use crate::contracts::fields::{self, Money, Problems, Status as ContractStatus};
use crate::events::{EventLog, EventType};
use crate::idempotency::{Claim, ClaimLost, RecordError};
use crate::identity::{Principal, Provenance};
use crate::page::{BadCursor, Cursor, Limit, Page};
use crate::search::{SearchHit, SearchText, SearchType};
use provider::{Charge, ChargeRequest, PaymentProvider, ProviderError, RefundRequest};

/// The longest description.
const MAX_DESCRIPTION: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// The payment, or its contract, is not there or not the caller's.
    #[error("not found")]
    NotFound,
    #[error("invalid input")]
    Invalid(Problems),
    #[error("the contract is not active")]
    ContractNotActive,
    #[error("the payment's currency is not the contract's")]
    CurrencyMismatch,
    #[error("the payment exceeds what is left to pay on the contract")]
    ExceedsBalance { outstanding_cents: i64 },
    #[error("the refund exceeds what is left of the payment")]
    RefundExceedsPayment { refundable_cents: i64 },
    /// `?owner=` of someone else without `records:all`.
    #[error("forbidden")]
    Forbidden,
    /// Another request took over this one's idempotency key.
    #[error(transparent)]
    ClaimLost(#[from] ClaimLost),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    BadCursor(#[from] BadCursor),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<RecordError> for PaymentError {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::Lost(l) => PaymentError::ClaimLost(l),
            RecordError::Store(s) => PaymentError::Store(s),
        }
    }
}

/// `POST /api/v1/payments`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPayment {
    #[schema(value_type = String, format = Uuid)]
    pub contract_id: ContractId,
    pub amount: Money,
    /// A payment-method id (`pm_card_visa`, …).
    #[schema(min_length = 1, max_length = 255, example = "pm_card_visa")]
    pub payment_method: String,
    #[schema(max_length = 500)]
    pub description: Option<String>,
}

/// `POST /api/v1/payments/{id}/refunds`'s body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRefund {
    /// Default: all that is left of the payment.
    #[schema(minimum = 1)]
    pub amount_cents: Option<i64>,
}

/// Where a payment stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = PaymentStatus)]
pub enum Status {
    Pending,
    Succeeded,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => repo::PENDING,
            Status::Succeeded => repo::SUCCEEDED,
            Status::Failed => repo::FAILED,
        }
    }

    fn parse(s: &str) -> Option<Status> {
        [Status::Pending, Status::Succeeded, Status::Failed]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// A payment as the API shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PaymentView {
    #[schema(value_type = String, format = Uuid)]
    pub id: PaymentId,
    #[schema(value_type = String, format = Uuid)]
    pub contract_id: ContractId,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub payer_id: Option<Uuid>,
    pub amount: Money,
    pub status: Status,
    pub payment_method: String,
    /// Why the provider refused it (`card_declined`, …).
    pub failure_code: Option<String>,
    pub refunded_cents: i64,
    pub provider: String,
    pub provider_ref: Option<String>,
    pub description: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A refund as the API shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RefundView {
    #[schema(value_type = String, format = Uuid)]
    pub id: RefundId,
    #[schema(value_type = String, format = Uuid)]
    pub payment_id: PaymentId,
    pub amount_cents: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// The filters of `GET /api/v1/payments`.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    pub contract_id: Option<ContractId>,
    pub status: Option<Status>,
    pub owner: Option<UserId>,
}

/// The payments service. Cheap to clone.
#[derive(Clone)]
pub struct Payments(Arc<Inner>);

struct Inner {
    db: Db,
    events: EventLog,
    provider: Arc<dyn PaymentProvider>,
}

impl Payments {
    pub fn new(db: Db, events: EventLog, provider: Arc<dyn PaymentProvider>) -> Payments {
        Payments(Arc::new(Inner {
            db,
            events,
            provider,
        }))
    }

    /// Takes a payment, or continues the one an earlier run under `claim` stored.
    /// Without a claim (no Idempotency-Key), each call is a new payment.
    pub async fn create(
        &self,
        who: &Principal,
        from: &Provenance,
        claim: Option<&Claim>,
        input: NewPayment,
    ) -> Result<PaymentView, PaymentError> {
        let row = match claim.and_then(Claim::outcome) {
            Some(id) => self.continued(who, id).await?,
            None => self.store_pending(who, from, claim, input).await?,
        };
        if row.status != repo::PENDING {
            return view_of(&row);
        }
        let charge = self
            .0
            .provider
            .charge(ChargeRequest {
                amount_cents: row.amount_cents,
                currency: &row.currency,
                payment_method: &row.payment_method,
                description: row.description.as_deref(),
                idempotency_key: format!("palisade-payment-{}", row.id),
            })
            .await?;
        self.settle(Some(who.user_id), from, row, charge).await
    }

    /// Settles the pending payment the provider knows as `reference` (its webhook).
    /// One that is not there or is settled already is left alone, so an event that
    /// arrives late or twice never moves a payment back.
    pub async fn settle_by_reference(
        &self,
        from: &Provenance,
        reference: &str,
        charge: Charge,
    ) -> Result<(), PaymentError> {
        if let Some(row) = repo::by_provider_ref(&self.0.db, reference).await?
            && row.status == repo::PENDING
        {
            self.settle(None, from, row, charge).await?;
        }
        Ok(())
    }

    async fn continued(&self, who: &Principal, outcome: &str) -> Result<PaymentRow, PaymentError> {
        let id = PaymentId::from(outcome_id(outcome)?);
        visible(who, repo::by_id(&self.0.db, id).await?)
    }

    async fn store_pending(
        &self,
        who: &Principal,
        from: &Provenance,
        claim: Option<&Claim>,
        input: NewPayment,
    ) -> Result<PaymentRow, PaymentError> {
        let mut problems = Problems::new();
        fields::check_money(&input.amount, &mut problems);
        if !self.0.provider.accepts(&input.payment_method) {
            problems.push((
                "payment_method",
                format!(
                    "not a payment method of the {} provider",
                    self.0.provider.name()
                ),
            ));
        }
        if let Some(d) = &input.description
            && (d.chars().count() > MAX_DESCRIPTION
                || d.chars().any(|c| c.is_control() && c != '\n'))
        {
            problems.push((
                "description",
                format!("at most {MAX_DESCRIPTION} characters, no control characters"),
            ));
        }
        if !problems.is_empty() {
            return Err(PaymentError::Invalid(problems));
        }
        let mut tx = self.0.db.begin().await?;
        let contract = contracts_repo::lock(&mut tx, input.contract_id)
            .await?
            .filter(|c| who.sees(c.owner_id))
            .ok_or(PaymentError::NotFound)?;
        if contract.status != ContractStatus::Active.as_str() {
            return Err(PaymentError::ContractNotActive);
        }
        if contract.currency != input.amount.currency {
            return Err(PaymentError::CurrencyMismatch);
        }
        let committed = repo::committed_cents(&mut tx, contract.id).await?;
        let outstanding = contract.amount_cents - committed;
        if input.amount.amount_cents > outstanding {
            return Err(PaymentError::ExceedsBalance {
                outstanding_cents: outstanding.max(0),
            });
        }
        let at = now();
        let row = PaymentRow {
            id: PaymentId::generate(),
            contract_id: contract.id,
            payer_id: Some(who.user_id.as_uuid()),
            amount_cents: input.amount.amount_cents,
            currency: input.amount.currency,
            status: repo::PENDING.to_owned(),
            payment_method: input.payment_method,
            failure_code: None,
            refunded_cents: 0,
            provider: self.0.provider.name().to_owned(),
            provider_ref: None,
            description: input.description,
            created_at: at,
            updated_at: at,
        };
        repo::insert(&mut tx, &row).await?;
        if let Some(claim) = claim {
            claim.record(&mut tx, &row.id.to_string()).await?;
        }
        let data = json!({
            "contract_id": row.contract_id,
            "amount": {"amount_cents": row.amount_cents, "currency": row.currency},
        });
        self.0
            .events
            .record(
                &mut tx,
                EventType::PaymentCreated,
                row.id,
                contract.owner_id,
                Some(who.user_id),
                data,
            )
            .await?;
        let entry = Entry::new(Action::PaymentCreated, Outcome::Success)
            .target("payment", row.id)
            .detail("contract_id", row.contract_id.to_string());
        audit::append(&mut tx, &from.actor(Some(who.user_id)), &entry).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Writes the provider's answer on a pending payment.
    async fn settle(
        &self,
        actor: Option<UserId>,
        from: &Provenance,
        row: PaymentRow,
        charge: Charge,
    ) -> Result<PaymentView, PaymentError> {
        let (status, failure_code, reference) = match charge {
            Charge::Succeeded { reference } => (Status::Succeeded, None, Some(reference)),
            Charge::Failed { code, reference } => (Status::Failed, Some(code), reference),
            Charge::Pending { reference } => (Status::Pending, None, Some(reference)),
        };
        let next = PaymentRow {
            status: status.as_str().to_owned(),
            failure_code,
            provider_ref: reference,
            updated_at: now(),
            ..row
        };
        if status == Status::Pending {
            // Settled later by the provider's webhook; keep its reference meanwhile.
            repo::set_reference(&self.0.db, next.id, next.provider_ref.as_deref()).await?;
            return view_of(&next);
        }
        let mut tx = self.0.db.begin().await?;
        let owner = contract_owner(&mut tx, next.contract_id).await?;
        if !repo::settle(&mut tx, &next).await? {
            // Settled meanwhile (a webhook, a concurrent retry): show what is stored.
            drop(tx);
            let stored = repo::by_id(&self.0.db, next.id)
                .await?
                .ok_or(PaymentError::NotFound)?;
            return view_of(&stored);
        }
        let kind = match status {
            Status::Succeeded => EventType::PaymentSucceeded,
            _ => EventType::PaymentFailed,
        };
        let data = json!({
            "contract_id": next.contract_id,
            "amount": {"amount_cents": next.amount_cents, "currency": next.currency},
            "status": next.status,
            "failure_code": next.failure_code,
        });
        self.0
            .events
            .record(&mut tx, kind, next.id, owner, actor, data)
            .await?;
        let entry = Entry::new(Action::PaymentSettled, Outcome::Success)
            .target("payment", next.id)
            .detail("status", next.status.clone());
        audit::append(&mut tx, &from.actor(actor), &entry).await?;
        tx.commit().await?;
        view_of(&next)
    }

    pub async fn get(&self, who: &Principal, id: PaymentId) -> Result<PaymentView, PaymentError> {
        view_of(&visible(who, repo::by_id(&self.0.db, id).await?)?)
    }

    /// A page of the payments `query` selects among those `who` sees, newest first.
    pub async fn list(
        &self,
        who: &Principal,
        query: &ListQuery,
        cursor: Option<&Cursor>,
        limit: Limit,
    ) -> Result<Page<PaymentView>, PaymentError> {
        let before = Cursor::start::<Uuid>(cursor)?.map(PaymentId::from);
        let filter = self.filter(who, query)?;
        let rows = repo::page(&self.0.db, &filter, before, limit.fetch()).await?;
        let page = Page::of(rows, limit, |r| r.id);
        Ok(Page {
            items: page.items.iter().map(view_of).collect::<Result<_, _>>()?,
            next: page.next,
        })
    }

    /// The best `limit` payments for `text` among those `who` sees (their own, or
    /// everyone's with `records:all`), best first.
    pub async fn search(
        &self,
        who: &Principal,
        text: &SearchText,
        limit: Limit,
    ) -> Result<Vec<SearchHit>, PaymentError> {
        if text.is_empty() {
            return Ok(Vec::new());
        }
        let payer = who.records_of(None).map_err(|_| PaymentError::Forbidden)?;
        let hits = repo::search(&self.0.db, payer, text.words(), limit.get()).await?;
        Ok(hits
            .into_iter()
            .map(|h| SearchHit {
                kind: SearchType::Payments,
                id: h.id.as_uuid(),
                title: h.title,
                snippet: h.snippet,
                score: h.score,
            })
            .collect())
    }

    /// The store filter of `query` for `who`.
    pub fn filter(&self, who: &Principal, query: &ListQuery) -> Result<repo::Filter, PaymentError> {
        let payer = who
            .records_of(query.owner)
            .map_err(|_| PaymentError::Forbidden)?;
        Ok(repo::Filter {
            payer,
            contract: query.contract_id,
            status: query.status.map(Status::as_str),
        })
    }

    /// Refunds (part of) a succeeded payment, or continues the refund an earlier run
    /// under `claim` stored.
    pub async fn refund(
        &self,
        who: &Principal,
        from: &Provenance,
        claim: &Claim,
        id: PaymentId,
        input: NewRefund,
    ) -> Result<RefundView, PaymentError> {
        let payment = visible(who, repo::by_id(&self.0.db, id).await?)?;
        let refund = match claim.outcome() {
            Some(outcome) => repo::refund_by_id(&self.0.db, RefundId::from(outcome_id(outcome)?))
                .await?
                .ok_or(PaymentError::NotFound)?,
            None => self.store_refund(who, from, claim, &payment, input).await?,
        };
        if refund.provider_ref.is_none()
            && let Some(reference) = payment.provider_ref.as_deref()
        {
            let done = self
                .0
                .provider
                .refund(RefundRequest {
                    reference,
                    amount_cents: refund.amount_cents,
                    idempotency_key: format!("palisade-refund-{}", refund.id),
                })
                .await?;
            repo::set_refund_ref(&self.0.db, refund.id, &done).await?;
        }
        Ok(RefundView {
            id: refund.id,
            payment_id: refund.payment_id,
            amount_cents: refund.amount_cents,
            created_at: refund.created_at,
        })
    }

    async fn store_refund(
        &self,
        who: &Principal,
        from: &Provenance,
        claim: &Claim,
        payment: &PaymentRow,
        input: NewRefund,
    ) -> Result<RefundRow, PaymentError> {
        if input.amount_cents.is_some_and(|a| a < 1) {
            return Err(PaymentError::Invalid(vec![(
                "amount_cents",
                "at least 1".to_owned(),
            )]));
        }
        let mut tx = self.0.db.begin().await?;
        let current = repo::by_id(&mut tx, payment.id)
            .await?
            .ok_or(PaymentError::NotFound)?;
        let refundable = if current.status == repo::SUCCEEDED {
            current.amount_cents - current.refunded_cents
        } else {
            0
        };
        let amount = input.amount_cents.unwrap_or(refundable);
        let row = RefundRow {
            id: RefundId::generate(),
            payment_id: payment.id,
            amount_cents: amount,
            requested_by: Some(who.user_id.as_uuid()),
            provider_ref: None,
            created_at: now(),
        };
        if amount < 1 || !repo::refund(&mut tx, &row).await? {
            return Err(PaymentError::RefundExceedsPayment {
                refundable_cents: refundable,
            });
        }
        claim.record(&mut tx, &row.id.to_string()).await?;
        let owner = contract_owner(&mut tx, payment.contract_id).await?;
        let data =
            json!({ "refund_id": row.id, "amount_cents": amount, "currency": payment.currency });
        self.0
            .events
            .record(
                &mut tx,
                EventType::PaymentRefunded,
                payment.id,
                owner,
                Some(who.user_id),
                data,
            )
            .await?;
        let entry = Entry::new(Action::PaymentRefunded, Outcome::Success)
            .target("payment", payment.id)
            .detail("amount_cents", amount.to_string());
        audit::append(&mut tx, &from.actor(Some(who.user_id)), &entry).await?;
        tx.commit().await?;
        Ok(row)
    }
}

/// `row` when `who` made the payment or sees everyone's (also one whose payer's
/// account is gone); `NotFound` otherwise.
fn visible(who: &Principal, row: Option<PaymentRow>) -> Result<PaymentRow, PaymentError> {
    row.filter(|p| p.payer_id == Some(who.user_id.as_uuid()) || who.can(Permission::RecordsAll))
        .ok_or(PaymentError::NotFound)
}

/// The owner of a payment's contract: whose cache scopes its events touch.
async fn contract_owner(tx: &mut Tx, contract: ContractId) -> Result<UserId, PaymentError> {
    contracts_repo::by_id(&mut *tx, contract)
        .await?
        .map(|c| c.owner_id)
        .ok_or(PaymentError::NotFound)
}

/// The record id an earlier run under the same idempotency key committed.
fn outcome_id(outcome: &str) -> Result<Uuid, PaymentError> {
    Uuid::parse_str(outcome).map_err(|_| corrupt("an idempotency outcome"))
}

fn corrupt(what: &str) -> PaymentError {
    PaymentError::Store(StoreError::Corrupt {
        table: "payments",
        what: what.to_owned(),
    })
}

fn view_of(p: &PaymentRow) -> Result<PaymentView, PaymentError> {
    let status =
        Status::parse(&p.status).ok_or_else(|| corrupt(&format!("status `{}`", p.status)))?;
    Ok(PaymentView {
        id: p.id,
        contract_id: p.contract_id,
        payer_id: p.payer_id,
        amount: Money {
            amount_cents: p.amount_cents,
            currency: p.currency.clone(),
        },
        status,
        payment_method: p.payment_method.clone(),
        failure_code: p.failure_code.clone(),
        refunded_cents: p.refunded_cents,
        provider: p.provider.clone(),
        provider_ref: p.provider_ref.clone(),
        description: p.description.clone(),
        created_at: p.created_at,
        updated_at: p.updated_at,
    })
}
