//! Identity and access: accounts, sign-in, sessions, 2FA and their administration
//! (docs/SECURITY.md; README § The HTTP API).
//!
//! [`Identity`] holds what every flow needs (the database, the hasher, the token
//! issuers, the revocation set, the audit trail); the flows live in the submodules:
//! [`accounts`] (registration and the steps of a login), `sessions` (a session's
//! tokens: start, refresh, logout), [`lockout`], [`profile`] (the signed-in user's own
//! account and sessions), [`twofactor`], [`admin`] and [`stored_emails`].

pub mod accounts;
pub mod admin;
pub mod email;
mod hasher;
pub mod lockout;
pub mod profile;
mod revocation;
mod sessions;
pub mod stored_emails;
pub mod twofactor;
mod views;

use std::sync::Arc;
use std::time::Duration;

use palisade_auth::access::{AccessTokens, Claims};
use palisade_auth::amr::AuthMethods;
use palisade_auth::ids::{SessionId, UserId};
use palisade_auth::permissions::{Permission, Role};
use palisade_auth::refresh::RefreshTokens;
use palisade_auth::secretbox::SecretBox;
use palisade_store::repo::sessions::RevokeReason;
use palisade_store::{Db, StoreError};

use crate::audit::{Action, Actor, Audit, Entry, Outcome};
use crate::events::{EventLog, EventType};
use crate::mail::Mail;
pub use hasher::{Hasher, HashingLoad};
pub use lockout::LockoutPolicy;
use palisade_store::fresh::Fresh;
use revocation::Revocations;
pub use views::{LoginOutcome, SessionView, TokenPair, UserView};

/// Lifetimes and limits, from the configuration.
#[derive(Clone, Debug)]
pub struct IdentitySettings {
    pub refresh_idle: Duration,
    pub refresh_absolute: Duration,
    /// A rotated refresh token presented again within this window gets the same
    /// successor; later, it revokes the session.
    pub refresh_grace: Duration,
    pub max_sessions: usize,
    pub lockout: LockoutPolicy,
    /// `PALISADE_REQUIRE_VERIFIED_EMAIL`: an unverified address cannot sign in (the
    /// refusal comes only after a right password).
    pub require_verified_email: bool,
}

/// How long the token of a login's code step lives (docs/SECURITY.md § Two-factor
/// authentication: 5 minutes, single use).
pub const MFA_TOKEN_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// The issuer label authenticator apps show.
pub const TOTP_ISSUER: &str = "Palisade";

