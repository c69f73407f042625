//! Repository locks (`locks/`), compatible with restic's: a shared lock for
//! backup, restore and check, an exclusive one for operations that remove
//! data. A lock is stale when older than 30 minutes, or when it was made on
//! this host by a process that no longer runs.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use crate::backend::FileType;
use crate::error::{Error, Result};
use crate::format::time;
use crate::id::Id;
use std::sync::{mpsc, Arc, Mutex};

use crate::backend::Backend;
use crate::repository::{save_unpacked, Repository};

const STALE_AFTER_SECS: i64 = 30 * 60;

#[derive(Debug, Serialize, Deserialize)]
struct LockJson {
    #[serde(with = "time")]
    time: DateTime<FixedOffset>,
    #[serde(default)]
    exclusive: bool,
    #[serde(default)]
    hostname: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    pid: u32,
    #[serde(default)]
    uid: u32,
    #[serde(default)]
    gid: u32,
}

impl LockJson {
    fn is_stale(&self, now: DateTime<FixedOffset>, host: &str) -> bool {
        if (now - self.time).num_seconds() > STALE_AFTER_SECS {
            return true;
        }
        // Same host: a lock whose process is gone is stale.
        self.hostname == host
            && self.pid != 0
            && !std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

/// restic refreshes its locks every 5 minutes so that they never look stale
/// while the process runs; so do we.
const REFRESH_EVERY: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// A held lock, refreshed in the background and removed on drop. It does
/// not borrow the repository, so the repository stays usable mutably.
pub struct Lock {
    backend: Arc<dyn Backend>,
    id: Arc<Mutex<Id>>,
    stop: Option<mpsc::Sender<()>>,
    refresher: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let id = *self.id.lock().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("Lock").field("id", &id).finish()
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Dropping the sender wakes the refresher, which then exits.
        drop(self.stop.take());
        if let Some(t) = self.refresher.take() {
            let _ = t.join();
        }
        let id = *self.id.lock().unwrap_or_else(|e| e.into_inner());
        // Best effort: a lock left behind becomes stale on its own.
        let _ = self.backend.remove(FileType::Lock, &id.to_hex());
    }
}

fn lock_json(exclusive: bool, host: &str) -> Result<Vec<u8>> {
    let (uid, gid, username) = crate::current_user();
    let lj = LockJson {
        time: time::now(),
        exclusive,
        hostname: host.to_string(),
        username,
        pid: std::process::id(),
        uid,
        gid,
    };
    serde_json::to_vec(&lj).map_err(|e| Error::json("lock", e))
}

/// Take a lock: shared (`exclusive == false`) for backup, restore and check;
/// exclusive for operations that remove data. Conflicting locks that are
/// not stale make this fail.
///
/// # Errors
/// [`Error::Locked`] naming the holder, backend failures.
pub fn lock(repo: &Repository, exclusive: bool) -> Result<Lock> {
    let host = crate::hostname();
    conflicts(repo, exclusive, &host, None)?;
    let id = repo.save_unpacked(FileType::Lock, &lock_json(exclusive, &host)?)?;
    let (tx, rx) = mpsc::channel::<()>();
    let shared = Arc::new(Mutex::new(id));
    let lock = Lock {
        backend: repo.backend.clone(),
        id: shared.clone(),
        stop: Some(tx),
        refresher: None,
    };
    // Check again after writing: two processes may have raced.
    conflicts(repo, exclusive, &host, Some(id))?;
    let backend = repo.backend.clone();
    let key = repo.key.clone();
    let version = repo.config.version;
    let refresher = std::thread::Builder::new()
        .name("bulwark-lock-refresh".into())
        .spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(REFRESH_EVERY) {
                let Ok(j) = lock_json(exclusive, &host) else {
                    continue;
                };
                if let Ok(new) = save_unpacked(backend.as_ref(), &key, version, FileType::Lock, &j)
                {
                    let mut cur = shared.lock().unwrap_or_else(|e| e.into_inner());
                    let _ = backend.remove(FileType::Lock, &cur.to_hex());
                    *cur = new;
                }
            }
        })
        .map_err(|e| Error::Backend {
            op: "spawn",
            what: "lock refresher".into(),
            source: e,
        })?;
    let mut lock = lock;
    lock.refresher = Some(refresher);
    Ok(lock)
}

