//! Configured backups (`[[backup]]`): the `backup:NAME` job (snapshot, then
//! retention) and the `verify:NAME` job (`bulwark verify`): a structure
//! check, a read of a subset of packs, and a sample restore compared by
//! SHA-256 with what the snapshot says.
//!
//! The repository engine is synchronous; everything here runs it on the
//! blocking pool so the scheduler's runtime keeps serving.

pub(crate) mod config;
mod jobs;
pub(crate) mod postgres;
pub mod restore;
pub mod stream;

use std::path::{Path, PathBuf};

use bulwark_repo::{
    backup, check, forget, BackupOptions, BlobType, Cancel, Id, KeepWithin, ReadData, Repository,
    RestoreOptions, RetentionPolicy, Snapshot, Tree,
};
use chrono::{DateTime, Utc};
use rand::seq::SliceRandom;
use sha2::{Digest, Sha256};

use crate::config::{BackupConfig, BackupKind, KeepPolicy, PasswordSource};

pub use jobs::{jobs, VerifyJob};

/// The verification event stream, under `<data-dir>/logs/`.
pub const VERIFY_LOG: &str = crate::files::VERIFY_LOG;

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
    open_indexed(cfg, &cfg.repo)
}

/// `repo` (`cfg.repo` or one of its copies) with `cfg`'s password and
/// options, its index loaded.
fn open_indexed(cfg: &BackupConfig, repo: &str) -> Result<Repository, BackupError> {
    let mut opened = open_at(cfg, repo)?;
    opened.load_index().map_err(|e| repo_error(cfg, repo, e))?;
    Ok(opened)
}

pub(super) fn repo_error(
    cfg: &BackupConfig,
    repo: &str,
    source: bulwark_repo::Error,
) -> BackupError {
    BackupError::Repo {
        backup: cfg.name.clone(),
        repo: repo.to_string(),
        source,
    }
}

/// `repo` with `cfg`'s password and options; remote repositories with the
/// metadata cache, as the CLI's repository commands use it.
fn open_at(cfg: &BackupConfig, repo: &str) -> Result<Repository, BackupError> {
    let pw = password(cfg)?;
    let options = cfg
        .backend_options()
        .map_err(|message| BackupError::Other {
            backup: cfg.name.clone(),
            message,
        })?;
    let cache = bulwark_repo::default_cache_dir();
    Repository::open_location(repo, &options, pw.expose().as_bytes(), cache.as_deref())
        .map_err(|e| repo_error(cfg, repo, e))
}

/// The snapshots in the repository of `cfg`, oldest first. Reads only the
/// snapshot files (not the index), so listing stays cheap on large
/// repositories.
///
/// # Errors
/// As [`open`], and unreadable snapshot files.
pub fn snapshots(cfg: &BackupConfig) -> Result<Vec<(Id, Snapshot)>, BackupError> {
    open_at(cfg, &cfg.repo)?
        .snapshots()
        .map_err(|e| repo_error(cfg, &cfg.repo, e))
}

/// The snapshots in `repo` (`cfg.repo` or one of its copies), oldest
/// first, as [`snapshots`] reads them.
///
/// # Errors
/// As [`open`], and unreadable snapshot files.
pub fn snapshots_at(cfg: &BackupConfig, repo: &str) -> Result<Vec<(Id, Snapshot)>, BackupError> {
    open_at(cfg, repo)?
        .snapshots()
        .map_err(|e| repo_error(cfg, repo, e))
}

/// The latest verification of `repo` recorded in [`VERIFY_LOG`] for
/// backup `backup`: when, and whether it passed. None when there is none
/// (or the log cannot be read).
pub fn last_verification(
    data_dir: &Path,
    backup: &str,
    repo: &str,
) -> Option<(DateTime<Utc>, bool)> {
    let text = std::fs::read_to_string(data_dir.join("logs").join(VERIFY_LOG)).ok()?;
    text.lines().rev().find_map(|line| {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        if v["backup"] != backup || v["repo"] != repo {
            return None;
        }
        let at = DateTime::parse_from_rfc3339(v["ts"].as_str()?).ok()?;
        Some((at.with_timezone(&Utc), v["ok"].as_bool()?))
    })
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
    /// One per `repos` entry, in order.
    pub copies: Vec<CopyRun>,
}

/// The copy of a new snapshot to one of the backup's other repositories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyRun {
    pub repo: String,
    /// What was copied, or why nothing was.
    pub result: Result<String, String>,
}

