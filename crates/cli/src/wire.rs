//! The JSON documents only the CLI prints or records: the repository
//! commands' restic-style messages (`--json` lines with a `message_type`),
//! the `detail` of their audit records, and the `--json` output of
//! `config check`, `events ship`, `verify` and `serve`'s first admin key.
//! Whatever an HTTP route also serves is printed with the route's type from
//! `bulwark_server::api` instead, so the two cannot drift apart.
//!
//! Wire formats are promises: scripts parse these lines. Fields are declared
//! in alphabetical order because that is the order these documents have
//! always had on the wire (they were built as maps, which sort their keys),
//! and a byte-for-byte stable output keeps line-oriented tools working.
//! `tests/repo_json.rs` pins every message's key set.

use std::path::PathBuf;

use bulwark_repo::{
    BackupProgress, BackupSummary, BucketProtection, CheckError, CheckReport, CopySummary,
    Decision, ExportSummary, Id, Protection, PruneSummary, RestoreProgress, RestoreSummary,
};
use serde::Serialize;

// Repository commands: one line per message, `message_type` says which.

/// `init`: the new repository and, for a bucket, what protects it.
#[derive(Debug, Serialize)]
pub(crate) struct Initialized {
    /// Absent (null) for stores that have no such notion (a local path).
    bucket: Option<BucketProtectionJson>,
    id: String,
    message_type: &'static str,
    repository: String,
    version: u32,
}

impl Initialized {
    pub(crate) fn new(
        id: &str,
        repository: &str,
        version: u32,
        bucket: Option<&BucketProtection>,
    ) -> Initialized {
        Initialized {
            bucket: bucket.map(BucketProtectionJson::from),
            id: id.to_string(),
            message_type: "initialized",
            repository: repository.to_string(),
            version,
        }
    }
}

/// `"enabled"` etc., with the store's reason beside an `"unknown"`.
#[derive(Debug, Serialize)]
struct BucketProtectionJson {
    object_lock: &'static str,
    object_lock_default_retention: Option<String>,
    object_lock_unknown_reason: Option<String>,
    versioning: &'static str,
    versioning_unknown_reason: Option<String>,
}

impl From<&BucketProtection> for BucketProtectionJson {
    fn from(p: &BucketProtection) -> Self {
        let reason = |s: &Protection| match s {
            Protection::Unknown(why) => Some(why.clone()),
            _ => None,
        };
        BucketProtectionJson {
            object_lock: p.object_lock.as_str(),
            object_lock_default_retention: p.default_retention.clone(),
            object_lock_unknown_reason: reason(&p.object_lock),
            versioning: p.versioning.as_str(),
            versioning_unknown_reason: reason(&p.versioning),
        }
    }
}

/// `backup`'s progress line.
#[derive(Debug, Serialize)]
pub(crate) struct BackupStatus {
    bytes_done: u64,
    files_done: u64,
    message_type: &'static str,
}

impl From<&BackupProgress> for BackupStatus {
    fn from(p: &BackupProgress) -> Self {
        BackupStatus {
            bytes_done: p.bytes,
            files_done: p.files,
            message_type: "status",
        }
    }
}

/// `backup`'s last line.
#[derive(Debug, Serialize)]
pub(crate) struct BackupDone {
    data_added: u64,
    data_added_packed: u64,
    data_blobs: u64,
    dirs: u64,
    /// Entries left out of the snapshot (exit status 1 when not empty).
    errors: Vec<String>,
    files_changed: u64,
    files_new: u64,
    files_unmodified: u64,
    message_type: &'static str,
    packs_written: u64,
    parent: Option<String>,
    snapshot_id: String,
    total_bytes_processed: u64,
    tree_blobs: u64,
}

impl From<&BackupSummary> for BackupDone {
    fn from(s: &BackupSummary) -> Self {
        BackupDone {
            data_added: s.data_added,
            data_added_packed: s.data_added_packed,
            data_blobs: s.data_blobs_added,
            dirs: s.dirs,
            errors: s.errors.clone(),
            files_changed: s.files_changed,
            files_new: s.files_new,
            files_unmodified: s.files_unmodified,
            message_type: "summary",
            packs_written: s.packs_written,
            parent: s.parent.map(|p| p.to_hex()),
            snapshot_id: s.snapshot_id.to_hex(),
            total_bytes_processed: s.bytes_processed,
            tree_blobs: s.tree_blobs_added,
        }
    }
}

