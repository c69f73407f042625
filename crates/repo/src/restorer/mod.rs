//! `restore`: recreate a snapshot's files under a target directory with
//! their content, modes, timestamps, symlinks and (as root) ownership.
//!
//! Paths in the snapshot are absolute (`/srv/app/x`); they are recreated
//! below the target (`TARGET/srv/app/x`), as restic does.
//!
//! Two phases. The walk loads the trees, creates directories and symlinks
//! and plans every file: which blob of which pack goes to which (file,
//! offset). Then worker threads take the packs in order, read each run of
//! needed blobs with one request, decrypt and verify every blob once and
//! write it at its offset(s) in every file that uses it. A file gets its
//! mode, owner and times as soon as its last blob is written; directories
//! get theirs at the very end, deepest first (writing children changes a
//! directory's mtime). Memory is bounded: besides the plan, each worker
//! holds one read of at most [`MAX_READ`] bytes (or one blob, if larger)
//! and one decoded blob.
//!
//! The plan holds every file of the snapshot at once, so it is kept
//! compact: a file is its directory's number, its name and the metadata
//! still to set (not its node, whose content list and user names are no
//! longer needed), and its content is one flat record per blob write,
//! sorted into pack order (no map from blob to writes, no list per blob).
//! On the Linux source tree (78,579 files) that took the restore's peak
//! heap from 142 MiB to a fraction of it.

mod target;

pub use target::resolve_existing_prefix;

use std::collections::HashMap;
use std::fs;
use std::io::{ErrorKind, Read};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use globset::GlobSet;

use crate::backend::FileType;
use crate::cancel::Cancel;
use crate::crypto::CRYPTO_OVERHEAD;
use crate::error::{Error, Result};
use crate::format::pack::PackedBlob;
use crate::format::tree::{unix_perm_from_go, Node};
use crate::format::BlobType;
use crate::id::Id;
use crate::repository::{IndexEntry, Repository};

/// Largest read of a run of blobs from one pack. Bounds memory per worker
/// and splits big packs into several jobs so that workers share them.
const MAX_READ: u64 = 2 * 1024 * 1024;
/// Blobs closer than this in a pack are read in one request, the gap
/// included (cheaper than a second request on every backend).
const MAX_GAP: u64 = 256 * 1024;

/// How to restore.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// Directory to restore into (created if missing).
    pub target: PathBuf,
    /// Restore only entries matching one of these patterns (and everything
    /// below a matching directory). Patterns use the exclude syntax: a
    /// leading `/` anchors at the snapshot root (`/srv/app/conf`), any other
    /// pattern matches at any depth (`*.conf`). Empty: restore everything.
    pub include: Vec<String>,
    /// Refuse a target that has entries. Checked once the target is locked
    /// for this restore, so a restore that finished in between counts.
    pub require_empty: bool,
    /// When not empty, refuse a target that is not one of these directories
    /// or below one, symlinks resolved: checked before the target is
    /// created and again on the directory locked, so a symlink planted
    /// after an earlier check cannot lead the restore elsewhere.
    pub confine_to: Vec<PathBuf>,
    /// Re-read every restored file and compare it with the snapshot.
    pub verify: bool,
    /// Stops the restore (polled per tree node and per blob): it returns
    /// [`Error::Cancelled`], leaving what was written so far in the target,
    /// without the metadata of unfinished files and directories.
    pub cancel: Cancel,
}

/// What a restore did.
#[derive(Debug, Clone, Default)]
pub struct RestoreSummary {
    /// The snapshot restored.
    pub snapshot_id: Id,
    /// Files written.
    pub files: u64,
    /// Directories created.
    pub dirs: u64,
    /// Symlinks created.
    pub symlinks: u64,
    /// Bytes of file content written.
    pub bytes: u64,
    /// Files re-read and found identical (with `verify`).
    pub verified: u64,
    /// Entries not restored because their type needs privileges this
    /// build does not use (devices, fifos, sockets).
    pub skipped: Vec<String>,
    /// Problems that did not stop the restore (a damaged blob, an
    /// unsupported node type, a verification mismatch).
    pub errors: Vec<String>,
}

