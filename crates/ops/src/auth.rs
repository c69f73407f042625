//! Resolving a presented API key to a principal. The [`Authenticator`]
//! asks its [`KeySource`]s in turn: keys from the config and `ROLES_JSON`
//! ([`StaticKeys`], compared in constant time against every entry), managed
//! secrets that are admin keys (`crate::secrets`), and keys made with
//! `bulwark keys create` (`crate::keys`, found by the digest's index, which
//! reveals nothing about the key itself). It knows none of them by name.

use std::fmt;
use std::sync::Arc;

use subtle::ConstantTimeEq;

use crate::config::StaticKey;
use crate::identity::{key_digest, Principal, Role};
use crate::store::StoreError;
use crate::BoxFuture;

/// Somewhere keys come from.
pub trait KeySource: Send + Sync {
    /// The principal holding the key whose SHA-256 is `digest`, or `None`
    /// when this source does not know it. Sources see only the digest, so
    /// a dashboard session (which keeps the digest, never the key) is
    /// checked against the same sources on every request.
    fn find<'a>(
        &'a self,
        digest: &'a [u8; 32],
    ) -> BoxFuture<'a, Result<Option<Principal>, StoreError>>;

    /// Whether this source holds a usable admin key (on a fresh install
    /// none does, and `serve` makes one).
    fn has_admin(&self) -> BoxFuture<'_, Result<bool, StoreError>>;
}

/// Keys known by their SHA-256 only: `[[auth.key]]` entries and `ROLES_JSON`.
#[derive(Debug, Clone, Default)]
pub struct StaticKeys(Vec<StaticKey>);

impl StaticKeys {
    pub fn new(keys: Vec<StaticKey>) -> StaticKeys {
        StaticKeys(keys)
    }
}

impl KeySource for StaticKeys {
    fn find<'a>(
        &'a self,
        digest: &'a [u8; 32],
    ) -> BoxFuture<'a, Result<Option<Principal>, StoreError>> {
        // Visit every key, without stopping at a match, so the time taken
        // does not tell how many leading entries were compared.
        let mut found: Option<&StaticKey> = None;
        for key in &self.0 {
            if bool::from(key.sha256.ct_eq(digest)) {
                found = Some(key);
            }
        }
        let principal = found.map(|key| Principal {
            key_id: None,
            name: key.name.clone(),
            role: key.role,
        });
        Box::pin(async move { Ok(principal) })
    }

    fn has_admin(&self) -> BoxFuture<'_, Result<bool, StoreError>> {
        let any = self.0.iter().any(|k| k.role == Role::Admin);
        Box::pin(async move { Ok(any) })
    }
}

/// Resolves presented keys to principals, asking each source in order.
#[derive(Clone)]
pub struct Authenticator {
    sources: Vec<Arc<dyn KeySource>>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("sources", &self.sources.len())
            .finish()
    }
}

impl Authenticator {
    pub fn new(sources: Vec<Arc<dyn KeySource>>) -> Authenticator {
        Authenticator { sources }
    }

    /// Whether any source holds a usable admin key.
    ///
    /// # Errors
    /// On a database error.
    pub async fn has_admin(&self) -> Result<bool, StoreError> {
        for source in &self.sources {
            if source.has_admin().await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The principal holding `presented`, or `None` for an unknown or
    /// revoked key.
    ///
    /// # Errors
    /// On a database error.
    pub async fn authenticate(&self, presented: &str) -> Result<Option<Principal>, StoreError> {
        self.authenticate_digest(&key_digest(presented)).await
    }

    /// The principal holding the key whose SHA-256 is `digest`, or `None`
    /// when no source holds it (any more).
    ///
    /// # Errors
    /// On a database error.
    pub async fn authenticate_digest(
        &self,
        digest: &[u8; 32],
    ) -> Result<Option<Principal>, StoreError> {
        for source in &self.sources {
            if let Some(p) = source.find(digest).await? {
                return Ok(Some(p));
            }
        }
        Ok(None)
    }
}
