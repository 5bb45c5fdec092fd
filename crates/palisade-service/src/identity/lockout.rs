//! The lockout (docs/SECURITY.md § Lockout and throttling): `threshold` failed
//! logins within `window` lock the account for `duration`, doubling with each further
//! lock up to [`MAX_DURATION`]; a success resets; never more than [`HOURLY_CAP`]
//! failures per hour.
//!
//! [`LockoutPolicy`] is the rule, pure functions over the stored counters, so it is
//! tested without a database; `Identity::count_failure` applies it to the counters in
//! the database, where every instance sees them.

use std::time::Duration;

use palisade_auth::ids::UserId;
use palisade_store::repo::lockout::{self, Failures};
use palisade_store::repo::now;
use palisade_store::repo::users::User;
use time::OffsetDateTime;

use super::accounts::count_attempt;
use super::{Identity, IdentityError, Provenance};
use crate::audit::{Action, Entry, Outcome};

/// The configurable part of the rule.
#[derive(Clone, Copy, Debug)]
pub struct LockoutPolicy {
    pub threshold: u32,
    pub window: Duration,
    pub duration: Duration,
}

/// The longest a lock lasts, however often it doubled.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// Failures per hour beyond which an account is refused whatever the threshold
/// (ASVS 4.0.3 2.2.1).
pub const HOURLY_CAP: u32 = 100;

pub(crate) const HOUR: Duration = Duration::from_secs(3600);

impl LockoutPolicy {
    /// Whether logins to the account are refused at `now`.
    pub fn is_locked(&self, f: Option<&Failures>, now: OffsetDateTime) -> bool {
        let Some(f) = f else { return false };
        let locked = f.locked_until.is_some_and(|until| now < until);
        let capped =
            i64::from(f.hour_failures) >= i64::from(HOURLY_CAP) && now - f.hour_started_at < HOUR;
        locked || capped
    }

    /// The counters after one more failure, and whether it started a lock.
    pub fn after_failure(
        &self,
        f: Option<Failures>,
        user_id: UserId,
        now: OffsetDateTime,
    ) -> (Failures, bool) {
        let mut f = f.unwrap_or(Failures {
            user_id,
            failures: 0,
            window_started_at: now,
            locked_until: None,
            lockouts: 0,
            hour_failures: 0,
            hour_started_at: now,
        });
        if now - f.window_started_at >= self.window {
            f.failures = 0;
            f.window_started_at = now;
        }
        if now - f.hour_started_at >= HOUR {
            f.hour_failures = 0;
            f.hour_started_at = now;
        }
        f.failures = f.failures.saturating_add(1);
        f.hour_failures = f.hour_failures.saturating_add(1);
        if i64::from(f.failures) < i64::from(self.threshold) {
            return (f, false);
        }
        let doublings = u32::try_from(f.lockouts).unwrap_or(u32::MAX).min(16);
        let length = self
            .duration
            .saturating_mul(1 << doublings)
            .min(MAX_DURATION);
        f.locked_until = Some(now + length);
        f.lockouts = f.lockouts.saturating_add(1);
        f.failures = 0;
        f.window_started_at = now;
        (f, true)
    }
}

/// What failed: each kind counts toward the lockout and is audited as its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Failure {
    /// The password of a login.
    Password,
    /// The code of a login's second step.
    Code,
    /// The code of a step-up inside a session.
    StepUp,
    /// The password given to confirm an action (deletion, 2FA, a new password).
    ConfirmPassword,
}

impl Failure {
    /// The `type` label of `auth_attempts_total`.
    fn metric(self) -> &'static str {
        match self {
            Failure::Password => "password",
            Failure::Code => "mfa",
            Failure::StepUp => "step_up",
            Failure::ConfirmPassword => "confirm",
        }
    }

    /// The audit action and the `reason` detail it is recorded with.
    fn audited_as(self) -> (Action, &'static str) {
        match self {
            Failure::Password => (Action::Login, "password"),
            Failure::Code => (Action::Login, "code"),
            Failure::StepUp => (Action::StepUp, "code"),
            Failure::ConfirmPassword => (Action::Login, "confirm_password"),
        }
    }
}

