//! Managed secrets (`[[secret]]`): generated, rotated on age, handed over
//! with a grace period.
//!
//! The value lives only in `<data-dir>/secrets/runtime/NAME` (mode 0600);
//! after a rotation the old value stays in `NAME.previous` until the grace
//! period ends, so consumers can roll over without an outage. The store
//! holds metadata (version, when, by whom, until when the previous value is
//! valid), the audit trail and `logs/secret_rotations.ndjson` record every
//! rotation, and none of them ever holds a value.
//!
//! A secret named `DASHBOARD_KEY` is also an admin API key
//! ([`ManagedAdminKeys`]).

pub(crate) mod config;
mod files;
pub(crate) mod generate;
mod hook;
mod jobs;

pub use jobs::jobs;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::audit::{AuditedTx, Entry, Outcome};
use crate::auth::KeySource;
use crate::config::{Secret, SecretConfig};
use crate::identity::{key_digest, Actor, Principal, Role};
use crate::store::{Store, StoreError};
use crate::time::Timestamp;
use crate::BoxFuture;

/// The managed secret that doubles as an admin API key.
pub const DASHBOARD_KEY: &str = "DASHBOARD_KEY";

/// The event stream of rotations, under `<data-dir>/logs/`.
pub const ROTATION_LOG: &str = crate::files::ROTATION_LOG;

/// `<data_dir>/secrets/runtime`.
pub fn runtime_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("secrets").join("runtime")
}

/// The file holding the current value of `name`.
pub fn current_path(data_dir: &Path, name: &str) -> PathBuf {
    runtime_dir(data_dir).join(name)
}

/// The file holding the previous value of `name` during its grace period.
pub fn previous_path(data_dir: &Path, name: &str) -> PathBuf {
    runtime_dir(data_dir).join(format!("{name}.previous"))
}

/// What the store knows about a secret (never its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretMeta {
    pub name: String,
    /// 1 for the first value, +1 per rotation.
    pub version: i64,
    pub rotated_at: DateTime<Utc>,
    pub rotated_by: String,
    /// Until when `NAME.previous` is accepted; None when there is none.
    pub previous_valid_until: Option<DateTime<Utc>>,
}

/// A configured secret's state, for `secrets list` and the API.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretStatus {
    pub name: String,
    pub meta: Option<SecretMeta>,
    /// Whether age-driven rotation is on (`rotate`, `ROTATE_*` env).
    pub rotate: bool,
    pub max_age: Duration,
    pub grace: Duration,
    /// Whether the value file exists.
    pub present: bool,
    /// How old the current value is.
    pub age: Option<Duration>,
    /// When the next rotation is due; None when rotation is off.
    pub next_rotation: Option<DateTime<Utc>>,
    /// Whether a rotation check now would rotate it.
    pub due: bool,
}

/// Errors of secret management. They name secrets and files, never values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    #[error("no secret named {0:?} is configured")]
    Unknown(String),
    #[error("secret {0:?} was rotated by someone else at the same time; try again")]
    Conflict(String),
    #[error("cannot write secret file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A rotation that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    pub name: String,
    pub version: i64,
    pub rotated_at: DateTime<Utc>,
    pub previous_valid_until: Option<DateTime<Utc>>,
    /// None: no hook configured; Some(Err): the hook failed (the rotation
    /// itself stands: the new value is in place).
    pub hook: Option<Result<(), String>>,
}

/// Whether `cfg` needs a new value at `now`. Pure, for tests and `list`.
///
/// A secret with no value yet (never generated, or its file lost) is always
/// due, even with `rotate = false`: that switch stops rotation, not creation.
pub fn is_due(
    cfg: &SecretConfig,
    meta: Option<&SecretMeta>,
    present: bool,
    now: DateTime<Utc>,
) -> bool {
    match meta {
        None => true,
        Some(_) if !present => true,
        Some(m) => cfg.rotate && next_rotation(cfg, m).is_some_and(|at| now >= at),
    }
}

fn next_rotation(cfg: &SecretConfig, meta: &SecretMeta) -> Option<DateTime<Utc>> {
    let max_age = chrono::Duration::from_std(cfg.max_age).ok()?;
    cfg.rotate.then(|| meta.rotated_at + max_age)
}

