//! Restoring a configured backup by name (`POST /api/v1/backups/{name}/restore`),
//! as our users' CI workflow restores a backup by its file name.
//!
//! A restore runs as job `restore:NAME` in the background: recorded,
//! alerted and audited like every run, with its progress readable while it
//! goes. The snapshot is named as people name backups: `latest`, an id or
//! a unique prefix of one, or an archive name as `bulwark export` writes it
//! (`bulwark-<id>-<YYYYmmddTHHMMSSZ>.tar.gz`) or as the original backup scripts did
//! (`app-backup-20231115_030000.tar.gz`: the snapshot taken in that second).

use std::path::{Path, PathBuf};

use bulwark_repo::{restore_with_progress, Repository, RestoreOptions};
use chrono::{NaiveDateTime, TimeZone, Utc};

use super::{open, repo_error, BackupError};
use crate::config::BackupConfig;
use crate::scheduler::{BoxFuture, JobContext, Progress, RunError, Task};

/// What to restore, and where.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    /// `latest`, an id (or unique prefix), or an archive name.
    pub snapshot: String,
    /// An absolute directory on the server's machine.
    pub target: PathBuf,
    /// Paths to restore (restic's `--include`); empty for everything.
    pub include: Vec<String>,
    /// Restore into a directory that already has entries.
    pub overwrite: bool,
}

/// Why a restore request is refused before anything runs.
#[derive(Debug, thiserror::Error)]
pub enum RestoreRequestError {
    #[error("target must be an absolute path, got {0:?}")]
    RelativeTarget(PathBuf),
    #[error("target {0:?} is not empty; pass \"overwrite\": true to restore into it anyway")]
    NotEmpty(PathBuf),
    #[error("target {0:?} exists and is not a directory")]
    NotADirectory(PathBuf),
    #[error("snapshot must not be empty")]
    NoSnapshot,
    #[error("target {0:?} must not contain `..`")]
    DotDot(PathBuf),
    #[error("target {0:?} is the root directory: a restore there would overwrite the backed-up files in place")]
    Root(PathBuf),
    #[error("target {target:?} is outside [server] restore_roots ({})", roots.iter().map(|r| format!("{r:?}")).collect::<Vec<_>>().join(", "))]
    OutsideRoots {
        target: PathBuf,
        roots: Vec<PathBuf>,
    },
}

impl RestoreRequest {
    /// Checks the request before a job starts, so a bad one is a clear 400
    /// instead of a failed run. With `roots` (`[server] restore_roots`) the
    /// target must be one of them or below one, symlinks resolved.
    ///
    /// # Errors
    /// A relative target, one outside `roots`, a non-empty one without
    /// `overwrite`, or no snapshot.
    pub fn validate(&self, roots: &[PathBuf]) -> Result<(), RestoreRequestError> {
        if self.snapshot.trim().is_empty() {
            return Err(RestoreRequestError::NoSnapshot);
        }
        if !self.target.is_absolute() {
            return Err(RestoreRequestError::RelativeTarget(self.target.clone()));
        }
        if self
            .target
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(RestoreRequestError::DotDot(self.target.clone()));
        }
        // Snapshots hold absolute paths, restored under the target: into
        // `/` (however spelt: `//`, a symlink to it) they land on the
        // originals, rolling live data back.
        let real = bulwark_repo::resolve_existing_prefix(&self.target);
        if real == Path::new("/") {
            return Err(RestoreRequestError::Root(self.target.clone()));
        }
        // Resolved on both sides: a symlink under a root that leads out of
        // it is outside, and a root given through a symlink still counts.
        if !roots.is_empty()
            && !roots
                .iter()
                .any(|r| real.starts_with(bulwark_repo::resolve_existing_prefix(r)))
        {
            return Err(RestoreRequestError::OutsideRoots {
                target: self.target.clone(),
                roots: roots.to_vec(),
            });
        }
        match std::fs::read_dir(&self.target) {
            Ok(mut entries) => {
                if entries.next().is_some() && !self.overwrite {
                    return Err(RestoreRequestError::NotEmpty(self.target.clone()));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) if self.target.exists() && !self.target.is_dir() => {
                return Err(RestoreRequestError::NotADirectory(self.target.clone()));
            }
            Err(_) => {}
        }
        Ok(())
    }
}

