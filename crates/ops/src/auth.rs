//! Who is acting: API callers identified by key, and local operators on the
//! command line.
//!
//! Keys are high-entropy random strings, so storing and comparing their
//! SHA-256 is enough (no slow password hash is needed, and lookups stay
//! cheap on every request). Keys from the config file and `ROLES_JSON` are
//! compared in constant time against every entry; keys made with
//! `bulwark keys create` are found by the digest's index, which reveals
//! nothing about the key itself.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::StaticKey;
use crate::role::Role;
use crate::store::{Store, StoreError};

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

/// Resolves presented keys to principals.
#[derive(Clone)]
pub struct Authenticator {
    static_keys: Vec<StaticKey>,
    store: Store,
    /// Where managed secrets that double as admin keys (`DASHBOARD_KEY`)
    /// live; None when none is configured.
    managed: Option<std::path::PathBuf>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("static_keys", &self.static_keys.len())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    pub fn new(static_keys: Vec<StaticKey>, store: Store) -> Authenticator {
        Authenticator {
            static_keys,
            store,
            managed: None,
        }
    }

    /// Also accepts the managed secret `DASHBOARD_KEY` (kept under
    /// `data_dir`) as an admin key: its current value, and its previous
    /// value during the grace period after a rotation.
    pub fn with_managed_keys(mut self, data_dir: &std::path::Path) -> Authenticator {
        self.managed = Some(data_dir.to_path_buf());
        self
    }

    /// Whether any admin key exists outside the store (config, env or a
    /// managed `DASHBOARD_KEY`).
    pub fn has_static_admin(&self) -> bool {
        self.static_keys.iter().any(|k| k.role == Role::Admin)
            || self.managed.as_ref().is_some_and(|dir| {
                crate::secrets::current_path(dir, crate::secrets::DASHBOARD_KEY).is_file()
            })
    }

    /// The principal holding `presented`, or `None` for an unknown or
    /// revoked key.
    ///
    /// # Errors
    /// On a database error.
    pub async fn authenticate(&self, presented: &str) -> Result<Option<Principal>, StoreError> {
        let digest = key_digest(presented);
        // Visit every static key, without stopping at a match, so the time
        // taken does not tell how many leading entries were compared.
        let mut found: Option<&StaticKey> = None;
        for key in &self.static_keys {
            if bool::from(key.sha256.ct_eq(&digest)) {
                found = Some(key);
            }
        }
        if let Some(key) = found {
            return Ok(Some(Principal {
                key_id: None,
                name: key.name.clone(),
                role: key.role,
            }));
        }
        if let Some(dir) = &self.managed {
            if crate::secrets::matches(
                &self.store,
                dir,
                crate::secrets::DASHBOARD_KEY,
                presented,
                chrono::Utc::now(),
            )
            .await?
            {
                return Ok(Some(Principal {
                    key_id: None,
                    name: format!("secret:{}", crate::secrets::DASHBOARD_KEY),
                    role: Role::Admin,
                }));
            }
        }
        crate::keys::find_active(&self.store, &digest).await
    }
}
