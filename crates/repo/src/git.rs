//! `backup --git`: snapshot exactly the tree at a git repository's HEAD,
//! i.e. what `git archive HEAD` contains (tracked files only, no `.git`,
//! no build output), recorded under the repository's own path and tagged
//! with the commit id.
//!
//! The archive is unpacked into a private temporary directory (git sets
//! every mtime to the commit time, so repeated backups of one commit are
//! identical) and backed up from there.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::archiver::{
    backup_sources, clean_absolute, BackupOptions, BackupProgress, BackupSummary,
};
use crate::error::{Error, Result};
use crate::repository::Repository;

/// Removes the extraction directory however the backup ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn git(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("git");
    c.arg("-C").arg(dir).args(args);
    c
}

/// Back up HEAD of the git work tree at `git_dir`. The commit id is added
/// to `opts.tags`; `opts.paths` is ignored.
///
/// # Errors
/// `git` missing or failing (not a repository, no commits), backup errors.
pub fn backup_git(
    repo: &mut Repository,
    git_dir: &Path,
    opts: &BackupOptions,
    progress: impl FnMut(BackupProgress) + Send,
) -> Result<BackupSummary> {
    let logical = clean_absolute(git_dir)?;
    let out = git(&logical, &["show", "-s", "--format=%H %ct", "HEAD"])
        .output()
        .map_err(|e| Error::io("run git in", &logical, e))?;
    if !out.status.success() {
        return Err(Error::InvalidArgument(format!(
            "{}: not a git repository with a commit: {}",
            logical.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let (commit, commit_time) = match line.split_once(' ') {
        Some((c, t)) => (c.to_string(), t.parse::<i64>().unwrap_or(0)),
        None => (line.clone(), 0),
    };

    let tmp = TempDir(
        std::env::temp_dir().join(format!("bulwark-git-{}", crate::id::Id::random().short())),
    );
    std::fs::create_dir_all(&tmp.0).map_err(|e| Error::io("create", &tmp.0, e))?;
    let mut child = git(&logical, &["archive", "--format=tar", "HEAD"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io("run git in", &logical, e))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Error::InvalidArgument("git archive: no output".into()))?;
    let mut ar = tar::Archive::new(stdout);
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    // `unpack` refuses entries that would land outside the directory.
    let unpacked = ar
        .unpack(&tmp.0)
        .map_err(|e| Error::io("unpack git archive into", &tmp.0, e));
    let status = child
        .wait()
        .map_err(|e| Error::io("run git in", &logical, e))?;
    unpacked?;
    if !status.success() {
        return Err(Error::InvalidArgument(format!(
            "{}: git archive failed",
            logical.display()
        )));
    }
    // The root of the extraction stands for the work tree: give it the
    // commit time like its entries, not the time of extraction.
    let t = filetime::FileTime::from_unix_time(commit_time, 0);
    filetime::set_file_times(&tmp.0, t, t).map_err(|e| Error::io("set times", &tmp.0, e))?;
    let mut o = opts.clone();
    o.tags.push(commit);
    backup_sources(repo, vec![(logical, tmp.0.clone())], &o, progress)
}