/// Progress reported after each restored file.
#[derive(Debug, Clone, Copy, Default)]
pub struct RestoreProgress {
    /// Files restored so far.
    pub files: u64,
    /// Bytes written so far.
    pub bytes: u64,
}

/// Restore snapshot `spec` (`latest`, an id or a unique prefix).
///
/// The index must be loaded. Files whose data cannot be read are reported
/// in [`RestoreSummary::errors`] and the rest is restored.
///
/// # Errors
/// Unknown snapshot, an unreadable root tree, a target that cannot be
/// created, an exclusive lock held by another process,
/// [`Error::Cancelled`].
pub fn restore(repo: &Repository, spec: &str, opts: &RestoreOptions) -> Result<RestoreSummary> {
    restore_with_progress(repo, spec, opts, |_| {})
}

/// [`restore`], calling `progress` after each file.
///
/// # Errors
/// As [`restore`].
pub fn restore_with_progress(
    repo: &Repository,
    spec: &str,
    opts: &RestoreOptions,
    progress: impl FnMut(RestoreProgress) + Send,
) -> Result<RestoreSummary> {
    crate::with_big_stack(|| restore_inner(repo, spec, opts, progress))
}

fn restore_inner(
    repo: &Repository,
    spec: &str,
    opts: &RestoreOptions,
    progress: impl FnMut(RestoreProgress) + Send,
) -> Result<RestoreSummary> {
    opts.cancel.check()?;
    let _lock = crate::lock::lock_for_reading(repo)?;
    let (sid, snap) = repo.find_snapshot(spec)?;
    // Held to the end: no other restore writes here meanwhile.
    let _target = target::claim(&opts.target, opts.require_empty, &opts.confine_to)?;
    let mut w = Walker {
        repo,
        cancel: &opts.cancel,
        include: crate::archiver::build_globs(&opts.include)?,
        summary: RestoreSummary {
            snapshot_id: sid,
            ..Default::default()
        },
        plan: Plan::default(),
        hardlinks: HashMap::new(),
        dirs: Vec::new(),
        verify: opts.verify,
    };
    w.restore_tree(&snap.tree, &opts.target, Path::new("/"), false, true)?;
    let Walker {
        mut summary,
        plan,
        dirs,
        ..
    } = w;
    let mut plan = plan;
    let jobs = plan_jobs(&mut plan.uses);
    let state = Shared {
        repo,
        cancel: &opts.cancel,
        verify: opts.verify,
        plan: &plan,
        errors: Mutex::new(Vec::new()),
        done_files: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        verified: AtomicU64::new(0),
        progress: Mutex::new(Box::new(progress)),
    };
    // Files without content have nothing to wait for.
    for (i, f) in plan.files.iter().enumerate() {
        if f.targets == 0 {
            opts.cancel.check()?;
            state.complete(i);
        }
    }
    state.run(&jobs);
    // Files cut short by a cancellation are incomplete: no links to them,
    // no directory metadata after them.
    opts.cancel.check()?;
    // Hard links once their first file is complete.
    for l in &plan.links {
        state.link(l);
    }
    let mut errors = state.errors.into_inner().unwrap_or_else(|e| e.into_inner());
    // Workers finish in no fixed order; sorted, the report is reproducible.
    errors.sort();
    summary.errors.extend(errors);
    summary.files = state.done_files.load(Ordering::Relaxed);
    summary.bytes = state.bytes.load(Ordering::Relaxed);
    summary.verified = state.verified.load(Ordering::Relaxed);
    // Directory metadata last, deepest first: writing children changes a
    // directory's mtime and a read-only mode would block them.
    for (path, meta) in &dirs {
        finish_meta_path(path, meta, true, &mut summary.errors);
    }
    Ok(summary)
}