/// `restore`'s progress line.
#[derive(Debug, Serialize)]
pub(crate) struct RestoreStatus {
    bytes_restored: u64,
    files_restored: u64,
    message_type: &'static str,
}

impl From<&RestoreProgress> for RestoreStatus {
    fn from(p: &RestoreProgress) -> Self {
        RestoreStatus {
            bytes_restored: p.bytes,
            files_restored: p.files,
            message_type: "status",
        }
    }
}

/// `restore`'s last line.
#[derive(Debug, Serialize)]
pub(crate) struct RestoreDone {
    bytes: u64,
    dirs: u64,
    errors: Vec<String>,
    files: u64,
    message_type: &'static str,
    skipped: Vec<String>,
    snapshot_id: String,
    symlinks: u64,
    verified: u64,
}

impl From<&RestoreSummary> for RestoreDone {
    fn from(s: &RestoreSummary) -> Self {
        RestoreDone {
            bytes: s.bytes,
            dirs: s.dirs,
            errors: s.errors.clone(),
            files: s.files,
            message_type: "summary",
            skipped: s.skipped.clone(),
            snapshot_id: s.snapshot_id.to_hex(),
            symlinks: s.symlinks,
            verified: s.verified,
        }
    }
}

/// `check`'s progress line while it reads packs.
#[derive(Debug, Serialize)]
pub(crate) struct CheckStatus {
    message_type: &'static str,
    packs_done: u64,
    packs_total: u64,
}

impl CheckStatus {
    pub(crate) fn new(packs_done: u64, packs_total: u64) -> CheckStatus {
        CheckStatus {
            message_type: "status",
            packs_done,
            packs_total,
        }
    }
}

