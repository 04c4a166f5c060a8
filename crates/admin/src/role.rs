//! Admin roles and what each may do.
//!
//! PacketFence ships many fine-grained admin roles; what its users actually configure are three
//! levels, which is what ironfence has:
//!
//! | role            | read everything | devices and users | configuration, admin accounts |
//! |-----------------|-----------------|-------------------|-------------------------------|
//! | `administrator` | yes             | yes               | yes                           |
//! | `operator`      | yes             | yes               | no                            |
//! | `read-only`     | yes             | no                | no                            |

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// An admin account's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Administrator,
    Operator,
    ReadOnly,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Administrator, Role::Operator, Role::ReadOnly];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Administrator => "administrator",
            Role::Operator => "operator",
            Role::ReadOnly => "read-only",
        }
    }

    /// Whether this role may use an endpoint requiring `access`.
    pub fn permits(self, access: Access) -> bool {
        match access {
            Access::Public | Access::Read => true,
            Access::Devices => matches!(self, Role::Administrator | Role::Operator),
            Access::Config => self == Role::Administrator,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRole(pub String);

impl fmt::Display for UnknownRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown admin role {:?} (administrator, operator or read-only)",
            self.0
        )
    }
}

impl std::error::Error for UnknownRole {}

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Role, UnknownRole> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_string()))
    }
}

/// What an endpoint needs from the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// No authentication (login, the OpenAPI document).
    Public,
    /// Any authenticated admin.
    Read,
    /// Changes devices, users and their registrations: administrator or operator.
    Devices,
    /// Changes the configuration or admin accounts: administrator.
    Config,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_table() {
        use Access::*;
        let rows = [
            (Role::Administrator, [true, true, true, true]),
            (Role::Operator, [true, true, true, false]),
            (Role::ReadOnly, [true, true, false, false]),
        ];
        for (role, allowed) in rows {
            for (access, want) in [Public, Read, Devices, Config].into_iter().zip(allowed) {
                assert_eq!(role.permits(access), want, "{role} {access:?}");
            }
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("root".parse::<Role>().is_err());
    }
}
