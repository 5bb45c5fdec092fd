//! `idempotency_keys`: one row per (user, `Idempotency-Key`), from the first request's
//! claim to the end of its replay window. Every change to a row is conditional, so two
//! requests racing for one key cannot both hold it: the insert claims an absent key,
//! the take-over claims a key whose lease ran out (or whose window ended), and
//! everything a holder writes names its `lease_token`.

use palisade_auth::ids::UserId;
use sea_query::{Cond, Expr, ExprTrait, Iden, OnConflict, Query};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Exec, StoreError};

#[derive(Iden)]
enum IdempotencyKeys {
    Table,
    UserId,
    IdempotencyKey,
    Fingerprint,
    LeaseToken,
    LockedUntil,
    Outcome,
    Status,
    Headers,
    Body,
    CreatedAt,
    ExpiresAt,
}

/// A stored key.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct KeyRow {
    pub fingerprint: Vec<u8>,
    pub lease_token: Option<Uuid>,
    pub locked_until: Option<OffsetDateTime>,
    /// What the first run committed (a record's id), written in its transaction.
    pub outcome: Option<String>,
    /// The answer, once the first run finished.
    pub status: Option<i32>,
    /// The replayed headers, as a JSON list of `[name, value]`.
    pub headers: Option<String>,
    pub body: Option<Vec<u8>>,
    pub expires_at: OffsetDateTime,
}

/// A claim to write: who holds it and until when.
pub struct NewClaim<'a> {
    pub user: UserId,
    pub key: &'a str,
    pub fingerprint: &'a [u8],
    pub lease_token: Uuid,
    pub locked_until: OffsetDateTime,
    pub now: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

fn this_key(user: UserId, key: &str) -> Cond {
    Cond::all()
        .add(Expr::col(IdempotencyKeys::UserId).eq(user.as_uuid()))
        .add(Expr::col(IdempotencyKeys::IdempotencyKey).eq(key))
}

/// The key while `lease_token` holds it and it has no answer yet.
fn held_by(user: UserId, key: &str, lease_token: Uuid) -> Cond {
    this_key(user, key)
        .add(Expr::col(IdempotencyKeys::LeaseToken).eq(lease_token))
        .add(Expr::col(IdempotencyKeys::Status).is_null())
}

/// Claims an absent key; `false` when a row is there.
pub async fn insert_if_absent(
    ex: impl Into<Exec<'_>>,
    c: &NewClaim<'_>,
) -> Result<bool, StoreError> {
    let stmt = Query::insert()
        .into_table(IdempotencyKeys::Table)
        .columns([
            IdempotencyKeys::UserId,
            IdempotencyKeys::IdempotencyKey,
            IdempotencyKeys::Fingerprint,
            IdempotencyKeys::LeaseToken,
            IdempotencyKeys::LockedUntil,
            IdempotencyKeys::CreatedAt,
            IdempotencyKeys::ExpiresAt,
        ])
        .values_panic([
            c.user.as_uuid().into(),
            c.key.into(),
            c.fingerprint.to_vec().into(),
            c.lease_token.into(),
            c.locked_until.into(),
            c.now.into(),
            c.expires_at.into(),
        ])
        .on_conflict(
            OnConflict::columns([IdempotencyKeys::UserId, IdempotencyKeys::IdempotencyKey])
                .do_nothing()
                .to_owned(),
        )
        .to_owned();
    Ok(ex.into().execute("idempotency_keys", &stmt).await? == 1)
}

pub async fn get(
    ex: impl Into<Exec<'_>>,
    user: UserId,
    key: &str,
) -> Result<Option<KeyRow>, StoreError> {
    let stmt = Query::select()
        .columns([
            IdempotencyKeys::Fingerprint,
            IdempotencyKeys::LeaseToken,
            IdempotencyKeys::LockedUntil,
            IdempotencyKeys::Outcome,
            IdempotencyKeys::Status,
            IdempotencyKeys::Headers,
            IdempotencyKeys::Body,
            IdempotencyKeys::ExpiresAt,
        ])
        .from(IdempotencyKeys::Table)
        .cond_where(this_key(user, key))
        .to_owned();
    ex.into().fetch_optional("idempotency_keys", &stmt).await
}

