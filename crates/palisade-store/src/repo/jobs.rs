//! `jobs`: the job queue's rows. The rules (what a kind does, how long to wait after
//! a failure) are the service's; here are the statements, each conditional on the
//! lease it acts under, so a worker whose lease lapsed changes nothing.

use sea_query::{Cond, Expr, ExprTrait, Iden, LockBehavior, LockType, OnConflict, Order, Query};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Exec, StoreError};

#[derive(Iden)]
enum Jobs {
    Table,
    Id,
    Kind,
    DedupeKey,
    Payload,
    State,
    Attempts,
    MaxAttempts,
    RunAt,
    LeaseToken,
    LockedUntil,
    LastError,
    CreatedAt,
    UpdatedAt,
}

const COLUMNS: [Jobs; 13] = [
    Jobs::Id,
    Jobs::Kind,
    Jobs::DedupeKey,
    Jobs::Payload,
    Jobs::State,
    Jobs::Attempts,
    Jobs::MaxAttempts,
    Jobs::RunAt,
    Jobs::LeaseToken,
    Jobs::LockedUntil,
    Jobs::LastError,
    Jobs::CreatedAt,
    Jobs::UpdatedAt,
];

pub const QUEUED: &str = "queued";
pub const RUNNING: &str = "running";
pub const DEAD: &str = "dead";

/// A `jobs` row.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct JobRow {
    pub id: Uuid,
    pub kind: String,
    pub dedupe_key: Option<String>,
    /// JSON.
    pub payload: String,
    pub state: String,
    /// Claims so far, this one included while it runs.
    pub attempts: i32,
    pub max_attempts: i32,
    pub run_at: OffsetDateTime,
    pub lease_token: Option<Uuid>,
    pub locked_until: Option<OffsetDateTime>,
    pub last_error: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// Stores `job`, queued; `false` when a job with its `dedupe_key` exists.
pub async fn insert(ex: impl Into<Exec<'_>>, job: &JobRow) -> Result<bool, StoreError> {
    let stmt = Query::insert()
        .into_table(Jobs::Table)
        .columns(COLUMNS)
        .values_panic([
            job.id.into(),
            job.kind.clone().into(),
            job.dedupe_key.clone().into(),
            job.payload.clone().into(),
            job.state.clone().into(),
            job.attempts.into(),
            job.max_attempts.into(),
            job.run_at.into(),
            job.lease_token.into(),
            job.locked_until.into(),
            job.last_error.clone().into(),
            job.created_at.into(),
            job.updated_at.into(),
        ])
        .on_conflict(OnConflict::column(Jobs::DedupeKey).do_nothing().to_owned())
        .to_owned();
    Ok(ex.into().execute("jobs", &stmt).await? == 1)
}

