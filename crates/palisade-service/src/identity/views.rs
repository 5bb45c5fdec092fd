//! What the identity flows return, with the field names of the OpenAPI document.

use palisade_auth::ids::{SessionId, UserId};
use palisade_auth::permissions::Role;
use palisade_store::repo::sessions::Session;
use palisade_store::repo::users::User;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub roles: Vec<Role>,
    pub two_factor: bool,
    /// Whether the owner proved they receive mail at `email`.
    pub email_verified: bool,
    pub disabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl UserView {
    pub fn of(user: &User, roles: Vec<Role>) -> UserView {
        UserView {
            id: user.id,
            email: user.email.clone(),
            name: user.name.clone(),
            roles,
            two_factor: user.totp_enabled_at.is_some(),
            email_verified: user.email_verified_at.is_some(),
            disabled: user.disabled_at.is_some(),
            created_at: user.created_at,
        }
    }
}

/// A signed-in session's tokens.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Empty, and left out, in cookie mode: the session cookie carries it.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub refresh_token: String,
    pub user: UserView,
    /// The session the tokens belong to (the CSRF token is bound to it).
    #[serde(skip)]
    pub session_id: SessionId,
}

/// The first step of a login.
#[derive(Clone, Debug)]
pub enum LoginOutcome {
    Tokens(Box<TokenPair>),
    /// 2FA is on: the code must follow with this token.
    MfaRequired {
        mfa_token: String,
    },
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: SessionId,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_used_at: OffsetDateTime,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The session of the request that lists them.
    pub current: bool,
}

impl SessionView {
    pub fn of(s: &Session, current: SessionId) -> SessionView {
        SessionView {
            id: s.id,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            ip: s.ip.clone(),
            user_agent: s.user_agent.clone(),
            current: s.id == current,
        }
    }
}