/// Takes over a key whose window ended (it starts afresh) or whose unfinished run's
/// lease ran out (its outcome is kept, to be continued); `false` when neither holds
/// any more (another request took it first).
pub async fn take_over(ex: impl Into<Exec<'_>>, c: &NewClaim<'_>) -> Result<bool, StoreError> {
    let mut ex = ex.into();
    let lapsed = Query::update()
        .table(IdempotencyKeys::Table)
        .values([
            (IdempotencyKeys::LeaseToken, c.lease_token.into()),
            (IdempotencyKeys::LockedUntil, c.locked_until.into()),
        ])
        .cond_where(
            this_key(c.user, c.key)
                .add(Expr::col(IdempotencyKeys::Status).is_null())
                .add(Expr::col(IdempotencyKeys::LockedUntil).lt(c.now))
                .add(Expr::col(IdempotencyKeys::ExpiresAt).gt(c.now)),
        )
        .to_owned();
    if ex.execute("idempotency_keys", &lapsed).await? == 1 {
        return Ok(true);
    }
    let expired = Query::update()
        .table(IdempotencyKeys::Table)
        .values([
            (IdempotencyKeys::Fingerprint, c.fingerprint.to_vec().into()),
            (IdempotencyKeys::LeaseToken, c.lease_token.into()),
            (IdempotencyKeys::LockedUntil, c.locked_until.into()),
            (IdempotencyKeys::Outcome, Option::<String>::None.into()),
            (IdempotencyKeys::Status, Option::<i32>::None.into()),
            (IdempotencyKeys::Headers, Option::<String>::None.into()),
            (IdempotencyKeys::Body, Option::<Vec<u8>>::None.into()),
            (IdempotencyKeys::CreatedAt, c.now.into()),
            (IdempotencyKeys::ExpiresAt, c.expires_at.into()),
        ])
        .cond_where(this_key(c.user, c.key).add(Expr::col(IdempotencyKeys::ExpiresAt).lte(c.now)))
        .to_owned();
    Ok(ex.execute("idempotency_keys", &expired).await? == 1)
}

/// Notes what the holder's run committed, in that run's transaction; `false` when the
/// holder lost its claim (the transaction must then roll back).
pub async fn set_outcome(
    ex: impl Into<Exec<'_>>,
    user: UserId,
    key: &str,
    lease_token: Uuid,
    outcome: &str,
) -> Result<bool, StoreError> {
    let stmt = Query::update()
        .table(IdempotencyKeys::Table)
        .value(IdempotencyKeys::Outcome, outcome)
        .cond_where(held_by(user, key, lease_token))
        .to_owned();
    Ok(ex.into().execute("idempotency_keys", &stmt).await? == 1)
}

/// Stores the holder's answer and ends its lease.
pub async fn finish(
    ex: impl Into<Exec<'_>>,
    user: UserId,
    key: &str,
    lease_token: Uuid,
    answer: (i32, &str, &[u8]),
) -> Result<bool, StoreError> {
    let (status, headers, body) = answer;
    let stmt = Query::update()
        .table(IdempotencyKeys::Table)
        .values([
            (IdempotencyKeys::Status, status.into()),
            (IdempotencyKeys::Headers, headers.into()),
            (IdempotencyKeys::Body, body.to_vec().into()),
            (
                IdempotencyKeys::LockedUntil,
                Option::<OffsetDateTime>::None.into(),
            ),
        ])
        .cond_where(held_by(user, key, lease_token))
        .to_owned();
    Ok(ex.into().execute("idempotency_keys", &stmt).await? == 1)
}

/// Gives up the holder's claim when its run committed nothing, so the key is free
/// again; a claim with an outcome is kept, for a retry to continue.
pub async fn release(
    ex: impl Into<Exec<'_>>,
    user: UserId,
    key: &str,
    lease_token: Uuid,
) -> Result<(), StoreError> {
    let mut ex = ex.into();
    let free = Query::delete()
        .from_table(IdempotencyKeys::Table)
        .cond_where(
            held_by(user, key, lease_token).add(Expr::col(IdempotencyKeys::Outcome).is_null()),
        )
        .to_owned();
    if ex.execute("idempotency_keys", &free).await? == 1 {
        return Ok(());
    }
    // Keep the outcome; end the lease so a retry need not wait for it.
    let unlock = Query::update()
        .table(IdempotencyKeys::Table)
        .value(IdempotencyKeys::LockedUntil, OffsetDateTime::UNIX_EPOCH)
        .cond_where(held_by(user, key, lease_token))
        .to_owned();
    ex.execute("idempotency_keys", &unlock).await.map(|_| ())
}

/// Deletes keys whose window ended before `now`; returns how many.
pub async fn purge_expired(
    ex: impl Into<Exec<'_>>,
    now: OffsetDateTime,
) -> Result<u64, StoreError> {
    let stmt = Query::delete()
        .from_table(IdempotencyKeys::Table)
        .and_where(Expr::col(IdempotencyKeys::ExpiresAt).lt(now))
        .to_owned();
    ex.into().execute("idempotency_keys", &stmt).await
}
