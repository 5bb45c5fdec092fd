//! Administration of other users (`/openapi.json`, tag administration) and the
//! operations behind `palisade user …`.

use palisade_auth::email::Email;
use palisade_auth::ids::UserId;
use palisade_auth::permissions::Role;
use palisade_store::Tx;
use palisade_store::repo::audit::Filter;
use palisade_store::repo::sessions::RevokeReason;
use palisade_store::repo::users::{self, Change, User};
use palisade_store::repo::{lockout, now, sessions};
use time::OffsetDateTime;

use super::{Identity, IdentityError, Principal, Provenance, UserView};
use crate::audit::{self, Action, Entry, EventView, Outcome};
use crate::page::{Cursor, Limit, Page};

/// A change an admin asks for (`PATCH /api/v1/admin/users/{id}`).
#[derive(Clone, Debug, Default)]
pub struct UserPatch {
    /// The roles from now on; at least one.
    pub roles: Option<Vec<Role>>,
    pub disabled: Option<bool>,
    /// Lift a lockout (locking by hand is not offered).
    pub unlock: bool,
}

/// Where a user stands in the list: oldest first, by creation time then id.
struct UserPosition(OffsetDateTime, UserId);

impl std::fmt::Display for UserPosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}_{}", self.0.unix_timestamp_nanos(), self.1)
    }
}

impl std::str::FromStr for UserPosition {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let (nanos, id) = s.split_once('_').ok_or(())?;
        let nanos = nanos.parse().map_err(|_| ())?;
        let at = OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|_| ())?;
        Ok(UserPosition(at, id.parse().map_err(|_| ())?))
    }
}

impl Identity {
    /// The account of `email` (any spelling of it); an address that cannot be one
    /// names no account.
    pub async fn user_by_email(&self, email: &str) -> Result<User, IdentityError> {
        let email = Email::parse(email).map_err(|_| IdentityError::NotFound)?;
        users::by_email(&self.0.db, &email)
            .await?
            .ok_or(IdentityError::NotFound)
    }

    /// Every user, oldest first: a page that was read stays as it was when newer
    /// accounts are added.
    pub async fn list_users(
        &self,
        cursor: Option<&Cursor>,
        limit: Limit,
    ) -> Result<Page<UserView>, IdentityError> {
        let after = Cursor::start::<UserPosition>(cursor)?;
        let rows = users::page(&self.0.db, after.map(|p| (p.0, p.1)), limit.fetch()).await?;
        let page = Page::of(rows, limit, |u: &User| UserPosition(u.created_at, u.id));
        let ids: Vec<UserId> = page.items.iter().map(|u| u.id).collect();
        let roles = users::roles_of_many(&self.0.db, &ids).await?;
        Ok(page.map(|u| {
            let mine = roles
                .iter()
                .filter(|(id, _)| *id == u.id)
                .map(|(_, r)| *r)
                .collect();
            UserView::of(&u, mine)
        }))
    }

    /// Audit events matching `filter`, newest first.
    pub async fn audit_events(
        &self,
        mut filter: Filter,
        cursor: Option<&Cursor>,
        limit: Limit,
    ) -> Result<Page<EventView>, IdentityError> {
        filter.before = Cursor::start::<i64>(cursor)?;
        let rows = self.0.audit.list(&filter, limit.fetch()).await?;
        Ok(Page::of(rows, limit, |e| e.seq))
    }

