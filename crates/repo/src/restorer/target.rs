//! Claiming the directory a restore writes into.
//!
//! Two restores into one directory interleave their files and leave a tree
//! that is neither snapshot; a restore asked for an empty target (the API's
//! default) must find it empty when it starts writing, not only when the
//! request was checked. So the target is created, opened and locked with
//! `flock(LOCK_EX | LOCK_NB)` for the whole restore, and checked for
//! emptiness under that lock. The lock is advisory and local: it binds
//! every bulwark process on the machine (CLI, server, drills), not other
//! programs, nor instances on other machines writing to a shared mount.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{Error, Result};

/// Holds the target's lock until dropped (closing the descriptor unlocks).
#[derive(Debug)]
pub(crate) struct TargetLock {
    _dir: File,
}

/// Creates `target` if missing and locks it for this restore.
///
/// # Errors
/// [`Error::TargetOutsideRoots`] when `roots` are given and the target is
/// not below one, [`Error::TargetBusy`] when another restore holds it,
/// [`Error::TargetNotEmpty`] when `require_empty` and it has entries, or the
/// I/O error that stopped its creation.
pub(crate) fn claim(target: &Path, require_empty: bool, roots: &[PathBuf]) -> Result<TargetLock> {
    let outside = || Error::TargetOutsideRoots(target.to_path_buf());
    // Before anything is created: the missing directories must not be made
    // through a symlink that leads out.
    if !roots.is_empty() && !inside(&resolve_existing_prefix(target), roots) {
        return Err(outside());
    }
    fs::create_dir_all(target).map_err(|e| Error::io("create", target, e))?;
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let dir = File::from(
        rustix::fs::open(target, flags, Mode::empty())
            .map_err(|e| Error::io("open", target, e.into()))?,
    );
    match flock(&dir, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(Errno::WOULDBLOCK) => return Err(Error::TargetBusy(target.to_path_buf())),
        // Linux grants flock locally on most network file systems; one that
        // refuses it outright still restores, without the guard.
        Err(Errno::NOLCK | Errno::OPNOTSUPP) => {}
        Err(e) => return Err(Error::io("lock", target, e.into())),
    }
    // Again on what was locked: the path resolved now must name the locked
    // directory and lie inside. (The restore then writes by path: a
    // component swapped for a symlink during the restore itself is not
    // caught; only writing through descriptors would.)
    if !roots.is_empty() {
        let real = fs::canonicalize(target).map_err(|e| Error::io("resolve", target, e))?;
        let same = |a: &rustix::fs::Stat, b: &rustix::fs::Stat| {
            (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
        };
        let locked = rustix::fs::fstat(&dir).map_err(|e| Error::io("stat", target, e.into()))?;
        let named = rustix::fs::stat(&real).map_err(|e| Error::io("stat", target, e.into()))?;
        if !same(&locked, &named) || !inside(&real, roots) {
            return Err(outside());
        }
    }
    // Listed through the locked descriptor, not the path: a path swapped
    // for another directory meanwhile cannot pass for empty.
    if require_empty && has_entries(&dir).map_err(|e| Error::io("list", target, e.into()))? {
        return Err(Error::TargetNotEmpty(target.to_path_buf()));
    }
    Ok(TargetLock { _dir: dir })
}

/// `path` with its longest existing prefix resolved (symlinks followed) and
/// the rest appended as written: where a restore into it would land.
pub fn resolve_existing_prefix(path: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut at = path;
    loop {
        if let Ok(real) = at.canonicalize() {
            return rest.iter().rev().fold(real, |p, c| p.join(c));
        }
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                at = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// Whether the resolved `real` is one of `roots` or below one (each root
/// resolved too, so one named through a symlink still counts).
fn inside(real: &Path, roots: &[PathBuf]) -> bool {
    roots
        .iter()
        .any(|r| real.starts_with(resolve_existing_prefix(r)))
}

fn has_entries(dir: &File) -> rustix::io::Result<bool> {
    // A duplicate: the listing consumes its descriptor, the lock stays.
    for entry in rustix::fs::Dir::new(rustix::io::fcntl_dupfd_cloexec(dir, 0)?)? {
        let entry = entry?;
        if entry.file_name() != c"." && entry.file_name() != c".." {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claimed_target_is_busy_until_released_and_emptiness_is_checked_under_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a/b");
        let first = claim(&target, true, &[]).unwrap();
        assert!(target.is_dir(), "created");
        // flock binds open file descriptions, so a second claim in the
        // same process is refused as another process's would be.
        assert!(matches!(claim(&target, false, &[]), Err(Error::TargetBusy(p)) if p == target));
        drop(first);
        std::fs::write(target.join("f"), b"x").unwrap();
        assert!(matches!(claim(&target, true, &[]), Err(Error::TargetNotEmpty(p)) if p == target));
        // Refused as not empty, it holds nothing: the next claim passes.
        let _again = claim(&target, false, &[]).unwrap();
    }

    /// What the restore API checked at the request is checked again when
    /// the run claims the target: a symlink planted since (by another
    /// restore, or a user who can write below the root) does not lead it
    /// out, and nothing is created outside.
    #[test]
    fn a_confined_target_is_checked_again_when_claimed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let out = dir.path().join("out");
        fs::create_dir_all(root.join("l")).unwrap();
        fs::create_dir_all(&out).unwrap();
        let roots = [root.clone()];
        let target = root.join("l/lnk/x");
        let _inside = claim(&root.join("a/b"), true, &roots).unwrap();
        // Planted after the request's check passed.
        std::os::unix::fs::symlink(&out, root.join("l/lnk")).unwrap();
        assert!(matches!(
            claim(&target, false, &roots),
            Err(Error::TargetOutsideRoots(p)) if p == target
        ));
        assert!(!out.join("x").exists(), "nothing created outside");
        // A root named through a symlink is the directory it leads to.
        std::os::unix::fs::symlink(&root, dir.path().join("via")).unwrap();
        let _via = claim(&root.join("c"), true, &[dir.path().join("via")]).unwrap();
    }
}
