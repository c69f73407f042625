//! Configured backups (`[[backup]]`): the `backup:NAME` job (snapshot, then
//! retention) and the `verify:NAME` job (`bulwark verify`): a structure
//! check, a read of a subset of packs, and a sample restore compared by
//! SHA-256 with what the snapshot says.
//!
//! The repository engine is synchronous; everything here runs it on the
//! blocking pool so the scheduler's runtime keeps serving.

pub(crate) mod config;
mod jobs;

use std::path::{Path, PathBuf};

use bulwark_repo::{
    backup, check, forget, open_backend_with, BackupOptions, BlobType, Cancel, Id, KeepWithin,
    ReadData, Repository, RestoreOptions, RetentionPolicy, Snapshot, Tree,
};
use chrono::{DateTime, Utc};
use rand::seq::SliceRandom;
use sha2::{Digest, Sha256};

use crate::config::{BackupConfig, KeepPolicy, PasswordSource};

pub use jobs::{jobs, BackupJob, VerifyJob};

/// The verification event stream, under `<data-dir>/logs/`.
pub const VERIFY_LOG: &str = "backup_verify.ndjson";

/// Errors of backup jobs. Passwords never appear in them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    #[error("backup {backup:?}: no repository password: set `password` in its [[backup]], or BULWARK_PASSWORD / RESTIC_PASSWORD")]
    NoPassword { backup: String },
    #[error("backup {backup:?}: cannot read the password file {path}: {source}")]
    PasswordFile {
        backup: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("backup {backup:?}: repository {repo}: {source}")]
    Repo {
        backup: String,
        repo: String,
        source: bulwark_repo::Error,
    },
    #[error("backup {backup:?}: {message}")]
    Other { backup: String, message: String },
}

fn password(cfg: &BackupConfig) -> Result<crate::config::Secret<String>, BackupError> {
    let value = match &cfg.password {
        Some(PasswordSource::File(path)) => std::fs::read_to_string(path)
            .map(|s| s.trim().to_string())
            .map_err(|source| BackupError::PasswordFile {
                backup: cfg.name.clone(),
                path: path.clone(),
                source,
            })?,
        Some(PasswordSource::Env(var)) => {
            std::env::var(var).map_err(|_| BackupError::NoPassword {
                backup: cfg.name.clone(),
            })?
        }
        None => std::env::var("BULWARK_PASSWORD")
            .or_else(|_| std::env::var("RESTIC_PASSWORD"))
            .map_err(|_| BackupError::NoPassword {
                backup: cfg.name.clone(),
            })?,
    };
    Ok(crate::config::Secret::new(value))
}

/// Opens the repository of `cfg` with its index loaded.
///
/// # Errors
/// No password, a wrong one, or an unreachable repository.
pub fn open(cfg: &BackupConfig) -> Result<Repository, BackupError> {
    let mut repo = open_unindexed(cfg)?;
    repo.load_index().map_err(|e| repo_error(cfg, e))?;
    Ok(repo)
}

fn repo_error(cfg: &BackupConfig, source: bulwark_repo::Error) -> BackupError {
    BackupError::Repo {
        backup: cfg.name.clone(),
        repo: cfg.repo.clone(),
        source,
    }
}

fn open_unindexed(cfg: &BackupConfig) -> Result<Repository, BackupError> {
    let pw = password(cfg)?;
    let backend = open_backend_with(&cfg.repo, &cfg.options).map_err(|e| repo_error(cfg, e))?;
    Repository::open(backend, pw.expose().as_bytes()).map_err(|e| repo_error(cfg, e))
}

/// The snapshots in the repository of `cfg`, oldest first. Reads only the
/// snapshot files (not the index), so listing stays cheap on large
/// repositories.
///
/// # Errors
/// As [`open`], and unreadable snapshot files.
pub fn snapshots(cfg: &BackupConfig) -> Result<Vec<(Id, Snapshot)>, BackupError> {
    open_unindexed(cfg)?
        .snapshots()
        .map_err(|e| repo_error(cfg, e))
}

/// restic's retention flags from the config's `keep`.
pub fn retention(keep: &KeepPolicy) -> RetentionPolicy {
    RetentionPolicy {
        last: keep.last.unwrap_or(0),
        hourly: keep.hourly.unwrap_or(0),
        daily: keep.daily.unwrap_or(0),
        weekly: keep.weekly.unwrap_or(0),
        monthly: keep.monthly.unwrap_or(0),
        yearly: keep.yearly.unwrap_or(0),
        within: keep.within.map(|d| {
            let secs = d.as_secs();
            KeepWithin {
                days: u32::try_from(secs / 86_400).unwrap_or(u32::MAX),
                hours: u32::try_from((secs % 86_400) / 3_600).unwrap_or(0),
                ..KeepWithin::default()
            }
        }),
        tags: keep.tags.clone(),
    }
}