/// The stored metadata of `name`.
///
/// # Errors
/// On a database error.
pub async fn meta(store: &Store, name: &str) -> Result<Option<SecretMeta>, StoreError> {
    let row = sqlx::query(
        "SELECT name, version, rotated_at, rotated_by, previous_valid_until FROM secrets WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(store.pool())
    .await?;
    row.as_ref().map(decode).transpose()
}

fn decode(row: &sqlx::any::AnyRow) -> Result<SecretMeta, StoreError> {
    let until: Option<i64> = row.try_get("previous_valid_until")?;
    Ok(SecretMeta {
        name: row.try_get("name")?,
        version: row.try_get("version")?,
        rotated_at: Timestamp::from_millis(row.try_get("rotated_at")?).to_datetime(),
        rotated_by: row.try_get("rotated_by")?,
        previous_valid_until: until.map(|t| Timestamp::from_millis(t).to_datetime()),
    })
}

/// The state of every configured secret at `now`, in config order.
///
/// # Errors
/// On a database error.
pub async fn list(
    store: &Store,
    data_dir: &Path,
    secrets: &[SecretConfig],
    now: DateTime<Utc>,
) -> Result<Vec<SecretStatus>, StoreError> {
    let mut out = Vec::with_capacity(secrets.len());
    for cfg in secrets {
        let meta = meta(store, &cfg.name).await?;
        let present = current_path(data_dir, &cfg.name).is_file();
        out.push(SecretStatus {
            name: cfg.name.clone(),
            rotate: cfg.rotate,
            max_age: cfg.max_age,
            grace: cfg.grace,
            present,
            age: meta
                .as_ref()
                .and_then(|m| (now - m.rotated_at).to_std().ok()),
            next_rotation: meta.as_ref().and_then(|m| next_rotation(cfg, m)),
            due: is_due(cfg, meta.as_ref(), present, now),
            meta,
        });
    }
    Ok(out)
}

/// How a rotation is asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RotateOptions {
    /// Rotate even when not due (`secrets rotate --force`, the API, an
    /// operator overriding `rotate = false`).
    pub force: bool,
    /// Revoke the previous value at once instead of accepting it for the
    /// grace period: the value leaked (`secrets rotate NAME --no-grace`).
    /// Implies `force`.
    pub no_grace: bool,
}

