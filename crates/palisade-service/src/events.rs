//! The domain-event log: every state change of a business record appends one event in
//! the transaction of the change, so consumers (notifications, outbound webhooks,
//! e-mail) see exactly the changes that committed. Recording an event also moves the
//! cache scopes it touches (its owner's and `all`) to their next version, in the same
//! transaction: that is the cache's invalidation. And it queues the event's dispatch
//! ([`crate::dispatch`]) in that transaction too, so every committed event reaches its
//! consumers, and no other does.

use std::sync::Arc;

use palisade_auth::ids::UserId;
use palisade_store::cache::ScopeVersions;
use palisade_store::repo::events::{self as repo, EventRow};
use palisade_store::{StoreError, Tx};
use uuid::Uuid;

/// What happened, as consumers filter on it (`contract.created`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    ContractCreated,
    ContractUpdated,
    ContractDeleted,
    PaymentCreated,
    PaymentSucceeded,
    PaymentFailed,
    PaymentRefunded,
    SubscriptionChanged,
    /// A sign-in from an address or a browser the account had not used before.
    NewSignIn,
    Lockout,
    PasswordChanged,
    TwoFactorChanged,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ContractCreated => "contract.created",
            EventType::ContractUpdated => "contract.updated",
            EventType::ContractDeleted => "contract.deleted",
            EventType::PaymentCreated => "payment.created",
            EventType::PaymentSucceeded => "payment.succeeded",
            EventType::PaymentFailed => "payment.failed",
            EventType::PaymentRefunded => "payment.refunded",
            EventType::SubscriptionChanged => "billing.subscription_changed",
            EventType::NewSignIn => "security.new_sign_in",
            EventType::Lockout => "security.lockout",
            EventType::PasswordChanged => "security.password_changed",
            EventType::TwoFactorChanged => "security.2fa_changed",
        }
    }

    /// The kind of record the event is about.
    pub fn subject_type(self) -> &'static str {
        match self {
            EventType::ContractCreated
            | EventType::ContractUpdated
            | EventType::ContractDeleted => "contract",
            EventType::PaymentCreated
            | EventType::PaymentSucceeded
            | EventType::PaymentFailed
            | EventType::PaymentRefunded => "payment",
            EventType::SubscriptionChanged => "subscription",
            EventType::NewSignIn
            | EventType::Lockout
            | EventType::PasswordChanged
            | EventType::TwoFactorChanged => "user",
        }
    }
}

/// The cache scopes of `owner`'s records: their own, and everyone's.
pub fn scopes_of(owner: UserId) -> [String; 2] {
    [owner_scope(owner), ALL_SCOPE.to_owned()]
}

/// The scope of everyone's records.
pub const ALL_SCOPE: &str = "all";

/// The scope of `owner`'s records.
pub fn owner_scope(owner: UserId) -> String {
    format!("owner:{owner}")
}

/// The event log, through which every change of a business record is recorded. Cheap
/// to clone.
#[derive(Clone)]
pub struct EventLog {
    versions: Arc<ScopeVersions>,
}

impl EventLog {
    pub fn new(versions: Arc<ScopeVersions>) -> EventLog {
        EventLog { versions }
    }

    /// Appends an event about `subject` (a record of `owner`), done by `actor`, inside
    /// `tx`: it commits or rolls back with the change. Returns its id.
    pub async fn record(
        &self,
        tx: &mut Tx,
        kind: EventType,
        subject: impl ToString,
        owner: UserId,
        actor: Option<UserId>,
        data: serde_json::Value,
    ) -> Result<Uuid, StoreError> {
        let row = EventRow {
            id: Uuid::now_v7(),
            kind: kind.as_str().to_owned(),
            subject_type: kind.subject_type().to_owned(),
            subject_id: subject.to_string(),
            actor_id: actor.map(Uuid::from),
            owner_id: Some(owner.as_uuid()),
            data,
            created_at: palisade_store::repo::now(),
        };
        repo::append(&mut *tx, &row).await?;
        crate::dispatch::queue(&mut *tx, row.id).await?;
        self.versions.bump(tx, &scopes_of(owner)).await?;
        Ok(row.id)
    }
}
