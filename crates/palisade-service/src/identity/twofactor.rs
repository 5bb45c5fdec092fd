//! TOTP two-factor authentication: enrolment (secret, otpauth URI, QR), confirmation
//! with a first code (which turns it on and hands out the backup codes), disabling,
//! the check of a code at login, and step-up (a code again inside a session).

use palisade_auth::amr::AuthMethods;
use palisade_auth::backup;
use palisade_auth::totp::{self, Authenticator};
use palisade_store::repo::sessions::RevokeReason;
use palisade_store::repo::users::{self, Change, User};
use palisade_store::repo::{lockout, now, sessions};
use serde::Serialize;
use utoipa::ToSchema;

use super::lockout::Failure;
use super::{Identity, IdentityError, Principal, Provenance, TokenPair};
use crate::audit::{self, Action, Entry, Outcome};

/// What enrolment shows the user once.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Enrolment {
    pub secret: String,
    pub otpauth_uri: String,
    pub qr_svg: String,
}

/// The codes confirmation hands out, shown once.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BackupCodes {
    pub backup_codes: Vec<String>,
}

/// The associated data a user's sealed secret is bound to.
fn purpose(user: &User) -> Vec<u8> {
    format!("totp:{}", user.id).into_bytes()
}

impl Identity {
    fn authenticator(&self, user: &User, secret: &[u8]) -> Result<Authenticator, IdentityError> {
        Authenticator::new(secret, super::TOTP_ISSUER, &user.email)
            .map_err(|e| IdentityError::Internal(e.to_string()))
    }

    fn open_secret(&self, user: &User) -> Result<Option<Vec<u8>>, IdentityError> {
        let Some(sealed) = &user.totp_secret else {
            return Ok(None);
        };
        self.0
            .secrets
            .open(sealed, &purpose(user))
            .map(Some)
            .map_err(|e| {
                tracing::error!(user_id = %user.id, error = %e, "cannot open a TOTP secret: ENCRYPTION_KEY changed?");
                IdentityError::Internal(e.to_string())
            })
    }

    /// Starts (or restarts) enrolment: a new secret, not yet in force.
    pub async fn setup_2fa(
        &self,
        who: &Principal,
        password: &str,
        from: &Provenance,
    ) -> Result<Enrolment, IdentityError> {
        let user = self.own_user(who).await?;
        self.confirm_password(&user, password, from).await?;
        if user.totp_enabled_at.is_some() {
            return Err(IdentityError::TwoFactorOn);
        }
        let secret = totp::new_secret();
        let auth = self.authenticator(&user, &secret)?;
        let enrolment = Enrolment {
            secret: auth.secret_base32(),
            otpauth_uri: auth
                .otpauth_uri()
                .map_err(|e| IdentityError::Internal(e.to_string()))?,
            qr_svg: auth
                .qr_svg()
                .map_err(|e| IdentityError::Internal(e.to_string()))?,
        };
        let change = Change {
            totp_secret: Some(Some(self.0.secrets.seal(&secret, &purpose(&user)))),
            totp_last_step: Some(None),
            ..Change::default()
        };
        users::update(&self.0.db, user.id, change, now()).await?;
        Ok(enrolment)
    }

    /// Confirms enrolment with a first code: 2FA is on, other sessions end, and the
    /// backup codes are handed out.
    pub async fn confirm_2fa(
        &self,
        who: &Principal,
        code: &str,
        from: &Provenance,
    ) -> Result<BackupCodes, IdentityError> {
        let user = self.own_user(who).await?;
        if user.totp_enabled_at.is_some() {
            return Err(IdentityError::TwoFactorOn);
        }
        let secret = self.open_secret(&user)?.ok_or(IdentityError::NoEnrolment)?;
        if !self.accept_totp(&user, &secret, code).await? {
            return Err(IdentityError::WrongCode);
        }
        let codes = backup::generate();
        let mut hashes = Vec::with_capacity(codes.len());
        for c in &codes {
            let canonical = backup::normalise(c).unwrap_or_default();
            hashes.push(self.0.hasher.hash(canonical).await?);
        }
        users::replace_backup_codes(&self.0.db, user.id, &hashes).await?;
        let change = Change {
            totp_enabled_at: Some(Some(now())),
            ..Change::default()
        };
        users::update(&self.0.db, user.id, change, now()).await?;
        self.0.views.forget(&user.id);
        self.revoke_all(
            user.id,
            Some(who.session_id),
            RevokeReason::TwoFactorEnabled,
        )
        .await?;
        self.own_change(from, user.id, Action::TwoFactorEnabled)
            .await?;
        let notice = crate::events::EventType::TwoFactorChanged;
        self.notice_or_log(user.id, notice, serde_json::json!({ "enabled": true }))
            .await;
        Ok(BackupCodes {
            backup_codes: codes,
        })
    }