impl Identity {
    /// Counts a failed attempt and records it; locks the account when the policy says
    /// so.
    pub(super) async fn failed_login(
        &self,
        user: &User,
        kind: Failure,
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
        user_id: UserId,
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
        kind: Failure,
        from: &Provenance,
        lock: Option<&Failures>,
    ) {
        count_attempt(kind.metric(), "failure");
        let (action, reason) = kind.audited_as();
        let failure = Entry::new(action, Outcome::Failure).detail("reason", reason);
        self.audited_or_logged(from, Some(user.id), failure).await;
        if let Some(next) = lock {
            tracing::warn!(user_id = %user.id, "account locked after repeated failed logins");
            let locked = Entry::new(Action::Lockout, Outcome::Success)
                .target("user", user.id)
                .detail("until", next.locked_until.map(|t| t.to_string()));
            self.audited_or_logged(from, Some(user.id), locked).await;
            let until = next.locked_until.map(|t| t.to_string());
            self.notice_or_log(
                user.id,
                crate::events::EventType::Lockout,
                serde_json::json!({ "until": until }),
            )
            .await;
        }
    }

    /// Whether the account refuses sign-ins now (locked, or over the hourly ceiling).
    pub(super) async fn is_locked(&self, user_id: UserId) -> Result<bool, IdentityError> {
        let failures = lockout::get(&self.0.db, user_id).await?;
        Ok(self.0.settings.lockout.is_locked(failures.as_ref(), now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The baseline's values: 5 failures in 15 minutes lock for 15 minutes.
    fn baseline() -> LockoutPolicy {
        LockoutPolicy {
            threshold: 5,
            window: Duration::from_secs(15 * 60),
            duration: Duration::from_secs(15 * 60),
        }
    }

    fn at(minutes: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::minutes(minutes)
    }

    fn fail(p: &LockoutPolicy, f: Option<Failures>, now: OffsetDateTime) -> (Failures, bool) {
        p.after_failure(f, UserId::from(uuid::Uuid::nil()), now)
    }

    #[test]
    fn five_failures_in_the_window_lock_for_fifteen_minutes() {
        let p = baseline();
        let mut f = None;
        for i in 0..4 {
            let (next, locked) = fail(&p, f, at(i));
            assert!(!locked && !p.is_locked(Some(&next), at(i)));
            f = Some(next);
        }
        let (next, locked) = fail(&p, f, at(4));
        assert!(locked);
        assert!(p.is_locked(Some(&next), at(4)));
        assert!(p.is_locked(Some(&next), at(18)));
        assert!(!p.is_locked(Some(&next), at(19)));
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let p = baseline();
        let mut f = None;
        for i in 0..10 {
            // One failure every 4 minutes: at most 4 fall in any 15-minute window
            // opened by the first of them.
            let (next, locked) = fail(&p, f, at(i * 4));
            f = Some(next);
            if locked {
                assert!(i >= 4, "locked after {} failures", i + 1);
                return;
            }
        }
    }

    #[test]
    fn each_further_lock_doubles_up_to_a_day() {
        let p = baseline();
        let mut f = None;
        let mut now = at(0);
        let mut lengths = Vec::new();
        for _ in 0..10 {
            let mut locked = false;
            while !locked {
                let (next, l) = fail(&p, f, now);
                locked = l;
                f = Some(next);
            }
            let until = f.as_ref().and_then(|f| f.locked_until).expect("locked");
            lengths.push((until - now).whole_minutes());
            now = until;
        }
        assert_eq!(&lengths[..4], &[15, 30, 60, 120]);
        assert_eq!(*lengths.last().expect("some"), 24 * 60);
    }

    #[test]
    fn the_hourly_ceiling_holds_whatever_the_threshold() {
        let p = LockoutPolicy {
            threshold: 1000,
            ..baseline()
        };
        let mut f = None;
        for i in 0..100 {
            let now = at(0) + time::Duration::seconds(i);
            assert!(!p.is_locked(f.as_ref(), now));
            f = Some(fail(&p, f, now).0);
        }
        assert!(p.is_locked(f.as_ref(), at(59)));
        assert!(!p.is_locked(f.as_ref(), at(61)));
    }
}