/// What a restored entry gets after its content: owner, mode, extended
/// attributes and times. Kept instead of the node, whose name, content
/// list and user names the restore no longer needs once planned.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    atime: filetime::FileTime,
    mtime: filetime::FileTime,
    /// Boxed: almost always `None`, and a `Value` is several words.
    xattrs: Option<Box<serde_json::Value>>,
}

impl Meta {
    fn of(node: &Node) -> Meta {
        let ft = |t: &chrono::DateTime<chrono::FixedOffset>| {
            filetime::FileTime::from_unix_time(t.timestamp(), t.timestamp_subsec_nanos())
        };
        Meta {
            mode: node.mode,
            uid: node.uid,
            gid: node.gid,
            atime: ft(&node.atime),
            mtime: ft(&node.mtime),
            xattrs: node.extended_attributes.clone().map(Box::new),
        }
    }
}

/// One file to write.
struct FilePlan {
    /// Its directory (an index in [`Plan::dirs`]) and its name there.
    dir: u32,
    name: Box<str>,
    meta: Meta,
    /// The content list, kept only when the restore verifies files.
    content: Option<Box<[Id]>>,
    /// Blob writes the file needs (its content list's length).
    targets: usize,
    /// Blob writes still missing.
    remaining: AtomicUsize,
    /// Whether the file was created (multi-blob files: by the first writer).
    created: Mutex<bool>,
    /// A blob could not be read or written: the file is reported once and
    /// left without metadata.
    failed: AtomicBool,
}

/// A hard link to a file planned earlier.
struct LinkPlan {
    dir: u32,
    name: Box<str>,
    meta: Meta,
    content: Option<Box<[Id]>>,
    /// Index of the first file with this (device, inode).
    first: usize,
}

/// One blob write: blob `blob` of pack `pack` (an index in
/// [`Plan::packs`]) goes to file `file` at `offset`. A blob that several
/// files (or places) use has one record per write; sorted by pack and
/// offset they sit together, and the blob is read and decoded once.
#[derive(Debug, Clone, Copy, PartialEq)]
struct BlobUse {
    pack: u32,
    blob: PackedBlob,
    file: u32,
    offset: u64,
}

/// The content of a restore: directories, files, links and blob writes.
#[derive(Default)]
struct Plan {
    /// Directories holding planned files or links: (target path, path in
    /// the snapshot); the files name them by index, not by full paths.
    dirs: Vec<(PathBuf, PathBuf)>,
    files: Vec<FilePlan>,
    links: Vec<LinkPlan>,
    /// Packs in first-use order.
    packs: Vec<Id>,
    /// (index in `packs`) by pack id.
    pack_pos: HashMap<Id, u32>,
    /// Every blob write, in planning order until [`plan_jobs`] sorts them.
    uses: Vec<BlobUse>,
}

impl Plan {
    fn add_use(&mut self, e: &IndexEntry, file: u32, offset: u64) {
        let pack = *self.pack_pos.entry(e.pack).or_insert_with(|| {
            self.packs.push(e.pack);
            (self.packs.len() - 1) as u32
        });
        self.uses.push(BlobUse {
            pack,
            blob: e.blob,
            file,
            offset,
        });
    }

    /// Target path of an entry planned in directory `dir`.
    fn path(&self, dir: u32, name: &str) -> PathBuf {
        self.dirs[dir as usize].0.join(name)
    }

    /// Its path in the snapshot, for messages.
    fn snap_path(&self, dir: u32, name: &str) -> PathBuf {
        self.dirs[dir as usize].1.join(name)
    }
}

/// One read: a run of blobs of one pack, `[start, start + len)`, and the
/// writes of those blobs (a range of the sorted [`Plan::uses`]).
#[derive(Debug, Clone, PartialEq)]
struct Job {
    pack: u32,
    start: u64,
    len: u64,
    uses: Range<usize>,
}