    /// Turns 2FA off; needs the password and a code. Other sessions end.
    pub async fn disable_2fa(
        &self,
        who: &Principal,
        password: &str,
        code: &str,
        from: &Provenance,
    ) -> Result<(), IdentityError> {
        let user = self.own_user(who).await?;
        self.confirm_password(&user, password, from).await?;
        if user.totp_enabled_at.is_none() {
            return Err(IdentityError::TwoFactorOff);
        }
        if !self.check_second_factor(&user, code).await? {
            return Err(IdentityError::WrongCode);
        }
        self.clear_2fa(&user).await?;
        self.revoke_all(
            user.id,
            Some(who.session_id),
            RevokeReason::TwoFactorDisabled,
        )
        .await?;
        self.own_change(from, user.id, Action::TwoFactorDisabled)
            .await?;
        let notice = crate::events::EventType::TwoFactorChanged;
        self.notice_or_log(user.id, notice, serde_json::json!({ "enabled": false }))
            .await;
        Ok(())
    }

    /// Step-up: a second factor again within a signed-in session. The session now
    /// counts as authenticated with `otp` at this moment, and a new access token says
    /// so (the refresh token stays as it is). A wrong code counts toward the lockout.
    pub async fn step_up(
        &self,
        who: &Principal,
        code: &str,
        from: &Provenance,
    ) -> Result<TokenPair, IdentityError> {
        let user = self.own_user(who).await?;
        if user.totp_enabled_at.is_none() {
            return Err(IdentityError::TwoFactorOff);
        }
        self.second_factor_counted(&user, code, from).await?;
        let at = now();
        let methods = AuthMethods::PASSWORD_AND_CODE;
        let mut tx = self.0.db.begin().await?;
        if !sessions::reauthenticated(&mut tx, who.session_id, user.id, methods, at).await? {
            return Err(IdentityError::Unauthenticated);
        }
        let entry = Entry::new(Action::StepUp, Outcome::Success).target("session", who.session_id);
        audit::append(&mut tx, &from.actor(Some(user.id)), &entry).await?;
        tx.commit().await?;
        let roles = users::roles_of(&self.0.db, user.id).await?;
        Ok(self.token_pair(&user, roles, (who.session_id, methods, at), String::new()))
    }

    /// Checks a second factor asked for within a signed-in session. The attempt counts
    /// before its code is checked, in one step holding the account's row: parallel
    /// guesses each count, and none is checked once the account is locked. (At login the
    /// single-use mfa_token limits guesses; here a stolen access token would not.) A
    /// right code resets the counters, as a complete sign-in does.
    pub(super) async fn second_factor_counted(
        &self,
        user: &User,
        code: &str,
        from: &Provenance,
    ) -> Result<(), IdentityError> {
        let Some((counted, locked)) = self.count_failure(user.id, true).await? else {
            return Err(IdentityError::WrongCode);
        };
        if !self.check_second_factor(user, code).await? {
            self.report_failure(user, Failure::StepUp, from, locked.then_some(&counted))
                .await;
            return Err(IdentityError::WrongCode);
        }
        lockout::clear(&self.0.db, user.id).await?;
        Ok(())
    }

    pub(super) async fn clear_2fa(&self, user: &User) -> Result<(), IdentityError> {
        let change = Change {
            totp_secret: Some(None),
            totp_enabled_at: Some(None),
            totp_last_step: Some(None),
            ..Change::default()
        };
        users::update(&self.0.db, user.id, change, now()).await?;
        users::replace_backup_codes(&self.0.db, user.id, &[]).await?;
        self.0.views.forget(&user.id);
        Ok(())
    }

    /// A TOTP code (accepted once) or an unused backup code (used up).
    pub(super) async fn check_second_factor(
        &self,
        user: &User,
        code: &str,
    ) -> Result<bool, IdentityError> {
        if let Some(canonical) = backup::normalise(code) {
            let unused = users::unused_backup_codes(&self.0.db, user.id).await?;
            let hashes = unused.iter().map(|c| c.code_hash.clone()).collect();
            let Some(i) = self.0.hasher.find_match(canonical, hashes).await? else {
                return Ok(false);
            };
            return Ok(users::use_backup_code(&self.0.db, unused[i].id, now()).await?);
        }
        let Some(secret) = self.open_secret(user)? else {
            return Ok(false);
        };
        self.accept_totp(user, &secret, code).await
    }

    /// Checks a TOTP code and claims its time step, so it is never accepted twice.
    async fn accept_totp(
        &self,
        user: &User,
        secret: &[u8],
        code: &str,
    ) -> Result<bool, IdentityError> {
        let auth = self.authenticator(user, secret)?;
        let last = user.totp_last_step.and_then(|s| u64::try_from(s).ok());
        let Some(step) = auth.accept(code, super::unix_now(), last) else {
            return Ok(false);
        };
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        Ok(users::claim_totp_step(&self.0.db, user.id, step).await?)
    }
}