/// Backs up `cfg.paths` into `cfg.repo` and applies its retention (without
/// pruning: pack removal is a separate, exclusive-lock operation), then
/// copies the new snapshot to each of `cfg.copies` and applies the same
/// retention there. A copy that fails is recorded in the run and does not
/// stop the others; the snapshot stays in `repo` either way.
///
/// # Errors
/// As [`open`], and any failure of the backup or of retention in `repo`.
pub async fn run_backup(cfg: &BackupConfig, cancel: &Cancel) -> Result<BackupRun, BackupError> {
    let cfg = cfg.clone();
    let cancel = cancel.clone();
    tokio::task::spawn_blocking(move || {
        let mut repo = open(&cfg)?;
        let wrap = |source| repo_error(&cfg, &cfg.repo, source);
        let opts = BackupOptions {
            paths: cfg.paths.clone(),
            excludes: cfg.exclude.clone(),
            tags: cfg.tags.clone(),
            cancel: cancel.clone(),
            ..BackupOptions::default()
        };
        let summary = match &cfg.kind {
            BackupKind::Files => backup(&mut repo, &opts, |_| {}).map_err(wrap)?,
            BackupKind::Postgres(pg) => {
                let mut last = None;
                for db in &pg.databases {
                    let (cmd, program) =
                        postgres::dump_command(pg, db).map_err(|message| BackupError::Other {
                            backup: cfg.name.clone(),
                            message,
                        })?;
                    let mut opts = opts.clone();
                    opts.paths = Vec::new();
                    opts.tags.push(db.clone());
                    let name = postgres::dump_name(db, &pg.pg_dump_options);
                    last = Some(stream_command(&cfg, &mut repo, cmd, program, &name, &opts)?);
                }
                last.ok_or_else(|| BackupError::Other {
                    backup: cfg.name.clone(),
                    message: "no database to dump".into(),
                })?
            }
            BackupKind::Command { argv, env } => {
                let mut cmd = std::process::Command::new(&argv[0]);
                crate::child_env::apply_std(&mut cmd, env, &[]);
                cmd.args(&argv[1..]);
                let mut opts = opts.clone();
                opts.paths = Vec::new();
                stream_command(&cfg, &mut repo, cmd, argv[0].clone(), &cfg.name, &opts)?
            }
        };
        let policy = retention(&cfg.keep);
        let forgotten = apply_retention(&repo, &policy).map_err(wrap)?;
        let copies = if cfg.copies.is_empty() {
            Vec::new()
        } else {
            // The index as written, with the new snapshot's packs.
            drop(repo);
            let src = open(&cfg)?;
            let mut copies = Vec::new();
            for dst in &cfg.copies {
                if cancel.is_cancelled() {
                    return Err(wrap(bulwark_repo::Error::Cancelled));
                }
                let result = copy_to(&cfg, &src, dst, summary.snapshot_id, &policy);
                if let Err(e) = &result {
                    tracing::error!(backup = %cfg.name, repo = %dst, error = %e, "copy failed");
                }
                copies.push(CopyRun {
                    repo: dst.clone(),
                    result,
                });
            }
            copies
        };
        Ok(BackupRun {
            snapshot: summary.snapshot_id.to_hex(),
            files: summary.files_new + summary.files_changed + summary.files_unmodified,
            bytes: summary.bytes_processed,
            forgotten,
            copies,
        })
    })
    .await
    .map_err(|e| BackupError::Other {
        backup: String::new(),
        message: format!("backup task failed: {e}"),
    })?
}

/// One snapshot of `cmd`'s stdout as the file `/NAME`; none when it exits
/// non-zero, and then an error naming its status and the end of its stderr
/// (never its arguments or environment).
fn stream_command(
    cfg: &BackupConfig,
    repo: &mut Repository,
    cmd: std::process::Command,
    program: String,
    name: &str,
    opts: &BackupOptions,
) -> Result<bulwark_repo::BackupSummary, BackupError> {
    let (mut src, handle) =
        stream::spawn(cmd, program.clone(), opts.cancel.clone()).map_err(|e| {
            BackupError::Other {
                backup: cfg.name.clone(),
                message: format!("cannot start {program:?}: {e}"),
            }
        })?;
    let result = bulwark_repo::backup_stream(repo, name, &mut src, opts, |_| {});
    drop(src);
    result.map_err(|e| match handle.failure() {
        Some(message) => BackupError::Other {
            backup: cfg.name.clone(),
            message,
        },
        None => repo_error(cfg, &cfg.repo, e),
    })
}

/// Snapshots removed by `policy` (none when it is empty).
fn apply_retention(
    repo: &Repository,
    policy: &RetentionPolicy,
) -> Result<usize, bulwark_repo::Error> {
    if policy.is_empty() {
        return Ok(0);
    }
    Ok(forget(repo, policy, false)?
        .iter()
        .filter(|d| !d.keep)
        .count())
}