/// A shared lock for an operation that only reads (restore, check,
/// export). A conflicting exclusive lock is an error; failing to write the
/// lock file (read-only storage) is not: reading proceeds unlocked.
pub(crate) fn lock_for_reading(repo: &Repository) -> Result<Option<Lock>> {
    match lock(repo, false) {
        Ok(l) => Ok(Some(l)),
        Err(Error::Locked(m)) => Err(Error::Locked(m)),
        Err(_) => Ok(None),
    }
}

fn conflicts(repo: &Repository, exclusive: bool, host: &str, own: Option<Id>) -> Result<()> {
    let now = time::now();
    for (id, size) in repo.list_ids(FileType::Lock)? {
        if Some(id) == own {
            continue;
        }
        let lj: LockJson = match repo
            .load_listed(FileType::Lock, &id, size)
            .and_then(|j| serde_json::from_slice(&j).map_err(|e| Error::json("lock", e)))
        {
            Ok(l) => l,
            // Locks vanish while we look (their holder finished), or are
            // unreadable; neither should block us.
            Err(_) => continue,
        };
        if lj.is_stale(now, host) {
            continue;
        }
        if exclusive || lj.exclusive {
            return Err(Error::Locked(format!(
                "{} lock {} held by pid {} on {} since {}",
                if lj.exclusive { "exclusive" } else { "shared" },
                id.short(),
                lj.pid,
                lj.hostname,
                lj.time
            )));
        }
    }
    Ok(())
}

/// Remove stale locks; returns how many.
///
/// # Errors
/// Backend failures.
pub fn unlock_stale(repo: &Repository) -> Result<usize> {
    let now = time::now();
    let host = crate::hostname();
    let mut n = 0;
    for (id, size) in repo.list_ids(FileType::Lock)? {
        if let Ok(j) = repo.load_listed(FileType::Lock, &id, size) {
            if let Ok(lj) = serde_json::from_slice::<LockJson>(&j) {
                if lj.is_stale(now, &host) {
                    repo.backend.remove(FileType::Lock, &id.to_hex())?;
                    n += 1;
                }
            }
        }
    }
    Ok(n)
}

/// Remove every lock, stale or not (after making sure no other process
/// uses the repository); returns how many.
///
/// # Errors
/// Backend failures.
pub fn remove_all_locks(repo: &Repository) -> Result<usize> {
    let ids = repo.list_ids(FileType::Lock)?;
    for (id, _) in &ids {
        repo.backend.remove(FileType::Lock, &id.to_hex())?;
    }
    Ok(ids.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryBackend;
    use crate::crypto::KdfParams;

    #[test]
    fn shared_locks_coexist_exclusive_conflicts() {
        let repo = Repository::init(
            Box::new(MemoryBackend::new()),
            b"pw",
            KdfParams::INSECURE_FAST,
        )
        .unwrap();
        let a = lock(&repo, false).unwrap();
        let b = lock(&repo, false).unwrap();
        assert!(matches!(lock(&repo, true), Err(Error::Locked(_))));
        drop(a);
        drop(b);
        let x = lock(&repo, true).unwrap();
        assert!(matches!(lock(&repo, false), Err(Error::Locked(_))));
        drop(x);
        assert!(repo.list_ids(FileType::Lock).unwrap().is_empty());
    }

    #[test]
    fn staleness_table() {
        let now = time::now();
        let mk = |age: i64, host: &str, pid: u32| LockJson {
            time: now - chrono::Duration::seconds(age),
            exclusive: true,
            hostname: host.into(),
            username: String::new(),
            pid,
            uid: 0,
            gid: 0,
        };
        let me = std::process::id();
        let cases = [
            (mk(10, "h", me), false),
            (mk(31 * 60, "h", me), true),
            (mk(10, "h", u32::MAX - 1), true),
            (mk(10, "other", u32::MAX - 1), false),
        ];
        for (i, (l, want)) in cases.iter().enumerate() {
            assert_eq!(l.is_stale(now, "h"), *want, "case {i}");
        }
    }
}
