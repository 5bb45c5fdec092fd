//! The audit trail: append-only and hash-chained (docs/SECURITY.md § Errors, logs,
//! audit).
//!
//! Each row carries `prev_hash`, the hash of the row before it (32 zero bytes for the
//! first), and `hash = SHA-256(prev_hash ‖ canonical content)`, where the canonical
//! content is a JSON array of the row's fields in a fixed order. Appending takes the
//! chain's lock, so rows are numbered without gaps. [`Audit::verify`] walks the chain and
//! names the first row that was changed, or where rows were deleted or inserted; given
//! an [`Anchor`] kept from an earlier run, also whether the end was cut off or the
//! whole chain rewritten.

use palisade_auth::ids::UserId;
use palisade_store::repo::audit::{self as repo, Event, Filter};
use palisade_store::{Db, StoreError, Tx};
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;
use uuid::Uuid;

/// The `prev_hash` of the first row.
const GENESIS: [u8; 32] = [0; 32];
/// Rows read per query while verifying.
const VERIFY_CHUNK: u64 = 1000;

/// Who did it, from where, in which request.
#[derive(Clone, Debug, Default)]
pub struct Actor {
    pub user_id: Option<UserId>,
    pub ip: Option<String>,
    pub request_id: Option<String>,
}

/// What was done; its name is the `action` column and the API's `action` filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Register,
    Login,
    Logout,
    Lockout,
    RefreshReused,
    StepUp,
    AuthzDenied,
    StepUpRequired,
    SessionEnded,
    PasswordChanged,
    TwoFactorEnabled,
    TwoFactorDisabled,
    UserDeleted,
    UserUpdated,
    SessionsEnded,
    TwoFactorReset,
    CacheCleared,
    RateLimited,
    ContractCreated,
    ContractUpdated,
    ContractDeleted,
    ExportRun,
    DataSeeded,
    PaymentCreated,
    PaymentSettled,
    PaymentRefunded,
    SubscriptionChanged,
    PlanSet,
    WebhookCreated,
    WebhookUpdated,
    WebhookDeleted,
    WebhookSecretRotated,
    WebhookRetried,
    WebhookDisabled,
    EmailVerificationSent,
    EmailVerified,
    EmailChangeRequested,
    EmailChanged,
    PasswordResetRequested,
    PasswordReset,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Register => "auth.register",
            Action::Login => "auth.login",
            Action::Logout => "auth.logout",
            Action::Lockout => "auth.lockout",
            Action::RefreshReused => "auth.refresh_reused",
            Action::StepUp => "auth.step_up",
            Action::AuthzDenied => "authz.denied",
            Action::StepUpRequired => "authz.step_up_required",
            Action::SessionEnded => "session.ended",
            Action::PasswordChanged => "user.password_changed",
            Action::TwoFactorEnabled => "user.2fa_enabled",
            Action::TwoFactorDisabled => "user.2fa_disabled",
            Action::UserDeleted => "user.deleted",
            Action::UserUpdated => "admin.user_updated",
            Action::SessionsEnded => "admin.sessions_ended",
            Action::TwoFactorReset => "admin.2fa_reset",
            Action::CacheCleared => "infra.cache_cleared",
            Action::RateLimited => "rate_limit.blocked",
            Action::ContractCreated => "contract.created",
            Action::ContractUpdated => "contract.updated",
            Action::ContractDeleted => "contract.deleted",
            Action::ExportRun => "export.run",
            Action::DataSeeded => "data.seeded",
            Action::PaymentCreated => "payment.created",
            Action::PaymentSettled => "payment.settled",
            Action::PaymentRefunded => "payment.refunded",
            Action::SubscriptionChanged => "billing.subscription_changed",
            Action::PlanSet => "billing.plan_set",
            Action::WebhookCreated => "webhook.created",
            Action::WebhookUpdated => "webhook.updated",
            Action::WebhookDeleted => "webhook.deleted",
            Action::WebhookSecretRotated => "webhook.secret_rotated",
            Action::WebhookRetried => "webhook.delivery_retried",
            Action::WebhookDisabled => "webhook.disabled",
            Action::EmailVerificationSent => "user.email_verification_sent",
            Action::EmailVerified => "user.email_verified",
            Action::EmailChangeRequested => "user.email_change_requested",
            Action::EmailChanged => "user.email_changed",
            Action::PasswordResetRequested => "user.password_reset_requested",
            Action::PasswordReset => "user.password_reset",
        }
    }
}

