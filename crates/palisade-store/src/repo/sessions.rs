//! `sessions`, `refresh_tokens` and `mfa_challenges`.

use palisade_auth::amr::AuthMethods;
use palisade_auth::ids::{SessionId, UserId};
use sea_query::{Expr, ExprTrait, Iden, Order, Query};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Exec, StoreError};

#[derive(Iden)]
enum Sessions {
    Table,
    Id,
    UserId,
    CreatedAt,
    LastUsedAt,
    ExpiresAt,
    AuthMethods,
    AuthTime,
    Ip,
    UserAgent,
    RevokedAt,
    RevokedReason,
}

#[derive(Iden)]
enum RefreshTokens {
    Table,
    TokenHash,
    SessionId,
    Generation,
    CreatedAt,
    ExpiresAt,
    RotatedAt,
}

#[derive(Iden)]
enum MfaChallenges {
    Table,
    TokenHash,
    UserId,
    ExpiresAt,
    UsedAt,
}

const COLUMNS: [Sessions; 11] = [
    Sessions::Id,
    Sessions::UserId,
    Sessions::CreatedAt,
    Sessions::LastUsedAt,
    Sessions::ExpiresAt,
    Sessions::AuthMethods,
    Sessions::AuthTime,
    Sessions::Ip,
    Sessions::UserAgent,
    Sessions::RevokedAt,
    Sessions::RevokedReason,
];

/// Why a session ended (`sessions.revoked_reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevokeReason {
    Logout,
    /// A rotated refresh token came back: someone holds a copy.
    RefreshReused,
    /// More sessions than `PALISADE_MAX_SESSIONS`: the oldest ends.
    SessionLimit,
    RolesChanged,
    Disabled,
    AccountDeleted,
    PasswordChanged,
    TwoFactorEnabled,
    TwoFactorDisabled,
    TwoFactorReset,
    EndedByUser,
    EndedByAdmin,
}

impl RevokeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RevokeReason::Logout => "logout",
            RevokeReason::RefreshReused => "refresh_reused",
            RevokeReason::SessionLimit => "session_limit",
            RevokeReason::RolesChanged => "roles_changed",
            RevokeReason::Disabled => "disabled",
            RevokeReason::AccountDeleted => "account_deleted",
            RevokeReason::PasswordChanged => "password_changed",
            RevokeReason::TwoFactorEnabled => "2fa_enabled",
            RevokeReason::TwoFactorDisabled => "2fa_disabled",
            RevokeReason::TwoFactorReset => "2fa_reset",
            RevokeReason::EndedByUser => "ended_by_user",
            RevokeReason::EndedByAdmin => "ended_by_admin",
        }
    }
}

/// A `sessions` row: one sign-in, the family of its refresh tokens.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Session {
    #[sqlx(try_from = "Uuid")]
    pub id: SessionId,
    #[sqlx(try_from = "Uuid")]
    pub user_id: UserId,
    pub created_at: OffsetDateTime,
    pub last_used_at: OffsetDateTime,
    /// Absolute expiry.
    pub expires_at: OffsetDateTime,
    #[sqlx(try_from = "String")]
    pub auth_methods: AuthMethods,
    pub auth_time: OffsetDateTime,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub revoked_at: Option<OffsetDateTime>,
    pub revoked_reason: Option<String>,
}

/// A refresh token's row with what the rotation decision needs of its session.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RefreshRow {
    #[sqlx(try_from = "Uuid")]
    pub session_id: SessionId,
    pub generation: i64,
    pub expires_at: OffsetDateTime,
    pub rotated_at: Option<OffsetDateTime>,
    #[sqlx(try_from = "Uuid")]
    pub user_id: UserId,
    pub session_expires_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
    #[sqlx(try_from = "String")]
    pub auth_methods: AuthMethods,
    pub auth_time: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct IdRow {
    #[sqlx(try_from = "Uuid")]
    id: SessionId,
}

#[derive(sqlx::FromRow)]
struct UserIdRow {
    #[sqlx(try_from = "Uuid")]
    user_id: UserId,
}

pub async fn insert(ex: impl Into<Exec<'_>>, s: &Session) -> Result<(), StoreError> {
    let mut ex = ex.into();
    let stmt = Query::insert()
        .into_table(Sessions::Table)
        .columns(COLUMNS)
        .values_panic([
            s.id.as_uuid().into(),
            s.user_id.as_uuid().into(),
            s.created_at.into(),
            s.last_used_at.into(),
            s.expires_at.into(),
            s.auth_methods.to_column().into(),
            s.auth_time.into(),
            s.ip.clone().into(),
            s.user_agent.clone().into(),
            s.revoked_at.into(),
            s.revoked_reason.clone().into(),
        ])
        .to_owned();
    ex.execute("sessions", &stmt).await.map(|_| ())
}

