//! The domain-event log: every state change of a business record appends one event in
//! the transaction of the change, so consumers (notifications, outbound webhooks,
//! e-mail) see exactly the changes that committed. Recording an event about a record
//! also moves the cache scopes it touches (its owner's and `all`) to their next
//! version, in the same transaction: that is the cache's invalidation. And it puts the event in the outbox
//! in that transaction too, and wakes this instance's dispatcher ([`crate::dispatch`])
//! when it commits, so every committed event reaches its consumers, and no other does.

use std::sync::Arc;

use palisade_auth::ids::UserId;
use palisade_store::cache::ScopeVersions;
use palisade_store::repo::events::{self as repo, EventRow};
use palisade_store::{StoreError, Tx};
use tokio::sync::Notify;
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
    EmailChanged,
    UserRegistered,
    /// An outbound webhook endpoint failed for too long and was disabled; no owner:
    /// the administrators are told.
    WebhookDisabled,
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
            EventType::EmailChanged => "security.email_changed",
            EventType::UserRegistered => "user.registered",
            EventType::WebhookDisabled => "webhook.endpoint_disabled",
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
            | EventType::TwoFactorChanged
            | EventType::EmailChanged
            | EventType::UserRegistered => "user",
            EventType::WebhookDisabled => "webhook_endpoint",
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
    recorded: Arc<Notify>,
}

impl EventLog {
    pub fn new(versions: Arc<ScopeVersions>) -> EventLog {
        EventLog {
            versions,
            recorded: Arc::new(Notify::new()),
        }
    }

    /// Signalled after each commit that recorded events. It holds one wake-up while
    /// nobody waits, so the commits made while the dispatcher works wake it once.
    pub fn recorded(&self) -> Arc<Notify> {
        self.recorded.clone()
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
        let id = self
            .append(tx, kind, subject, Some(owner), actor, data)
            .await?;
        // An account's own events (a sign-up, a security notice) change no cached
        // record: they leave the cache alone.
        if kind.subject_type() != "user" {
            self.versions.bump(tx, &scopes_of(owner)).await?;
        }
        Ok(id)
    }

    /// Appends an event about no one's record (the system's own, as a disabled webhook
    /// endpoint) inside `tx`. Returns its id.
    pub async fn record_unowned(
        &self,
        tx: &mut Tx,
        kind: EventType,
        subject: impl ToString,
        data: serde_json::Value,
    ) -> Result<Uuid, StoreError> {
        self.append(tx, kind, subject, None, None, data).await
    }

    async fn append(
        &self,
        tx: &mut Tx,
        kind: EventType,
        subject: impl ToString,
        owner: Option<UserId>,
        actor: Option<UserId>,
        data: serde_json::Value,
    ) -> Result<Uuid, StoreError> {
        let row = EventRow {
            id: Uuid::now_v7(),
            kind: kind.as_str().to_owned(),
            subject_type: kind.subject_type().to_owned(),
            subject_id: subject.to_string(),
            actor_id: actor.map(Uuid::from),
            owner_id: owner.map(|o| o.as_uuid()),
            data,
            created_at: palisade_store::repo::now(),
        };
        repo::append(&mut *tx, &row).await?;
        repo::pend(&mut *tx, row.id).await?;
        let recorded = self.recorded.clone();
        tx.on_commit(move || recorded.notify_one());
        Ok(row.id)
    }
}
