//! Sign-up and sign-in: registration (and accounts the command line creates), the
//! password step of a login and, with 2FA on, its code step.

use palisade_auth::amr::AuthMethods;
use palisade_auth::display_name::DisplayName;
use palisade_auth::email::Email;
use palisade_auth::ids::UserId;
use palisade_auth::password::{POLICY, Verdict, Weakness};
use palisade_auth::permissions::Role;
use palisade_auth::refresh;
use palisade_store::repo::lockout;
use palisade_store::repo::now;
use palisade_store::repo::sessions;
use palisade_store::repo::users::{self, Change, User};
use serde_json::json;

use super::lockout::Failure;
use super::{Identity, IdentityError, LoginOutcome, Provenance, TokenPair, UserView};
use crate::audit::{self, Action, Entry, Outcome};
use crate::events::EventType;

/// `auth_attempts_total{type, status}`.
pub(super) fn count_attempt(kind: &'static str, status: &'static str) {
    metrics::counter!("auth_attempts_total", "type" => kind, "status" => status).increment(1);
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

/// A new account's email and name, parsed, and its password checked: every problem
/// at once.
fn new_account(
    email: &str,
    name: &str,
    password: &str,
) -> Result<(Email, DisplayName), IdentityError> {
    let mut errors = Vec::new();
    let email = Email::parse(email).map_err(|e| errors.push(("email", e.to_string())));
    let name = DisplayName::parse(name).map_err(|e| errors.push(("name", e.to_string())));
    let context = [
        email.as_ref().map_or("", |e| e.as_str()),
        name.as_ref().map_or("", |n| n.as_str()),
    ];
    check_password("password", password, &context, &mut errors);
    match (email, name) {
        (Ok(email), Ok(name)) if errors.is_empty() => Ok((email, name)),
        _ => Err(IdentityError::Invalid(errors)),
    }
}

impl Identity {
    /// Self-service registration: a `member`. When a verified address is required to
    /// sign in, the verification link is mailed at once.
    pub async fn register(
        &self,
        email: &str,
        password: &str,
        name: &str,
        from: &Provenance,
    ) -> Result<UserView, IdentityError> {
        let verify = self.0.settings.require_verified_email;
        self.new_account(email, password, name, &[Role::Member], from, verify)
            .await
    }

    /// An account with `roles`, under the same rules as registration (the CLI).
    /// The stored form of `password` (argon2id), for accounts made in bulk (the seed).
    pub async fn hash_password(&self, password: &str) -> Result<String, IdentityError> {
        Ok(self.0.hasher.hash(password.to_owned()).await?)
    }

    pub async fn create_account(
        &self,
        email: &str,
        password: &str,
        name: &str,
        roles: &[Role],
        from: &Provenance,
    ) -> Result<UserView, IdentityError> {
        self.new_account(email, password, name, roles, from, false)
            .await
    }

    async fn new_account(
        &self,
        email: &str,
        password: &str,
        name: &str,
        roles: &[Role],
        from: &Provenance,
        send_verification: bool,
    ) -> Result<UserView, IdentityError> {
        let (email, name) = new_account(email, name, password)?;
        let hash = self.0.hasher.hash(password.to_owned()).await?;
        let user = User::new(&email, name.as_str(), hash, now());
        let actor = from.actor(Some(user.id));
        let result = async {
            let mut tx = self.0.db.begin().await?;
            users::insert(&mut tx, &user, roles).await?;
            let entry = Entry::new(Action::Register, Outcome::Success)
                .target("user", user.id)
                .detail(
                    "roles",
                    roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
                );
            audit::append(&mut tx, &actor, &entry).await?;
            let data = json!({
                "email": user.email,
                "name": user.name,
                "roles": roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            });
            self.notice_in(&mut tx, user.id, EventType::UserRegistered, data)
                .await?;
            if send_verification {
                self.mail_verification(&mut tx, &user).await?;
            }
            tx.commit().await
        }
        .await;
        match result {
            Err(e) if e.is_unique_violation() => Err(IdentityError::EmailTaken),
            Err(e) => Err(e.into()),
            Ok(()) => Ok(UserView::of(&user, roles.to_vec())),
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
        let at = now();
        // Something that cannot be an email (a NUL byte, say) names no account and is
        // not sent to the database.
        let user = match Email::parse(email) {
            Ok(email) => users::by_email(&self.0.db, &email).await?,
            Err(_) => None,
        };
        let Some(user) = user else {
            // The same work as for an account: the lockout read, one argon2 verification,
            // then the failure's transaction (bench/login_timing.py measures the rest).
            let nobody = UserId::from(uuid::Uuid::nil());
            lockout::get(&self.0.db, nobody).await?;
            self.0.hasher.verify_dummy(password.to_owned()).await?;
            let mut tx = self.0.db.begin().await?;
            lockout::get(&mut tx, nobody).await?;
            drop(tx);
            count_attempt("password", "failure");
            self.audited_or_logged(
                from,
                None,
                Entry::new(Action::Login, Outcome::Failure).detail("reason", "unknown_email"),
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
            self.audited_or_logged(
                from,
                Some(user.id),
                Entry::new(Action::Login, Outcome::Failure).detail("reason", reason),
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
            self.failed_login(&user, Failure::Password, from).await?;
            return Err(IdentityError::InvalidCredentials);
        };
        if self.0.settings.require_verified_email && user.email_verified_at.is_none() {
            count_attempt("password", "email_unverified");
            // The right password asks for the link again (within the hourly cap): the
            // account has no other way to a session.
            let mut tx = self.0.db.begin().await?;
            if self.mail_verification(&mut tx, &user).await? {
                tx.commit().await?;
            }
            return Err(IdentityError::EmailUnverified);
        }
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
        let pair = self
            .start_session(&user, AuthMethods::PASSWORD, from)
            .await?;
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
            self.failed_login(&user, Failure::Code, from).await?;
            return Err(IdentityError::InvalidCredentials);
        }
        if failures.is_some() {
            lockout::clear(&self.0.db, user.id).await?;
        }
        count_attempt("mfa", "success");
        self.start_session(&user, AuthMethods::PASSWORD_AND_CODE, from)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(result: Result<(Email, DisplayName), IdentityError>) -> Vec<&'static str> {
        match result {
            Err(IdentityError::Invalid(errors)) => errors.iter().map(|(f, _)| *f).collect(),
            Err(e) => panic!("{e}"),
            Ok(_) => Vec::new(),
        }
    }

    #[test]
    fn every_problem_of_a_new_account_is_named_at_once() {
        let ok = "correct horse battery staple 42";
        assert!(fields(new_account("ada@example.com", "Ada", ok)).is_empty());
        assert_eq!(
            fields(new_account("eve@x@example.com", "Eve\u{202e}", "short")),
            vec!["email", "name", "password"]
        );
        assert_eq!(
            fields(new_account("x@erased.invalid", "X", ok)),
            vec!["email"]
        );
    }
}