/// Copy `snapshot` from `src` to `dst` and apply retention there: the new
/// snapshot's id in `dst`.
fn copy_to(
    cfg: &BackupConfig,
    src: &Repository,
    dst: &str,
    snapshot: Id,
    policy: &RetentionPolicy,
) -> Result<String, String> {
    let mut target = open_indexed(cfg, dst).map_err(|e| e.to_string())?;
    let copied = bulwark_repo::copy_snapshots(src, &mut target, &[snapshot])
        .map_err(|e| repo_error(cfg, dst, e).to_string())?;
    apply_retention(&target, policy).map_err(|e| repo_error(cfg, dst, e).to_string())?;
    let short = |id: &Id| id.to_hex()[..8].to_string();
    match (copied.copied.first(), copied.skipped.first()) {
        (Some((_, new)), _) => Ok(format!(
            "snapshot {} copied as {}",
            short(&snapshot),
            short(new)
        )),
        // A retried run: the destination has it already.
        (None, Some(_)) => Ok(format!("snapshot {} already there", short(&snapshot))),
        (None, None) => Err(format!("snapshot {} was not copied", short(&snapshot))),
    }
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
    /// The repository verified: the backup's `repo` or one of its copies.
    pub repo: String,
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
            "repo": self.repo,
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
    verify_repo(cfg, &cfg.repo, data_dir, cancel).await
}

/// `verify` of the backup's `repo` and of every copy, in that order. A
/// copy that cannot be opened is a failed report, not an error: the others
/// are still verified.
///
/// # Errors
/// When `repo` itself cannot be opened, or on cancellation.
pub async fn verify_all(
    cfg: &BackupConfig,
    data_dir: &Path,
    cancel: &Cancel,
) -> Result<Vec<VerifyReport>, BackupError> {
    let mut reports = vec![verify(cfg, data_dir, cancel).await?];
    for copy in &cfg.copies {
        match verify_repo(cfg, copy, data_dir, cancel).await {
            Ok(report) => reports.push(report),
            Err(
                e @ BackupError::Repo {
                    source: bulwark_repo::Error::Cancelled,
                    ..
                },
            ) => return Err(e),
            Err(e) => reports.push(record(
                VerifyReport {
                    backup: cfg.name.clone(),
                    repo: copy.clone(),
                    at: Utc::now(),
                    snapshot: None,
                    check_errors: vec![e.to_string()],
                    packs: 0,
                    packs_read: 0,
                    files_sampled: 0,
                    mismatches: Vec::new(),
                },
                data_dir,
            )),
        }
    }
    Ok(reports)
}

async fn verify_repo(
    cfg: &BackupConfig,
    repo: &str,
    data_dir: &Path,
    cancel: &Cancel,
) -> Result<VerifyReport, BackupError> {
    let (cfg2, repo2) = (cfg.clone(), repo.to_string());
    let cancel = cancel.clone();
    let report = tokio::task::spawn_blocking(move || verify_blocking(&cfg2, &repo2, &cancel))
        .await
        .map_err(|e| BackupError::Other {
            backup: cfg.name.clone(),
            message: format!("verification task failed: {e}"),
        })??;
    Ok(record(report, data_dir))
}

/// Log what a verification found and append it to [`VERIFY_LOG`].
fn record(report: VerifyReport, data_dir: &Path) -> VerifyReport {
    for m in &report.mismatches {
        tracing::error!(backup = %report.backup, repo = %report.repo, path = %m.path, reason = %m.reason, "verification mismatch");
    }
    for e in &report.check_errors {
        tracing::error!(backup = %report.backup, repo = %report.repo, error = %e, "repository check failed");
    }
    if let Err(e) = crate::files::append_event(data_dir, VERIFY_LOG, &report.json()) {
        tracing::warn!(error = %e, "cannot append to {VERIFY_LOG}");
    }
    report
}

fn verify_blocking(
    cfg: &BackupConfig,
    at: &str,
    cancel: &Cancel,
) -> Result<VerifyReport, BackupError> {
    // `check` loads the index itself (file by file, reporting broken
    // ones): loading it first would read every index file twice.
    let mut repo = open_at(cfg, at)?;
    let wrap = |source| repo_error(cfg, at, source);
    let (subset, sample) = match &cfg.verify {
        Some(v) => (v.read_data_subset, v.sample_files),
        None => (None, crate::config::DEFAULT_SAMPLE_FILES),
    };
    let read = subset.map_or(ReadData::None, ReadData::Subset);
    let checked = check(&mut repo, read, cancel, |_, _| {}).map_err(wrap)?;
    let mut report = VerifyReport {
        backup: cfg.name.clone(),
        repo: at.to_string(),
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
        // A fresh temporary directory: nothing to check.
        require_empty: false,
        confine_to: Vec::new(),
        verify: false,
        cancel: cancel.clone(),
    };
    match bulwark_repo::restore(&repo, &sid.to_hex(), &opts) {
        Err(e @ bulwark_repo::Error::Cancelled) => return Err(repo_error(cfg, at, e)),
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