/// A user's sessions that are neither revoked nor expired, newest first (ids are
/// UUIDv7, so their order is the order of creation): at most `limit`, older than
/// session `before` when given.
pub async fn active_of(
    ex: impl Into<Exec<'_>>,
    user_id: UserId,
    now: OffsetDateTime,
    before: Option<SessionId>,
    limit: Option<u64>,
) -> Result<Vec<Session>, StoreError> {
    let mut ex = ex.into();
    let mut stmt = Query::select();
    stmt.columns(COLUMNS)
        .from(Sessions::Table)
        .and_where(Expr::col(Sessions::UserId).eq(user_id.as_uuid()))
        .and_where(Expr::col(Sessions::RevokedAt).is_null())
        .and_where(Expr::col(Sessions::ExpiresAt).gt(now))
        .order_by(Sessions::Id, Order::Desc);
    if let Some(id) = before {
        stmt.and_where(Expr::col(Sessions::Id).lt(id.as_uuid()));
    }
    if let Some(n) = limit {
        stmt.limit(n);
    }
    ex.fetch_all("sessions", &stmt).await
}

/// Revokes one session of `user_id`; returns whether it was active and theirs.
pub async fn revoke(
    ex: impl Into<Exec<'_>>,
    id: SessionId,
    user_id: UserId,
    reason: RevokeReason,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let mut ex = ex.into();
    let stmt = Query::update()
        .table(Sessions::Table)
        .value(Sessions::RevokedAt, now)
        .value(Sessions::RevokedReason, reason.as_str())
        .and_where(Expr::col(Sessions::Id).eq(id.as_uuid()))
        .and_where(Expr::col(Sessions::UserId).eq(user_id.as_uuid()))
        .and_where(Expr::col(Sessions::RevokedAt).is_null())
        .to_owned();
    Ok(ex.execute("sessions", &stmt).await? == 1)
}

/// Revokes every active session of `user_id`, except `keep`; returns their ids.
pub async fn revoke_all(
    ex: impl Into<Exec<'_>>,
    user_id: UserId,
    keep: Option<SessionId>,
    reason: RevokeReason,
    now: OffsetDateTime,
) -> Result<Vec<SessionId>, StoreError> {
    let mut ex = ex.into();
    let mut select = Query::select();
    select
        .column(Sessions::Id)
        .from(Sessions::Table)
        .and_where(Expr::col(Sessions::UserId).eq(user_id.as_uuid()))
        .and_where(Expr::col(Sessions::RevokedAt).is_null());
    let mut update = Query::update();
    update
        .table(Sessions::Table)
        .value(Sessions::RevokedAt, now)
        .value(Sessions::RevokedReason, reason.as_str())
        .and_where(Expr::col(Sessions::UserId).eq(user_id.as_uuid()))
        .and_where(Expr::col(Sessions::RevokedAt).is_null());
    if let Some(k) = keep {
        select.and_where(Expr::col(Sessions::Id).ne(k.as_uuid()));
        update.and_where(Expr::col(Sessions::Id).ne(k.as_uuid()));
    }
    let ids: Vec<IdRow> = ex.fetch_all("sessions", &select).await?;
    ex.execute("sessions", &update).await?;
    Ok(ids.into_iter().map(|r| r.id).collect())
}