/// Sort the writes into pack and offset order (the files of a blob
/// staying in planning order) and cut each pack's blobs into runs read
/// with one request: neighbours closer than [`MAX_GAP`] share a read as
/// long as it stays within [`MAX_READ`] (a single larger blob is read
/// alone).
fn plan_jobs(uses: &mut [BlobUse]) -> Vec<Job> {
    uses.sort_by_key(|u| (u.pack, u.blob.offset));
    let mut jobs = Vec::new();
    let mut cur: Option<Job> = None;
    for (i, u) in uses.iter().enumerate() {
        let (off, len) = (u.blob.offset as u64, u.blob.length as u64);
        if let Some(j) = cur.as_mut() {
            if j.pack == u.pack {
                // Another write of the blob just before: same read.
                if uses[i - 1].blob == u.blob {
                    j.uses.end = i + 1;
                    continue;
                }
                let end = j.start + j.len;
                if off >= end && off - end <= MAX_GAP && off + len - j.start <= MAX_READ {
                    j.len = off + len - j.start;
                    j.uses.end = i + 1;
                    continue;
                }
            }
            jobs.extend(cur.take());
        }
        cur = Some(Job {
            pack: u.pack,
            start: off,
            len,
            uses: i..i + 1,
        });
    }
    jobs.extend(cur);
    jobs
}

/// The tree walk: creates directories and symlinks, plans files.
struct Walker<'r> {
    repo: &'r Repository,
    cancel: &'r Cancel,
    include: Option<GlobSet>,
    summary: RestoreSummary,
    plan: Plan,
    /// (device, inode) of multiply linked files -> the first one's index.
    hardlinks: HashMap<(u64, u64), usize>,
    /// Restored directories with their metadata, children before parents.
    dirs: Vec<(PathBuf, Meta)>,
    /// Keep content lists for verification.
    verify: bool,
}

/// Set mtime and atime; `follow` false for symlinks.
fn set_times(path: &Path, meta: &Meta, follow: bool) -> std::io::Result<()> {
    if follow {
        filetime::set_file_times(path, meta.atime, meta.mtime)
    } else {
        filetime::set_symlink_file_times(path, meta.atime, meta.mtime)
    }
}

// Metadata goes on in restic's order: owner first (chown clears the
// set-user-ID and set-group-ID bits and file capabilities), then mode,
// then extended attributes, then times (which the others would change).

/// Owner, mode, extended attributes and times by path (directories,
/// symlinks, hard links); `follow` false for symlinks, whose mode cannot
/// be set.
fn finish_meta_path(path: &Path, meta: &Meta, follow: bool, errors: &mut Vec<String>) {
    // Ownership only sticks for root; for others it is expected to fail.
    let _ = std::os::unix::fs::lchown(path, Some(meta.uid), Some(meta.gid));
    if follow {
        use std::os::unix::fs::PermissionsExt;
        let perm = fs::Permissions::from_mode(unix_perm_from_go(meta.mode));
        if let Err(e) = fs::set_permissions(path, perm) {
            errors.push(format!("chmod {}: {e}", path.display()));
        }
    }
    let attrs = meta.xattrs.as_deref();
    crate::xattrs::restore(attrs, path, |n, v| xattr::set(path, n, v), errors);
    if let Err(e) = set_times(path, meta, follow) {
        errors.push(format!("set times {}: {e}", path.display()));
    }
}

/// The same through an open file: no path lookups.
fn finish_meta_file(f: &fs::File, path: &Path, meta: &Meta, errors: &mut Vec<String>) {
    use std::os::unix::fs::PermissionsExt;
    use xattr::FileExt;
    let _ = std::os::unix::fs::fchown(f, Some(meta.uid), Some(meta.gid));
    let perm = fs::Permissions::from_mode(unix_perm_from_go(meta.mode));
    if let Err(e) = f.set_permissions(perm) {
        errors.push(format!("chmod {}: {e}", path.display()));
    }
    let attrs = meta.xattrs.as_deref();
    crate::xattrs::restore(attrs, path, |n, v| f.set_xattr(n, v), errors);
    if let Err(e) = filetime::set_file_handle_times(f, Some(meta.atime), Some(meta.mtime)) {
        errors.push(format!("set times {}: {e}", path.display()));
    }
}

