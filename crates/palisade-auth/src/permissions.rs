//! Roles and the permissions they grant (docs/SECURITY.md § Authorization). The
//! permissions travel in the access token, so an ordinary check needs no query.

use std::fmt;
use std::str::FromStr;

/// A role a user holds.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Manager,
    Member,
}

/// What a handler may require.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    AuditRead,
    UsersRead,
    UsersWrite,
    AdminInfra,
    ContractsRead,
    ContractsWrite,
    ExportsRun,
    /// Taking payments and refunding them (reading them is `contracts:read`).
    PaymentsCreate,
    /// Everyone's business records, not only one's own (lists take `?owner=`).
    RecordsAll,
    /// Outbound webhook endpoints, their secrets and their delivery log.
    WebhooksManage,
}

const ALL: [Permission; 10] = [
    Permission::AuditRead,
    Permission::UsersRead,
    Permission::UsersWrite,
    Permission::AdminInfra,
    Permission::ContractsRead,
    Permission::ContractsWrite,
    Permission::ExportsRun,
    Permission::PaymentsCreate,
    Permission::RecordsAll,
    Permission::WebhooksManage,
];

impl Permission {
    /// The string in tokens and in the OpenAPI document: `users:read`, …
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::AuditRead => "audit:read",
            Permission::UsersRead => "users:read",
            Permission::UsersWrite => "users:write",
            Permission::AdminInfra => "admin:infra",
            Permission::ContractsRead => "contracts:read",
            Permission::ContractsWrite => "contracts:write",
            Permission::ExportsRun => "exports:run",
            Permission::PaymentsCreate => "payments:create",
            Permission::RecordsAll => "records:all",
            Permission::WebhooksManage => "webhooks:manage",
        }
    }
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Member => "member",
        }
    }

    /// What the role grants. A member works on their own account and their own
    /// business records; a manager also on everyone's records, and reads the audit
    /// trail and the user list; an admin holds everything.
    pub fn grants(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            Role::Admin => &ALL,
            Role::Manager => &[
                AuditRead,
                UsersRead,
                ContractsRead,
                ContractsWrite,
                ExportsRun,
                PaymentsCreate,
                RecordsAll,
            ],
            Role::Member => &[ContractsRead, ContractsWrite, ExportsRun, PaymentsCreate],
        }
    }
}

/// The permissions of a set of roles, sorted, without duplicates.
pub fn permissions_of(roles: &[Role]) -> Vec<Permission> {
    let mut out: Vec<Permission> = roles.iter().flat_map(|r| r.grants()).copied().collect();
    out.sort();
    out.dedup();
    out
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a known role or permission")]
pub struct Unknown(pub String);

impl FromStr for Role {
    type Err = Unknown;
    fn from_str(s: &str) -> Result<Role, Unknown> {
        [Role::Admin, Role::Manager, Role::Member]
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| Unknown(s.to_owned()))
    }
}

impl FromStr for Permission {
    type Err = Unknown;
    fn from_str(s: &str) -> Result<Permission, Unknown> {
        ALL.into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| Unknown(s.to_owned()))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_strangers_are_refused() {
        for p in ALL {
            assert_eq!(p.as_str().parse::<Permission>(), Ok(p));
        }
        for r in [Role::Admin, Role::Manager, Role::Member] {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!("root".parse::<Role>().is_err());
        assert!("admin:*".parse::<Permission>().is_err());
        assert!("Admin".parse::<Role>().is_err(), "exact names only");
    }

    #[test]
    fn only_admins_reach_infrastructure_and_user_changes() {
        for role in [Role::Manager, Role::Member] {
            let p = permissions_of(&[role]);
            assert!(!p.contains(&Permission::AdminInfra), "{role}");
            assert!(!p.contains(&Permission::UsersWrite), "{role}");
        }
        assert!(!permissions_of(&[Role::Member]).contains(&Permission::AuditRead));
        assert_eq!(permissions_of(&[Role::Admin]).len(), ALL.len());
        assert_eq!(
            permissions_of(&[Role::Member, Role::Manager]),
            permissions_of(&[Role::Manager]),
            "union, without duplicates"
        );
    }
}
