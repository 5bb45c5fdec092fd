//! Sessions and their tokens: a session started at sign-in with its first refresh
//! token, the access and refresh tokens of each rotation, reuse detection, sign-out.

use palisade_auth::access::Subject;
use palisade_auth::amr::AuthMethods;
use palisade_auth::ids::{SessionId, UserId};
use palisade_auth::permissions::{Role, permissions_of};
use palisade_auth::refresh::{self, Decision, Stored};
use palisade_store::repo::now;
use palisade_store::repo::sessions::{self, RevokeReason, Session};
use palisade_store::repo::users::{self, User};
use time::OffsetDateTime;

use super::accounts::count_attempt;
use super::{Identity, IdentityError, Provenance, TokenPair, UserView};
use crate::audit::{self, Action, Entry, Outcome};
use crate::events::EventType;

impl Identity {
    /// A new session with its first refresh token and an access token.
    pub(super) async fn start_session(
        &self,
        user: &User,
        amr: AuthMethods,
        from: &Provenance,
    ) -> Result<TokenPair, IdentityError> {
        let roles = users::roles_of(&self.0.db, user.id).await?;
        let at = now();
        let settings = &self.0.settings;
        let session = Session {
            id: SessionId::generate(),
            user_id: user.id,
            created_at: at,
            last_used_at: at,
            expires_at: at + settings.refresh_absolute,
            auth_methods: amr,
            auth_time: at,
            ip: from.ip.clone(),
            user_agent: from
                .user_agent
                .as_ref()
                .map(|ua| ua.chars().take(256).collect()),
            revoked_at: None,
            revoked_reason: None,
        };
        let first = self.0.refresh.first();
        let idle_until = (at + settings.refresh_idle).min(session.expires_at);
        let keep = settings.max_sessions;
        let actor = from.actor(Some(user.id));
        let mut tx = self.0.db.begin().await?;
        // A first session (registration) is no news; one from an address or a browser
        // the account has not used is.
        let seen = sessions::seen(
            &mut tx,
            user.id,
            session.ip.as_deref(),
            session.user_agent.as_deref(),
        )
        .await?;
        if seen.any && !(seen.ip && seen.user_agent) {
            let data = serde_json::json!({"ip": session.ip, "user_agent": session.user_agent});
            self.notice_in(&mut tx, user.id, EventType::NewSignIn, data)
                .await?;
        }
        sessions::insert(&mut tx, &session).await?;
        sessions::insert_refresh(&mut tx, &first.hash, session.id, 0, at, idle_until).await?;
        let ended = sessions::end_oldest_beyond(&mut tx, user.id, keep, at).await?;
        let entry = Entry::new(Action::Login, Outcome::Success)
            .target("session", session.id)
            .detail("amr", amr.to_column());
        audit::append(&mut tx, &actor, &entry).await?;
        tx.commit().await?;
        self.0.revocations.note(&ended);
        Ok(self.token_pair(
            user,
            roles,
            (session.id, amr, session.auth_time),
            first.token,
        ))
    }

    /// The tokens of session `sid`, whose sign-in used `amr` at `auth_time`.
    pub(super) fn token_pair(
        &self,
        user: &User,
        roles: Vec<Role>,
        (sid, amr, auth_time): (SessionId, AuthMethods, OffsetDateTime),
        refresh_token: String,
    ) -> TokenPair {
        let user_id = user.id.to_string();
        let session_id = sid.to_string();
        let subject = Subject {
            user_id: &user_id,
            session_id: &session_id,
            perms: permissions_of(&roles)
                .into_iter()
                .map(|p| p.as_str().to_owned())
                .collect(),
            roles: roles.iter().map(|r| r.as_str().to_owned()).collect(),
            amr: amr.to_claim(),
            auth_time: u64::try_from(auth_time.unix_timestamp()).unwrap_or(0),
        };
        let now = super::unix_now();
        TokenPair {
            access_token: self.0.access.issue(subject, now),
            token_type: "Bearer",
            expires_in: self.0.access.lifetime().as_secs(),
            refresh_token,
            user: UserView::of(user, roles),
            session_id: sid,
        }
    }