/// What a `backup:NAME` run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupRun {
    pub snapshot: String,
    pub files: u64,
    pub bytes: u64,
    /// Snapshots removed by retention.
    pub forgotten: usize,
}

/// Backs up `cfg.paths` and applies its retention (without pruning: pack
/// removal is a separate, exclusive-lock operation).
///
/// # Errors
/// As [`open`], and any failure of the backup or of retention.
pub async fn run_backup(cfg: &BackupConfig, cancel: &Cancel) -> Result<BackupRun, BackupError> {
    let cfg = cfg.clone();
    let cancel = cancel.clone();
    tokio::task::spawn_blocking(move || {
        let mut repo = open(&cfg)?;
        let wrap = |source| repo_error(&cfg, source);
        let opts = BackupOptions {
            paths: cfg.paths.clone(),
            excludes: cfg.exclude.clone(),
            tags: cfg.tags.clone(),
            cancel,
            ..BackupOptions::default()
        };
        let summary = backup(&mut repo, &opts, |_| {}).map_err(wrap)?;
        let policy = retention(&cfg.keep);
        let forgotten = if policy.is_empty() {
            0
        } else {
            forget(&repo, &policy, false)
                .map_err(wrap)?
                .iter()
                .filter(|d| !d.keep)
                .count()
        };
        Ok(BackupRun {
            snapshot: summary.snapshot_id.to_hex(),
            files: summary.files_new + summary.files_changed + summary.files_unmodified,
            bytes: summary.bytes_processed,
            forgotten,
        })
    })
    .await
    .map_err(|e| BackupError::Other {
        backup: String::new(),
        message: format!("backup task failed: {e}"),
    })?
}

/// A restored file that does not match the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The file's path in the snapshot.
    pub path: String,
    pub expected: Option<String>,
    pub actual: Option<String>,
    pub reason: String,
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyReport {
    pub backup: String,
    pub at: DateTime<Utc>,
    pub snapshot: Option<String>,
    /// Problems `check` found (structure and read packs).
    pub check_errors: Vec<String>,
    pub packs: u64,
    pub packs_read: u64,
    pub files_sampled: usize,
    pub mismatches: Vec<Mismatch>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.check_errors.is_empty() && self.mismatches.is_empty()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "ts": self.at.to_rfc3339(),
            "backup": self.backup,
            "ok": self.is_ok(),
            "snapshot": self.snapshot,
            "packs": self.packs,
            "packs_read": self.packs_read,
            "files_sampled": self.files_sampled,
            "check_errors": self.check_errors,
            "mismatches": self.mismatches.iter().map(|m| serde_json::json!({
                "path": m.path, "expected_sha256": m.expected, "actual_sha256": m.actual, "reason": m.reason,
            })).collect::<Vec<_>>(),
        })
    }
}

/// A regular file of a snapshot: its path and its data blobs.
pub(crate) struct FileEntry {
    pub(crate) path: String,
    pub(crate) content: Vec<Id>,
}

