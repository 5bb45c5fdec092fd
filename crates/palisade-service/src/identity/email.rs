//! The account e-mail flows (README § Account e-mail): verifying the address, a
//! forgotten password, a change of address. Each sends a link with a 256-bit token,
//! stored only as its SHA-256, single use, for 24 hours (30 minutes for a password
//! reset); a newer token of the same kind ends the older ones.

use std::time::Duration;

use minijinja::context;
use palisade_auth::email::Email;
use palisade_auth::ids::UserId;
use palisade_auth::refresh::{self, Issued};
use palisade_store::repo::account_tokens::{self, AccountToken};
use palisade_store::repo::sessions::RevokeReason;
use palisade_store::repo::users::{self, Change, User};
use palisade_store::repo::{lockout, now};
use palisade_store::{StoreError, Tx};
use uuid::Uuid;

use super::accounts::check_password;
use super::{Identity, IdentityError, Principal, Provenance};
use crate::audit::{self, Action, Entry, Outcome};
use crate::events::EventType;
use crate::mail::{Cap, Template};

const VERIFY: &str = "verify_email";
const RESET: &str = "reset_password";
const CHANGE: &str = "change_email";

pub const VERIFY_TTL: Duration = Duration::from_secs(24 * 3600);
pub const RESET_TTL: Duration = Duration::from_secs(30 * 60);
pub const CHANGE_TTL: Duration = Duration::from_secs(24 * 3600);

/// What the table keeps of a link's token: the SHA-256 of its text (the tokens are
/// made as refresh tokens are, 256 random bits in base64url).
fn hash_of(token: &str) -> Vec<u8> {
    refresh::hash(token.trim()).to_vec()
}

impl Identity {
    /// Stores a token of `purpose` for `user` inside `tx`, ending their older ones of
    /// that purpose; its text.
    async fn issue(
        &self,
        tx: &mut Tx,
        user: UserId,
        purpose: &'static str,
        ttl: Duration,
        new_email: Option<String>,
    ) -> Result<String, StoreError> {
        let at = now();
        account_tokens::revoke(&mut *tx, user, Some(purpose), at).await?;
        let Issued { token, hash } = self.0.refresh.first();
        let token_hash = hash.to_vec();
        let row = AccountToken {
            id: Uuid::now_v7(),
            user_id: user,
            purpose,
            token_hash,
            new_email,
            expires_at: at + ttl,
            created_at: at,
        };
        account_tokens::insert(&mut *tx, &row).await?;
        Ok(token)
    }

