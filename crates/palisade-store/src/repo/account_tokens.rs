//! `account_tokens`: the single-use tokens of the account e-mail flows (verification,
//! password reset, e-mail change), stored as hashes.

use palisade_auth::ids::UserId;
use sea_query::{Cond, Expr, ExprTrait, Iden, Query};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Exec, StoreError};

#[derive(Iden)]
enum AccountTokens {
    Table,
    Id,
    UserId,
    Purpose,
    TokenHash,
    NewEmail,
    ExpiresAt,
    UsedAt,
    CreatedAt,
}

/// An `account_tokens` row.
#[derive(Clone, Debug)]
pub struct AccountToken {
    pub id: Uuid,
    pub user_id: UserId,
    /// `verify_email`, `reset_password`, `change_email`.
    pub purpose: &'static str,
    /// SHA-256 of the token.
    pub token_hash: Vec<u8>,
    /// The address a `change_email` token confirms.
    pub new_email: Option<String>,
    pub expires_at: OffsetDateTime,
    pub created_at: OffsetDateTime,
}

pub async fn insert(ex: impl Into<Exec<'_>>, t: &AccountToken) -> Result<(), StoreError> {
    let stmt = Query::insert()
        .into_table(AccountTokens::Table)
        .columns([
            AccountTokens::Id,
            AccountTokens::UserId,
            AccountTokens::Purpose,
            AccountTokens::TokenHash,
            AccountTokens::NewEmail,
            AccountTokens::ExpiresAt,
            AccountTokens::UsedAt,
            AccountTokens::CreatedAt,
        ])
        .values_panic([
            t.id.into(),
            t.user_id.as_uuid().into(),
            t.purpose.into(),
            t.token_hash.clone().into(),
            t.new_email.clone().into(),
            t.expires_at.into(),
            Option::<OffsetDateTime>::None.into(),
            t.created_at.into(),
        ])
        .to_owned();
    ex.into().execute("account_tokens", &stmt).await.map(|_| ())
}

/// The token of `purpose` whose hash is `hash`, if unused and unexpired at `now`.
fn usable(purpose: &str, hash: &[u8], now: OffsetDateTime) -> Cond {
    Cond::all()
        .add(Expr::col(AccountTokens::TokenHash).eq(hash.to_vec()))
        .add(Expr::col(AccountTokens::Purpose).eq(purpose))
        .add(Expr::col(AccountTokens::UsedAt).is_null())
        .add(Expr::col(AccountTokens::ExpiresAt).gt(now))
}

/// What a used token stood for.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Used {
    #[sqlx(try_from = "Uuid")]
    pub user_id: UserId,
    pub new_email: Option<String>,
}

/// Uses the token of `purpose` whose hash is `hash`, if it is unused and unexpired at
/// `now`: once, whoever asks at the same time. What it stood for, or `None`.
pub async fn use_once(
    ex: impl Into<Exec<'_>>,
    purpose: &str,
    hash: &[u8],
    now: OffsetDateTime,
) -> Result<Option<Used>, StoreError> {
    let stmt = Query::update()
        .table(AccountTokens::Table)
        .value(AccountTokens::UsedAt, now)
        .cond_where(usable(purpose, hash, now))
        .returning(Query::returning().columns([AccountTokens::UserId, AccountTokens::NewEmail]))
        .to_owned();
    let rows: Vec<Used> = ex.into().fetch_all("account_tokens", &stmt).await?;
    Ok(rows.into_iter().next())
}

/// The user of the token of `purpose` whose hash is `hash`, if it is unused and
/// unexpired at `now`, without using it.
pub async fn peek(
    ex: impl Into<Exec<'_>>,
    purpose: &str,
    hash: &[u8],
    now: OffsetDateTime,
) -> Result<Option<UserId>, StoreError> {
    let stmt = Query::select()
        .columns([AccountTokens::UserId, AccountTokens::NewEmail])
        .from(AccountTokens::Table)
        .cond_where(usable(purpose, hash, now))
        .to_owned();
    let row: Option<Used> = ex.into().fetch_optional("account_tokens", &stmt).await?;
    Ok(row.map(|r| r.user_id))
}

/// Ends `user`'s unused tokens of `purpose`, or of every purpose with `None` (their
/// password changed, their address moved, their account was disabled or deleted): a
/// link mailed before cannot act after.
pub async fn revoke(
    ex: impl Into<Exec<'_>>,
    user: UserId,
    purpose: Option<&str>,
    now: OffsetDateTime,
) -> Result<u64, StoreError> {
    let mut stmt = Query::update();
    stmt.table(AccountTokens::Table)
        .value(AccountTokens::UsedAt, now)
        .and_where(Expr::col(AccountTokens::UserId).eq(user.as_uuid()))
        .and_where(Expr::col(AccountTokens::UsedAt).is_null());
    if let Some(purpose) = purpose {
        stmt.and_where(Expr::col(AccountTokens::Purpose).eq(purpose));
    }
    ex.into().execute("account_tokens", &stmt).await
}

/// Deletes the tokens expired before `before`.
pub async fn purge(ex: impl Into<Exec<'_>>, before: OffsetDateTime) -> Result<u64, StoreError> {
    let stmt = Query::delete()
        .from_table(AccountTokens::Table)
        .and_where(Expr::col(AccountTokens::ExpiresAt).lt(before))
        .to_owned();
    ex.into().execute("account_tokens", &stmt).await
}