    /// Exchanges a refresh token for a new pair (rotation). A token rotated moments ago
    /// gets the same successor; one rotated earlier revokes its whole session.
    pub async fn refresh(
        &self,
        token: &str,
        from: &Provenance,
    ) -> Result<TokenPair, IdentityError> {
        let at = now();
        let hash = refresh::hash(token);
        let row = sessions::refresh_by_hash(&self.0.db, &hash).await?;
        let stored = row.as_ref().map(|r| Stored {
            expires_at: r.expires_at,
            rotated_at: r.rotated_at,
            session_expires_at: r.session_expires_at,
            session_revoked: r.revoked_at.is_some(),
        });
        let decision = refresh::decide(stored.as_ref(), at, self.0.settings.refresh_grace);
        let (Some(row), Decision::Rotate | Decision::SameSuccessor | Decision::Reused) =
            (row, decision)
        else {
            count_attempt("refresh", "failure");
            return Err(IdentityError::RefreshInvalid);
        };
        if decision == Decision::Reused {
            return Err(self.refresh_reused(row.user_id, row.session_id, from).await);
        }
        let user = users::by_id(&self.0.db, row.user_id).await?;
        let Some(user) = user.filter(|u| u.disabled_at.is_none()) else {
            count_attempt("refresh", "failure");
            return Err(IdentityError::RefreshInvalid);
        };
        let generation = u64::try_from(row.generation).unwrap_or(0) + 1;
        let successor = self
            .0
            .refresh
            .successor(token, &row.session_id.to_string(), generation);
        if decision == Decision::Rotate {
            // Marked rotated and succeeded in one transaction: never one without the other.
            let mut tx = self.0.db.begin().await?;
            if sessions::mark_rotated(&mut tx, &hash, at).await? {
                let idle_until = (at + self.0.settings.refresh_idle).min(row.session_expires_at);
                let generation = i64::try_from(generation).unwrap_or(i64::MAX);
                sessions::insert_refresh(
                    &mut tx,
                    &successor.hash,
                    row.session_id,
                    generation,
                    at,
                    idle_until,
                )
                .await?;
            }
            tx.commit().await?;
        }
        // Otherwise a racing request rotated it: the successor it stored is this one.
        sessions::touch(&self.0.db, row.session_id, at).await?;
        let roles = users::roles_of(&self.0.db, user.id).await?;
        count_attempt("refresh", "success");
        let authn = (row.session_id, row.auth_methods, row.auth_time);
        Ok(self.token_pair(&user, roles, authn, successor.token))
    }

    /// A rotated token came back after the grace window: someone holds a copy. The whole
    /// session is revoked and the event recorded.
    async fn refresh_reused(
        &self,
        user_id: UserId,
        session_id: SessionId,
        from: &Provenance,
    ) -> IdentityError {
        count_attempt("refresh", "reused");
        tracing::warn!(%user_id, %session_id, "refresh token reused: session revoked");
        let at = now();
        match sessions::revoke(
            &self.0.db,
            session_id,
            user_id,
            RevokeReason::RefreshReused,
            at,
        )
        .await
        {
            Ok(_) => self.0.revocations.note(&[session_id]),
            Err(e) => return e.into(),
        }
        self.audited_or_logged(
            from,
            Some(user_id),
            Entry::new(Action::RefreshReused, Outcome::Denied).target("session", session_id),
        )
        .await;
        IdentityError::RefreshReused
    }

    /// The session a refresh token belongs to, whatever its state (cookie mode binds
    /// the CSRF token to it).
    pub async fn session_of_refresh(
        &self,
        token: &str,
    ) -> Result<Option<SessionId>, IdentityError> {
        let row = sessions::refresh_by_hash(&self.0.db, &refresh::hash(token)).await?;
        Ok(row.map(|r| r.session_id))
    }

    /// Ends the caller's session; its access tokens are refused from now on.
    pub async fn logout(
        &self,
        who: &super::Principal,
        from: &Provenance,
    ) -> Result<(), IdentityError> {
        sessions::revoke(
            &self.0.db,
            who.session_id,
            who.user_id,
            RevokeReason::Logout,
            now(),
        )
        .await?;
        self.0.revocations.note(&[who.session_id]);
        self.audited(
            from,
            Some(who.user_id),
            Entry::new(Action::Logout, Outcome::Success).target("session", who.session_id),
        )
        .await?;
        Ok(())
    }

    /// Deletes expired sessions and e-mail links, and the mail counts the hourly cap
    /// no longer looks at; how many rows.
    pub async fn delete_expired(&self) -> Result<u64, IdentityError> {
        let at = now();
        let sessions = sessions::delete_expired(&self.0.db, at).await?;
        let links = palisade_store::repo::account_tokens::purge(&self.0.db, at).await?;
        let counted = self.0.mail.purge().await?;
        Ok(sessions + links + counted)
    }
}