/// Sessions revoked after `since`: the revocation set. Sessions revoked earlier carry
/// no access token that is still valid.
pub async fn revoked_since(
    ex: impl Into<Exec<'_>>,
    since: OffsetDateTime,
) -> Result<Vec<SessionId>, StoreError> {
    let mut ex = ex.into();
    let stmt = Query::select()
        .column(Sessions::Id)
        .from(Sessions::Table)
        .and_where(Expr::col(Sessions::RevokedAt).gt(since))
        .to_owned();
    let rows: Vec<IdRow> = ex.fetch_all("sessions", &stmt).await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// The owner of a session, whatever its state.
pub async fn owner(ex: impl Into<Exec<'_>>, id: SessionId) -> Result<Option<UserId>, StoreError> {
    let mut ex = ex.into();
    let stmt = Query::select()
        .column(Sessions::UserId)
        .from(Sessions::Table)
        .and_where(Expr::col(Sessions::Id).eq(id.as_uuid()))
        .to_owned();
    let row: Option<UserIdRow> = ex.fetch_optional("sessions", &stmt).await?;
    Ok(row.map(|r| r.user_id))
}

pub async fn touch(
    ex: impl Into<Exec<'_>>,
    id: SessionId,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let mut ex = ex.into();
    let stmt = Query::update()
        .table(Sessions::Table)
        .value(Sessions::LastUsedAt, now)
        .and_where(Expr::col(Sessions::Id).eq(id.as_uuid()))
        .to_owned();
    ex.execute("sessions", &stmt).await.map(|_| ())
}

/// Records a fresh authentication of session `id` of `user_id` (step-up): its methods and time,
/// which the next access tokens carry. Returns whether the session is still active.
pub async fn reauthenticated(
    ex: impl Into<Exec<'_>>,
    id: SessionId,
    user_id: UserId,
    auth_methods: AuthMethods,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let mut ex = ex.into();
    let stmt = Query::update()
        .table(Sessions::Table)
        .value(Sessions::AuthMethods, auth_methods.to_column())
        .value(Sessions::AuthTime, now)
        .value(Sessions::LastUsedAt, now)
        .and_where(Expr::col(Sessions::Id).eq(id.as_uuid()))
        .and_where(Expr::col(Sessions::UserId).eq(user_id.as_uuid()))
        .and_where(Expr::col(Sessions::RevokedAt).is_null())
        .and_where(Expr::col(Sessions::ExpiresAt).gt(now))
        .to_owned();
    Ok(ex.execute("sessions", &stmt).await? == 1)
}

pub async fn insert_refresh(
    ex: impl Into<Exec<'_>>,
    hash: &[u8; 32],
    session_id: SessionId,
    generation: i64,
    now: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> Result<(), StoreError> {
    let mut ex = ex.into();
    let stmt = Query::insert()
        .into_table(RefreshTokens::Table)
        .columns([
            RefreshTokens::TokenHash,
            RefreshTokens::SessionId,
            RefreshTokens::Generation,
            RefreshTokens::CreatedAt,
            RefreshTokens::ExpiresAt,
        ])
        .values_panic([
            hash.to_vec().into(),
            session_id.as_uuid().into(),
            generation.into(),
            now.into(),
            expires_at.into(),
        ])
        .to_owned();
    ex.execute("refresh_tokens", &stmt).await.map(|_| ())
}

/// The refresh token with SHA-256 `hash`, with its session.
pub async fn refresh_by_hash(
    ex: impl Into<Exec<'_>>,
    hash: &[u8; 32],
) -> Result<Option<RefreshRow>, StoreError> {
    let mut ex = ex.into();
    let stmt = Query::select()
        .columns([
            (RefreshTokens::Table, RefreshTokens::SessionId),
            (RefreshTokens::Table, RefreshTokens::Generation),
            (RefreshTokens::Table, RefreshTokens::ExpiresAt),
            (RefreshTokens::Table, RefreshTokens::RotatedAt),
        ])
        .column((Sessions::Table, Sessions::UserId))
        .expr_as(
            Expr::col((Sessions::Table, Sessions::ExpiresAt)),
            "session_expires_at",
        )
        .columns([
            (Sessions::Table, Sessions::RevokedAt),
            (Sessions::Table, Sessions::AuthMethods),
            (Sessions::Table, Sessions::AuthTime),
        ])
        .from(RefreshTokens::Table)
        .inner_join(
            Sessions::Table,
            Expr::col((Sessions::Table, Sessions::Id))
                .equals((RefreshTokens::Table, RefreshTokens::SessionId)),
        )
        .and_where(Expr::col((RefreshTokens::Table, RefreshTokens::TokenHash)).eq(hash.to_vec()))
        .to_owned();
    ex.fetch_optional("refresh_tokens", &stmt).await
}

/// Marks a token rotated unless it already was; returns whether this call did, so of
/// two racing refreshes exactly one inserts the successor.
pub async fn mark_rotated(
    ex: impl Into<Exec<'_>>,
    hash: &[u8; 32],
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let mut ex = ex.into();
    let stmt = Query::update()
        .table(RefreshTokens::Table)
        .value(RefreshTokens::RotatedAt, now)
        .and_where(Expr::col(RefreshTokens::TokenHash).eq(hash.to_vec()))
        .and_where(Expr::col(RefreshTokens::RotatedAt).is_null())
        .to_owned();
    Ok(ex.execute("refresh_tokens", &stmt).await? == 1)
}

/// Ends the oldest active sessions of `user_id` beyond the newest `keep`; returns them.
pub async fn end_oldest_beyond(
    ex: impl Into<Exec<'_>>,
    user_id: UserId,
    keep: usize,
    now: OffsetDateTime,
) -> Result<Vec<SessionId>, StoreError> {
    let mut ex = ex.into();
    let active = active_of(ex.reborrow(), user_id, now, None, None).await?;
    let mut ended = Vec::new();
    for s in active.iter().skip(keep) {
        if revoke(
            ex.reborrow(),
            s.id,
            user_id,
            RevokeReason::SessionLimit,
            now,
        )
        .await?
        {
            ended.push(s.id);
        }
    }
    Ok(ended)
}

/// Deletes refresh tokens past their idle expiry and sessions past their absolute
/// expiry (their tokens go with them); returns the rows deleted.
pub async fn delete_expired(
    ex: impl Into<Exec<'_>>,
    now: OffsetDateTime,
) -> Result<u64, StoreError> {
    let mut ex = ex.into();
    let tokens = Query::delete()
        .from_table(RefreshTokens::Table)
        .and_where(Expr::col(RefreshTokens::ExpiresAt).lt(now))
        .to_owned();
    let sessions = Query::delete()
        .from_table(Sessions::Table)
        .and_where(Expr::col(Sessions::ExpiresAt).lt(now))
        .to_owned();
    let challenges = Query::delete()
        .from_table(MfaChallenges::Table)
        .and_where(Expr::col(MfaChallenges::ExpiresAt).lt(now))
        .to_owned();
    Ok(ex.execute("refresh_tokens", &tokens).await?
        + ex.execute("sessions", &sessions).await?
        + ex.execute("mfa_challenges", &challenges).await?)
}

pub async fn insert_challenge(
    ex: impl Into<Exec<'_>>,
    hash: &[u8; 32],
    user_id: UserId,
    expires_at: OffsetDateTime,
) -> Result<(), StoreError> {
    let mut ex = ex.into();
    let stmt = Query::insert()
        .into_table(MfaChallenges::Table)
        .columns([
            MfaChallenges::TokenHash,
            MfaChallenges::UserId,
            MfaChallenges::ExpiresAt,
        ])
        .values_panic([
            hash.to_vec().into(),
            user_id.as_uuid().into(),
            expires_at.into(),
        ])
        .to_owned();
    ex.execute("mfa_challenges", &stmt).await.map(|_| ())
}

/// The user of an unexpired, unused challenge.
pub async fn challenge_user(
    ex: impl Into<Exec<'_>>,
    hash: &[u8; 32],
    now: OffsetDateTime,
) -> Result<Option<UserId>, StoreError> {
    let mut ex = ex.into();
    let stmt = Query::select()
        .column(MfaChallenges::UserId)
        .from(MfaChallenges::Table)
        .and_where(Expr::col(MfaChallenges::TokenHash).eq(hash.to_vec()))
        .and_where(Expr::col(MfaChallenges::UsedAt).is_null())
        .and_where(Expr::col(MfaChallenges::ExpiresAt).gt(now))
        .to_owned();
    let row: Option<UserIdRow> = ex.fetch_optional("mfa_challenges", &stmt).await?;
    Ok(row.map(|r| r.user_id))
}

/// Uses up a challenge; returns whether this call did (a challenge is single use).
pub async fn consume_challenge(
    ex: impl Into<Exec<'_>>,
    hash: &[u8; 32],
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let mut ex = ex.into();
    let stmt = Query::update()
        .table(MfaChallenges::Table)
        .value(MfaChallenges::UsedAt, now)
        .and_where(Expr::col(MfaChallenges::TokenHash).eq(hash.to_vec()))
        .and_where(Expr::col(MfaChallenges::UsedAt).is_null())
        .and_where(Expr::col(MfaChallenges::ExpiresAt).gt(now))
        .to_owned();
    Ok(ex.execute("mfa_challenges", &stmt).await? == 1)
}

/// What `user`'s sessions (ended ones too, until they are purged) show of where they
/// signed in from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    /// Any session at all.
    pub any: bool,
    pub ip: bool,
    pub user_agent: bool,
}

/// Whether `user` signed in before at all, from `ip`, and with `user_agent`.
pub async fn seen(
    ex: impl Into<Exec<'_>>,
    user: UserId,
    ip: Option<&str>,
    user_agent: Option<&str>,
) -> Result<Seen, StoreError> {
    let mut ex = ex.into();
    let one = |extra: Option<(Sessions, &str)>| {
        let mut q = Query::select();
        q.expr_as(Expr::val(1i64), "n")
            .from(Sessions::Table)
            .and_where(Expr::col(Sessions::UserId).eq(user.as_uuid()))
            .limit(1);
        if let Some((col, value)) = extra {
            q.and_where(Expr::col(col).eq(value));
        }
        q
    };
    let any = super::number(ex.reborrow(), "sessions", &one(None)).await? > 0;
    let ip = match ip {
        Some(ip) => {
            super::number(ex.reborrow(), "sessions", &one(Some((Sessions::Ip, ip)))).await? > 0
        }
        None => true,
    };
    let user_agent = match user_agent {
        Some(ua) => {
            super::number(
                ex.reborrow(),
                "sessions",
                &one(Some((Sessions::UserAgent, ua))),
            )
            .await?
                > 0
        }
        None => true,
    };
    Ok(Seen {
        any,
        ip,
        user_agent,
    })
}