    /// Applies `patch` to user `id`. A role change or disabling ends their sessions.
    /// The last active admin can be neither demoted nor disabled: the check and the
    /// change are one transaction, serialised with every other such change.
    pub async fn update_user(
        &self,
        by: Option<&Principal>,
        id: UserId,
        patch: UserPatch,
        from: &Provenance,
    ) -> Result<UserView, IdentityError> {
        if patch.roles.as_ref().is_some_and(Vec::is_empty) {
            return Err(IdentityError::Invalid(vec![(
                "roles",
                "must name at least one role".into(),
            )]));
        }
        let at = now();
        let mut tx = self.0.db.begin().await?;
        users::lock_role_changes(&mut tx).await?;
        let user = users::by_id(&mut tx, id)
            .await?
            .ok_or(IdentityError::NotFound)?;
        let demoted = patch
            .roles
            .as_ref()
            .is_some_and(|r| !r.contains(&Role::Admin));
        let disabled = patch.disabled == Some(true);
        if (demoted || disabled) && is_last_active_admin(&mut tx, &user).await? {
            return Err(IdentityError::LastAdmin);
        }
        let mut revoke_reason = None;
        if let Some(roles) = &patch.roles {
            let mut roles = roles.clone();
            roles.sort_unstable();
            roles.dedup();
            users::set_roles(&mut tx, id, &roles).await?;
            revoke_reason = Some(RevokeReason::RolesChanged);
        }
        if let Some(disable) = patch.disabled {
            let change = Change {
                disabled_at: Some(disable.then_some(at)),
                ..Change::default()
            };
            users::update(&mut tx, id, change, at).await?;
            if disable {
                revoke_reason = Some(RevokeReason::Disabled);
                palisade_store::repo::account_tokens::revoke(&mut tx, id, None, at).await?;
            }
        }
        if patch.unlock {
            lockout::clear(&mut tx, id).await?;
        }
        let entry = Entry::new(Action::UserUpdated, Outcome::Success)
            .target("user", id)
            .detail(
                "roles",
                patch
                    .roles
                    .as_ref()
                    .map(|r| r.iter().map(|r| r.as_str()).collect::<Vec<_>>()),
            )
            .detail("disabled", patch.disabled)
            .detail("unlocked", patch.unlock);
        // The sessions end with the change, or neither happens.
        let ended = match revoke_reason {
            Some(reason) => sessions::revoke_all(&mut tx, id, None, reason, at).await?,
            None => Vec::new(),
        };
        audit::append(&mut tx, &from.actor(by.map(|p| p.user_id)), &entry).await?;
        tx.commit().await?;
        self.0.revocations.note(&ended);
        self.0.views.forget(&id);
        let roles = users::roles_of(&self.0.db, id).await?;
        let user = users::by_id(&self.0.db, id).await?.unwrap_or(user);
        Ok(UserView::of(&user, roles))
    }

    /// Ends every session of user `id`.
    pub async fn end_user_sessions(
        &self,
        by: Option<&Principal>,
        id: UserId,
        from: &Provenance,
    ) -> Result<usize, IdentityError> {
        if users::by_id(&self.0.db, id).await?.is_none() {
            return Err(IdentityError::NotFound);
        }
        let ended = self
            .revoke_all(id, None, RevokeReason::EndedByAdmin)
            .await?;
        self.audited(
            from,
            by.map(|p| p.user_id),
            Entry::new(Action::SessionsEnded, Outcome::Success)
                .target("user", id)
                .detail("sessions", ended.len()),
        )
        .await?;
        Ok(ended.len())
    }

    /// Turns 2FA off for user `id` (lost device) and ends their sessions.
    pub async fn reset_2fa(&self, id: UserId, from: &Provenance) -> Result<(), IdentityError> {
        let user = users::by_id(&self.0.db, id)
            .await?
            .ok_or(IdentityError::NotFound)?;
        self.clear_2fa(&user).await?;
        self.revoke_all(id, None, RevokeReason::TwoFactorReset)
            .await?;
        self.audited(
            from,
            None,
            Entry::new(Action::TwoFactorReset, Outcome::Success).target("user", id),
        )
        .await?;
        let notice = crate::events::EventType::TwoFactorChanged;
        self.notice_or_log(id, notice, serde_json::json!({ "enabled": false }))
            .await;
        Ok(())
    }
}

/// Whether `user` is the only account that is an admin and not disabled. Call it
/// under [`users::lock_role_changes`], in the transaction that makes the change.
pub(super) async fn is_last_active_admin(tx: &mut Tx, user: &User) -> Result<bool, IdentityError> {
    Ok(user.disabled_at.is_none()
        && users::roles_of(&mut *tx, user.id)
            .await?
            .contains(&Role::Admin)
        && users::count_active_with_role(&mut *tx, Role::Admin).await? <= 1)
}