/// Rotates `cfg` at `now` when it is due, or whenever `how` forces it.
/// Returns None when nothing was due.
///
/// The order makes a crash at any point safe: the store row is claimed
/// first (a concurrent rotation loses with [`SecretError::Conflict`]), then
/// the files are replaced, then the claim and its audit record commit
/// together; the log line and the hook follow.
///
/// # Errors
/// When the files cannot be written, another rotation raced this one, or
/// the database fails. A failing hook is not an error: see [`Rotation::hook`].
pub async fn rotate(
    store: &Store,
    data_dir: &Path,
    cfg: &SecretConfig,
    actor: &Actor,
    how: RotateOptions,
    now: DateTime<Utc>,
) -> Result<Option<Rotation>, SecretError> {
    let current = meta(store, &cfg.name).await?;
    let cur_path = current_path(data_dir, &cfg.name);
    let prev_path = previous_path(data_dir, &cfg.name);
    let present = cur_path.is_file();
    // Revoking a leaked value cannot wait for the schedule.
    let force = how.force || how.no_grace;
    if !force && !is_due(cfg, current.as_ref(), present, now) {
        return Ok(None);
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SecretError::Io { path, source }
    };
    let now_t = Timestamp::from(now);
    let version = current.as_ref().map_or(1, |m| m.version + 1);
    // The old value is kept for the grace period, unless it is revoked now.
    let old_value = match how.no_grace {
        true => None,
        false => files::read(&cur_path).map_err(io(&cur_path))?,
    };
    // Only a value that existed can be honoured during a grace period.
    let previous_valid_until = old_value.as_ref().map(|_| now_t + cfg.grace);

    let mut tx = AuditedTx::begin(store).await?;
    let claimed = match &current {
        Some(m) => sqlx::query(
            "UPDATE secrets SET version = $1, rotated_at = $2, rotated_by = $3, previous_valid_until = $4
             WHERE name = $5 AND version = $6",
        )
        .bind(version)
        .bind(now_t.as_millis())
        .bind(actor.as_str())
        .bind(previous_valid_until.map(Timestamp::as_millis))
        .bind(&cfg.name)
        .bind(m.version)
        .execute(tx.conn())
        .await
        .map(|r| r.rows_affected() == 1),
        None => sqlx::query(
            "INSERT INTO secrets (name, version, rotated_at, rotated_by, previous_valid_until)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&cfg.name)
        .bind(version)
        .bind(now_t.as_millis())
        .bind(actor.as_str())
        .bind(previous_valid_until.map(Timestamp::as_millis))
        .execute(tx.conn())
        .await
        .map(|_| true),
    };
    let refused = match claimed {
        Ok(true) => None,
        Ok(false) => Some(SecretError::Conflict(cfg.name.clone())),
        Err(sqlx::Error::Database(db)) if db.kind() == sqlx::error::ErrorKind::UniqueViolation => {
            Some(SecretError::Conflict(cfg.name.clone()))
        }
        Err(e) => Some(StoreError::from(e).into()),
    };
    if let Some(e) = refused {
        if let Err(rollback) = tx.rollback().await {
            tracing::warn!(secret = %cfg.name, error = %rollback, "cannot roll back a refused rotation");
        }
        return Err(e);
    }

    // Recorded before the files change, so a failure to record leaves the
    // old value in place.
    let entry =
        Entry::new(actor, "secret.rotate", &cfg.name, Outcome::Success).detail(serde_json::json!({
            "version": version,
            "forced": force,
            "no_grace": how.no_grace,
            "previous_valid_until": previous_valid_until.map(|t| t.to_datetime().to_rfc3339()),
        }));
    let mut tx = tx.record(&entry).await?;
    // Name and version only: the value never leaves secrets/runtime/.
    tx.event(
        crate::events::Kind::Secret,
        &serde_json::json!({
            "name": cfg.name,
            "version": version,
            "actor": actor.as_str(),
            "forced": force,
            "no_grace": how.no_grace,
            "previous_valid_until": previous_valid_until.map(|t| t.to_datetime().to_rfc3339()),
        }),
    )
    .await?;
    let written = (|| -> Result<(), SecretError> {
        let dir = runtime_dir(data_dir);
        crate::files::private_dir(&dir).map_err(io(&dir))?;
        match &old_value {
            Some(old) => files::write_atomic(&prev_path, old).map_err(io(&prev_path))?,
            // Revoked at once (`no_grace`), or a stale previous value from
            // before a lost file: it must not outlive this rotation.
            None => {
                files::remove(&prev_path).map_err(io(&prev_path))?;
            }
        }
        let new_value: Secret<String> = generate::generate(cfg.length, &cfg.alphabet);
        files::write_atomic(&cur_path, &new_value).map_err(io(&cur_path))
    })();
    if let Err(e) = written {
        if let Err(rollback) = tx.rollback().await {
            tracing::warn!(secret = %cfg.name, error = %rollback, "cannot roll back a failed rotation");
        }
        return Err(e);
    }
    if let Err(e) = tx.commit().await {
        // The files already hold the new value, and consumers may have read
        // it; the metadata is behind until the next rotation.
        tracing::error!(secret = %cfg.name, error = %e, "secret rotated on disk but its metadata was not saved");
        return Err(e.into());
    }

    let hook = match &cfg.hook {
        None => None,
        Some(h) => Some(hook::notify(h, &cfg.name, version, now_t, &cur_path).await),
    };
    if let Some(Err(why)) = &hook {
        tracing::warn!(secret = %cfg.name, version, error = %why, "secret rotation hook failed");
    }
    let line = serde_json::json!({
        "ts": now.to_rfc3339(),
        "event": "secret_rotated",
        "name": cfg.name,
        "version": version,
        "actor": actor.as_str(),
        "forced": force,
        "no_grace": how.no_grace,
        "previous_valid_until": previous_valid_until.map(|t| t.to_datetime().to_rfc3339()),
        "hook": match &hook { None => "none", Some(Ok(())) => "ok", Some(Err(_)) => "failed" },
        "hook_error": hook.as_ref().and_then(|h| h.as_ref().err()),
    });
    if let Err(e) = crate::files::append_event(data_dir, ROTATION_LOG, &line) {
        tracing::warn!(error = %e, "cannot append to {ROTATION_LOG}");
    }
    tracing::info!(secret = %cfg.name, version, actor = %actor, "rotated secret");
    Ok(Some(Rotation {
        name: cfg.name.clone(),
        version,
        rotated_at: now_t.to_datetime(),
        previous_valid_until: previous_valid_until.map(Timestamp::to_datetime),
        hook,
    }))
}

/// Deletes `NAME.previous` once its grace period is over. Returns whether a
/// file was removed.
///
/// # Errors
/// On a database error or when the file cannot be removed.
pub async fn expire_previous(
    store: &Store,
    data_dir: &Path,
    name: &str,
    now: DateTime<Utc>,
) -> Result<bool, SecretError> {
    let expired = match meta(store, name).await? {
        Some(m) => m.previous_valid_until.is_none_or(|until| now >= until),
        None => true,
    };
    if !expired {
        return Ok(false);
    }
    let path = previous_path(data_dir, name);
    files::remove(&path).map_err(|source| SecretError::Io { path, source })
}

/// The scheduled `rotate:NAME` job: drop an expired previous value, then
/// rotate when due. Returns what happened, for the job's summary.
///
/// # Errors
/// As [`rotate`] and [`expire_previous`].
pub async fn rotation_check(
    store: &Store,
    data_dir: &Path,
    cfg: &SecretConfig,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Option<Rotation>, SecretError> {
    if expire_previous(store, data_dir, &cfg.name, now).await? {
        tracing::info!(secret = %cfg.name, "grace period over: removed the previous value");
    }
    rotate(store, data_dir, cfg, actor, RotateOptions::default(), now).await
}

/// Whether `digest` is the SHA-256 of the current value of the managed secret `name`,
/// or its previous value within the grace period at `now`. Compares in
/// constant time and reads the files on every call, so a rotation by
/// another process takes effect at once.
pub(crate) async fn matches(
    store: &Store,
    data_dir: &Path,
    name: &str,
    digest: &[u8; 32],
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    use subtle::ConstantTimeEq;
    // Digests, so the comparison's length does not depend on the key.
    let same =
        |value: &Secret<String>| -> bool { bool::from(key_digest(value.expose()).ct_eq(digest)) };
    let read = |path: PathBuf| match files::read(&path) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot read managed key");
            None
        }
    };
    let current = read(current_path(data_dir, name)).is_some_and(|v| same(&v));
    let previous = read(previous_path(data_dir, name)).is_some_and(|v| same(&v));
    if current {
        return Ok(true);
    }
    if !previous {
        return Ok(false);
    }
    // The previous value counts only within its grace period, whatever the
    // file system says: an unremoved file must not extend it.
    Ok(meta(store, name)
        .await?
        .and_then(|m| m.previous_valid_until)
        .is_some_and(|until| now < until))
}