    /// Sends the signed-in caller a link that verifies their address; nothing when it
    /// is verified already.
    pub async fn request_verification(
        &self,
        who: &Principal,
        from: &Provenance,
    ) -> Result<(), IdentityError> {
        let user = self.own_user(who).await?;
        if user.email_verified_at.is_some() {
            return Ok(());
        }
        let mut tx = self.0.db.begin().await?;
        if !self.mail_verification(&mut tx, &user).await? {
            return Err(IdentityError::MailCapped);
        }
        let entry =
            Entry::new(Action::EmailVerificationSent, Outcome::Success).target("user", user.id);
        audit::append(&mut tx, &from.actor(Some(user.id)), &entry).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Queues `user`'s verification link inside `tx`; `false` when the address's hourly
    /// cap is reached.
    pub(super) async fn mail_verification(
        &self,
        tx: &mut Tx,
        user: &User,
    ) -> Result<bool, StoreError> {
        let token = self.issue(tx, user.id, VERIFY, VERIFY_TTL, None).await?;
        let link = self.0.mail.link("/verify-email", &token);
        let context = context! { name => &user.name, email => &user.email, link => &link };
        self.0
            .mail
            .queue(
                tx,
                &user.email,
                Template::VerifyEmail,
                context,
                Cap::Requests,
            )
            .await
    }

    /// Uses a token from a link: a verification marks the address verified; a change's
    /// confirmation makes the new address the account's (verified), and tells the old
    /// one.
    pub async fn verify_email(&self, token: &str, from: &Provenance) -> Result<(), IdentityError> {
        let hash = hash_of(token);
        let at = now();
        let mut tx = self.0.db.begin().await?;
        let (used, change) = match account_tokens::use_once(&mut tx, VERIFY, &hash, at).await? {
            Some(used) => (used, false),
            None => (
                account_tokens::use_once(&mut tx, CHANGE, &hash, at)
                    .await?
                    .ok_or(IdentityError::TokenInvalid)?,
                true,
            ),
        };
        // A disabled (or deleted) account's links act no more.
        let user = users::by_id(&mut tx, used.user_id)
            .await?
            .filter(|u| u.disabled_at.is_none())
            .ok_or(IdentityError::TokenInvalid)?;
        if change {
            let new = used.new_email.ok_or(IdentityError::TokenInvalid)?;
            self.change_address(&mut tx, &user, &new, from).await?;
        } else {
            let change = Change {
                email_verified_at: Some(Some(at)),
                ..Change::default()
            };
            users::update(&mut tx, user.id, change, at).await?;
            let entry = Entry::new(Action::EmailVerified, Outcome::Success).target("user", user.id);
            audit::append(&mut tx, &from.actor(Some(user.id)), &entry).await?;
        }
        match tx.commit().await {
            Err(e) if e.is_unique_violation() => return Err(IdentityError::EmailTaken),
            other => other?,
        }
        self.0.views.forget(&user.id);
        Ok(())
    }

    /// Moves `user` to the confirmed address `new`, inside `tx`; the old address is
    /// told, and the change becomes a security notice.
    async fn change_address(
        &self,
        tx: &mut Tx,
        user: &User,
        new: &str,
        from: &Provenance,
    ) -> Result<(), IdentityError> {
        let at = now();
        let change = Change {
            email: Some(new.to_owned()),
            email_verified_at: Some(Some(at)),
            ..Change::default()
        };
        match users::update(&mut *tx, user.id, change, at).await {
            Err(e) if e.is_unique_violation() => return Err(IdentityError::EmailTaken),
            other => other?,
        };
        // Links mailed to the old address (a reset, another change) act no more.
        account_tokens::revoke(&mut *tx, user.id, None, at).await?;
        let body = format!(
            "The address of your account was changed from {} to {new}.",
            user.email
        );
        if user.email_verified_at.is_some() {
            let title = "Your e-mail address was changed";
            let mail = &self.0.mail;
            mail.notice(&mut *tx, &user.email, &user.name, title, &body)
                .await?;
        }
        self.notice_in(
            tx,
            user.id,
            EventType::EmailChanged,
            serde_json::json!({"email": new}),
        )
        .await?;
        let entry = Entry::new(Action::EmailChanged, Outcome::Success).target("user", user.id);
        audit::append(tx, &from.actor(Some(user.id)), &entry).await?;
        Ok(())
    }

    /// A forgotten password: answers at once, the same for any address, and sends the
    /// account (if there is one, and it may sign in) a reset link in the background, so
    /// neither the answer nor its time tells whether the account exists.
    /// Only input no address can have is refused (at once, whatever the accounts).
    pub fn forgot_password(&self, email: &str, from: &Provenance) -> Result<(), IdentityError> {
        if email.len() > palisade_auth::email::MAX_LEN {
            let too_long = format!("at most {} characters", palisade_auth::email::MAX_LEN);
            return Err(IdentityError::Invalid(vec![("email", too_long)]));
        }
        let (this, email, from) = (self.clone(), email.to_owned(), from.clone());
        tokio::spawn(async move {
            if let Err(e) = this.send_reset(&email, &from).await {
                tracing::warn!(error = %e, "password reset mail not queued");
            }
        });
        Ok(())
    }

    async fn send_reset(&self, email: &str, from: &Provenance) -> Result<(), IdentityError> {
        let Ok(email) = Email::parse(email) else {
            return Ok(());
        };
        let Some(user) = users::by_email(&self.0.db, &email).await? else {
            return Ok(());
        };
        if user.disabled_at.is_some() {
            return Ok(());
        }
        let mut tx = self.0.db.begin().await?;
        let token = self.issue(&mut tx, user.id, RESET, RESET_TTL, None).await?;
        let link = self.0.mail.link("/reset-password", &token);
        let context = context! { name => &user.name, link => &link };
        let mail = &self.0.mail;
        // Over the cap: nothing is sent, and the caller is not told (the answer is the
        // same for every address).
        if mail
            .queue(
                &mut tx,
                &user.email,
                Template::ResetPassword,
                context,
                Cap::Requests,
            )
            .await?
        {
            let entry = Entry::new(Action::PasswordResetRequested, Outcome::Success)
                .target("user", user.id);
            audit::append(&mut tx, &from.actor(None), &entry).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// Sets a new password with a reset link's token: every session ends and a lockout
    /// is lifted. The token is spent only when the new password is accepted.
    pub async fn reset_password(
        &self,
        token: &str,
        new_password: &str,
        from: &Provenance,
    ) -> Result<(), IdentityError> {
        let hash = hash_of(token);
        let at = now();
        let user_id = account_tokens::peek(&self.0.db, RESET, &hash, at)
            .await?
            .ok_or(IdentityError::TokenInvalid)?;
        let user = users::by_id(&self.0.db, user_id)
            .await?
            .filter(|u| u.disabled_at.is_none())
            .ok_or(IdentityError::TokenInvalid)?;
        let mut errors = Vec::new();
        check_password(
            "new_password",
            new_password,
            &[&user.email, &user.name],
            &mut errors,
        );
        if !errors.is_empty() {
            return Err(IdentityError::Invalid(errors));
        }
        let password_hash = self.0.hasher.hash(new_password.to_owned()).await?;
        let mut tx = self.0.db.begin().await?;
        if account_tokens::use_once(&mut tx, RESET, &hash, at)
            .await?
            .is_none()
        {
            return Err(IdentityError::TokenInvalid);
        }
        let change = Change {
            password_hash: Some(password_hash),
            password_changed: true,
            ..Change::default()
        };
        users::update(&mut tx, user.id, change, at).await?;
        account_tokens::revoke(&mut tx, user.id, None, at).await?;
        lockout::clear(&mut tx, user.id).await?;
        let ended = palisade_store::repo::sessions::revoke_all(
            &mut tx,
            user.id,
            None,
            RevokeReason::PasswordChanged,
            at,
        )
        .await?;
        let entry = Entry::new(Action::PasswordReset, Outcome::Success)
            .target("user", user.id)
            .detail("sessions_ended", ended.len());
        audit::append(&mut tx, &from.actor(Some(user.id)), &entry).await?;
        self.notice_in(
            &mut tx,
            user.id,
            EventType::PasswordChanged,
            serde_json::json!({}),
        )
        .await?;
        tx.commit().await?;
        self.0.revocations.note(&ended);
        self.0.views.forget(&user.id);
        Ok(())
    }

    /// Asks to move the caller's account to `new_email`: needs the password, and a
    /// code when 2FA is on. The change waits for the link sent to the new address; the
    /// old address is told at once.
    pub async fn change_email(
        &self,
        who: &Principal,
        new_email: &str,
        password: &str,
        code: Option<&str>,
        from: &Provenance,
    ) -> Result<(), IdentityError> {
        let user = self.own_user(who).await?;
        self.confirm_password(&user, password, from).await?;
        let new = Email::parse(new_email)
            .map_err(|e| IdentityError::Invalid(vec![("new_email", e.to_string())]))?;
        if new.as_str() == user.email {
            return Err(IdentityError::Invalid(vec![(
                "new_email",
                "is the account's address already".to_owned(),
            )]));
        }
        if users::by_email(&self.0.db, &new).await?.is_some() {
            return Err(IdentityError::EmailTaken);
        }
        if user.totp_enabled_at.is_some() {
            let Some(code) = code else {
                return Err(IdentityError::Invalid(vec![(
                    "code",
                    "required: two-factor authentication is on".to_owned(),
                )]));
            };
            self.second_factor_counted(&user, code, from).await?;
        }
        let mut tx = self.0.db.begin().await?;
        let token = self
            .issue(
                &mut tx,
                user.id,
                CHANGE,
                CHANGE_TTL,
                Some(new.as_str().to_owned()),
            )
            .await?;
        let link = self.0.mail.link("/verify-email", &token);
        let mail = &self.0.mail;
        let context = context! { name => &user.name, email => new.as_str(), link => &link };
        if !mail
            .queue(
                &mut tx,
                new.as_str(),
                Template::ConfirmEmailChange,
                context,
                Cap::Requests,
            )
            .await?
        {
            return Err(IdentityError::MailCapped);
        }
        let body = format!(
            "A change of your account's address to {} was asked for. It takes effect only when confirmed from that address.",
            new.as_str()
        );
        if user.email_verified_at.is_some() {
            let title = "A change of your e-mail address was asked for";
            mail.notice(&mut tx, &user.email, &user.name, title, &body)
                .await?;
        }
        let entry =
            Entry::new(Action::EmailChangeRequested, Outcome::Success).target("user", user.id);
        audit::append(&mut tx, &from.actor(Some(user.id)), &entry).await?;
        tx.commit().await?;
        Ok(())
    }
}
