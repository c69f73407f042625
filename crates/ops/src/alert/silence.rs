//! Silences: "do not notify about this until then", made through the API or
//! the CLI and audited. A silence matches by monitor, by tag, or both.

use rand::RngCore;
use sqlx::Row;

use crate::audit::{AuditedTx, Entry, Outcome};
use crate::config::Config;
use crate::identity::Actor;
use crate::store::{Store, StoreError};
use crate::time::Timestamp;

use super::{Alert, AlertError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Silence {
    pub id: String,
    pub monitor: Option<String>,
    pub tag: Option<String>,
    pub comment: String,
    pub created_by: String,
    pub created_at: Timestamp,
    pub ends_at: Timestamp,
    /// Set when expired by hand before `ends_at`.
    pub expired_at: Option<Timestamp>,
}

impl Silence {
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.expired_at.is_none() && now < self.ends_at
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
        created_at: Timestamp::from_millis(row.try_get("created_at")?),
        ends_at: Timestamp::from_millis(row.try_get("ends_at")?),
        expired_at: row
            .try_get::<Option<i64>, _>("expired_at")?
            .map(Timestamp::from_millis),
    })
}

/// When a new silence ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SilenceEnd {
    /// At this instant.
    At(Timestamp),
    /// This long from now.
    After(std::time::Duration),
}

/// What to silence: a configured monitor, a tag, or both.
#[derive(Debug, Clone, Copy)]
pub struct NewSilence<'a> {
    pub monitor: Option<&'a str>,
    pub tag: Option<&'a str>,
    pub comment: &'a str,
    pub ends: SilenceEnd,
}

fn invalid(msg: impl Into<String>) -> AlertError {
    AlertError::InvalidSilence(msg.into())
}

/// Printable text only: a NUL or an escape sequence in a tag or comment
/// would end up in logs, terminals and the audit trail.
fn check_text(what: &str, value: &str, max: usize) -> Result<(), AlertError> {
    if value.chars().count() > max {
        return Err(invalid(format!(
            "the {what} is longer than {max} characters"
        )));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(invalid(format!("the {what} contains control characters")));
    }
    Ok(())
}

/// Creates a silence, audited. It names a monitor of `config`, a tag, or
/// both, and ends in the future but no later than `[server] max_silence`
/// from now.
///
/// # Errors
/// [`AlertError::InvalidSilence`] naming what is wrong, or a database error.
pub async fn create(
    store: &Store,
    config: &Config,
    actor: &Actor,
    new: NewSilence<'_>,
) -> Result<Silence, AlertError> {
    let monitor = new.monitor.map(str::trim).filter(|m| !m.is_empty());
    let tag = new.tag.map(str::trim).filter(|t| !t.is_empty());
    let comment = new.comment;
    if monitor.is_none() && tag.is_none() {
        return Err(invalid("name a monitor, a tag or both"));
    }
    if let Some(m) = monitor {
        if config.monitor(m).is_none() {
            return Err(invalid(format!("no monitor named {m:?} is configured")));
        }
    }
    if let Some(t) = tag {
        check_text("tag", t, 100)?;
    }
    check_text("comment", comment, 1000)?;
    let now = Timestamp::now();
    let max = config.server.max_silence;
    let ends_at = match new.ends {
        SilenceEnd::At(at) => at,
        SilenceEnd::After(d) => now + d,
    };
    if ends_at <= now {
        return Err(invalid("it must end in the future"));
    }
    if ends_at - now > max {
        return Err(invalid(format!(
            "it must end within {} (server.max_silence)",
            crate::config::format_duration(max)
        )));
    }
    let mut id = [0_u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut id);
    let s = Silence {
        id: format!("sil_{}", hex::encode(id)),
        monitor: monitor.map(str::to_string),
        tag: tag.map(str::to_string),
        comment: comment.to_string(),
        created_by: actor.as_str().to_string(),
        created_at: now,
        ends_at,
        expired_at: None,
    };
    let mut tx = AuditedTx::begin(store).await?;
    sqlx::query(
        "INSERT INTO silences (id, monitor, tag, comment, created_by, created_at, ends_at, expired_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
    )
    .bind(&s.id)
    .bind(s.monitor.as_deref())
    .bind(s.tag.as_deref())
    .bind(&s.comment)
    .bind(&s.created_by)
    .bind(now.as_millis())
    .bind(ends_at.as_millis())
    .execute(tx.conn())
    .await
    .map_err(StoreError::from)?;
    let entry = Entry::new(actor, "silence.create", &s.id, Outcome::Success).detail(
        serde_json::json!({ "monitor": s.monitor, "tag": s.tag, "ends_at": ends_at.as_millis() }),
    );
    tx.commit(&entry).await?;
    Ok(s)
}

/// Silences, newest first; only the active ones unless `include_inactive`.
///
/// # Errors
/// On a database error.
pub async fn list(
    store: &Store,
    include_inactive: bool,
    now: Timestamp,
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
        .filter(|s| include_inactive || s.is_active(now))
        .collect())
}

pub(super) async fn active(store: &Store, now: Timestamp) -> Result<Vec<Silence>, StoreError> {
    list(store, false, now).await
}

/// Ends a silence now, audited.
///
/// # Errors
/// When there is no such silence or it already ended, or on a database error.
pub async fn expire(store: &Store, actor: &Actor, id: &str) -> Result<Silence, AlertError> {
    let now = Timestamp::now();
    let mut tx = AuditedTx::begin(store).await?;
    let row = sqlx::query(
        "SELECT id, monitor, tag, comment, created_by, created_at, ends_at, expired_at
         FROM silences WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(tx.conn())
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
        .bind(now.as_millis())
        .bind(id)
        .execute(tx.conn())
        .await
        .map_err(StoreError::from)?;
    let entry = Entry::new(actor, "silence.expire", id, Outcome::Success);
    tx.commit(&entry).await?;
    s.expired_at = Some(now);
    Ok(s)
}
