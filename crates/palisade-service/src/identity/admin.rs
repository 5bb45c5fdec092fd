//! Administration of other users (API.md § Administration) and the operations behind
//! `palisade user …`.

use palisade_auth::permissions::Role;
use palisade_store::repo::users::{self, Change, User};
use palisade_store::repo::{lockout, now};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Identity, IdentityError, Origin, Principal, UserView, normalise_email};
use crate::audit::Entry;

/// A change an admin asks for (`PATCH /api/v1/admin/users/{id}`).
#[derive(Clone, Debug, Default)]
pub struct UserPatch {
    pub roles: Option<Vec<Role>>,
    pub disabled: Option<bool>,
    /// `Some(false)` lifts a lockout; locking by hand is not offered.
    pub locked: Option<bool>,
}

/// A page of users and the cursor of the next.
pub struct UserPage {
    pub items: Vec<UserView>,
    pub next: Option<(OffsetDateTime, Uuid)>,
}

impl Identity {
    pub async fn user_by_email(&self, email: &str) -> Result<User, IdentityError> {
        users::by_email(&self.0.db, &normalise_email(email))
            .await?
            .ok_or(IdentityError::NotFound)
    }

    pub async fn list_users(
        &self,
        after: Option<(OffsetDateTime, Uuid)>,
        limit: u64,
    ) -> Result<UserPage, IdentityError> {
        let rows = users::page(&self.0.db, after, limit + 1).await?;
        let more = rows.len() as u64 > limit;
        let rows: Vec<User> = rows.into_iter().take(limit as usize).collect();
        let ids: Vec<Uuid> = rows.iter().map(|u| u.id).collect();
        let roles = users::roles_of_many(&self.0.db, &ids).await?;
        let items = rows
            .iter()
            .map(|u| {
                let mine = roles
                    .iter()
                    .filter(|(id, _)| *id == u.id)
                    .map(|(_, r)| r.clone())
                    .collect();
                UserView::of(u, mine)
            })
            .collect();
        let next = more
            .then(|| rows.last().map(|u| (u.created_at, u.id)))
            .flatten();
        Ok(UserPage { items, next })
    }

    /// Applies `patch` to user `id`. A role change or disabling ends their sessions.
    pub async fn update_user(
        &self,
        by: Option<&Principal>,
        id: Uuid,
        patch: UserPatch,
        origin: &Origin,
    ) -> Result<UserView, IdentityError> {
        let user = users::by_id(&self.0.db, id)
            .await?
            .ok_or(IdentityError::NotFound)?;
        let at = now();
        let mut revoke_reason = None;
        if let Some(roles) = &patch.roles {
            let mut names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            users::set_roles(&self.0.db, id, &names).await?;
            revoke_reason = Some("roles_changed");
        }
        if let Some(disabled) = patch.disabled {
            let change = Change {
                disabled_at: Some(disabled.then_some(at)),
                ..Change::default()
            };
            users::update(&self.0.db, id, change, at).await?;
            if disabled {
                revoke_reason = Some("disabled");
            }
        }
        if patch.locked == Some(false) {
            lockout::clear(&self.0.db, id).await?;
        }
        self.forget_view(id);
        if let Some(reason) = revoke_reason {
            self.revoke_all(id, None, reason).await?;
        }
        let roles = users::roles_of(&self.0.db, id).await?;
        self.0
            .audit
            .record(
                &origin.actor(by.map(|p| p.user_id)),
                Entry::new("admin.user_updated", "success")
                    .target("user", id)
                    .detail(
                        "roles",
                        patch
                            .roles
                            .map(|r| r.iter().map(|r| r.as_str()).collect::<Vec<_>>()),
                    )
                    .detail("disabled", patch.disabled)
                    .detail("unlocked", patch.locked == Some(false)),
            )
            .await?;
        let user = users::by_id(&self.0.db, id).await?.unwrap_or(user);
        Ok(UserView::of(&user, roles))
    }

    /// Ends every session of user `id`.
    pub async fn end_user_sessions(
        &self,
        by: Option<&Principal>,
        id: Uuid,
        origin: &Origin,
    ) -> Result<usize, IdentityError> {
        if users::by_id(&self.0.db, id).await?.is_none() {
            return Err(IdentityError::NotFound);
        }
        let ended = self.revoke_all(id, None, "ended_by_admin").await?;
        self.0
            .audit
            .record(
                &origin.actor(by.map(|p| p.user_id)),
                Entry::new("admin.sessions_ended", "success")
                    .target("user", id)
                    .detail("sessions", ended.len()),
            )
            .await?;
        Ok(ended.len())
    }

    /// Turns 2FA off for user `id` (lost device) and ends their sessions.
    pub async fn reset_2fa(&self, id: Uuid, origin: &Origin) -> Result<(), IdentityError> {
        let user = users::by_id(&self.0.db, id)
            .await?
            .ok_or(IdentityError::NotFound)?;
        self.clear_2fa(&user).await?;
        self.revoke_all(id, None, "2fa_reset").await?;
        self.0
            .audit
            .record(
                &origin.actor(None),
                Entry::new("admin.2fa_reset", "success").target("user", id),
            )
            .await?;
        Ok(())
    }
}
