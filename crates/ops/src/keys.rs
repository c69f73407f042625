//! API keys made with `bulwark keys create` or `POST /api/v1/keys`.
//!
//! A key is shown once, at creation; the store keeps only its SHA-256.
//! Creating and revoking are audited in the same transaction as the change.

use rand::RngCore;
use sqlx::Row;

use crate::audit::{AuditedTx, Entry, Outcome};
use crate::auth::KeySource;
use crate::config::Secret;
use crate::identity::{key_digest, Actor, Principal, Role, UnknownRole};
use crate::store::{Store, StoreError};
use crate::time::Timestamp;
use crate::BoxFuture;

/// Every key starts with this, so a leaked key is recognisable to secret
/// scanners and to people.
pub const KEY_PREFIX: &str = "bwk_";

/// A key's metadata: everything but the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_at: Timestamp,
    pub created_by: String,
    pub revoked_at: Option<Timestamp>,
}

/// A key just created: the only time its value exists outside the caller.
#[derive(Debug)]
pub struct Created {
    pub info: KeyInfo,
    pub secret: Secret<String>,
}

/// Errors of key management.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error("invalid key name {0:?}: use 1 to 64 letters, digits, '-', '_', '.' or '@'")]
    InvalidName(String),
    #[error("no key with id {0:?}")]
    NotFound(String),
    #[error("key {0:?} is already revoked")]
    AlreadyRevoked(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
}

/// Creates a key with `role` named `name` and records it in the audit trail.
///
/// # Errors
/// For an invalid name or a database error.
pub async fn create(
    store: &Store,
    actor: &Actor,
    role: Role,
    name: &str,
) -> Result<Created, KeyError> {
    if !valid_name(name) {
        return Err(KeyError::InvalidName(name.to_string()));
    }
    let mut bytes = [0_u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = format!("{KEY_PREFIX}{}", hex::encode(bytes));
    let mut id_bytes = [0_u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut id_bytes);
    let id = format!("k_{}", hex::encode(id_bytes));
    let now = Timestamp::now();

    // Taken before the transaction, in the same order as `audit::append`, so
    // two writers never hold one lock each while waiting for the other.
    let mut tx = AuditedTx::begin(store).await?;
    sqlx::query(
        "INSERT INTO api_keys (id, name, role, key_hash, created_at, created_by)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(name)
    .bind(role.as_str())
    .bind(hex::encode(key_digest(&secret)))
    .bind(now.as_millis())
    .bind(actor.as_str())
    .execute(tx.conn())
    .await
    .map_err(StoreError::from)?;
    let entry = Entry::new(actor, "key.create", &id, Outcome::Success)
        .detail(serde_json::json!({ "name": name, "role": role.as_str() }));
    tx.commit(&entry).await?;

    Ok(Created {
        info: KeyInfo {
            id,
            name: name.to_string(),
            role,
            created_at: now,
            created_by: actor.as_str().to_string(),
            revoked_at: None,
        },
        secret: Secret::new(secret),
    })
}

/// Every key, newest first, revoked ones included.
///
/// # Errors
/// On a database error or a stored role that is not a role.
pub async fn list(store: &Store) -> Result<Vec<KeyInfo>, KeyError> {
    let rows = sqlx::query(
        "SELECT id, name, role, created_at, created_by, revoked_at FROM api_keys ORDER BY created_at DESC, id",
    )
    .fetch_all(store.pool())
    .await
    .map_err(StoreError::from)?;
    rows.iter().map(decode).collect()
}

fn decode(row: &sqlx::any::AnyRow) -> Result<KeyInfo, KeyError> {
    let role: String = row.try_get("role").map_err(StoreError::from)?;
    let revoked_at: Option<i64> = row.try_get("revoked_at").map_err(StoreError::from)?;
    Ok(KeyInfo {
        id: row.try_get("id").map_err(StoreError::from)?,
        name: row.try_get("name").map_err(StoreError::from)?,
        role: role
            .parse()
            .map_err(|e: UnknownRole| StoreError::Invalid(format!("api_keys: {e}")))?,
        created_at: Timestamp::from_millis(row.try_get("created_at").map_err(StoreError::from)?),
        created_by: row.try_get("created_by").map_err(StoreError::from)?,
        revoked_at: revoked_at.map(Timestamp::from_millis),
    })
}

/// Revokes key `id`; it stops working at once.
///
/// # Errors
/// For an unknown or already revoked key, or a database error.
pub async fn revoke(store: &Store, actor: &Actor, id: &str) -> Result<KeyInfo, KeyError> {
    let mut tx = AuditedTx::begin(store).await?;
    let row = sqlx::query(
        "SELECT id, name, role, created_at, created_by, revoked_at FROM api_keys WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(tx.conn())
    .await
    .map_err(StoreError::from)?;
    let Some(row) = row else {
        return Err(KeyError::NotFound(id.to_string()));
    };
    let mut info = decode(&row)?;
    if info.revoked_at.is_some() {
        return Err(KeyError::AlreadyRevoked(id.to_string()));
    }
    let now = Timestamp::now();
    sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2")
        .bind(now.as_millis())
        .bind(id)
        .execute(tx.conn())
        .await
        .map_err(StoreError::from)?;
    let entry = Entry::new(actor, "key.revoke", id, Outcome::Success)
        .detail(serde_json::json!({ "name": info.name, "role": info.role.as_str() }));
    tx.commit(&entry).await?;
    info.revoked_at = Some(now);
    Ok(info)
}

/// Whether an unrevoked admin key exists in the store.
///
/// # Errors
/// On a database error.
pub async fn has_active_admin(store: &Store) -> Result<bool, StoreError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM api_keys WHERE role = 'admin' AND revoked_at IS NULL",
    )
    .fetch_one(store.pool())
    .await?;
    Ok(n > 0)
}

/// The principal of the unrevoked key whose SHA-256 is `digest`.
pub(crate) async fn find_active(
    store: &Store,
    digest: &[u8; 32],
) -> Result<Option<Principal>, StoreError> {
    let row = sqlx::query(
        "SELECT id, name, role FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
    )
    .bind(hex::encode(digest))
    .fetch_optional(store.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let role: String = row.try_get("role")?;
    Ok(Some(Principal {
        key_id: Some(row.try_get("id")?),
        name: row.try_get("name")?,
        role: role.parse().map_err(|e: crate::identity::UnknownRole| {
            StoreError::Invalid(format!("api_keys: {e}"))
        })?,
    }))
}

/// The keys of the store (`bulwark keys create`), as the authenticator
/// asks for them: by the digest's index.
#[derive(Debug, Clone)]
pub struct StoreKeys(Store);

impl StoreKeys {
    pub fn new(store: Store) -> StoreKeys {
        StoreKeys(store)
    }
}

impl KeySource for StoreKeys {
    fn find<'a>(
        &'a self,
        digest: &'a [u8; 32],
    ) -> BoxFuture<'a, Result<Option<Principal>, StoreError>> {
        Box::pin(find_active(&self.0, digest))
    }

    fn has_admin(&self) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(has_active_admin(&self.0))
    }
}
