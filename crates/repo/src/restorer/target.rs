//! Claiming the directory a restore writes into.
//!
//! Two restores into one directory interleave their files and leave a tree
//! that is neither snapshot; a restore asked for an empty target (the API's
//! default) must find it empty when it starts writing, not only when the
//! request was checked. So the target is created, opened and locked with
//! `flock(LOCK_EX | LOCK_NB)` for the whole restore, and checked for
//! emptiness under that lock. The lock is advisory: it binds every bulwark
//! process on the machine (CLI, server, drills), not other programs.

use std::fs::{self, File};
use std::path::Path;

use rustix::fs::{flock, FlockOperation};
use rustix::io::Errno;

use crate::error::{Error, Result};

/// Holds the target's lock until dropped (closing the descriptor unlocks).
#[derive(Debug)]
pub(crate) struct TargetLock {
    _dir: Option<File>,
}

/// Creates `target` if missing and locks it for this restore.
///
/// # Errors
/// [`Error::TargetBusy`] when another restore holds it,
/// [`Error::TargetNotEmpty`] when `require_empty` and it has entries, or the
/// I/O error that stopped its creation.
pub(crate) fn claim(target: &Path, require_empty: bool) -> Result<TargetLock> {
    fs::create_dir_all(target).map_err(|e| Error::io("create", target, e))?;
    let dir = File::open(target).map_err(|e| Error::io("open", target, e))?;
    let dir = match flock(&dir, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Some(dir),
        Err(Errno::WOULDBLOCK) => return Err(Error::TargetBusy(target.to_path_buf())),
        // A file system without locks (some network mounts) still restores;
        // it only loses the guard against a concurrent restore.
        Err(Errno::NOLCK | Errno::OPNOTSUPP) => None,
        Err(e) => return Err(Error::io("lock", target, e.into())),
    };
    if require_empty {
        let mut entries = fs::read_dir(target).map_err(|e| Error::io("list", target, e))?;
        if entries.next().is_some() {
            return Err(Error::TargetNotEmpty(target.to_path_buf()));
        }
    }
    Ok(TargetLock { _dir: dir })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claimed_target_is_busy_until_released_and_emptiness_is_checked_under_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a/b");
        let first = claim(&target, true).unwrap();
        assert!(target.is_dir(), "created");
        // flock binds open file descriptions, so a second claim in the
        // same process is refused as another process's would be.
        assert!(matches!(claim(&target, false), Err(Error::TargetBusy(p)) if p == target));
        drop(first);
        std::fs::write(target.join("f"), b"x").unwrap();
        assert!(matches!(claim(&target, true), Err(Error::TargetNotEmpty(p)) if p == target));
        // Refused as not empty, it holds nothing: the next claim passes.
        let _again = claim(&target, false).unwrap();
    }
}