/// The snapshot `spec` names in `repo`; see the module docs.
///
/// # Errors
/// No snapshot matches, or several do.
pub fn find_snapshot(repo: &Repository, spec: &str) -> bulwark_repo::Result<bulwark_repo::Id> {
    let spec = spec.trim();
    let name = Path::new(spec)
        .file_name()
        .map_or(spec, |n| n.to_str().unwrap_or(spec));
    if let Some(stem) = name.strip_suffix(".tar.gz") {
        // `bulwark-<short id>-<time>`: the id decides.
        if let Some(rest) = stem.strip_prefix("bulwark-") {
            if let Some((id, _)) = rest.split_once('-') {
                return Ok(repo.find_snapshot(id)?.0);
            }
        }
        if let Some(when) = archive_time(stem) {
            let list = repo.snapshots()?;
            let found: Vec<_> = list
                .into_iter()
                .filter(|(_, s)| s.time.with_timezone(&Utc).timestamp() == when.timestamp())
                .collect();
            return match found.as_slice() {
                [(id, _)] => Ok(*id),
                [] => Err(bulwark_repo::Error::Snapshot(format!(
                    "{name}: no snapshot taken at {when}"
                ))),
                _ => Err(bulwark_repo::Error::Snapshot(format!(
                    "{name}: several snapshots were taken at {when}; name one by id"
                ))),
            };
        }
    }
    Ok(repo.find_snapshot(spec)?.0)
}