/// Claims up to `limit` jobs of `kinds` that are due (queued and past `run_at`, or
/// running under a lapsed lease), oldest due first, for `lease` until `until`: each
/// counts one more attempt. On PostgreSQL concurrent claims skip each other's rows
/// (`FOR UPDATE SKIP LOCKED`); SQLite has one writer at a time.
pub async fn claim(
    ex: impl Into<Exec<'_>>,
    kinds: &[&str],
    limit: u64,
    lease: Uuid,
    until: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<Vec<JobRow>, StoreError> {
    let due = Cond::any()
        .add(
            Expr::col(Jobs::State)
                .eq(QUEUED)
                .and(Expr::col(Jobs::RunAt).lte(now)),
        )
        .add(
            Expr::col(Jobs::State)
                .eq(RUNNING)
                .and(Expr::col(Jobs::LockedUntil).lt(now)),
        );
    let chosen = Query::select()
        .column(Jobs::Id)
        .from(Jobs::Table)
        .cond_where(due)
        .and_where(Expr::col(Jobs::Kind).is_in(kinds.iter().copied()))
        .order_by(Jobs::RunAt, Order::Asc)
        .limit(limit)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .to_owned();
    let stmt = Query::update()
        .table(Jobs::Table)
        .values([
            (Jobs::State, RUNNING.into()),
            (Jobs::LeaseToken, lease.into()),
            (Jobs::LockedUntil, until.into()),
            (Jobs::Attempts, Expr::col(Jobs::Attempts).add(1)),
            (Jobs::UpdatedAt, now.into()),
        ])
        .and_where(Expr::col(Jobs::Id).in_subquery(chosen))
        .returning(Query::returning().columns(COLUMNS))
        .to_owned();
    ex.into().fetch_all("jobs", &stmt).await
}

/// Extends the lease of job `id` held by `lease`; `false` when it is no longer held.
pub async fn renew(
    ex: impl Into<Exec<'_>>,
    id: Uuid,
    lease: Uuid,
    until: OffsetDateTime,
) -> Result<bool, StoreError> {
    let stmt = Query::update()
        .table(Jobs::Table)
        .value(Jobs::LockedUntil, until)
        .and_where(Expr::col(Jobs::Id).eq(id))
        .and_where(Expr::col(Jobs::LeaseToken).eq(lease))
        .and_where(Expr::col(Jobs::State).eq(RUNNING))
        .to_owned();
    Ok(ex.into().execute("jobs", &stmt).await? == 1)
}

/// Deletes job `id`, done under `lease`; `false` when the lease was lost meanwhile.
pub async fn complete(ex: impl Into<Exec<'_>>, id: Uuid, lease: Uuid) -> Result<bool, StoreError> {
    let stmt = Query::delete()
        .from_table(Jobs::Table)
        .and_where(Expr::col(Jobs::Id).eq(id))
        .and_where(Expr::col(Jobs::LeaseToken).eq(lease))
        .to_owned();
    Ok(ex.into().execute("jobs", &stmt).await? == 1)
}

/// Puts job `id` held by `lease` back: `state` (`queued` to run again at `run_at`, or
/// `dead`), with `error`; `attempts_back` undoes the claim's attempt (a job released
/// at shutdown did not fail).
#[allow(clippy::too_many_arguments)]
pub async fn put_back(
    ex: impl Into<Exec<'_>>,
    id: Uuid,
    lease: Uuid,
    state: &str,
    run_at: OffsetDateTime,
    error: Option<&str>,
    attempts_back: bool,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let mut stmt = Query::update();
    stmt.table(Jobs::Table).values([
        (Jobs::State, state.into()),
        (Jobs::RunAt, run_at.into()),
        (Jobs::LeaseToken, Option::<Uuid>::None.into()),
        (Jobs::LockedUntil, Option::<OffsetDateTime>::None.into()),
        (Jobs::UpdatedAt, now.into()),
    ]);
    if let Some(e) = error {
        stmt.value(Jobs::LastError, e);
    }
    if attempts_back {
        stmt.value(Jobs::Attempts, Expr::col(Jobs::Attempts).sub(1));
    }
    stmt.and_where(Expr::col(Jobs::Id).eq(id))
        .and_where(Expr::col(Jobs::LeaseToken).eq(lease));
    Ok(ex.into().execute("jobs", &stmt).await? == 1)
}

/// Jobs in `state` (every state when `None`), oldest first, at most `limit`.
pub async fn list(
    ex: impl Into<Exec<'_>>,
    state: Option<&str>,
    limit: u64,
) -> Result<Vec<JobRow>, StoreError> {
    let mut stmt = Query::select();
    stmt.columns(COLUMNS)
        .from(Jobs::Table)
        .order_by(Jobs::CreatedAt, Order::Asc)
        .order_by(Jobs::Id, Order::Asc)
        .limit(limit);
    if let Some(state) = state {
        stmt.and_where(Expr::col(Jobs::State).eq(state));
    }
    ex.into().fetch_all("jobs", &stmt).await
}

/// What makes a job due at `now` with a fresh count of attempts.
fn afresh(now: OffsetDateTime) -> [(Jobs, sea_query::SimpleExpr); 4] {
    [
        (Jobs::State, QUEUED.into()),
        (Jobs::Attempts, 0i32.into()),
        (Jobs::RunAt, now.into()),
        (Jobs::UpdatedAt, now.into()),
    ]
}

/// Queues dead job `id` again with a fresh count of attempts; `false` when there is
/// no such dead job.
pub async fn retry(
    ex: impl Into<Exec<'_>>,
    id: Uuid,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let stmt = Query::update()
        .table(Jobs::Table)
        .values(afresh(now))
        .and_where(Expr::col(Jobs::Id).eq(id))
        .and_where(Expr::col(Jobs::State).eq(DEAD))
        .to_owned();
    Ok(ex.into().execute("jobs", &stmt).await? == 1)
}

/// Queues the waiting or dead job with dedupe key `key` to run at `now` with a fresh
/// count of attempts; `false` when there is none (running, or gone).
pub async fn run_again(
    ex: impl Into<Exec<'_>>,
    key: &str,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let stmt = Query::update()
        .table(Jobs::Table)
        .values(afresh(now))
        .and_where(Expr::col(Jobs::DedupeKey).eq(key))
        .and_where(Expr::col(Jobs::State).is_in([QUEUED, DEAD]))
        .to_owned();
    Ok(ex.into().execute("jobs", &stmt).await? == 1)
}

/// Deletes every dead job; how many.
pub async fn purge_dead(ex: impl Into<Exec<'_>>) -> Result<u64, StoreError> {
    let stmt = Query::delete()
        .from_table(Jobs::Table)
        .and_where(Expr::col(Jobs::State).eq(DEAD))
        .to_owned();
    ex.into().execute("jobs", &stmt).await
}

/// Queued jobs per kind: the queue's depth.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Depth {
    pub kind: String,
    pub n: i64,
}

pub async fn depths(ex: impl Into<Exec<'_>>) -> Result<Vec<Depth>, StoreError> {
    let stmt = Query::select()
        .column(Jobs::Kind)
        .expr_as(Expr::col(Jobs::Id).count(), "n")
        .from(Jobs::Table)
        .and_where(Expr::col(Jobs::State).eq(QUEUED))
        .group_by_col(Jobs::Kind)
        .to_owned();
    ex.into().fetch_all("jobs", &stmt).await
}
