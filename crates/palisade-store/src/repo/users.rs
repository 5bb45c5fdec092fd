//! `users`, `user_roles` and `backup_codes`.

use palisade_auth::email::Email;
use palisade_auth::ids::UserId;
use palisade_auth::permissions::Role;
use sea_query::{Alias, Expr, ExprTrait, Iden, Order, Query};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Exec, StoreError};

#[derive(Iden)]
enum Users {
    Table,
    Id,
    Email,
    Name,
    PasswordHash,
    PasswordChangedAt,
    DisabledAt,
    TotpSecret,
    TotpEnabledAt,
    TotpLastStep,
    EmailVerifiedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(Iden)]
enum UserRoles {
    Table,
    UserId,
    Role,
}

#[derive(Iden)]
enum BackupCodes {
    Table,
    Id,
    UserId,
    CodeHash,
    UsedAt,
}

const COLUMNS: [Users; 12] = [
    Users::Id,
    Users::Email,
    Users::Name,
    Users::PasswordHash,
    Users::PasswordChangedAt,
    Users::DisabledAt,
    Users::TotpSecret,
    Users::TotpEnabledAt,
    Users::TotpLastStep,
    Users::EmailVerifiedAt,
    Users::CreatedAt,
    Users::UpdatedAt,
];

/// A `users` row.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct User {
    #[sqlx(try_from = "Uuid")]
    pub id: UserId,
    /// In canonical form (`palisade_auth::email`), but for rows a data fix left as
    /// they were.
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub password_changed_at: OffsetDateTime,
    pub disabled_at: Option<OffsetDateTime>,
    /// Sealed with the encryption key; set from enrolment on.
    pub totp_secret: Option<Vec<u8>>,
    /// Set once enrolment is confirmed: 2FA is on.
    pub totp_enabled_at: Option<OffsetDateTime>,
    pub totp_last_step: Option<i64>,
    /// When the owner proved they receive mail at `email`.
    pub email_verified_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl User {
    /// A new account created at `at`: enabled, without 2FA.
    pub fn new(email: &Email, name: &str, password_hash: String, at: OffsetDateTime) -> User {
        User {
            id: UserId::generate(),
            email: email.as_str().to_owned(),
            name: name.to_owned(),
            password_hash,
            password_changed_at: at,
            disabled_at: None,
            totp_secret: None,
            totp_enabled_at: None,
            totp_last_step: None,
            email_verified_at: None,
            created_at: at,
            updated_at: at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct RoleRow {
    role: String,
}

#[derive(sqlx::FromRow)]
struct UserRoleRow {
    #[sqlx(try_from = "Uuid")]
    user_id: UserId,
    role: String,
}

fn role(name: &str) -> Result<Role, StoreError> {
    name.parse().map_err(|_| StoreError::Corrupt {
        table: "user_roles",
        what: format!("unknown role `{name}`"),
    })
}

/// An unused backup code.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct BackupCode {
    pub id: Uuid,
    pub code_hash: String,
}

/// Inserts `user` with `roles`. A taken email is a unique violation
/// ([`StoreError::is_unique_violation`]).
pub async fn insert(
    ex: impl Into<Exec<'_>>,
    user: &User,
    roles: &[Role],
) -> Result<(), StoreError> {
    let mut ex = ex.into();
    let stmt = Query::insert()
        .into_table(Users::Table)
        .columns(COLUMNS)
        .values_panic([
            user.id.as_uuid().into(),
            user.email.clone().into(),
            user.name.clone().into(),
            user.password_hash.clone().into(),
            user.password_changed_at.into(),
            user.disabled_at.into(),
            user.totp_secret.clone().into(),
            user.totp_enabled_at.into(),
            user.totp_last_step.into(),
            user.email_verified_at.into(),
            user.created_at.into(),
            user.updated_at.into(),
        ])
        .to_owned();
    ex.execute("users", &stmt).await?;
    set_roles(ex, user.id, roles).await
}

pub async fn by_email(ex: impl Into<Exec<'_>>, email: &Email) -> Result<Option<User>, StoreError> {
    let mut ex = ex.into();
    let stmt = Query::select()
        .columns(COLUMNS)
        .from(Users::Table)
        .and_where(Expr::col(Users::Email).eq(email.as_str()))
        .to_owned();
    ex.fetch_optional("users", &stmt).await
}

pub async fn by_id(ex: impl Into<Exec<'_>>, id: UserId) -> Result<Option<User>, StoreError> {
    let mut ex = ex.into();
    let stmt = Query::select()
        .columns(COLUMNS)
        .from(Users::Table)
        .and_where(Expr::col(Users::Id).eq(id.as_uuid()))
        .to_owned();
    ex.fetch_optional("users", &stmt).await
}

/// A page of users in creation order, after the `(created_at, id)` cursor.
pub async fn page(
    ex: impl Into<Exec<'_>>,
    after: Option<(OffsetDateTime, UserId)>,
    limit: u64,
) -> Result<Vec<User>, StoreError> {
    let mut ex = ex.into();
    let mut stmt = Query::select();
    stmt.columns(COLUMNS)
        .from(Users::Table)
        .order_by(Users::CreatedAt, Order::Asc)
        .order_by(Users::Id, Order::Asc)
        .limit(limit);
    if let Some((at, id)) = after {
        stmt.and_where(
            Expr::col(Users::CreatedAt)
                .gt(at)
                .or(Expr::col(Users::CreatedAt)
                    .eq(at)
                    .and(Expr::col(Users::Id).gt(id.as_uuid()))),
        );
    }
    ex.fetch_all("users", &stmt).await
}

pub async fn roles_of(ex: impl Into<Exec<'_>>, id: UserId) -> Result<Vec<Role>, StoreError> {
    let mut ex = ex.into();
    let stmt = Query::select()
        .column(UserRoles::Role)
        .from(UserRoles::Table)
        .and_where(Expr::col(UserRoles::UserId).eq(id.as_uuid()))
        .order_by(UserRoles::Role, Order::Asc)
        .to_owned();
    let rows: Vec<RoleRow> = ex.fetch_all("user_roles", &stmt).await?;
    rows.iter().map(|r| role(&r.role)).collect()
}

/// The roles of several users at once, as `(user_id, role)` pairs.
pub async fn roles_of_many(
    ex: impl Into<Exec<'_>>,
    ids: &[UserId],
) -> Result<Vec<(UserId, Role)>, StoreError> {
    let mut ex = ex.into();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let stmt = Query::select()
        .columns([UserRoles::UserId, UserRoles::Role])
        .from(UserRoles::Table)
        .and_where(Expr::col(UserRoles::UserId).is_in(ids.iter().map(UserId::as_uuid)))
        .to_owned();
    let rows: Vec<UserRoleRow> = ex.fetch_all("user_roles", &stmt).await?;
    rows.iter()
        .map(|r| Ok((r.user_id, role(&r.role)?)))
        .collect()
}

/// Serialises changes that could leave no active admin, until `tx` ends: two admins
/// demoting each other at once must not both succeed. (PostgreSQL: a transaction-scoped
/// advisory lock; SQLite's transactions take its one writer lock already.)
pub async fn lock_role_changes(tx: &mut crate::Tx) -> Result<(), StoreError> {
    if tx.backend() == crate::Backend::Postgres {
        // "palroles" in ASCII.
        tx.execute_script("SELECT pg_advisory_xact_lock(8097872843740308851)")
            .await?;
    }
    Ok(())
}

/// The `user_roles` rows of the accounts that are not disabled and hold `role`.
fn active_holders(role: Role) -> sea_query::SelectStatement {
    Query::select()
        .from(UserRoles::Table)
        .inner_join(
            Users::Table,
            Expr::col((Users::Table, Users::Id)).equals((UserRoles::Table, UserRoles::UserId)),
        )
        .and_where(Expr::col((UserRoles::Table, UserRoles::Role)).eq(role.as_str()))
        .and_where(Expr::col((Users::Table, Users::DisabledAt)).is_null())
        .to_owned()
}

/// How many accounts that are not disabled hold `role`.
pub async fn count_active_with_role(
    ex: impl Into<Exec<'_>>,
    role: Role,
) -> Result<i64, StoreError> {
    let stmt = active_holders(role)
        .expr_as(
            Expr::col((UserRoles::Table, UserRoles::UserId)).count(),
            Alias::new("n"),
        )
        .to_owned();
    super::number(ex, "user_roles", &stmt).await
}

/// The accounts that are not disabled and hold `role`.
pub async fn active_with_role(
    ex: impl Into<Exec<'_>>,
    role: Role,
) -> Result<Vec<UserId>, StoreError> {
    let stmt = active_holders(role)
        .column((UserRoles::Table, UserRoles::UserId))
        .to_owned();
    let rows: Vec<(Uuid,)> = ex.into().fetch_all("user_roles", &stmt).await?;
    Ok(rows.into_iter().map(|(id,)| UserId::from(id)).collect())
}

/// Replaces the user's roles with `roles`.
pub async fn set_roles(
    ex: impl Into<Exec<'_>>,
    id: UserId,
    roles: &[Role],
) -> Result<(), StoreError> {
    let mut ex = ex.into();
    let delete = Query::delete()
        .from_table(UserRoles::Table)
        .and_where(Expr::col(UserRoles::UserId).eq(id.as_uuid()))
        .to_owned();
    ex.execute("user_roles", &delete).await?;
    if roles.is_empty() {
        return Ok(());
    }
    let mut insert = Query::insert();
    insert
        .into_table(UserRoles::Table)
        .columns([UserRoles::UserId, UserRoles::Role]);
    for role in roles {
        insert.values_panic([id.as_uuid().into(), role.as_str().into()]);
    }
    ex.execute("user_roles", &insert).await?;
    Ok(())
}

/// A change to some columns of one user; `updated_at` is always set.
#[derive(Default)]
pub struct Change {
    pub name: Option<String>,
    pub password_hash: Option<String>,
    /// Also sets `password_changed_at`.
    pub password_changed: bool,
    pub disabled_at: Option<Option<OffsetDateTime>>,
    pub totp_secret: Option<Option<Vec<u8>>>,
    pub totp_enabled_at: Option<Option<OffsetDateTime>>,
    pub totp_last_step: Option<Option<i64>>,
    /// A new address (canonical form), confirmed by its owner.
    pub email: Option<String>,
    pub email_verified_at: Option<Option<OffsetDateTime>>,
}

#[derive(sqlx::FromRow)]
struct EmailRow {
    #[sqlx(try_from = "Uuid")]
    id: UserId,
    email: String,
}

/// Every account's id and email as stored, erased accounts left out.
pub async fn emails(ex: impl Into<Exec<'_>>) -> Result<Vec<(UserId, String)>, StoreError> {
    let mut ex = ex.into();
    let stmt = Query::select()
        .columns([Users::Id, Users::Email])
        .from(Users::Table)
        .and_where(
            Expr::col(Users::Email)
                .like(format!("%@{ERASED_DOMAIN}"))
                .not(),
        )
        .order_by(Users::Id, Order::Asc)
        .to_owned();
    let rows: Vec<EmailRow> = ex.fetch_all("users", &stmt).await?;
    Ok(rows.into_iter().map(|r| (r.id, r.email)).collect())
}

pub async fn set_email(
    ex: impl Into<Exec<'_>>,
    id: UserId,
    email: &Email,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let mut ex = ex.into();
    let stmt = Query::update()
        .table(Users::Table)
        .value(Users::Email, email.as_str())
        .value(Users::UpdatedAt, now)
        .and_where(Expr::col(Users::Id).eq(id.as_uuid()))
        .to_owned();
    Ok(ex.execute("users", &stmt).await? == 1)
}

/// Applies `change`; returns whether the user exists.
pub async fn update(
    ex: impl Into<Exec<'_>>,
    id: UserId,
    change: Change,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let mut ex = ex.into();
    let mut stmt = Query::update();
    stmt.table(Users::Table)
        .value(Users::UpdatedAt, now)
        .and_where(Expr::col(Users::Id).eq(id.as_uuid()));
    if let Some(name) = change.name {
        stmt.value(Users::Name, name);
    }
    if let Some(hash) = change.password_hash {
        stmt.value(Users::PasswordHash, hash);
    }
    if change.password_changed {
        stmt.value(Users::PasswordChangedAt, now);
    }
    if let Some(v) = change.disabled_at {
        stmt.value(Users::DisabledAt, v);
    }
    if let Some(v) = change.totp_secret {
        stmt.value(Users::TotpSecret, v);
    }
    if let Some(v) = change.totp_enabled_at {
        stmt.value(Users::TotpEnabledAt, v);
    }
    if let Some(v) = change.totp_last_step {
        stmt.value(Users::TotpLastStep, v);
    }
    if let Some(v) = change.email {
        stmt.value(Users::Email, v);
    }
    if let Some(v) = change.email_verified_at {
        stmt.value(Users::EmailVerifiedAt, v);
    }
    Ok(ex.execute("users", &stmt).await? == 1)
}

/// Records `step` as the last TOTP step used, only if it is after the one stored: of two
/// requests racing with the same code, one wins. Returns whether this one did.
pub async fn claim_totp_step(
    ex: impl Into<Exec<'_>>,
    id: UserId,
    step: i64,
) -> Result<bool, StoreError> {
    let mut ex = ex.into();
    let stmt = Query::update()
        .table(Users::Table)
        .value(Users::TotpLastStep, step)
        .and_where(Expr::col(Users::Id).eq(id.as_uuid()))
        .and_where(
            Expr::col(Users::TotpLastStep)
                .is_null()
                .or(Expr::col(Users::TotpLastStep).lt(step)),
        )
        .to_owned();
    Ok(ex.execute("users", &stmt).await? == 1)
}

/// The domain of the email an erased account keeps (RFC 6761 reserves `.invalid`;
/// registration refuses it).
pub const ERASED_DOMAIN: &str = "erased.invalid";
/// An erased account's password hash: no PHC string, so nothing verifies against it.
const ERASED_PASSWORD: &str = "!";

/// Erases an account's personal data and credentials but keeps its row (and so its
/// revoked sessions) until [`purge_erased`] removes it: the revocation set is read from
/// those sessions while their access tokens could still be valid.
pub async fn erase(
    ex: impl Into<Exec<'_>>,
    id: UserId,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let mut ex = ex.into();
    let stmt = Query::update()
        .table(Users::Table)
        .value(Users::Email, format!("{id}@{ERASED_DOMAIN}"))
        .value(Users::Name, "")
        .value(Users::PasswordHash, ERASED_PASSWORD)
        .value(Users::DisabledAt, now)
        .value(Users::TotpSecret, Option::<Vec<u8>>::None)
        .value(Users::TotpEnabledAt, Option::<OffsetDateTime>::None)
        .value(Users::EmailVerifiedAt, Option::<OffsetDateTime>::None)
        .value(Users::UpdatedAt, now)
        .and_where(Expr::col(Users::Id).eq(id.as_uuid()))
        .to_owned();
    Ok(ex.execute("users", &stmt).await? == 1)
}

/// Deletes the rows of accounts erased before `before` (with their sessions).
pub async fn purge_erased(
    ex: impl Into<Exec<'_>>,
    before: OffsetDateTime,
) -> Result<u64, StoreError> {
    let mut ex = ex.into();
    let stmt = Query::delete()
        .from_table(Users::Table)
        .and_where(Expr::col(Users::Email).like(format!("%@{ERASED_DOMAIN}")))
        .and_where(Expr::col(Users::PasswordHash).eq(ERASED_PASSWORD))
        .and_where(Expr::col(Users::DisabledAt).is_not_null())
        .and_where(Expr::col(Users::UpdatedAt).lt(before))
        .to_owned();
    ex.execute("users", &stmt).await
}

pub async fn delete(ex: impl Into<Exec<'_>>, id: UserId) -> Result<bool, StoreError> {
    let mut ex = ex.into();
    let stmt = Query::delete()
        .from_table(Users::Table)
        .and_where(Expr::col(Users::Id).eq(id.as_uuid()))
        .to_owned();
    Ok(ex.execute("users", &stmt).await? == 1)
}

/// Replaces the user's backup codes with `hashes`.
pub async fn replace_backup_codes(
    ex: impl Into<Exec<'_>>,
    user_id: UserId,
    hashes: &[String],
) -> Result<(), StoreError> {
    let mut ex = ex.into();
    let delete = Query::delete()
        .from_table(BackupCodes::Table)
        .and_where(Expr::col(BackupCodes::UserId).eq(user_id.as_uuid()))
        .to_owned();
    ex.execute("backup_codes", &delete).await?;
    if hashes.is_empty() {
        return Ok(());
    }
    let mut insert = Query::insert();
    insert.into_table(BackupCodes::Table).columns([
        BackupCodes::Id,
        BackupCodes::UserId,
        BackupCodes::CodeHash,
    ]);
    for h in hashes {
        insert.values_panic([
            Uuid::now_v7().into(),
            user_id.as_uuid().into(),
            h.clone().into(),
        ]);
    }
    ex.execute("backup_codes", &insert).await?;
    Ok(())
}

pub async fn unused_backup_codes(
    ex: impl Into<Exec<'_>>,
    user_id: UserId,
) -> Result<Vec<BackupCode>, StoreError> {
    let mut ex = ex.into();
    let stmt = Query::select()
        .columns([BackupCodes::Id, BackupCodes::CodeHash])
        .from(BackupCodes::Table)
        .and_where(Expr::col(BackupCodes::UserId).eq(user_id.as_uuid()))
        .and_where(Expr::col(BackupCodes::UsedAt).is_null())
        .to_owned();
    ex.fetch_all("backup_codes", &stmt).await
}

/// Marks a backup code used, unless it already was; returns whether this call did.
pub async fn use_backup_code(
    ex: impl Into<Exec<'_>>,
    id: Uuid,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let mut ex = ex.into();
    let stmt = Query::update()
        .table(BackupCodes::Table)
        .value(BackupCodes::UsedAt, now)
        .and_where(Expr::col(BackupCodes::Id).eq(id))
        .and_where(Expr::col(BackupCodes::UsedAt).is_null())
        .to_owned();
    Ok(ex.execute("backup_codes", &stmt).await? == 1)
}