/// The regular files below `tree`, with their paths in the snapshot.
///
/// # Errors
/// An unreadable tree, or a node whose name is not one plain path
/// component (`..`, `a/b`, empty): a hostile repository could otherwise
/// make the comparison read a file outside the restore directory.
pub(crate) fn walk(
    repo: &Repository,
    tree: &Id,
    prefix: &str,
    out: &mut Vec<FileEntry>,
) -> Result<(), String> {
    let id = tree;
    let tree: Tree = repo.load_tree(id).map_err(|e| e.to_string())?;
    for node in tree.nodes {
        if !bulwark_repo::is_safe_name(&node.name) {
            return Err(format!(
                "tree {}: unsafe name {:?} in {}",
                id.to_hex(),
                node.name,
                if prefix.is_empty() { "/" } else { prefix }
            ));
        }
        let path = format!("{prefix}/{}", node.name);
        match node.node_type.as_str() {
            "file" => out.push(FileEntry {
                path,
                content: node.content.unwrap_or_default(),
            }),
            "dir" => {
                if let Some(sub) = &node.subtree {
                    walk(repo, sub, &path, out)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

/// Verifies `cfg`'s repository: `check` reading `read_data_subset` percent
/// of packs (none when unset), then restores `sample_files` random files of
/// the latest snapshot into a temporary directory and compares each one's
/// SHA-256 with the hash of its content as the snapshot records it. The
/// report is appended to `logs/backup_verify.ndjson`.
///
/// # Errors
/// When the repository cannot be opened at all; everything found wrong
/// inside it is in the report.
pub async fn verify(
    cfg: &BackupConfig,
    data_dir: &Path,
    cancel: &Cancel,
) -> Result<VerifyReport, BackupError> {
    let cfg2 = cfg.clone();
    let cancel = cancel.clone();
    let report = tokio::task::spawn_blocking(move || verify_blocking(&cfg2, &cancel))
        .await
        .map_err(|e| BackupError::Other {
            backup: cfg.name.clone(),
            message: format!("verification task failed: {e}"),
        })??;
    for m in &report.mismatches {
        tracing::error!(backup = %report.backup, path = %m.path, reason = %m.reason, "verification mismatch");
    }
    for e in &report.check_errors {
        tracing::error!(backup = %report.backup, error = %e, "repository check failed");
    }
    if let Err(e) = crate::files::append_event(data_dir, VERIFY_LOG, &report.json()) {
        tracing::warn!(error = %e, "cannot append to {VERIFY_LOG}");
    }
    Ok(report)
}

fn verify_blocking(cfg: &BackupConfig, cancel: &Cancel) -> Result<VerifyReport, BackupError> {
    let mut repo = open(cfg)?;
    let wrap = |source| repo_error(cfg, source);
    let (subset, sample) = match &cfg.verify {
        Some(v) => (v.read_data_subset, v.sample_files),
        None => (None, crate::config::DEFAULT_SAMPLE_FILES),
    };
    let read = subset.map_or(ReadData::None, ReadData::Subset);
    let checked = check(&mut repo, read, cancel, |_, _| {}).map_err(wrap)?;
    let mut report = VerifyReport {
        backup: cfg.name.clone(),
        at: Utc::now(),
        snapshot: None,
        check_errors: checked
            .errors
            .iter()
            .map(|e| match &e.pack {
                Some(p) => format!("pack {}: {}", p.to_hex(), e.message),
                None => e.message.clone(),
            })
            .collect(),
        packs: checked.packs,
        packs_read: checked.packs_read,
        files_sampled: 0,
        mismatches: Vec::new(),
    };
    let (sid, snap) = match repo.find_snapshot("latest") {
        Ok(found) => found,
        Err(e) => {
            report
                .check_errors
                .push(format!("no snapshot to sample: {e}"));
            return Ok(report);
        }
    };
    report.snapshot = Some(sid.to_hex());
    let mut files = Vec::new();
    if let Err(e) = walk(&repo, &snap.tree, "", &mut files) {
        report
            .check_errors
            .push(format!("cannot walk the snapshot's trees: {e}"));
        return Ok(report);
    }
    let mut rng = rand::thread_rng();
    let sampled: Vec<&FileEntry> = files
        .choose_multiple(&mut rng, usize::try_from(sample).unwrap_or(usize::MAX))
        .collect();
    report.files_sampled = sampled.len();
    if sampled.is_empty() {
        return Ok(report);
    }
    let target = tempfile::Builder::new()
        .prefix("bulwark-verify-")
        .tempdir()
        .map_err(|e| BackupError::Other {
            backup: cfg.name.clone(),
            message: format!("cannot create a temporary directory: {e}"),
        })?;
    let opts = RestoreOptions {
        target: target.path().to_path_buf(),
        // Exact paths: `we[ird` or `*` are file names, not patterns.
        include: sampled.iter().map(|f| glob_literal(&f.path)).collect(),
        verify: false,
        cancel: cancel.clone(),
    };
    match bulwark_repo::restore(&repo, &sid.to_hex(), &opts) {
        Err(e @ bulwark_repo::Error::Cancelled) => return Err(repo_error(cfg, e)),
        Err(e) => {
            report
                .check_errors
                .push(format!("sample restore failed: {e}"));
            return Ok(report);
        }
        // Anything the restore skipped or could not do is a failure too.
        Ok(summary) => report.check_errors.extend(
            summary
                .errors
                .into_iter()
                .map(|e| format!("sample restore: {e}")),
        ),
    }
    for file in sampled {
        if let Some(m) = compare_restored(&repo, file, target.path()) {
            report.mismatches.push(m);
        }
    }
    Ok(report)
}

/// A pattern for `RestoreOptions::include` that matches exactly `path`:
/// glob metacharacters escaped with a backslash.
fn glob_literal(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if matches!(c, '\\' | '*' | '?' | '[' | ']' | '{' | '}') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Compares the restored copy of `file` under `target` with the snapshot:
/// the SHA-256 of its data blobs, in order, against the file's. None when
/// they agree.
pub(crate) fn compare_restored(
    repo: &Repository,
    file: &FileEntry,
    target: &Path,
) -> Option<Mismatch> {
    let mut h = Sha256::new();
    let mut readable = true;
    for blob in &file.content {
        match repo.load_blob(BlobType::Data, blob) {
            Ok(data) => h.update(&data),
            Err(_) => {
                readable = false;
                break;
            }
        }
    }
    let expected = readable.then(|| hex::encode(h.finalize()));
    let restored = target.join(file.path.trim_start_matches('/'));
    let actual = sha256_file(&restored).ok();
    let reason = match (&expected, &actual) {
        (None, _) => "its data cannot be read from the repository",
        (_, None) => "it was not restored",
        (Some(e), Some(a)) if e != a => "restored content differs from the snapshot",
        _ => return None,
    };
    Some(Mismatch {
        path: file.path.clone(),
        expected,
        actual,
        reason: reason.to_string(),
    })
}

#[cfg(test)]
mod tests;
