//! Who is acting, in what role: API callers identified by key, local
//! operators on the command line, Bulwark itself. A leaf: the audit trail,
//! the authenticator, keys and secrets all speak these types.
//!
//! Keys are high-entropy random strings, so storing and comparing their
//! SHA-256 ([`key_digest`]) is enough: no slow password hash is needed, and
//! lookups stay cheap on every request.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

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

/// The authenticated caller of an API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The store id of the key, for keys made with `bulwark keys create`.
    pub key_id: Option<String>,
    /// The key's name, as shown by `whoami` and recorded in the audit trail.
    pub name: String,
    pub role: Role,
}

/// The one who performs an action, as recorded in the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(String);

impl Actor {
    /// An API caller: `key:<name>`.
    pub fn key(principal: &Principal) -> Actor {
        Actor(format!("key:{}", principal.name))
    }

    /// A local operator using the command line: `cli:<user>`, the account
    /// name of the process's real uid. Not `$USER`: anyone can set that, and
    /// the audit trail would then name whoever they like.
    pub fn cli() -> Actor {
        let user = real_uid().map_or_else(|| "unknown".to_string(), account_name);
        Actor(format!("cli:{user}"))
    }

    /// Bulwark itself (scheduler, bootstrap): `system:<what>`.
    pub fn system(what: &str) -> Actor {
        Actor(format!("system:{what}"))
    }

    /// An unauthenticated client, named by its address.
    pub fn anonymous(client: &str) -> Actor {
        Actor(format!("anonymous:{client}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The real uid, from the first field of `Uid:` in `/proc/self/status`
/// (real, effective, saved, filesystem).
fn real_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The account name of `uid` from `/etc/passwd`, or `uid:N` when it has none.
fn account_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let mut f = line.split(':');
                let name = f.next()?;
                let id: u32 = f.nth(1)?.parse().ok()?;
                (id == uid && !name.is_empty()).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| format!("uid:{uid}"))
}

/// The SHA-256 of a presented key, the form in which keys are stored.
pub fn key_digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
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
