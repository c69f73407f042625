//! Bulwark's backup repository engine.
//!
//! Reads and writes [restic](https://restic.net) repositories in format
//! version 2 (compression on), so that restic can restore what Bulwark backs
//! up and the other way round. The format follows restic's
//! `doc/design.rst`:
//!
//! - every file except key files is `IV || AES-256-CTR ciphertext ||
//!   Poly1305-AES MAC` under the master key;
//! - key files hold the master key encrypted under an scrypt-derived key;
//! - file content is split by a Rabin-fingerprint chunker (restic's, bit for bit)
//!   whose polynomial is in the config, blobs are named by the SHA-256 of
//!   their plaintext, zstd-compressed, encrypted and collected into packs;
//! - index files say which blob is in which pack; trees are JSON directory
//!   listings; snapshots point at a root tree.
//!
//! Storage is behind the small [`Backend`] trait (a local directory in
//! restic's layout, and memory for tests; cloud stores come later behind
//! the same trait). Operations are plain synchronous functions over a
//! [`Repository`]: [`backup`] (and [`backup_git`], and [`backup_stream`]
//! for one stream such as a database dump), [`restore`], [`check`],
//! [`forget`] with a pure [`apply_policy`], [`prune`], [`copy_snapshots`],
//! [`export_tar_gz`]; [`usage`] counts a repository's bytes by storage
//! class for cost reports. They take restic-compatible locks themselves (shared
//! for backup and reads, exclusive for forget and prune). The long ones
//! (backup, restore, check, prune) poll a [`Cancel`] token and stop with
//! [`Error::Cancelled`], leaving the repository consistent. Nothing here
//! knows about HTTP, SQL or the CLI.
//!
//! Backups often run as root over trees other users can write to: below
//! the paths given, the walk reaches every entry through its directory's
//! descriptor and reads a file only if it is still the inode it stat'ed,
//! so an entry swapped for a symlink, a FIFO or another file is skipped
//! (and reported), never followed.
//!
//! Memory is bounded: files stream through the chunker one chunk (at most
//! 8 MiB) at a time, a few chunks are in flight on the compression and
//! encryption threads, packs are written at 16 MiB.
//!
//! ```
//! use bulwark_repo::{backup, check, restore, BackupOptions, Cancel, KdfParams, MemoryBackend};
//! use bulwark_repo::{ReadData, Repository, RestoreOptions};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("bulwark-doc-{}", std::process::id()));
//! std::fs::create_dir_all(dir.join("src"))?;
//! std::fs::write(dir.join("src/hello.txt"), "hello")?;
//!
//! // A real repository would use `open_backend("/path")` and `KdfParams::DEFAULT`.
//! let mut repo = Repository::init(Box::new(MemoryBackend::new()), b"secret", KdfParams::INSECURE_FAST)?;
//! let opts = BackupOptions { paths: vec![dir.join("src")], ..Default::default() };
//! let summary = backup(&mut repo, &opts, |_| {})?;
//!
//! assert!(check(&mut repo, ReadData::All, &Cancel::default(), |_, _| {})?.is_ok());
//! let target = dir.join("restored");
//! restore(&repo, &summary.snapshot_id.to_hex(), &RestoreOptions { target: target.clone(), ..Default::default() })?;
//! let restored = target.join(dir.join("src/hello.txt").strip_prefix("/")?);
//! assert_eq!(std::fs::read_to_string(restored)?, "hello");
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(()) }
//! ```
// SSE2 intrinsics in `scrypt` are the one exception (see there).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub(crate) mod archiver;
pub(crate) mod backend;
pub(crate) mod cancel;
pub(crate) mod checker;
pub(crate) mod chunker;
pub(crate) mod copy;
pub(crate) mod crypto;
pub(crate) mod error;
pub(crate) mod export;
pub(crate) mod forget;
pub(crate) mod format;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub(crate) mod git;
pub(crate) mod id;
pub(crate) mod lock;
pub(crate) mod prune;
pub(crate) mod repository;
pub(crate) mod restorer;
pub(crate) mod scrypt;
pub(crate) mod xattrs;

/// This machine's host name, for snapshots, keys and locks.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "localhost".to_string())
}

/// This process's user: (uid, gid, name). Without libc: the owner of
/// `/proc/self` is the process's effective user, and /etc/passwd names it.
pub(crate) fn current_user() -> (u32, u32, String) {
    use std::os::unix::fs::MetadataExt;
    let (uid, gid) = std::fs::metadata("/proc/self")
        .map(|m| (m.uid(), m.gid()))
        .unwrap_or((0, 0));
    let name = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.get(2).and_then(|x| x.parse::<u32>().ok()) == Some(uid))
                    .then(|| f[0].to_string())
            })
        })
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_default();
    (uid, gid, name)
}

/// Run `f` on a thread with a large stack. Tree walks recurse once per
/// directory level; callers may sit on small stacks (2 MiB for spawned and
/// tokio blocking threads), which deep but legitimate trees, or hostile
/// ones up to [`format::tree::MAX_TREE_DEPTH`], would overflow. The stack is
/// only reserved address space until used. Falls back to the current thread
/// if no thread can be started.
pub(crate) fn with_big_stack<T: Send>(f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    let mut f = Some(f);
    let ran = std::thread::scope(|s| {
        let builder = std::thread::Builder::new()
            .name("bulwark-walk".into())
            .stack_size(256 << 20);
        let run = || f.take().map(|f| f());
        match builder.spawn_scoped(s, run) {
            Ok(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            Err(_) => None,
        }
    });
    match (ran, f) {
        (Some(r), _) => r,
        (None, Some(f)) => f(),
        (None, None) => Err(Error::InvalidArgument(
            "internal: tree walk gave no result".into(),
        )),
    }
}

// Public API.
pub use archiver::{backup, backup_stream, BackupOptions, BackupProgress, BackupSummary};
pub use backend::local::LocalBackend;
pub use backend::memory::MemoryBackend;
pub use backend::{
    default_cache_dir, open_backend, open_backend_with, usage, Backend, BackendOptions,
    BucketProtection, ClassUsage, Credentials, FileType, Location, Protection, Usage,
    CREDENTIAL_VARIABLES, KNOWN_OPTIONS, LOCAL_CLASS,
};
pub use cancel::Cancel;
pub use checker::{check, CheckError, CheckReport, ReadData};
pub use copy::{copy_snapshots, CopySummary};
pub use crypto::KdfParams;
pub use error::{Error, Result};
pub use export::{export_tar_gz, ExportSummary};
pub use forget::{
    apply_policy, apply_policy_to_group, forget, Decision, KeepWithin, RetentionPolicy,
};
pub use format::pack::PackedBlob;
pub use format::snapshot::Snapshot;
pub use format::tree::{is_safe_name, Node, Tree};
pub use format::BlobType;
pub use git::backup_git;
pub use id::Id;
pub use lock::{lock, remove_all_locks, unlock_stale, Lock};
pub use prune::{prune, PruneSummary};
pub use repository::{IndexEntry, Repository, SnapshotList};
pub use restorer::{
    resolve_existing_prefix, restore, restore_with_progress, RestoreOptions, RestoreProgress,
    RestoreSummary,
};