/// The managed secrets that are admin API keys (`DASHBOARD_KEY`): the
/// current value, and the previous one during its grace period. Read from
/// the files on every call, so a rotation by another process takes effect
/// at once.
#[derive(Debug, Clone)]
pub struct ManagedAdminKeys {
    store: Store,
    data_dir: PathBuf,
}

impl ManagedAdminKeys {
    pub fn new(store: Store, data_dir: &Path) -> ManagedAdminKeys {
        ManagedAdminKeys {
            store,
            data_dir: data_dir.to_path_buf(),
        }
    }
}

impl KeySource for ManagedAdminKeys {
    fn find<'a>(
        &'a self,
        digest: &'a [u8; 32],
    ) -> BoxFuture<'a, Result<Option<Principal>, StoreError>> {
        Box::pin(async move {
            let held = matches(
                &self.store,
                &self.data_dir,
                DASHBOARD_KEY,
                digest,
                Utc::now(),
            )
            .await?;
            Ok(held.then(|| Principal {
                key_id: None,
                name: format!("secret:{DASHBOARD_KEY}"),
                role: Role::Admin,
            }))
        })
    }

    fn has_admin(&self) -> BoxFuture<'_, Result<bool, StoreError>> {
        let present = current_path(&self.data_dir, DASHBOARD_KEY).is_file();
        Box::pin(async move { Ok(present) })
    }
}

#[cfg(test)]
mod tests;
