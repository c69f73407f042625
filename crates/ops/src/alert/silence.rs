//! Silences: "do not notify about this until then", made through the API or
//! the CLI and audited. A silence matches by monitor, by tag, or both.

use rand::RngCore;
use sqlx::Row;

use crate::audit::{self, Entry, Outcome};
use crate::auth::Actor;
use crate::store::{Store, StoreError};

use super::{Alert, AlertError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Silence {
    pub id: String,
    pub monitor: Option<String>,
    pub tag: Option<String>,
    pub comment: String,
    pub created_by: String,
    pub created_at_ms: i64,
    pub ends_at_ms: i64,
    /// Set when expired by hand before `ends_at`.
    pub expired_at_ms: Option<i64>,
}

impl Silence {
    pub fn is_active(&self, now_ms: i64) -> bool {
        self.expired_at_ms.is_none() && now_ms < self.ends_at_ms
    }

    pub fn matches(&self, alert: &Alert) -> bool {
        self.monitor.as_ref().is_none_or(|m| *m == alert.monitor)
            && self.tag.as_ref().is_none_or(|t| alert.tags.contains(t))
    }
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<Silence, StoreError> {
    Ok(Silence {
        id: row.try_get("id")?,
        monitor: row.try_get("monitor")?,
        tag: row.try_get("tag")?,
        comment: row.try_get("comment")?,
        created_by: row.try_get("created_by")?,
        created_at_ms: row.try_get("created_at")?,
        ends_at_ms: row.try_get("ends_at")?,
        expired_at_ms: row.try_get("expired_at")?,
    })
}

/// Creates a silence until `ends_at_ms`, audited.
///
/// # Errors
/// With neither monitor nor tag, an end in the past, or a database error.
pub async fn create(
    store: &Store,
    actor: &Actor,
    monitor: Option<&str>,
    tag: Option<&str>,
    comment: &str,
    ends_at_ms: i64,
) -> Result<Silence, AlertError> {
    let monitor = monitor.map(str::trim).filter(|m| !m.is_empty());
    let tag = tag.map(str::trim).filter(|t| !t.is_empty());
    if monitor.is_none() && tag.is_none() {
        return Err(AlertError::InvalidSilence(
            "name a monitor, a tag or both".into(),
        ));
    }
    let now = crate::time::now_ms();
    if ends_at_ms <= now {
        return Err(AlertError::InvalidSilence(
            "it must end in the future".into(),
        ));
    }
    if comment.len() > 1000 {
        return Err(AlertError::InvalidSilence(
            "the comment is longer than 1000 characters".into(),
        ));
    }
    let mut id = [0_u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut id);
    let s = Silence {
        id: format!("sil_{}", hex::encode(id)),
        monitor: monitor.map(str::to_string),
        tag: tag.map(str::to_string),
        comment: comment.to_string(),
        created_by: actor.as_str().to_string(),
        created_at_ms: now,
        ends_at_ms,
        expired_at_ms: None,
    };
    let _guard = store.audit_lock.lock().await;
    let mut tx = store.pool().begin().await.map_err(StoreError::from)?;
    sqlx::query(
        "INSERT INTO silences (id, monitor, tag, comment, created_by, created_at, ends_at, expired_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
    )
    .bind(&s.id)
    .bind(s.monitor.as_deref())
    .bind(s.tag.as_deref())
    .bind(&s.comment)
    .bind(&s.created_by)
    .bind(now)
    .bind(ends_at_ms)
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    let entry = Entry::new(actor, "silence.create", &s.id, Outcome::Success)
        .detail(serde_json::json!({ "monitor": s.monitor, "tag": s.tag, "ends_at": ends_at_ms }));
    audit::append_in(&mut tx, store.dialect(), &entry).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(s)
}

/// Silences, newest first; only the active ones unless `include_inactive`.
///
/// # Errors
/// On a database error.
pub async fn list(
    store: &Store,
    include_inactive: bool,
    now_ms: i64,
) -> Result<Vec<Silence>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, monitor, tag, comment, created_by, created_at, ends_at, expired_at
         FROM silences ORDER BY created_at DESC",
    )
    .fetch_all(store.pool())
    .await?;
    let all: Vec<Silence> = rows.iter().map(from_row).collect::<Result<_, _>>()?;
    Ok(all
        .into_iter()
        .filter(|s| include_inactive || s.is_active(now_ms))
        .collect())
}

pub(super) async fn active(store: &Store, now_ms: i64) -> Result<Vec<Silence>, StoreError> {
    list(store, false, now_ms).await
}

/// Ends a silence now, audited.
///
/// # Errors
/// When there is no such silence or it already ended, or on a database error.
pub async fn expire(store: &Store, actor: &Actor, id: &str) -> Result<Silence, AlertError> {
    let now = crate::time::now_ms();
    let _guard = store.audit_lock.lock().await;
    let mut tx = store.pool().begin().await.map_err(StoreError::from)?;
    let row = sqlx::query(
        "SELECT id, monitor, tag, comment, created_by, created_at, ends_at, expired_at
         FROM silences WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    let mut s = match row {
        Some(row) => from_row(&row)?,
        None => return Err(AlertError::NotFound(id.to_string())),
    };
    if !s.is_active(now) {
        return Err(AlertError::AlreadyExpired(id.to_string()));
    }
    sqlx::query("UPDATE silences SET expired_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
    let entry = Entry::new(actor, "silence.expire", id, Outcome::Success);
    audit::append_in(&mut tx, store.dialect(), &entry).await?;
    tx.commit().await.map_err(StoreError::from)?;
    s.expired_at_ms = Some(now);
    Ok(s)
}