/// Create a new, empty file. `create_new` never follows a symlink planted
/// at the path; what is there (an earlier run's file, possibly read-only,
/// or a hostile tree's symlink) is removed and the creation retried once.
fn create_file(path: &Path) -> Result<fs::File> {
    let open = || {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
    };
    match open() {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let _ = fs::remove_file(path);
            open().map_err(|e| Error::io("create", path, e))
        }
        Err(e) => Err(Error::io("create", path, e)),
    }
}

impl Walker<'_> {
    fn selected(&self, snap_path: &Path) -> bool {
        self.include.as_ref().is_none_or(|g| g.is_match(snap_path))
    }

    /// Walk the nodes of tree `id` into `dir`. `included` is true when an
    /// ancestor matched the include filter; `dir_exists` when `dir` was
    /// created already. Returns whether anything was restored (so that
    /// directories leading nowhere are not created).
    fn restore_tree(
        &mut self,
        id: &Id,
        dir: &Path,
        snap_dir: &Path,
        included: bool,
        mut dir_exists: bool,
    ) -> Result<bool> {
        if snap_dir.components().count() > crate::format::tree::MAX_TREE_DEPTH {
            return Err(Error::format(
                format!("tree {id}"),
                "directories nested too deeply",
            ));
        }
        let tree = self.repo.load_tree(id)?;
        let mut any = false;
        // This directory's number in the plan, taken at its first file.
        let mut planned_dir = None;
        for node in tree.nodes {
            self.cancel.check()?;
            if !crate::format::tree::is_safe_name(&node.name) {
                self.summary
                    .errors
                    .push(format!("tree {id}: unsafe name {:?} skipped", node.name));
                continue;
            }
            let path = dir.join(&node.name);
            let snap_path = snap_dir.join(&node.name);
            let inc = included || self.selected(&snap_path);
            match node.node_type.as_str() {
                "dir" => {
                    let Some(sub) = node.subtree else {
                        self.summary.errors.push(format!(
                            "{}: directory without subtree",
                            snap_path.display()
                        ));
                        continue;
                    };
                    // Never descend through a symlink: a hostile tree could
                    // list a symlink and a directory of the same name to
                    // write outside the target.
                    if fs::symlink_metadata(&path).is_ok_and(|m| !m.is_dir()) {
                        self.summary.errors.push(format!(
                            "{}: exists and is not a directory",
                            snap_path.display()
                        ));
                        continue;
                    }
                    if inc {
                        fs::create_dir_all(&path).map_err(|e| Error::io("create", &path, e))?;
                    }
                    let restored = match self.restore_tree(&sub, &path, &snap_path, inc, inc) {
                        Ok(r) => r,
                        Err(Error::Cancelled) => return Err(Error::Cancelled),
                        Err(e) => {
                            self.summary
                                .errors
                                .push(format!("{}: {e}", snap_path.display()));
                            inc
                        }
                    };
                    if inc || restored {
                        self.dirs.push((path, Meta::of(&node)));
                        self.summary.dirs += 1;
                        any = true;
                    }
                }
                _ if !inc => {}
                "file" => {
                    if !dir_exists {
                        fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
                        dir_exists = true;
                    }
                    let d = *planned_dir.get_or_insert_with(|| {
                        self.plan
                            .dirs
                            .push((dir.to_path_buf(), snap_dir.to_path_buf()));
                        (self.plan.dirs.len() - 1) as u32
                    });
                    self.plan_file(d, &snap_path, node);
                    any = true;
                }
                "symlink" => {
                    if !dir_exists {
                        fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
                        dir_exists = true;
                    }
                    let _ = fs::remove_file(&path);
                    match std::os::unix::fs::symlink(&node.linktarget, &path) {
                        Ok(()) => {
                            let meta = Meta::of(&node);
                            finish_meta_path(&path, &meta, false, &mut self.summary.errors);
                            self.summary.symlinks += 1;
                        }
                        Err(e) => self.summary.errors.push(format!("{}: {e}", path.display())),
                    }
                    any = true;
                }
                other => {
                    // Devices, fifos and sockets need mknod (privileged,
                    // libc): listed rather than silently dropped, but not
                    // errors, since they hold no data.
                    self.summary
                        .skipped
                        .push(format!("{} ({other})", snap_path.display()));
                }
            }
        }
        Ok(any)
    }

    /// Record a file of planned directory `dir` (or a hard link to one
    /// planned earlier) in the plan.
    fn plan_file(&mut self, dir: u32, snap_path: &Path, node: Node) {
        let content = |node: &Node| {
            self.verify
                .then(|| node.content.clone().unwrap_or_default().into_boxed_slice())
        };
        // Hard links: files that shared an inode when backed up share one
        // again (as restic restores them); only the first is written.
        let link_key = (node.links > 1 && node.inode != 0).then_some((node.device_id, node.inode));
        if let Some(&first) = link_key.and_then(|k| self.hardlinks.get(&k)) {
            self.plan.links.push(LinkPlan {
                dir,
                meta: Meta::of(&node),
                content: content(&node),
                name: node.name.into_boxed_str(),
                first,
            });
            return;
        }
        // Every blob must be indexed (and plausible) before anything is
        // planned: a file that cannot be complete is reported, not written.
        let ids = node.content.as_deref().unwrap_or_default();
        for id in ids {
            match self.repo.lookup(BlobType::Data, id) {
                Some(e) if e.blob.length as usize >= CRYPTO_OVERHEAD => {}
                Some(_) => {
                    self.summary.errors.push(format!(
                        "{}: index entry for blob {id}: length too small",
                        snap_path.display()
                    ));
                    return;
                }
                None => {
                    self.summary.errors.push(format!(
                        "{}: {}",
                        snap_path.display(),
                        Error::BlobNotFound(id.to_hex())
                    ));
                    return;
                }
            }
        }
        let idx = self.plan.files.len();
        if let Some(k) = link_key {
            self.hardlinks.insert(k, idx);
        }
        let mut offset = 0u64;
        for id in ids {
            if let Some(e) = self.repo.lookup(BlobType::Data, id) {
                self.plan.add_use(e, idx as u32, offset);
                offset += e.blob.data_length() as u64;
            }
        }
        self.plan.files.push(FilePlan {
            dir,
            meta: Meta::of(&node),
            content: content(&node),
            name: node.name.into_boxed_str(),
            targets: ids.len(),
            remaining: AtomicUsize::new(ids.len()),
            created: Mutex::new(false),
            failed: AtomicBool::new(false),
        });
    }
}

