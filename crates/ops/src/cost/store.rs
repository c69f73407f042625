//! The cache of listings: `storage_measurements` (one row per backup and
//! repository) and `storage_usage` (its classes).

use std::collections::BTreeMap;

use sqlx::Row;

use crate::store::{Store, StoreError};
use crate::time::Timestamp;

/// Objects and bytes of one class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassBytes {
    pub objects: u64,
    pub bytes: u64,
}

/// The cached listing of one repository of one backup.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    pub backup: String,
    /// As configured (the key of the cache).
    pub repository: String,
    /// The last successful listing (`by_class` is from it).
    pub measured_at: Option<Timestamp>,
    pub attempted_at: Timestamp,
    /// Why the latest attempt failed.
    pub error: Option<String>,
    pub assumed: bool,
    pub by_class: BTreeMap<String, ClassBytes>,
}

/// Saturating: a count the database cannot hold as BIGINT never wraps.
fn to_db(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Records a successful listing: replaces the repository's classes.
///
/// # Errors
/// On a database error.
pub async fn record_usage(
    store: &Store,
    backup: &str,
    repository: &str,
    by_class: &BTreeMap<String, ClassBytes>,
    assumed: bool,
    now: Timestamp,
) -> Result<(), StoreError> {
    let mut tx = store.pool().begin().await?;
    sqlx::query("DELETE FROM storage_usage WHERE backup = $1 AND repository = $2")
        .bind(backup)
        .bind(repository)
        .execute(&mut *tx)
        .await?;
    for (class, c) in by_class {
        sqlx::query(
            "INSERT INTO storage_usage (backup, repository, class, objects, bytes)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(backup)
        .bind(repository)
        .bind(class)
        .bind(to_db(c.objects))
        .bind(to_db(c.bytes))
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "INSERT INTO storage_measurements (backup, repository, measured_at, attempted_at, error, assumed)
         VALUES ($1, $2, $3, $3, NULL, $4)
         ON CONFLICT (backup, repository) DO UPDATE SET measured_at = excluded.measured_at,
           attempted_at = excluded.attempted_at, error = NULL, assumed = excluded.assumed",
    )
    .bind(backup)
    .bind(repository)
    .bind(now.as_millis())
    .bind(i64::from(assumed))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Records a failed listing; the last good classes stay.
///
/// # Errors
/// On a database error.
pub async fn record_failure(
    store: &Store,
    backup: &str,
    repository: &str,
    error: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO storage_measurements (backup, repository, measured_at, attempted_at, error, assumed)
         VALUES ($1, $2, NULL, $3, $4, 0)
         ON CONFLICT (backup, repository) DO UPDATE SET attempted_at = excluded.attempted_at,
           error = excluded.error",
    )
    .bind(backup)
    .bind(repository)
    .bind(now.as_millis())
    .bind(error)
    .execute(store.pool())
    .await?;
    Ok(())
}

/// Every cached measurement.
///
/// # Errors
/// On a database error.
pub async fn measurements(store: &Store) -> Result<Vec<Measurement>, StoreError> {
    let rows = sqlx::query(
        "SELECT backup, repository, measured_at, attempted_at, error, assumed
         FROM storage_measurements ORDER BY backup, repository",
    )
    .fetch_all(store.pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        out.push(Measurement {
            backup: row.try_get("backup")?,
            repository: row.try_get("repository")?,
            measured_at: row
                .try_get::<Option<i64>, _>("measured_at")?
                .map(Timestamp::from_millis),
            attempted_at: Timestamp::from_millis(row.try_get("attempted_at")?),
            error: row.try_get("error")?,
            assumed: row.try_get::<i64, _>("assumed")? != 0,
            by_class: BTreeMap::new(),
        });
    }
    let rows = sqlx::query(
        "SELECT backup, repository, class, objects, bytes FROM storage_usage
         ORDER BY backup, repository, class",
    )
    .fetch_all(store.pool())
    .await?;
    for row in &rows {
        let backup: String = row.try_get("backup")?;
        let repository: String = row.try_get("repository")?;
        if let Some(m) = out
            .iter_mut()
            .find(|m| m.backup == backup && m.repository == repository)
        {
            m.by_class.insert(
                row.try_get("class")?,
                ClassBytes {
                    objects: u64::try_from(row.try_get::<i64, _>("objects")?).unwrap_or(0),
                    bytes: u64::try_from(row.try_get::<i64, _>("bytes")?).unwrap_or(0),
                },
            );
        }
    }
    Ok(out)
}
