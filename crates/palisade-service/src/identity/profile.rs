//! The signed-in user's own account: read, rename, delete, change the password, list
//! and end sessions. Every function takes the [`Principal`] and touches only its user.

use palisade_auth::display_name::DisplayName;
use palisade_auth::ids::SessionId;
use palisade_auth::password::Verdict;
use palisade_store::repo::sessions::RevokeReason;
use palisade_store::repo::users::{self, Change, User};
use palisade_store::repo::{now, sessions};

use super::accounts::check_password;
use super::admin::is_last_active_admin;
use super::lockout::Failure;
use super::{Identity, IdentityError, Principal, Provenance, SessionView, UserView};
use crate::audit::{self, Action, Entry, Outcome};
use crate::page::{Cursor, Limit, Page};

impl Identity {
    pub(super) async fn own_user(&self, who: &Principal) -> Result<User, IdentityError> {
        users::by_id(&self.0.db, who.user_id)
            .await?
            .ok_or(IdentityError::Unauthenticated)
    }

    /// Checks `password` against the user's; `WrongPassword` otherwise. A wrong one
    /// counts toward the lockout like a failed login, and a locked account's password
    /// is not checked at all: a stolen session cannot be used to guess it.
    pub(super) async fn confirm_password(
        &self,
        user: &User,
        password: &str,
        from: &Provenance,
    ) -> Result<(), IdentityError> {
        if self.is_locked(user.id).await? {
            self.0.hasher.verify_dummy(password.to_owned()).await?;
            return Err(IdentityError::WrongPassword);
        }
        match self
            .0
            .hasher
            .verify(password.to_owned(), user.password_hash.clone())
            .await?
        {
            Verdict::Match { .. } => Ok(()),
            Verdict::Mismatch => {
                self.failed_login(user, Failure::ConfirmPassword, from)
                    .await?;
                Err(IdentityError::WrongPassword)
            }
        }
    }

    pub async fn me(&self, who: &Principal) -> Result<UserView, IdentityError> {
        if let Some(view) = self.0.views.get(&who.user_id) {
            return Ok(view);
        }
        let loaded_at = std::time::Instant::now();
        let generation = self.0.views.generation();
        let user = self.own_user(who).await?;
        let roles = users::roles_of(&self.0.db, user.id).await?;
        let view = UserView::of(&user, roles);
        self.0
            .views
            .put(view.id, view.clone(), loaded_at, generation);
        Ok(view)
    }

    pub async fn rename(&self, who: &Principal, name: &str) -> Result<UserView, IdentityError> {
        let name = DisplayName::parse(name)
            .map_err(|e| IdentityError::Invalid(vec![("name", e.to_string())]))?;
        let change = Change {
            name: Some(name.as_str().to_owned()),
            ..Change::default()
        };
        users::update(&self.0.db, who.user_id, change, now()).await?;
        self.0.views.forget(&who.user_id);
        self.me(who).await
    }

    /// Deletes the account: its sessions end, its personal data, credentials, roles and
    /// codes go at once, and the emptied row goes once no access token of it can be
    /// valid (see `delete_expired`). The last active admin cannot delete themselves;
    /// like a demotion, the check and the deletion are one serialised transaction.
    pub async fn delete_me(
        &self,
        who: &Principal,
        password: &str,
        from: &Provenance,
    ) -> Result<(), IdentityError> {
        let user = self.own_user(who).await?;
        self.confirm_password(&user, password, from).await?;
        let at = now();
        let mut tx = self.0.db.begin().await?;
        users::lock_role_changes(&mut tx).await?;
        // Read again under the lock: an admin may have been disabled meanwhile.
        let user = users::by_id(&mut tx, user.id)
            .await?
            .ok_or(IdentityError::Unauthenticated)?;
        if is_last_active_admin(&mut tx, &user).await? {
            return Err(IdentityError::LastAdmin);
        }
        let ended =
            sessions::revoke_all(&mut tx, user.id, None, RevokeReason::AccountDeleted, at).await?;
        users::erase(&mut tx, user.id, at).await?;
        palisade_store::repo::account_tokens::revoke(&mut tx, user.id, None, at).await?;
        users::set_roles(&mut tx, user.id, &[]).await?;
        users::replace_backup_codes(&mut tx, user.id, &[]).await?;
        let entry = Entry::new(Action::UserDeleted, Outcome::Success).target("user", user.id);
        audit::append(&mut tx, &from.actor(Some(user.id)), &entry).await?;
        tx.commit().await?;
        self.0.revocations.note(&ended);
        self.0.views.forget(&user.id);
        Ok(())
    }

    /// Changes the password; every other session of the user is ended.
    pub async fn change_password(
        &self,
        who: &Principal,
        current: &str,
        new: &str,
        from: &Provenance,
    ) -> Result<(), IdentityError> {
        let user = self.own_user(who).await?;
        self.confirm_password(&user, current, from).await?;
        let mut errors = Vec::new();
        check_password("new_password", new, &[&user.email, &user.name], &mut errors);
        if new == current {
            errors.push((
                "new_password",
                "must differ from the current password".into(),
            ));
        }
        if !errors.is_empty() {
            return Err(IdentityError::Invalid(errors));
        }
        let hash = self.0.hasher.hash(new.to_owned()).await?;
        let change = Change {
            password_hash: Some(hash),
            password_changed: true,
            ..Change::default()
        };
        users::update(&self.0.db, user.id, change, now()).await?;
        // A reset or change link mailed before acts no more.
        palisade_store::repo::account_tokens::revoke(&self.0.db, user.id, None, now()).await?;
        let ended = self
            .revoke_all(user.id, Some(who.session_id), RevokeReason::PasswordChanged)
            .await?;
        self.audited(
            from,
            Some(user.id),
            Entry::new(Action::PasswordChanged, Outcome::Success)
                .target("user", user.id)
                .detail("sessions_ended", ended.len()),
        )
        .await?;
        let notice = crate::events::EventType::PasswordChanged;
        self.notice_or_log(user.id, notice, serde_json::json!({}))
            .await;
        Ok(())
    }

    /// The caller's active sessions, newest first (session ids are UUIDv7).
    pub async fn my_sessions(
        &self,
        who: &Principal,
        cursor: Option<&Cursor>,
        limit: Limit,
    ) -> Result<Page<SessionView>, IdentityError> {
        let before = Cursor::start::<SessionId>(cursor)?;
        let rows = sessions::active_of(&self.0.db, who.user_id, now(), before, Some(limit.fetch()))
            .await?;
        Ok(Page::of(rows, limit, |s| s.id).map(|s| SessionView::of(&s, who.session_id)))
    }

    /// Ends one of the caller's sessions. Someone else's session is `NotFound`, as if
    /// it did not exist.
    pub async fn end_my_session(
        &self,
        who: &Principal,
        id: SessionId,
        from: &Provenance,
    ) -> Result<(), IdentityError> {
        if !sessions::revoke(
            &self.0.db,
            id,
            who.user_id,
            RevokeReason::EndedByUser,
            now(),
        )
        .await?
        {
            return Err(IdentityError::NotFound);
        }
        self.0.revocations.note(&[id]);
        self.audited(
            from,
            Some(who.user_id),
            Entry::new(Action::SessionEnded, Outcome::Success).target("session", id),
        )
        .await?;
        Ok(())
    }
}
