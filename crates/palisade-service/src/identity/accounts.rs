//! Register, log in (password, then the second factor when it is on), refresh, log out.

use palisade_auth::access::Subject;
use palisade_auth::password::{POLICY, Verdict, Weakness};
use palisade_auth::permissions::{Role, permissions_of};
use palisade_auth::refresh::{self, Decision, Stored};
use palisade_store::repo::lockout::{self, Failures};
use palisade_store::repo::now;
use palisade_store::repo::sessions::{self, Session};
use palisade_store::repo::users::{self, Change, User};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    Identity, IdentityError, LoginOutcome, Provenance, TokenPair, UserView, normalise_email,
};
use crate::audit::{self, Entry};

/// Longest accepted email (RFC 5321's path limit) and display name.
const MAX_EMAIL: usize = 254;
const MAX_NAME: usize = 100;

fn count_attempt(kind: &'static str, status: &'static str) {
    metrics::counter!("auth_attempts_total", "type" => kind, "status" => status).increment(1);
}

/// Per-field problems with a new account's email and name.
pub(super) fn check_email(email: &str, errors: &mut Vec<(&'static str, String)>) {
    let well_formed = email.len() <= MAX_EMAIL
        && email.split_once('@').is_some_and(|(local, domain)| {
            // `.invalid` (RFC 6761) can receive no mail; erased accounts use it.
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with(".invalid")
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !well_formed {
        errors.push(("email", "must be an email address".into()));
    }
}

pub(super) fn check_name(name: &str, errors: &mut Vec<(&'static str, String)>) {
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME || name.chars().any(char::is_control) {
        errors.push((
            "name",
            format!("must be 1 to {MAX_NAME} characters, without control characters"),
        ));
    }
}

pub(super) fn check_password(
    field: &'static str,
    password: &str,
    context: &[&str],
    errors: &mut Vec<(&'static str, String)>,
) {
    if let Err(w) = POLICY.check(password, context) {
        errors.push((
            field,
            match w {
                Weakness::TooShort { min } => format!("must be at least {min} characters"),
                Weakness::TooLong { max } => format!("must be at most {max} characters"),
                Weakness::Guessable { advice } => match advice {
                    Some(a) => format!("is too easy to guess: {a}"),
                    None => "is too easy to guess".into(),
                },
            },
        ));
    }
}

impl Identity {
    /// Self-service registration: a `member`.
    pub async fn register(
        &self,
        email: &str,
        password: &str,
        name: &str,
        from: &Provenance,
    ) -> Result<UserView, IdentityError> {
        self.create_account(email, password, name, &[Role::Member], from)
            .await
    }

    /// An account with `roles`, under the same rules as registration (the CLI).
    pub async fn create_account(
        &self,
        email: &str,
        password: &str,
        name: &str,
        roles: &[Role],
        from: &Provenance,
    ) -> Result<UserView, IdentityError> {
        let email = normalise_email(email);
        let name = name.trim().to_owned();
        let mut errors = Vec::new();
        check_email(&email, &mut errors);
        check_name(&name, &mut errors);
        check_password("password", password, &[&email, &name], &mut errors);
        if !errors.is_empty() {
            return Err(IdentityError::Invalid(errors));
        }
        let hash = self.0.hasher.hash(password.to_owned()).await?;
        let at = now();
        let user = User {
            id: Uuid::now_v7(),
            email,
            name,
            password_hash: hash,
            password_changed_at: at,
            disabled_at: None,
            totp_secret: None,
            totp_enabled_at: None,
            totp_last_step: None,
            created_at: at,
            updated_at: at,
        };
        self.insert_user(user, roles, from).await
    }

    async fn insert_user(
        &self,
        user: User,
        roles: &[Role],
        from: &Provenance,
    ) -> Result<UserView, IdentityError> {
        let role_names: Vec<&'static str> = roles.iter().map(|r| r.as_str()).collect();
        let actor = from.actor(Some(user.id));
        let result = async {
            let mut tx = self.0.db.begin().await?;
            users::insert(&mut tx, &user, &role_names).await?;
            let entry = Entry::new("auth.register", "success")
                .target("user", user.id)
                .detail("roles", role_names.clone());
            audit::append(&mut tx, &actor, &entry).await?;
            tx.commit().await
        }
        .await;
        match result {
            Err(e) if e.is_unique_violation() => Err(IdentityError::EmailTaken),
            Err(e) => Err(e.into()),
            Ok(()) => Ok(UserView::of(
                &user,
                roles.iter().map(|r| r.as_str().to_owned()).collect(),
            )),
        }
    }

    /// The password step. Unknown email, wrong password, locked and disabled accounts
    /// all answer [`IdentityError::InvalidCredentials`] after one argon2 verification.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        from: &Provenance,
    ) -> Result<LoginOutcome, IdentityError> {
        let email = normalise_email(email);
        let at = now();
        // Something that cannot be an email (a NUL byte, say) names no account and is
        // not sent to the database.
        let mut malformed = Vec::new();
        check_email(&email, &mut malformed);
        let user = if malformed.is_empty() {
            users::by_email(&self.0.db, &email).await?
        } else {
            None
        };
        let Some(user) = user else {
            // The same work as for an account: the lockout read, one argon2 verification,
            // then the failure's transaction (bench/login_timing.py measures the rest).
            lockout::get(&self.0.db, Uuid::nil()).await?;
            self.0.hasher.verify_dummy(password.to_owned()).await?;
            let mut tx = self.0.db.begin().await?;
            lockout::get(&mut tx, Uuid::nil()).await?;
            drop(tx);
            count_attempt("password", "failure");
            self.0
                .audit
                .record_or_log(
                    &from.actor(None),
                    Entry::new("auth.login", "failure").detail("reason", "unknown_email"),
                )
                .await;
            return Err(IdentityError::InvalidCredentials);
        };
        let failures = lockout::get(&self.0.db, user.id).await?;
        let locked = self.0.settings.lockout.is_locked(failures.as_ref(), at);
        if locked || user.disabled_at.is_some() {
            self.0.hasher.verify_dummy(password.to_owned()).await?;
            let reason = if user.disabled_at.is_some() {
                "disabled"
            } else {
                "locked"
            };
            count_attempt("password", reason);
            self.0
                .audit
                .record_or_log(
                    &from.actor(Some(user.id)),
                    Entry::new("auth.login", "failure").detail("reason", reason),
                )
                .await;
            return Err(IdentityError::InvalidCredentials);
        }
        let verdict = self
            .0
            .hasher
            .verify(password.to_owned(), user.password_hash.clone())
            .await?;
        let Verdict::Match { rehash } = verdict else {
            self.failed_login(&user, "password", from).await?;
            return Err(IdentityError::InvalidCredentials);
        };
        if rehash {
            let hash = self.0.hasher.hash(password.to_owned()).await?;
            let change = Change {
                password_hash: Some(hash),
                ..Change::default()
            };
            users::update(&self.0.db, user.id, change, at).await?;
        }
        if user.totp_enabled_at.is_some() {
            let challenge = self.0.refresh.first();
            let expires = at + super::MFA_TOKEN_LIFETIME;
            sessions::insert_challenge(&self.0.db, &challenge.hash, user.id, expires).await?;
            count_attempt("password", "mfa_required");
            return Ok(LoginOutcome::MfaRequired {
                mfa_token: challenge.token,
            });
        }
        // Only a complete sign-in resets the counters: with 2FA on, after the code.
        if failures.is_some() {
            lockout::clear(&self.0.db, user.id).await?;
        }
        count_attempt("password", "success");
        let pair = self.start_session(&user, &["pwd"], from).await?;
        Ok(LoginOutcome::Tokens(Box::new(pair)))
    }

    /// The second step: the token from [`Identity::login`] and a TOTP or backup code.
    pub async fn login_mfa(
        &self,
        mfa_token: &str,
        code: &str,
        from: &Provenance,
    ) -> Result<TokenPair, IdentityError> {
        let at = now();
        let hash = refresh::hash(mfa_token);
        let Some(user_id) = sessions::challenge_user(&self.0.db, &hash, at).await? else {
            count_attempt("mfa", "failure");
            return Err(IdentityError::InvalidCredentials);
        };
        let user = users::by_id(&self.0.db, user_id)
            .await?
            .ok_or(IdentityError::InvalidCredentials)?;
        let failures = lockout::get(&self.0.db, user.id).await?;
        if self.0.settings.lockout.is_locked(failures.as_ref(), at) || user.disabled_at.is_some() {
            count_attempt("mfa", "locked");
            return Err(IdentityError::InvalidCredentials);
        }
        // Single use, whatever the code: of two requests racing with one token, one goes
        // on, and each password step buys one guess at the code.
        if !sessions::consume_challenge(&self.0.db, &hash, at).await? {
            count_attempt("mfa", "failure");
            return Err(IdentityError::InvalidCredentials);
        }
        if !self.check_second_factor(&user, code).await? {
            self.failed_login(&user, "mfa", from).await?;
            return Err(IdentityError::InvalidCredentials);
        }
        if failures.is_some() {
            lockout::clear(&self.0.db, user.id).await?;
        }
        count_attempt("mfa", "success");
        self.start_session(&user, &["pwd", "otp"], from).await
    }

    /// Counts a failed attempt and records it; locks the account when the policy says
    /// so.
    pub(super) async fn failed_login(
        &self,
        user: &User,
        kind: &'static str,
        from: &Provenance,
    ) -> Result<(), IdentityError> {
        if let Some((next, locked)) = self.count_failure(user.id, false).await? {
            self.report_failure(user, kind, from, locked.then_some(&next))
                .await;
        }
        Ok(())
    }

    /// Counts one failure of `user_id`: the counters are read and written in one
    /// transaction holding the account's row, so parallel attempts each count. Returns
    /// the counters and whether this failure locked the account; with `unless_locked`,
    /// counts nothing and returns `None` when the account is locked already.
    pub(super) async fn count_failure(
        &self,
        user_id: Uuid,
        unless_locked: bool,
    ) -> Result<Option<(Failures, bool)>, IdentityError> {
        let at = now();
        let policy = &self.0.settings.lockout;
        let mut tx = self.0.db.begin().await?;
        let failures = lockout::get_for_update(&mut tx, user_id, at).await?;
        if unless_locked && policy.is_locked(failures.as_ref(), at) {
            return Ok(None);
        }
        let (next, locked) = policy.after_failure(failures, user_id, at);
        lockout::put(&mut tx, &next).await?;
        tx.commit().await?;
        Ok(Some((next, locked)))
    }

    /// The metric and audit trail of a failure already counted; `lock` is the counters
    /// when this failure locked the account.
    pub(super) async fn report_failure(
        &self,
        user: &User,
        kind: &'static str,
        from: &Provenance,
        lock: Option<&Failures>,
    ) {
        count_attempt(kind, "failure");
        let actor = from.actor(Some(user.id));
        let (action, reason) = match kind {
            "mfa" => ("auth.login", "code"),
            "step_up" => ("auth.step_up", "code"),
            "confirm" => ("auth.login", "confirm_password"),
            _ => ("auth.login", "password"),
        };
        self.0
            .audit
            .record_or_log(
                &actor,
                Entry::new(action, "failure").detail("reason", reason),
            )
            .await;
        if let Some(next) = lock {
            tracing::warn!(user_id = %user.id, "account locked after repeated failed logins");
            self.0
                .audit
                .record_or_log(
                    &actor,
                    Entry::new("auth.lockout", "success")
                        .target("user", user.id)
                        .detail("until", next.locked_until.map(|t| t.to_string())),
                )
                .await;
        }
    }

    /// Whether the account refuses sign-ins now (locked, or over the hourly ceiling).
    pub(super) async fn is_locked(&self, user_id: uuid::Uuid) -> Result<bool, IdentityError> {
        let failures = lockout::get(&self.0.db, user_id).await?;
        Ok(self.0.settings.lockout.is_locked(failures.as_ref(), now()))
    }

    /// A new session with its first refresh token and an access token.
    async fn start_session(
        &self,
        user: &User,
        amr: &[&str],
        from: &Provenance,
    ) -> Result<TokenPair, IdentityError> {
        let roles = users::roles_of(&self.0.db, user.id).await?;
        let at = now();
        let settings = &self.0.settings;
        let session = Session {
            id: Uuid::now_v7(),
            user_id: user.id,
            created_at: at,
            last_used_at: at,
            expires_at: at + settings.refresh_absolute,
            auth_methods: amr.join(" "),
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
        sessions::insert(&mut tx, &session).await?;
        sessions::insert_refresh(&mut tx, &first.hash, session.id, 0, at, idle_until).await?;
        let ended = sessions::end_oldest_beyond(&mut tx, user.id, keep, at).await?;
        let entry = Entry::new("auth.login", "success")
            .target("session", session.id)
            .detail("amr", session.auth_methods.clone());
        audit::append(&mut tx, &actor, &entry).await?;
        tx.commit().await?;
        self.0.revocations.note(&ended);
        let authn = (session.id, session.auth_methods.as_str(), session.auth_time);
        Ok(self.token_pair(user, roles, authn, first.token))
    }

    /// The tokens of session `sid`, whose sign-in used `amr` at `auth_time`.
    pub(super) fn token_pair(
        &self,
        user: &User,
        roles: Vec<String>,
        (sid, amr, auth_time): (Uuid, &str, OffsetDateTime),
        refresh_token: String,
    ) -> TokenPair {
        let user_id = user.id.to_string();
        let session_id = sid.to_string();
        let parsed: Vec<Role> = roles.iter().filter_map(|r| r.parse().ok()).collect();
        let subject = Subject {
            user_id: &user_id,
            session_id: &session_id,
            perms: permissions_of(&parsed)
                .into_iter()
                .map(|p| p.as_str().to_owned())
                .collect(),
            roles: roles.clone(),
            amr: amr.split(' ').map(str::to_owned).collect(),
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
        let authn = (row.session_id, row.auth_methods.as_str(), row.auth_time);
        Ok(self.token_pair(&user, roles, authn, successor.token))
    }

    /// A rotated token came back after the grace window: someone holds a copy. The whole
    /// session is revoked and the event recorded.
    async fn refresh_reused(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        from: &Provenance,
    ) -> IdentityError {
        count_attempt("refresh", "reused");
        tracing::warn!(%user_id, %session_id, "refresh token reused: session revoked");
        let at = now();
        match sessions::revoke(&self.0.db, session_id, user_id, "refresh_reused", at).await {
            Ok(_) => self.0.revocations.note(&[session_id]),
            Err(e) => return e.into(),
        }
        self.0
            .audit
            .record_or_log(
                &from.actor(Some(user_id)),
                Entry::new("auth.refresh_reused", "denied").target("session", session_id),
            )
            .await;
        IdentityError::RefreshReused
    }

    /// The session a refresh token belongs to, whatever its state (cookie mode binds
    /// the CSRF token to it).
    pub async fn session_of_refresh(&self, token: &str) -> Result<Option<Uuid>, IdentityError> {
        let row = sessions::refresh_by_hash(&self.0.db, &refresh::hash(token)).await?;
        Ok(row.map(|r| r.session_id))
    }

    /// Ends the caller's session; its access tokens are refused from now on.
    pub async fn logout(
        &self,
        who: &super::Principal,
        from: &Provenance,
    ) -> Result<(), IdentityError> {
        sessions::revoke(&self.0.db, who.session_id, who.user_id, "logout", now()).await?;
        self.0.revocations.note(&[who.session_id]);
        self.0
            .audit
            .record(
                &from.actor(Some(who.user_id)),
                Entry::new("auth.logout", "success").target("session", who.session_id),
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email_ok(e: &str) -> bool {
        let mut errors = Vec::new();
        check_email(e, &mut errors);
        errors.is_empty()
    }

    #[test]
    fn emails_must_look_like_emails_and_not_like_erased_ones() {
        assert!(email_ok("ada@example.com"));
        assert!(email_ok("o'hara@example.co.uk"));
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@localhost",
            "ada@.com",
            "a da@example.com",
            "ada@example.com\u{0}",
            "x@erased.invalid",
            "x@foo.invalid",
        ] {
            assert!(!email_ok(bad), "{bad:?}");
        }
        assert!(!email_ok(&format!("{}@example.com", "a".repeat(250))));
    }
}