/// Why an identity operation failed; the HTTP layer maps each to one status and code.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Unknown email, wrong password, locked or disabled account: one answer for all.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// A missing, expired, forged or revoked access token or session.
    #[error("not authenticated")]
    Unauthenticated,
    #[error("the refresh token was already used; the session is revoked")]
    RefreshReused,
    #[error("invalid or expired refresh token")]
    RefreshInvalid,
    #[error("the email is already registered")]
    EmailTaken,
    /// A link's token that is unknown, used or expired.
    #[error("the token is invalid, used or expired")]
    TokenInvalid,
    /// The right password, for an address not verified yet, when that is required.
    #[error("the e-mail address is not verified")]
    EmailUnverified,
    /// The address got as many mails this hour as it may.
    #[error("too many mails to this address")]
    MailCapped,
    /// Input that breaks a rule: `(field, message)` pairs for a 422.
    #[error("invalid input")]
    Invalid(Vec<(&'static str, String)>),
    /// The password given to confirm an action is wrong.
    #[error("the password is wrong")]
    WrongPassword,
    #[error("the code is wrong or was already used")]
    WrongCode,
    #[error("two-factor authentication is already on")]
    TwoFactorOn,
    #[error("two-factor authentication is not on")]
    TwoFactorOff,
    #[error("two-factor enrolment has not started")]
    NoEnrolment,
    /// The caller lacks the permission.
    #[error("forbidden")]
    Forbidden,
    /// The action needs a second factor within the step-up window.
    #[error("a recent second factor is required")]
    StepUpRequired,
    /// A list's cursor that is not one of its positions.
    #[error(transparent)]
    BadCursor(#[from] crate::page::BadCursor),
    /// The change would leave no active admin.
    #[error("the last active admin cannot be disabled, demoted or deleted")]
    LastAdmin,
    /// Not found, or someone else's.
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A failure of ours that is not the database's: hashing, a secret that does not
    /// open, a QR code that cannot be drawn.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<palisade_auth::password::HashError> for IdentityError {
    fn from(e: palisade_auth::password::HashError) -> Self {
        IdentityError::Internal(e.to_string())
    }
}

impl palisade_store::MaybeTransient for IdentityError {
    fn is_transient(&self) -> bool {
        matches!(self, IdentityError::Store(e) if e.is_transient())
    }
}

/// The caller of an authenticated request, from a verified access token.
#[derive(Clone, Debug)]
pub struct Principal {
    pub user_id: UserId,
    pub session_id: SessionId,
    pub roles: Vec<Role>,
    pub perms: Vec<Permission>,
    pub amr: AuthMethods,
    pub auth_time: u64,
}

impl Principal {
    pub fn can(&self, p: Permission) -> bool {
        self.perms.contains(&p)
    }

    /// Whether this caller sees a record of `owner`'s: their own, or anyone's with
    /// `records:all`.
    pub fn sees(&self, owner: UserId) -> bool {
        owner == self.user_id || self.can(Permission::RecordsAll)
    }

    /// Whose records a list of this caller reads: `owner` when it is the caller or the
    /// caller holds `records:all`; without `owner`, the caller's own, or everyone's
    /// (`None`) with `records:all`. Someone else's without `records:all` is refused.
    pub fn records_of(&self, owner: Option<UserId>) -> Result<Option<UserId>, NotAllowed> {
        let all = self.can(Permission::RecordsAll);
        match owner {
            Some(owner) if owner != self.user_id && !all => Err(NotAllowed),
            Some(owner) => Ok(Some(owner)),
            None if all => Ok(None),
            None => Ok(Some(self.user_id)),
        }
    }

    /// The caller a token's claims name; `None` when its subject, session or methods
    /// are not what this build issues. A role or permission this build does not know
    /// is dropped: it grants nothing here, and refusing it would sign out everyone
    /// holding a token from a release that knew it (a rolling deploy, a rollback).
    /// The signature already proves the claims are ours.
    fn from_claims(c: Claims) -> Option<Principal> {
        Some(Principal {
            user_id: c.sub.parse().ok()?,
            session_id: c.sid.parse().ok()?,
            perms: c.perms.iter().filter_map(|p| p.parse().ok()).collect(),
            roles: c.roles.iter().filter_map(|r| r.parse().ok()).collect(),
            amr: AuthMethods::from_claim(&c.amr)?,
            auth_time: c.auth_time,
        })
    }
}

/// Where a request came from: for sessions and the audit trail.
#[derive(Clone, Debug, Default)]
pub struct Provenance {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

impl Provenance {
    pub fn actor(&self, user_id: Option<UserId>) -> Actor {
        Actor {
            user_id,
            ip: self.ip.clone(),
            request_id: self.request_id.clone(),
        }
    }
}

/// The identity service. Cheap to clone.
#[derive(Clone)]
pub struct Identity(Arc<Inner>);

struct Inner {
    db: Db,
    hasher: Hasher,
    access: AccessTokens,
    refresh: RefreshTokens,
    secrets: SecretBox,
    revocations: Revocations,
    audit: Audit,
    settings: IdentitySettings,
    /// Where security notices are recorded (they become notifications).
    events: EventLog,
    /// Account e-mail: verification, reset and change links.
    mail: Mail,
    /// Users as `GET /me` shows them: a change made here drops its entry at once, one
    /// made on another instance shows within [`VIEW_MAX_AGE`].
    views: Fresh<UserId, UserView>,
}

/// How stale a cached `/me` view may be (as stale as the revocation set).
const VIEW_MAX_AGE: Duration = Duration::from_secs(1);

/// Another user's records asked for without `records:all`.
#[derive(Debug)]
pub struct NotAllowed;

/// How recent a second factor an `admin:infra` action needs (docs/SECURITY.md
/// § Authorization).
pub const STEP_UP_WINDOW: Duration = Duration::from_secs(10 * 60);

/// The keys identity works with: the access and refresh tokens', and the box that
/// seals secrets at rest (TOTP seeds).
pub struct IdentityKeys {
    pub access: AccessTokens,
    pub refresh: RefreshTokens,
    pub secrets: SecretBox,
}

impl Identity {
    pub fn new(
        db: Db,
        hasher: Hasher,
        keys: IdentityKeys,
        audit: Audit,
        settings: IdentitySettings,
        events: EventLog,
        mail: Mail,
    ) -> Identity {
        let IdentityKeys {
            access,
            refresh,
            secrets,
        } = keys;
        // A revoked session's tokens stay valid until they expire (plus the verifier's
        // leeway): that long a revocation must be remembered.
        let horizon = access.lifetime() + Duration::from_secs(60);
        let revocations = Revocations::new(db.clone(), Duration::from_secs(1), horizon);
        Identity(Arc::new(Inner {
            db,
            hasher,
            access,
            refresh,
            secrets,
            revocations,
            audit,
            settings,
            events,
            mail,
            views: Fresh::new(VIEW_MAX_AGE),
        }))
    }

    /// Records `entry` in the audit trail, done by `actor`, from where the request came.
    async fn audited(
        &self,
        from: &Provenance,
        actor: Option<UserId>,
        entry: Entry,
    ) -> Result<(), IdentityError> {
        Ok(self.0.audit.record(&from.actor(actor), entry).await?)
    }

    /// Records a change a user made to their own account.
    async fn own_change(
        &self,
        from: &Provenance,
        user: UserId,
        action: Action,
    ) -> Result<(), IdentityError> {
        let entry = Entry::new(action, Outcome::Success).target("user", user);
        self.audited(from, Some(user), entry).await
    }

    /// [`Identity::audited`], logging instead of failing: for events recorded after
    /// the answer is decided (a failed login).
    async fn audited_or_logged(&self, from: &Provenance, actor: Option<UserId>, entry: Entry) {
        self.0.audit.record_or_log(&from.actor(actor), entry).await;
    }

    /// Tells `user` of a change to their account (a security notice), inside `tx`.
    async fn notice_in(
        &self,
        tx: &mut palisade_store::Tx,
        user: UserId,
        kind: EventType,
        data: serde_json::Value,
    ) -> Result<(), StoreError> {
        let events = &self.0.events;
        events
            .record(tx, kind, user, user, Some(user), data)
            .await
            .map(|_| ())
    }

    /// [`Identity::notice_in`] in a transaction of its own, logging instead of failing:
    /// for notices of a change already made.
    async fn notice_or_log(&self, user: UserId, kind: EventType, data: serde_json::Value) {
        let recorded = async {
            let mut tx = self.0.db.begin().await?;
            self.notice_in(&mut tx, user, kind, data).await?;
            tx.commit().await
        }
        .await;
        if let Err(e) = recorded {
            tracing::warn!(error = %e, kind = kind.as_str(), "security notice not recorded");
        }
    }

    /// What this instance caches of identity: the `/me` views, and the revocation
    /// snapshot with its age.
    pub fn caches(&self) -> (usize, usize, Option<Duration>) {
        let (revoked, age) = self.0.revocations.stats();
        (self.0.views.len(), revoked, age)
    }

    /// What the password-hashing threads are doing.
    pub fn hashing_load(&self) -> HashingLoad {
        self.0.hasher.load()
    }

    pub fn access_tokens(&self) -> &AccessTokens {
        &self.0.access
    }

    pub fn audit(&self) -> &Audit {
        &self.0.audit
    }

    pub fn settings(&self) -> &IdentitySettings {
        &self.0.settings
    }

    /// The caller of a request bearing `token`: a valid access token of a session that
    /// is not revoked.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, IdentityError> {
        let claims = self
            .0
            .access
            .verify(token)
            .map_err(|_| IdentityError::Unauthenticated)?;
        let principal = Principal::from_claims(claims).ok_or(IdentityError::Unauthenticated)?;
        if self.0.revocations.is_revoked(principal.session_id).await? {
            return Err(IdentityError::Unauthenticated);
        }
        Ok(principal)
    }

    /// Refuses with `Forbidden` (and records the denial) unless `who` holds `perm`.
    pub async fn require(
        &self,
        who: &Principal,
        perm: Permission,
        from: &Provenance,
    ) -> Result<(), IdentityError> {
        if who.can(perm) {
            return Ok(());
        }
        self.denied(who, from, Action::AuthzDenied, perm.as_str(), perm)
            .await;
        Err(IdentityError::Forbidden)
    }

    /// Counts a refusal (`authz_denied_total{permission=label}`) and audits it.
    async fn denied(
        &self,
        who: &Principal,
        from: &Provenance,
        action: Action,
        label: &'static str,
        perm: Permission,
    ) {
        metrics::counter!("authz_denied_total", "permission" => label).increment(1);
        let entry = Entry::new(action, Outcome::Denied).detail("permission", perm.as_str());
        self.audited_or_logged(from, Some(who.user_id), entry).await;
    }

    /// [`Identity::require`], and a second factor within [`STEP_UP_WINDOW`]: what an
    /// `admin:infra` action needs. A stale or password-only token is `StepUpRequired`;
    /// `POST /api/v1/auth/step-up` refreshes it.
    pub async fn require_step_up(
        &self,
        who: &Principal,
        perm: Permission,
        from: &Provenance,
    ) -> Result<(), IdentityError> {
        self.require(who, perm, from).await?;
        let recent = unix_now().saturating_sub(who.auth_time) <= STEP_UP_WINDOW.as_secs();
        if recent && who.amr.has_otp() {
            return Ok(());
        }
        self.denied(who, from, Action::StepUpRequired, "step_up", perm)
            .await;
        Err(IdentityError::StepUpRequired)
    }

    /// Drops this instance's caches (`admin:infra` with step-up): the user views and
    /// the revocation snapshot, which the next authenticated request reloads.
    pub async fn clear_caches(
        &self,
        who: &Principal,
        from: &Provenance,
    ) -> Result<(), IdentityError> {
        self.require_step_up(who, Permission::AdminInfra, from)
            .await?;
        self.0.views.clear();
        self.0.revocations.expire();
        self.audited(
            from,
            Some(who.user_id),
            Entry::new(Action::CacheCleared, Outcome::Success),
        )
        .await?;
        Ok(())
    }

    /// Ends sessions and makes this instance refuse their tokens at once.
    async fn revoke_all(
        &self,
        user_id: UserId,
        keep: Option<SessionId>,
        reason: RevokeReason,
    ) -> Result<Vec<SessionId>, IdentityError> {
        let now = palisade_store::repo::now();
        let ended =
            palisade_store::repo::sessions::revoke_all(&self.0.db, user_id, keep, reason, now)
                .await?;
        self.0.revocations.note(&ended);
        Ok(ended)
    }
}

/// Seconds since the epoch.
fn unix_now() -> u64 {
    u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0)
}