/// `check`'s last line.
#[derive(Debug, Serialize)]
pub(crate) struct CheckDone {
    blobs_read: u64,
    errors: Vec<CheckErrorJson>,
    message_type: &'static str,
    ok: bool,
    packs: u64,
    packs_read: u64,
    snapshots: u64,
    trees: u64,
    warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
struct CheckErrorJson {
    message: String,
    /// The pack at fault, if any.
    pack: Option<String>,
    /// Snapshots that cannot be fully restored because of it.
    snapshots: Vec<String>,
}

impl From<&CheckError> for CheckErrorJson {
    fn from(e: &CheckError) -> Self {
        CheckErrorJson {
            message: e.message.clone(),
            pack: e.pack.map(|p| p.to_hex()),
            snapshots: e.snapshots.iter().map(Id::to_hex).collect(),
        }
    }
}

impl From<&CheckReport> for CheckDone {
    fn from(r: &CheckReport) -> Self {
        CheckDone {
            blobs_read: r.blobs_read,
            errors: r.errors.iter().map(CheckErrorJson::from).collect(),
            message_type: "summary",
            ok: r.is_ok(),
            packs: r.packs,
            packs_read: r.packs_read,
            snapshots: r.snapshots,
            trees: r.trees,
            warnings: r.warnings.clone(),
        }
    }
}

/// `forget`: the policy's decision for every snapshot.
#[derive(Debug, Serialize)]
pub(crate) struct Forgot {
    dry_run: bool,
    message_type: &'static str,
    snapshots: Vec<ForgetDecision>,
}

#[derive(Debug, Serialize)]
struct ForgetDecision {
    id: String,
    keep: bool,
    /// The rules that keep it (`last`, `daily`, ..., `tag`).
    reasons: Vec<&'static str>,
}

impl Forgot {
    pub(crate) fn new(dry_run: bool, decisions: &[Decision]) -> Forgot {
        Forgot {
            dry_run,
            message_type: "forget",
            snapshots: decisions
                .iter()
                .map(|d| ForgetDecision {
                    id: d.id.to_hex(),
                    keep: d.keep,
                    reasons: d.reasons.clone(),
                })
                .collect(),
        }
    }
}

/// `prune` (and `forget --prune`).
#[derive(Debug, Serialize)]
pub(crate) struct Pruned {
    blobs_unused: u64,
    bytes_added: u64,
    bytes_removed: u64,
    dry_run: bool,
    message_type: &'static str,
    packs_deleted: u64,
    packs_kept: u64,
    packs_repacked: u64,
    packs_unindexed: u64,
    temp_bytes_removed: u64,
    temp_files_removed: u64,
}

impl Pruned {
    pub(crate) fn new(dry_run: bool, s: &PruneSummary) -> Pruned {
        Pruned {
            blobs_unused: s.blobs_unused,
            bytes_added: s.bytes_added,
            bytes_removed: s.bytes_removed,
            dry_run,
            message_type: "prune",
            packs_deleted: s.packs_deleted,
            packs_kept: s.packs_kept,
            packs_repacked: s.packs_repacked,
            packs_unindexed: s.packs_unindexed,
            temp_bytes_removed: s.temp_bytes_removed,
            temp_files_removed: s.temp_files_removed,
        }
    }
}

/// `export`: the archive written.
#[derive(Debug, Serialize)]
pub(crate) struct Exported {
    bytes: u64,
    entries: u64,
    message_type: &'static str,
    #[serde(serialize_with = "lossy_path")]
    output: PathBuf,
    snapshot_id: String,
}

impl Exported {
    pub(crate) fn new(snapshot: &Id, output: PathBuf, s: &ExportSummary) -> Exported {
        Exported {
            bytes: s.bytes,
            entries: s.entries,
            message_type: "export",
            output,
            snapshot_id: snapshot.to_hex(),
        }
    }
}

/// `copy`: which snapshots were copied, under which new ids.
#[derive(Debug, Serialize)]
pub(crate) struct Copied {
    blobs: u64,
    copied: Vec<CopiedSnapshot>,
    message_type: &'static str,
    /// Snapshots the destination already had.
    skipped: Vec<String>,
}

#[derive(Debug, Serialize)]
struct CopiedSnapshot {
    /// The id in the destination.
    copy: String,
    source: String,
}

impl From<&CopySummary> for Copied {
    fn from(s: &CopySummary) -> Self {
        Copied {
            blobs: s.blobs,
            copied: s
                .copied
                .iter()
                .map(|(from, to)| CopiedSnapshot {
                    copy: to.to_hex(),
                    source: from.to_hex(),
                })
                .collect(),
            message_type: "copy",
            skipped: s.skipped.iter().map(Id::to_hex).collect(),
        }
    }
}

/// `unlock`: how many locks were removed.
#[derive(Debug, Serialize)]
pub(crate) struct Unlocked {
    message_type: &'static str,
    removed: usize,
}

impl Unlocked {
    pub(crate) fn new(removed: usize) -> Unlocked {
        Unlocked {
            message_type: "unlock",
            removed,
        }
    }
}

// The `detail` of the repository commands' audit records (`backup.create`,
// `backup.restore`). No field may hold a secret: a command's arguments are
// left out, only its program name is kept.

/// What `backup` read, and what became of it.
#[derive(Debug, Serialize)]
pub(crate) struct BackupDetail {
    #[serde(flatten)]
    pub(crate) source: BackupSource,
    #[serde(flatten)]
    pub(crate) outcome: BackupOutcome,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum BackupSource {
    /// `--stdin-from-command`: the program's name only.
    Command { command: Option<String> },
    /// `--stdin` (always `true`, so the record says where the data came from).
    Stdin { stdin: bool },
    /// Files and directories, or a git work tree with `git`.
    Paths {
        git: bool,
        #[serde(serialize_with = "lossy_paths")]
        paths: Vec<PathBuf>,
    },
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum BackupOutcome {
    Saved { snapshot_id: String },
    Failed { error: String },
}

/// A restore that could not run: the snapshot as the user named it.
#[derive(Debug, Serialize)]
pub(crate) struct RestoreFailedDetail {
    pub(crate) error: String,
    pub(crate) snapshot: String,
    #[serde(serialize_with = "lossy_path")]
    pub(crate) target: PathBuf,
}

/// A restore that ran (its `errors` counted; the outcome says whether
/// there were any).
#[derive(Debug, Serialize)]
pub(crate) struct RestoredDetail {
    bytes: u64,
    errors: usize,
    files: u64,
    snapshot_id: String,
    #[serde(serialize_with = "lossy_path")]
    target: PathBuf,
}

impl RestoredDetail {
    pub(crate) fn new(s: &RestoreSummary, target: PathBuf) -> RestoredDetail {
        RestoredDetail {
            bytes: s.bytes,
            errors: s.errors.len(),
            files: s.files,
            snapshot_id: s.snapshot_id.to_hex(),
            target,
        }
    }
}

// The other commands' documents that no route serves.

/// `config check --json`.
#[derive(Debug, Serialize)]
pub(crate) struct ConfigCheck {
    pub(crate) diagnostics: Vec<DiagnosticJson>,
    /// The file checked (absent when no file was found and none is needed).
    pub(crate) file: Option<String>,
    pub(crate) valid: bool,
}

#[derive(Debug, Serialize)]
pub(crate) struct DiagnosticJson {
    column: Option<usize>,
    /// Where in the config, e.g. `monitor[1].interval`; empty for syntax errors.
    field: String,
    file: Option<String>,
    line: Option<usize>,
    message: String,
    /// `error` or `warning`.
    severity: &'static str,
}

impl From<&bulwark_ops::Diagnostic> for DiagnosticJson {
    fn from(d: &bulwark_ops::Diagnostic) -> Self {
        use bulwark_ops::Severity;
        DiagnosticJson {
            column: d.column,
            field: d.field.clone(),
            file: d.file.as_ref().map(|f| f.display().to_string()),
            line: d.line,
            message: d.message.clone(),
            severity: match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            },
        }
    }
}

/// `events ship --json`: what went to the sink.
#[derive(Debug, Serialize)]
pub(crate) struct Shipped {
    pub(crate) batches: u64,
    pub(crate) lines: u64,
    pub(crate) sink: String,
}

/// `audit verify --json`: the chain's state (keys in the order they have
/// always printed).
#[derive(Debug, Serialize)]
pub(crate) struct AuditVerification {
    first_break: Option<AuditBreak>,
    head: String,
    records: u64,
}

#[derive(Debug, Serialize)]
struct AuditBreak {
    reason: String,
    seq: i64,
}

impl From<&bulwark_ops::Verification> for AuditVerification {
    fn from(v: &bulwark_ops::Verification) -> AuditVerification {
        AuditVerification {
            first_break: v.first_break.as_ref().map(|b| AuditBreak {
                reason: b.reason.clone(),
                seq: b.seq,
            }),
            head: v.head.clone(),
            records: v.records,
        }
    }
}

/// `serve --json` on a fresh install: the admin key it made, shown once
/// (the one document that carries a key, as `keys create` does).
#[derive(Debug, Serialize)]
pub(crate) struct BootstrapKey {
    pub(crate) bootstrap_admin_key: BootstrapKeyJson,
}

#[derive(Debug, Serialize)]
pub(crate) struct BootstrapKeyJson {
    pub(crate) id: String,
    pub(crate) key: String,
}

/// One element of `verify --json`'s array: a report per repository
/// verified, or why the verification of a backup could not run.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum Verified {
    Report(VerifyReportJson),
    NotRun(VerifyNotRun),
}

/// A verification that could not run: the job run that says why.
#[derive(Debug, Serialize)]
pub(crate) struct VerifyNotRun {
    pub(crate) backup: String,
    pub(crate) error: String,
    /// Always `false`.
    pub(crate) ok: bool,
    /// The run's outcome (`failure`, `abandoned`).
    pub(crate) outcome: &'static str,
    /// The job run's id (`bulwark jobs list`).
    pub(crate) run: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct VerifyReportJson {
    backup: String,
    check_errors: Vec<String>,
    files_sampled: usize,
    mismatches: Vec<MismatchJson>,
    ok: bool,
    packs: u64,
    packs_read: u64,
    /// The repository verified: the backup's `repo` or one of its copies.
    repo: String,
    snapshot: Option<String>,
}

#[derive(Debug, Serialize)]
struct MismatchJson {
    actual_sha256: Option<String>,
    expected_sha256: Option<String>,
    /// The file's path in the snapshot.
    path: String,
    reason: String,
}

impl From<&bulwark_ops::VerifyReport> for VerifyReportJson {
    fn from(r: &bulwark_ops::VerifyReport) -> Self {
        VerifyReportJson {
            backup: r.backup.clone(),
            check_errors: r.check_errors.clone(),
            files_sampled: r.files_sampled,
            mismatches: r
                .mismatches
                .iter()
                .map(|m| MismatchJson {
                    actual_sha256: m.actual.clone(),
                    expected_sha256: m.expected.clone(),
                    path: m.path.clone(),
                    reason: m.reason.clone(),
                })
                .collect(),
            ok: r.is_ok(),
            packs: r.packs,
            packs_read: r.packs_read,
            repo: r.repo.clone(),
            snapshot: r.snapshot.clone(),
        }
    }
}

/// A path as text, bytes that are not UTF-8 replaced: serde refuses such
/// a path, and an audit record or `--json` line must not be lost for it.
fn lossy_path<S: serde::Serializer>(p: &std::path::Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&p.to_string_lossy())
}

fn lossy_paths<S: serde::Serializer>(ps: &[PathBuf], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(ps.iter().map(|p| p.to_string_lossy()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key set of `value` serialised.
    fn keys(value: impl Serialize) -> Vec<String> {
        match serde_json::to_value(value).unwrap() {
            serde_json::Value::Object(map) => map.keys().cloned().collect(),
            other => panic!("not an object: {other}"),
        }
    }

    /// The progress lines appear only after a second of work, so the
    /// command-level test (`tests/repo_json.rs`) rarely sees them: their
    /// names are pinned here.
    #[test]
    fn status_lines_keep_their_names() {
        let check = |got: Vec<String>, want: &[&str]| assert_eq!(got, want);
        let p = BackupProgress { files: 1, bytes: 2 };
        check(
            keys(BackupStatus::from(&p)),
            &["bytes_done", "files_done", "message_type"],
        );
        let p = RestoreProgress { files: 1, bytes: 2 };
        check(
            keys(RestoreStatus::from(&p)),
            &["bytes_restored", "files_restored", "message_type"],
        );
        check(
            keys(CheckStatus::new(1, 2)),
            &["message_type", "packs_done", "packs_total"],
        );
        let line = serde_json::to_string(&CheckStatus::new(1, 2)).unwrap();
        assert_eq!(
            line,
            r#"{"message_type":"status","packs_done":1,"packs_total":2}"#
        );
    }

    /// A path that is not UTF-8 still makes a record (replacement
    /// characters), instead of failing to serialise and being lost.
    #[test]
    fn paths_that_are_not_utf8_still_serialise() {
        use std::os::unix::ffi::OsStrExt;
        let odd = PathBuf::from(std::ffi::OsStr::from_bytes(b"/srv/caf\xe9"));
        let detail = RestoreFailedDetail {
            error: "e".into(),
            snapshot: "latest".into(),
            target: odd.clone(),
        };
        let v = serde_json::to_value(&detail).unwrap();
        assert_eq!(v["target"], "/srv/caf\u{fffd}");
        let source = BackupSource::Paths {
            git: false,
            paths: vec![odd],
        };
        let v = serde_json::to_value(&source).unwrap();
        assert_eq!(v["paths"][0], "/srv/caf\u{fffd}");
    }

    /// `audit verify --json` keeps the document it printed when it was
    /// the domain type serialised.
    #[test]
    fn audit_verification_keeps_its_document() {
        let v = bulwark_ops::Verification {
            records: 3,
            head: "abc".into(),
            first_break: Some(bulwark_ops::Break {
                seq: 2,
                reason: "hash mismatch".into(),
            }),
        };
        assert_eq!(
            serde_json::to_string(&AuditVerification::from(&v)).unwrap(),
            r#"{"first_break":{"reason":"hash mismatch","seq":2},"head":"abc","records":3}"#
        );
    }

    /// The audit details keep the keys the trail has always had.
    #[test]
    fn audit_details_keep_their_keys() {
        let check = |detail: BackupDetail, want: &[&str]| assert_eq!(keys(&detail), want);
        let saved = || BackupOutcome::Saved {
            snapshot_id: "ab".into(),
        };
        check(
            BackupDetail {
                source: BackupSource::Paths {
                    git: false,
                    paths: vec!["/srv".into()],
                },
                outcome: saved(),
            },
            &["git", "paths", "snapshot_id"],
        );
        check(
            BackupDetail {
                source: BackupSource::Stdin { stdin: true },
                outcome: saved(),
            },
            &["snapshot_id", "stdin"],
        );
        check(
            BackupDetail {
                source: BackupSource::Command {
                    command: Some("pg_dump".into()),
                },
                outcome: BackupOutcome::Failed {
                    error: "command \"pg_dump\" failed".into(),
                },
            },
            &["command", "error"],
        );
        assert_eq!(
            keys(RestoreFailedDetail {
                error: "e".into(),
                snapshot: "latest".into(),
                target: "/t".into(),
            }),
            ["error", "snapshot", "target"]
        );
        assert_eq!(
            keys(RestoredDetail::new(&RestoreSummary::default(), "/t".into())),
            ["bytes", "errors", "files", "snapshot_id", "target"]
        );
    }
}