/// The time in an archive name's last `-`-separated part:
/// `20231115_030000` or `20231115T030000Z`, read as UTC.
fn archive_time(stem: &str) -> Option<chrono::DateTime<Utc>> {
    let last = stem.rsplit('-').next()?;
    ["%Y%m%d_%H%M%S", "%Y%m%dT%H%M%SZ"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(last, f).ok())
        .map(|t| Utc.from_utc_datetime(&t))
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct RestoreDone {
    pub snapshot: String,
    pub files: u64,
    pub bytes: u64,
    /// Files whose data could not be read (the rest was restored).
    pub errors: Vec<String>,
}

/// `restore:NAME`: restores a snapshot of backup NAME into a directory.
pub struct RestoreJob {
    pub backup: BackupConfig,
    pub request: RestoreRequest,
    /// `[server] restore_roots`, checked again when the run claims the
    /// target (a symlink may have been planted since the request).
    pub roots: Vec<PathBuf>,
}

impl RestoreJob {
    /// The job name of a restore of backup `name`.
    pub fn job_name(name: &str) -> String {
        format!("restore:{name}")
    }
}

impl Task for RestoreJob {
    type Output = RestoreDone;

    fn run<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, Result<RestoreDone, RunError>> {
        let cfg = self.backup.clone();
        let request = self.request.clone();
        let roots = self.roots.clone();
        let (cancel, progress) = (ctx.cancel.clone(), ctx.progress.clone());
        Box::pin(async move {
            let work = tokio::task::spawn_blocking(move || -> Result<RestoreDone, BackupError> {
                progress.set(Progress {
                    phase: "opening repository".into(),
                    ..Progress::default()
                });
                let repo = open(&cfg)?;
                let wrap = |e| repo_error(&cfg, &cfg.repo, e);
                let id = find_snapshot(&repo, &request.snapshot).map_err(wrap)?;
                let opts = RestoreOptions {
                    target: request.target.clone(),
                    include: request.include.clone(),
                    // Checked again under the target's lock: another
                    // restore may have filled it since the request.
                    require_empty: !request.overwrite,
                    confine_to: roots,
                    verify: false,
                    cancel,
                };
                let summary = restore_with_progress(&repo, &id.to_hex(), &opts, |p| {
                    progress.set(Progress {
                        phase: "restoring".into(),
                        files: p.files,
                        bytes: p.bytes,
                    });
                })
                .map_err(|e| match e {
                    // Said as the request's own refusal says it: the run
                    // is about the target, not the repository.
                    bulwark_repo::Error::TargetNotEmpty(_) => BackupError::Other {
                        backup: cfg.name.clone(),
                        message: RestoreRequestError::NotEmpty(request.target.clone()).to_string(),
                    },
                    bulwark_repo::Error::TargetBusy(_)
                    | bulwark_repo::Error::TargetOutsideRoots(_) => BackupError::Other {
                        backup: cfg.name.clone(),
                        message: e.to_string(),
                    },
                    e => wrap(e),
                })?;
                Ok(RestoreDone {
                    snapshot: id.to_hex(),
                    files: summary.files,
                    bytes: summary.bytes,
                    errors: summary.errors.iter().map(ToString::to_string).collect(),
                })
            });
            match work.await {
                Ok(result) => result.map_err(super::jobs::stopped),
                Err(e) => Err(RunError::error(e)),
            }
        })
    }

    fn judge(&self, done: &RestoreDone) -> Result<String, String> {
        let summary = format!(
            "restored snapshot {} into {}: {} files, {} bytes",
            &done.snapshot[..done.snapshot.len().min(8)],
            self.request.target.display(),
            done.files,
            done.bytes
        );
        if done.errors.is_empty() {
            Ok(summary)
        } else {
            Err(format!(
                "{summary}; {} files could not be read: {}",
                done.errors.len(),
                done.errors.join("; ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names_give_their_time() {
        let t = |s: &str| archive_time(s).map(|t| t.to_rfc3339());
        assert_eq!(
            t("echoforge-backup-20231115_030000").as_deref(),
            Some("2023-11-15T03:00:00+00:00")
        );
        assert_eq!(
            t("bulwark-1a2b3c4d-20231115T030000Z").as_deref(),
            Some("2023-11-15T03:00:00+00:00")
        );
        assert_eq!(t("backup-latest"), None);
        assert_eq!(t("backup-20231315_030000"), None);
    }

    #[test]
    fn requests_are_checked_before_anything_runs() {
        let dir = tempfile::tempdir().unwrap();
        let req = |target: PathBuf, overwrite: bool| RestoreRequest {
            snapshot: "latest".into(),
            target,
            include: vec![],
            overwrite,
        };
        assert!(req(dir.path().join("new"), false).validate(&[]).is_ok());
        assert!(req(dir.path().to_path_buf(), false).validate(&[]).is_ok());
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        assert!(matches!(
            req(dir.path().to_path_buf(), false).validate(&[]),
            Err(RestoreRequestError::NotEmpty(_))
        ));
        assert!(req(dir.path().to_path_buf(), true).validate(&[]).is_ok());
        assert!(matches!(
            req("relative/dir".into(), false).validate(&[]),
            Err(RestoreRequestError::RelativeTarget(_))
        ));
        assert!(matches!(
            req(dir.path().join("f"), true).validate(&[]),
            Err(RestoreRequestError::NotADirectory(_))
        ));
        for root in ["/", "//", "/."] {
            assert!(
                matches!(
                    req(root.into(), true).validate(&[]),
                    Err(RestoreRequestError::Root(_))
                ),
                "{root}"
            );
        }
        let dotdot = dir.path().join("..").join("..");
        assert!(matches!(
            req(dotdot, true).validate(&[]),
            Err(RestoreRequestError::DotDot(_))
        ));
        // A symlink to the root is the root.
        let link = dir.path().join("to-root");
        std::os::unix::fs::symlink("/", &link).unwrap();
        assert!(matches!(
            req(link, true).validate(&[]),
            Err(RestoreRequestError::Root(_))
        ));
    }

    #[test]
    fn restore_roots_bound_targets_with_symlinks_resolved() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("restores");
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::fs::create_dir_all(root.join("links")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, root.join("links/escape")).unwrap();
        std::os::unix::fs::symlink(&root, dir.path().join("via-link")).unwrap();
        let check = |target: PathBuf, roots: &[PathBuf]| {
            RestoreRequest {
                snapshot: "latest".into(),
                target,
                include: vec![],
                overwrite: false,
            }
            .validate(roots)
        };
        let roots = [root.clone()];
        for inside in [
            root.join("app"),
            root.join("app/2026"),
            root.join("links/new"),
        ] {
            assert!(check(inside.clone(), &roots).is_ok(), "{inside:?}");
        }
        for outside in [
            elsewhere.join("app"),
            root.join("links/escape/app"),
            dir.path().join("restores-2"),
        ] {
            let err = check(outside.clone(), &roots).unwrap_err();
            assert!(
                matches!(err, RestoreRequestError::OutsideRoots { .. }),
                "{outside:?}: {err}"
            );
            assert!(err.to_string().contains("restore_roots"), "{err}");
        }
        // A root named through a symlink is the directory it leads to.
        assert!(check(root.join("app"), &[dir.path().join("via-link")]).is_ok());
        assert!(
            check(elsewhere.join("app"), &[]).is_ok(),
            "no roots: anywhere"
        );
    }
}
