//! The two roles of the seed's RBAC, ordered so that `Admin > Analyst`.

use std::fmt;
use std::str::FromStr;

/// What a key may do. `Admin` can do everything `Analyst` can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Read-only access to status, reports and the audit trail.
    Analyst,
    /// Everything, including state-changing actions and key management.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }

    /// Whether a caller holding `self` may act where `required` is needed.
    pub fn allows(self, required: Role) -> bool {
        self >= required
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a role name that is neither `admin` nor `analyst`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown role {0:?} (expected \"admin\" or \"analyst\")")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "analyst" => Ok(Role::Analyst),
            other => Err(UnknownRole(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_allows_everything_analyst_only_analyst() {
        assert!(Role::Admin.allows(Role::Admin));
        assert!(Role::Admin.allows(Role::Analyst));
        assert!(Role::Analyst.allows(Role::Analyst));
        assert!(!Role::Analyst.allows(Role::Admin));
    }

    #[test]
    fn parses_and_rejects() {
        assert_eq!("admin".parse::<Role>().unwrap(), Role::Admin);
        assert_eq!("analyst".parse::<Role>().unwrap(), Role::Analyst);
        let err = "root".parse::<Role>().unwrap_err();
        assert!(err.to_string().contains("\"root\""));
    }
}
