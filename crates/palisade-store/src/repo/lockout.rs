//! `login_failures`: per-account lockout state. The arithmetic (when a lock starts, how
//! long it lasts) is the identity service's; this is its storage.

use palisade_auth::ids::UserId;
use sea_query::{Cond, Expr, ExprTrait, Iden, OnConflict, Query};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Exec, StoreError};

#[derive(Iden)]
enum LoginFailures {
    Table,
    UserId,
    Failures,
    WindowStartedAt,
    LockedUntil,
    Lockouts,
    HourFailures,
    HourStartedAt,
}

const COLUMNS: [LoginFailures; 7] = [
    LoginFailures::UserId,
    LoginFailures::Failures,
    LoginFailures::WindowStartedAt,
    LoginFailures::LockedUntil,
    LoginFailures::Lockouts,
    LoginFailures::HourFailures,
    LoginFailures::HourStartedAt,
];

/// One account's failure counters (`INTEGER` columns: `i32` on both backends).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Failures {
    #[sqlx(try_from = "Uuid")]
    pub user_id: UserId,
    /// Failures since `window_started_at`.
    pub failures: i32,
    pub window_started_at: OffsetDateTime,
    pub locked_until: Option<OffsetDateTime>,
    /// Locks in a row; each doubles the next.
    pub lockouts: i32,
    /// Failures since `hour_started_at` (the hourly ceiling).
    pub hour_failures: i32,
    pub hour_started_at: OffsetDateTime,
}

pub async fn get(ex: impl Into<Exec<'_>>, user_id: UserId) -> Result<Option<Failures>, StoreError> {
    let mut ex = ex.into();
    let stmt = Query::select()
        .columns(COLUMNS)
        .from(LoginFailures::Table)
        .and_where(Expr::col(LoginFailures::UserId).eq(user_id.as_uuid()))
        .to_owned();
    ex.fetch_optional("login_failures", &stmt).await
}

/// The counters of `user_id` for a read-modify-write inside `tx`: later writers of the
/// same account wait until `tx` ends (PostgreSQL: the row is created if missing, then
/// locked `FOR UPDATE`; SQLite: `BEGIN IMMEDIATE` already admits one writer).
pub async fn get_for_update(
    tx: &mut crate::Tx,
    user_id: UserId,
    now: OffsetDateTime,
) -> Result<Option<Failures>, StoreError> {
    if tx.backend() == crate::Backend::Postgres {
        let seed = Query::insert()
            .into_table(LoginFailures::Table)
            .columns(COLUMNS)
            .values_panic([
                user_id.as_uuid().into(),
                0i32.into(),
                now.into(),
                Option::<OffsetDateTime>::None.into(),
                0i32.into(),
                0i32.into(),
                now.into(),
            ])
            .on_conflict(
                OnConflict::column(LoginFailures::UserId)
                    .do_nothing()
                    .to_owned(),
            )
            .to_owned();
        tx.execute("login_failures", &seed).await?;
        let stmt = Query::select()
            .columns(COLUMNS)
            .from(LoginFailures::Table)
            .and_where(Expr::col(LoginFailures::UserId).eq(user_id.as_uuid()))
            .lock_exclusive()
            .to_owned();
        return tx.fetch_optional("login_failures", &stmt).await;
    }
    get(tx, user_id).await
}

pub async fn put(ex: impl Into<Exec<'_>>, f: &Failures) -> Result<(), StoreError> {
    let mut ex = ex.into();
    let stmt = Query::insert()
        .into_table(LoginFailures::Table)
        .columns(COLUMNS)
        .values_panic([
            f.user_id.as_uuid().into(),
            f.failures.into(),
            f.window_started_at.into(),
            f.locked_until.into(),
            f.lockouts.into(),
            f.hour_failures.into(),
            f.hour_started_at.into(),
        ])
        .on_conflict(
            OnConflict::column(LoginFailures::UserId)
                .update_columns(COLUMNS.into_iter().skip(1))
                .to_owned(),
        )
        .to_owned();
    ex.execute("login_failures", &stmt).await.map(|_| ())
}

/// Forgets the account's failures (a successful login, or an admin's unlock).
pub async fn clear(ex: impl Into<Exec<'_>>, user_id: UserId) -> Result<bool, StoreError> {
    let mut ex = ex.into();
    let stmt = Query::delete()
        .from_table(LoginFailures::Table)
        .and_where(Expr::col(LoginFailures::UserId).eq(user_id.as_uuid()))
        .to_owned();
    Ok(ex.execute("login_failures", &stmt).await? > 0)
}

/// Accounts refused at `now`: locked, or with at least `hourly_cap` failures in an
/// hour that started after `hour_since`.
pub async fn locked_at(
    ex: impl Into<Exec<'_>>,
    now: OffsetDateTime,
    hourly_cap: u32,
    hour_since: OffsetDateTime,
) -> Result<i64, StoreError> {
    let capped = Expr::col(LoginFailures::HourFailures)
        .gte(i64::from(hourly_cap))
        .and(Expr::col(LoginFailures::HourStartedAt).gt(hour_since));
    let stmt = Query::select()
        .expr_as(Expr::col(LoginFailures::UserId).count(), "n")
        .from(LoginFailures::Table)
        .cond_where(
            Cond::any()
                .add(Expr::col(LoginFailures::LockedUntil).gt(now))
                .add(capped),
        )
        .to_owned();
    super::number(ex, "login_failures", &stmt).await
}