/// How it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    /// Refused by a rule (a permission, a limit) rather than failed.
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
}

/// An event to record.
#[derive(Clone, Debug)]
pub struct Entry {
    pub action: Action,
    pub outcome: Outcome,
    pub target: Option<(&'static str, String)>,
    pub details: serde_json::Value,
}

impl Entry {
    pub fn new(action: Action, outcome: Outcome) -> Entry {
        Entry {
            action,
            outcome,
            target: None,
            details: serde_json::Value::Object(Default::default()),
        }
    }

    pub fn target(mut self, kind: &'static str, id: impl ToString) -> Entry {
        self.target = Some((kind, id.to_string()));
        self
    }

    pub fn detail(mut self, key: &str, value: impl Into<serde_json::Value>) -> Entry {
        if let serde_json::Value::Object(m) = &mut self.details {
            m.insert(key.to_owned(), value.into());
        }
        self
    }
}

/// An event as `GET /api/v1/audit` shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EventView {
    pub seq: i64,
    pub id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub actor_id: Option<Uuid>,
    pub actor_ip: Option<String>,
    pub action: String,
    pub outcome: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub request_id: Option<String>,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// What [`Audit::verify`] found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Verdict {
    /// Every row links to the one before and hashes to its stored hash; `head` is the
    /// newest row (none in an empty log), to keep as the next verification's anchor.
    Intact { rows: u64, head: Option<Anchor> },
    /// The first row whose content no longer matches its hash.
    Changed { seq: i64 },
    /// Rows before `seq` are missing (a gap in the numbering or a broken link).
    Deleted { seq: i64 },
    /// Row `seq` does not link to the row before it although the numbering is whole:
    /// a row was put in before it.
    Inserted { seq: i64 },
    /// The anchored row `seq` is gone and every row left is whole: the newest rows
    /// were cut off the end.
    Truncated { seq: i64 },
    /// The anchored row `seq` is there with another hash although the chain is whole:
    /// the chain up to it was rewritten and its hashes recomputed.
    Rewritten { seq: i64 },
}

/// A row's number and hash, kept outside the database (a ticket, a log shipper, the
/// mail of a scheduled job). The chain alone cannot show that its newest rows were
/// removed, or that it was rewritten with every hash recomputed; a row remembered
/// elsewhere can. Written `SEQ:HASH` (hash in hex).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Anchor {
    pub seq: i64,
    /// SHA-256, lowercase hex.
    pub hash: String,
}

impl Anchor {
    fn of(seq: i64, hash: &[u8]) -> Anchor {
        Anchor {
            seq,
            hash: hash.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }
}

impl std::fmt::Display for Anchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

impl std::str::FromStr for Anchor {
    type Err = String;

    fn from_str(s: &str) -> Result<Anchor, String> {
        let (seq, hash) = s.split_once(':').ok_or("expected SEQ:HASH")?;
        let seq = seq
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or("SEQ must be a row number (1 or more)")?;
        let hash = hash.to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("HASH must be 64 hex digits (SHA-256)".into());
        }
        Ok(Anchor { seq, hash })
    }
}

#[derive(Clone)]
pub struct Audit {
    db: Db,
}

impl Audit {
    pub fn new(db: Db) -> Audit {
        Audit { db }
    }

