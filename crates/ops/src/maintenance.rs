//! Maintenance windows made through the API (`[[maintenance]]` in the config
//! covers planned ones): failures inside them neither alert nor count
//! against SLOs.

use rand::RngCore;
use sqlx::Row;

use crate::audit::{AuditedTx, Entry, Outcome};
use crate::identity::Actor;
use crate::store::{Store, StoreError};
use crate::time::Timestamp;

/// A window stored in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub id: String,
    pub name: String,
    /// Empty means every monitor.
    pub monitors: Vec<String>,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub created_by: String,
    pub created_at: Timestamp,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MaintenanceError {
    #[error("invalid maintenance window: {0}")]
    Invalid(String),
    #[error("no maintenance window with id {0:?}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates a window and records it in the audit trail.
///
/// # Errors
/// When the window ends before it starts, or on a database error.
pub async fn create(
    store: &Store,
    actor: &Actor,
    name: &str,
    monitors: &[String],
    starts_at: Timestamp,
    ends_at: Timestamp,
) -> Result<Window, MaintenanceError> {
    if name.trim().is_empty() || name.len() > 200 {
        return Err(MaintenanceError::Invalid(
            "name must be 1 to 200 characters".into(),
        ));
    }
    if ends_at <= starts_at {
        return Err(MaintenanceError::Invalid("end must be after start".into()));
    }
    let mut id = [0_u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut id);
    let w = Window {
        id: format!("mw_{}", hex::encode(id)),
        name: name.to_string(),
        monitors: monitors.to_vec(),
        starts_at,
        ends_at,
        created_by: actor.as_str().to_string(),
        created_at: Timestamp::now(),
    };
    let mut tx = AuditedTx::begin(store).await?;
    sqlx::query(
        "INSERT INTO maintenance_windows (id, name, monitors, starts_at, ends_at, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&w.id)
    .bind(&w.name)
    .bind(serde_json::to_string(&w.monitors).unwrap_or_else(|_| "[]".into()))
    .bind(starts_at.as_millis())
    .bind(ends_at.as_millis())
    .bind(&w.created_by)
    .bind(w.created_at.as_millis())
    .execute(tx.conn())
    .await
    .map_err(StoreError::from)?;
    let entry = Entry::new(actor, "maintenance.create", &w.id, Outcome::Success).detail(
        serde_json::json!({ "name": name, "monitors": monitors, "starts_at": starts_at.as_millis(), "ends_at": ends_at.as_millis() }),
    );
    tx.commit(&entry).await?;
    Ok(w)
}

/// Every stored window, newest start first.
///
/// # Errors
/// On a database error.
pub async fn list(store: &Store) -> Result<Vec<Window>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, name, monitors, starts_at, ends_at, created_by, created_at
         FROM maintenance_windows ORDER BY starts_at DESC",
    )
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|row| {
            let monitors: String = row.try_get("monitors")?;
            Ok(Window {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                monitors: serde_json::from_str(&monitors).unwrap_or_default(),
                starts_at: Timestamp::from_millis(row.try_get("starts_at")?),
                ends_at: Timestamp::from_millis(row.try_get("ends_at")?),
                created_by: row.try_get("created_by")?,
                created_at: Timestamp::from_millis(row.try_get("created_at")?),
            })
        })
        .collect()
}

/// Deletes a window, audited.
///
/// # Errors
/// When there is no such window, or on a database error.
pub async fn delete(store: &Store, actor: &Actor, id: &str) -> Result<(), MaintenanceError> {
    let mut tx = AuditedTx::begin(store).await?;
    let n = sqlx::query("DELETE FROM maintenance_windows WHERE id = $1")
        .bind(id)
        .execute(tx.conn())
        .await
        .map_err(StoreError::from)?
        .rows_affected();
    if n == 0 {
        return Err(MaintenanceError::NotFound(id.to_string()));
    }
    let entry = Entry::new(actor, "maintenance.delete", id, Outcome::Success);
    tx.commit(&entry).await?;
    Ok(())
}

/// Whether `now` falls in one of `windows` (`[start, end)`).
pub fn active(windows: &[(Timestamp, Timestamp)], now: Timestamp) -> bool {
    windows.iter().any(|&(s, e)| s <= now && now < e)
}
