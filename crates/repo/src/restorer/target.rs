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
use std::path::Path;

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
/// [`Error::TargetBusy`] when another restore holds it,
/// [`Error::TargetNotEmpty`] when `require_empty` and it has entries, or the
/// I/O error that stopped its creation.
pub(crate) fn claim(target: &Path, require_empty: bool) -> Result<TargetLock> {
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
    // Listed through the locked descriptor, not the path: a path swapped
    // for another directory meanwhile cannot pass for empty.
    if require_empty && has_entries(&dir).map_err(|e| Error::io("list", target, e.into()))? {
        return Err(Error::TargetNotEmpty(target.to_path_buf()));
    }
    Ok(TargetLock { _dir: dir })
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