    /// Records `entry` in a transaction of its own.
    pub async fn record(&self, actor: &Actor, entry: Entry) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        append(&mut tx, actor, &entry).await?;
        tx.commit().await
    }

    /// Records `entry`, logging (not failing) when the database refuses: for events
    /// recorded after the answer is decided (a failed login).
    pub async fn record_or_log(&self, actor: &Actor, entry: Entry) {
        let action = entry.action.as_str();
        if let Err(e) = self.record(actor, entry).await {
            tracing::error!(error = %e, action, "cannot write the audit event");
        }
    }

    /// Newest first.
    pub async fn list(&self, filter: &Filter, limit: u64) -> Result<Vec<EventView>, StoreError> {
        let rows = repo::page(&self.db, filter, limit).await?;
        Ok(rows.into_iter().map(view).collect())
    }

    /// Walks the whole chain; `progress` is told the rows checked so far. `anchor` is
    /// the head an earlier run reported, when one was kept.
    pub async fn verify(
        &self,
        anchor: Option<&Anchor>,
        mut progress: impl FnMut(u64),
    ) -> Result<Verdict, StoreError> {
        let mut prev_seq = 0i64;
        let mut prev_hash = GENESIS.to_vec();
        let mut rows = 0u64;
        loop {
            let chunk = repo::chunk_after(&self.db, prev_seq, VERIFY_CHUNK).await?;
            if chunk.is_empty() {
                if let Some(a) = anchor.filter(|a| a.seq > prev_seq) {
                    return Ok(Verdict::Truncated { seq: a.seq });
                }
                let head = (rows > 0).then(|| Anchor::of(prev_seq, &prev_hash));
                return Ok(Verdict::Intact { rows, head });
            }
            for e in chunk {
                if e.prev_hash != prev_hash {
                    // A whole numbering with a broken link means a row was put in; a
                    // gap means rows were taken out.
                    return Ok(if e.seq == prev_seq + 1 {
                        Verdict::Inserted { seq: e.seq }
                    } else {
                        Verdict::Deleted { seq: e.seq }
                    });
                }
                if e.seq != prev_seq + 1 {
                    return Ok(Verdict::Deleted { seq: e.seq });
                }
                if hash(&e) != e.hash {
                    return Ok(Verdict::Changed { seq: e.seq });
                }
                if let Some(a) = anchor.filter(|a| a.seq == e.seq)
                    && Anchor::of(e.seq, &e.hash) != *a
                {
                    return Ok(Verdict::Rewritten { seq: e.seq });
                }
                prev_seq = e.seq;
                prev_hash = e.hash;
                rows += 1;
            }
            progress(rows);
        }
    }
}

/// Appends `entry` inside `tx`, so an event commits or rolls back with the change it
/// records.
pub async fn append(tx: &mut Tx, actor: &Actor, entry: &Entry) -> Result<(), StoreError> {
    repo::lock_chain(tx).await?;
    let (seq, prev_hash) = match repo::tail(&mut *tx).await? {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS.to_vec()),
    };
    let mut event = Event {
        seq,
        id: Uuid::now_v7(),
        occurred_at: palisade_store::repo::now(),
        actor_id: actor.user_id.map(uuid::Uuid::from),
        actor_ip: actor.ip.clone(),
        action: entry.action.as_str().to_owned(),
        outcome: entry.outcome.as_str().to_owned(),
        target_type: entry.target.as_ref().map(|t| t.0.to_owned()),
        target_id: entry.target.as_ref().map(|t| t.1.clone()),
        request_id: actor.request_id.clone(),
        // serde_json's maps are sorted by key: the text is canonical.
        details: entry.details.to_string(),
        prev_hash,
        hash: Vec::new(),
    };
    event.hash = hash(&event);
    repo::insert(&mut *tx, &event).await
}

/// SHA-256 over the previous hash and the row's canonical content.
fn hash(e: &Event) -> Vec<u8> {
    let when = e
        .occurred_at
        .format(&Rfc3339)
        .unwrap_or_else(|_| e.occurred_at.unix_timestamp_nanos().to_string());
    let content = serde_json::json!([
        e.seq,
        e.id,
        when,
        e.actor_id,
        e.actor_ip,
        e.action,
        e.outcome,
        e.target_type,
        e.target_id,
        e.request_id,
        e.details,
    ]);
    let mut h = Sha256::new();
    h.update(&e.prev_hash);
    h.update(content.to_string().as_bytes());
    h.finalize().to_vec()
}

fn view(e: Event) -> EventView {
    EventView {
        seq: e.seq,
        id: e.id,
        occurred_at: e.occurred_at,
        actor_id: e.actor_id,
        actor_ip: e.actor_ip,
        action: e.action,
        outcome: e.outcome,
        target_type: e.target_type,
        target_id: e.target_id,
        request_id: e.request_id,
        details: serde_json::from_str(&e.details).unwrap_or(serde_json::Value::Null),
    }
}