/// State the workers share.
struct Shared<'a, 'r> {
    repo: &'r Repository,
    cancel: &'a Cancel,
    verify: bool,
    plan: &'a Plan,
    errors: Mutex<Vec<String>>,
    done_files: AtomicU64,
    bytes: AtomicU64,
    verified: AtomicU64,
    progress: Mutex<Box<dyn FnMut(RestoreProgress) + Send + 'a>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking worker aborts the restore anyway (the scope re-raises
    // it); the data behind these locks stays consistent regardless.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared<'_, '_> {
    fn error(&self, msg: String) {
        lock(&self.errors).push(msg);
    }

    /// Run the jobs on worker threads (several per core: much of a
    /// restore of small files is waiting on file system calls), and at
    /// least one per connection the backend asks for (a remote read is
    /// mostly waiting on the network).
    fn run(&self, jobs: &[Job]) {
        let next = AtomicUsize::new(0);
        let work = || loop {
            if self.cancel.is_cancelled() {
                return;
            }
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(job) = jobs.get(i) else { return };
            self.run_job(job);
        };
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 4)
            * 2;
        let n = n.max(self.repo.backend.connections()).min(jobs.len());
        std::thread::scope(|s| {
            for i in 1..n {
                // A thread that cannot start only costs parallelism: this
                // thread works through the jobs too.
                let _ = std::thread::Builder::new()
                    .name(format!("bulwark-restore-{i}"))
                    .spawn_scoped(s, work);
            }
            work();
        });
    }

    fn run_job(&self, job: &Job) {
        let uses = &self.plan.uses[job.uses.clone()];
        let pack = self.plan.packs[job.pack as usize];
        let len = match u32::try_from(job.len) {
            Ok(l) => l,
            Err(_) => {
                let e = Error::format(format!("pack {pack}"), "blob run too long");
                return self.fail_uses(uses, &e);
            }
        };
        let data =
            match self
                .repo
                .backend
                .read_range(FileType::Pack, &pack.to_hex(), job.start, len)
            {
                Ok(d) => d,
                Err(e) => return self.fail_uses(uses, &e),
            };
        // The writes of one blob are neighbours: decode it once for all.
        for group in uses.chunk_by(|a, b| a.blob == b.blob) {
            // A run holds up to hundreds of small blobs: stop between them.
            if self.cancel.is_cancelled() {
                return;
            }
            let blob = group[0].blob;
            let at = (blob.offset as u64 - job.start) as usize;
            let Some(enc) = data.get(at..at + blob.length as usize) else {
                let e = Error::format(format!("pack {pack}"), "short read");
                self.fail_uses(group, &e);
                continue;
            };
            match self.repo.decode_blob(&IndexEntry { pack, blob }, enc) {
                Ok(plain) => {
                    for u in group {
                        self.write(u.file as usize, u.offset, &plain);
                    }
                }
                Err(e) => self.fail_uses(group, &e),
            }
        }
    }

    fn fail_uses(&self, uses: &[BlobUse], e: &Error) {
        for u in uses {
            self.fail(u.file as usize, e);
        }
    }

    /// A write for file `f` failed: report the file once, and count the
    /// write as done so that the file's state stays consistent.
    fn fail(&self, f: usize, e: &Error) {
        let fp = &self.plan.files[f];
        if !fp.failed.swap(true, Ordering::Relaxed) {
            self.error(format!(
                "{}: {e}",
                self.plan.snap_path(fp.dir, &fp.name).display()
            ));
        }
        fp.remaining.fetch_sub(1, Ordering::AcqRel);
    }

    /// Write one blob's plaintext at `off` in file `f`.
    fn write(&self, f: usize, off: u64, data: &[u8]) {
        let fp = &self.plan.files[f];
        if fp.failed.load(Ordering::Relaxed) {
            fp.remaining.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        let path = self.plan.path(fp.dir, &fp.name);
        if fp.targets == 1 {
            // The common case (small files): create, write, set metadata,
            // close, all on one descriptor.
            let r = create_file(&path).and_then(|file| {
                file.write_all_at(data, 0)
                    .map_err(|e| Error::io("write", &path, e))?;
                Ok(file)
            });
            fp.remaining.fetch_sub(1, Ordering::AcqRel);
            match r {
                Ok(file) => {
                    self.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                    self.finish(f, &path, &file);
                }
                Err(e) => {
                    fp.failed.store(true, Ordering::Relaxed);
                    self.error(format!(
                        "{}: {e}",
                        self.plan.snap_path(fp.dir, &fp.name).display()
                    ));
                }
            }
            return;
        }
        let r = (|| {
            let file = {
                let mut created = lock(&fp.created);
                if *created {
                    fs::OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(|e| Error::io("open", &path, e))?
                } else {
                    let file = create_file(&path)?;
                    *created = true;
                    file
                }
            };
            file.write_all_at(data, off)
                .map_err(|e| Error::io("write", &path, e))?;
            Ok::<_, Error>(file)
        })();
        match r {
            Ok(file) => {
                self.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                if fp.remaining.fetch_sub(1, Ordering::AcqRel) == 1
                    && !fp.failed.load(Ordering::Relaxed)
                {
                    self.finish(f, &path, &file);
                }
            }
            Err(e) => self.fail(f, &e),
        }
    }

    /// File `f` has no content: create it empty and finish it.
    fn complete(&self, f: usize) {
        let fp = &self.plan.files[f];
        let path = self.plan.path(fp.dir, &fp.name);
        match create_file(&path) {
            Ok(file) => self.finish(f, &path, &file),
            Err(e) => {
                fp.failed.store(true, Ordering::Relaxed);
                self.error(format!(
                    "{}: {e}",
                    self.plan.snap_path(fp.dir, &fp.name).display()
                ));
            }
        }
    }

    /// File `f` (at `path`) is complete: metadata through its open
    /// descriptor, then count, progress and verification.
    fn finish(&self, f: usize, path: &Path, file: &fs::File) {
        let fp = &self.plan.files[f];
        let mut errs = Vec::new();
        finish_meta_file(file, path, &fp.meta, &mut errs);
        self.counted(path, fp.dir, &fp.name, fp.content.as_deref(), errs);
    }

    /// Count a finished file, report progress and verify it if asked
    /// (`content` is kept then).
    fn counted(
        &self,
        path: &Path,
        dir: u32,
        name: &str,
        content: Option<&[Id]>,
        errs: Vec<String>,
    ) {
        if !errs.is_empty() {
            lock(&self.errors).extend(errs);
        }
        let files = self.done_files.fetch_add(1, Ordering::Relaxed) + 1;
        (lock(&self.progress))(RestoreProgress {
            files,
            bytes: self.bytes.load(Ordering::Relaxed),
        });
        if self.verify {
            match verify_file(self.repo, path, content.unwrap_or_default()) {
                Ok(()) => {
                    self.verified.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => self.error(format!(
                    "verify {}: {e}",
                    self.plan.snap_path(dir, name).display()
                )),
            }
        }
    }

    /// Restore a hard link to a complete file; if the file system refuses
    /// the link, copy the first file instead.
    fn link(&self, l: &LinkPlan) {
        let first = &self.plan.files[l.first];
        let snap_path = self.plan.snap_path(l.dir, &l.name);
        if first.failed.load(Ordering::Relaxed) {
            return self.error(format!(
                "{}: not restored: its hard link {} failed",
                snap_path.display(),
                self.plan.snap_path(first.dir, &first.name).display()
            ));
        }
        let path = self.plan.path(l.dir, &l.name);
        let first_path = self.plan.path(first.dir, &first.name);
        let _ = fs::remove_file(&path);
        let linked = fs::hard_link(&first_path, &path).is_ok();
        if !linked {
            if let Err(e) = create_file(&path).and_then(|mut out| {
                let mut src =
                    fs::File::open(&first_path).map_err(|e| Error::io("open", &first_path, e))?;
                std::io::copy(&mut src, &mut out)
                    .map(|_| ())
                    .map_err(|e| Error::io("copy", &path, e))
            }) {
                return self.error(format!("{}: {e}", snap_path.display()));
            }
        }
        let mut errs = Vec::new();
        finish_meta_path(&path, &l.meta, true, &mut errs);
        self.counted(&path, l.dir, &l.name, l.content.as_deref(), errs);
    }
}

/// Hash the restored file blob by blob against the content list.
fn verify_file(repo: &Repository, path: &Path, content: &[Id]) -> Result<()> {
    let mut f = fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut buf = Vec::new();
    for id in content {
        let e = repo
            .lookup(BlobType::Data, id)
            .ok_or_else(|| Error::BlobNotFound(id.to_hex()))?;
        let len = e.blob.data_length() as usize;
        buf.resize(len, 0);
        f.read_exact(&mut buf)
            .map_err(|e| Error::io("read", path, e))?;
        let got = Id::hash(&buf);
        if got != *id {
            return Err(Error::HashMismatch {
                what: path.display().to_string(),
                expected: id.to_hex(),
                actual: got.to_hex(),
            });
        }
    }
    let mut extra = [0u8; 1];
    if f.read(&mut extra).map_err(|e| Error::io("read", path, e))? != 0 {
        return Err(Error::format(
            path.display().to_string(),
            "file is longer than in the snapshot",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod depth_tests;
#[cfg(test)]
mod plan_tests;
#[cfg(test)]
mod tests;
