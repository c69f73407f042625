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

use std::collections::HashMap;
use std::fs;
use std::io::{ErrorKind, Read};
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
    fs::create_dir_all(&opts.target).map_err(|e| Error::io("create", &opts.target, e))?;
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
    };
    w.restore_tree(&snap.tree, &opts.target, Path::new("/"), false, true)?;
    let Walker {
        mut summary,
        plan,
        dirs,
        ..
    } = w;
    let jobs = plan_jobs(plan.blobs);
    let files = plan.files;
    let state = Shared {
        repo,
        cancel: &opts.cancel,
        verify: opts.verify,
        files: &files,
        errors: Mutex::new(Vec::new()),
        done_files: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        verified: AtomicU64::new(0),
        progress: Mutex::new(Box::new(progress)),
    };
    // Files without content have nothing to wait for.
    for (i, f) in files.iter().enumerate() {
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
    for (path, node) in &dirs {
        finish_meta_path(path, node, true, &mut summary.errors);
    }
    Ok(summary)
}

/// One file to write.
struct FilePlan {
    path: PathBuf,
    /// The path in the snapshot, for messages.
    snap_path: PathBuf,
    node: Node,
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
    path: PathBuf,
    snap_path: PathBuf,
    node: Node,
    /// Index of the first file with this (device, inode).
    first: usize,
}

/// Where one blob goes: file index and offset in the file.
type Target = (usize, u64);

/// A blob to read and every place it is written to.
#[derive(Debug, Clone, PartialEq)]
struct BlobUse {
    blob: PackedBlob,
    targets: Vec<Target>,
}

/// The content of a restore: files, links, and per pack the blobs they need.
#[derive(Default)]
struct Plan {
    files: Vec<FilePlan>,
    links: Vec<LinkPlan>,
    /// Packs in first-use order, with their blobs (each once).
    blobs: Vec<(Id, Vec<BlobUse>)>,
    /// (pack index in `blobs`) by pack id.
    pack_pos: HashMap<Id, usize>,
    /// (pack index, blob index) by blob id.
    blob_pos: HashMap<Id, (usize, usize)>,
}

impl Plan {
    fn add_target(&mut self, e: &IndexEntry, target: Target) {
        if let Some(&(p, b)) = self.blob_pos.get(&e.blob.id) {
            self.blobs[p].1[b].targets.push(target);
            return;
        }
        let p = *self.pack_pos.entry(e.pack).or_insert_with(|| {
            self.blobs.push((e.pack, Vec::new()));
            self.blobs.len() - 1
        });
        let list = &mut self.blobs[p].1;
        list.push(BlobUse {
            blob: e.blob,
            targets: vec![target],
        });
        self.blob_pos.insert(e.blob.id, (p, list.len() - 1));
    }
}

/// One read: a run of blobs of one pack, `[start, start + len)`.
#[derive(Debug, Clone, PartialEq)]
struct Job {
    pack: Id,
    start: u64,
    len: u64,
    blobs: Vec<BlobUse>,
}

/// Cut each pack's blobs (sorted by offset) into runs read with one
/// request: neighbours closer than [`MAX_GAP`] share a read as long as it
/// stays within [`MAX_READ`] (a single larger blob is read alone).
fn plan_jobs(packs: Vec<(Id, Vec<BlobUse>)>) -> Vec<Job> {
    let mut jobs = Vec::new();
    for (pack, mut blobs) in packs {
        blobs.sort_by_key(|b| b.blob.offset);
        let mut cur: Option<Job> = None;
        for b in blobs {
            let (off, len) = (b.blob.offset as u64, b.blob.length as u64);
            if let Some(j) = cur.as_mut() {
                let end = j.start + j.len;
                if off >= end && off - end <= MAX_GAP && off + len - j.start <= MAX_READ {
                    j.len = off + len - j.start;
                    j.blobs.push(b);
                    continue;
                }
                jobs.extend(cur.take());
            }
            cur = Some(Job {
                pack,
                start: off,
                len,
                blobs: vec![b],
            });
        }
        jobs.extend(cur);
    }
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
    /// Restored directories with their nodes, children before parents.
    dirs: Vec<(PathBuf, Node)>,
}

/// Set mtime and atime; `follow` false for symlinks.
fn set_times(path: &Path, node: &Node, follow: bool) -> std::io::Result<()> {
    let (a, m) = file_times(node);
    if follow {
        filetime::set_file_times(path, a, m)
    } else {
        filetime::set_symlink_file_times(path, a, m)
    }
}

/// (atime, mtime) of a node.
fn file_times(node: &Node) -> (filetime::FileTime, filetime::FileTime) {
    let ft = |t: &chrono::DateTime<chrono::FixedOffset>| {
        filetime::FileTime::from_unix_time(t.timestamp(), t.timestamp_subsec_nanos())
    };
    (ft(&node.atime), ft(&node.mtime))
}

// Metadata goes on in restic's order: owner first (chown clears the
// set-user-ID and set-group-ID bits and file capabilities), then mode,
// then extended attributes, then times (which the others would change).

/// Owner, mode, extended attributes and times by path (directories,
/// symlinks, hard links); `follow` false for symlinks, whose mode cannot
/// be set.
fn finish_meta_path(path: &Path, node: &Node, follow: bool, errors: &mut Vec<String>) {
    // Ownership only sticks for root; for others it is expected to fail.
    let _ = std::os::unix::fs::lchown(path, Some(node.uid), Some(node.gid));
    if follow {
        use std::os::unix::fs::PermissionsExt;
        let perm = fs::Permissions::from_mode(unix_perm_from_go(node.mode));
        if let Err(e) = fs::set_permissions(path, perm) {
            errors.push(format!("chmod {}: {e}", path.display()));
        }
    }
    let attrs = node.extended_attributes.as_ref();
    crate::xattrs::restore(attrs, path, |n, v| xattr::set(path, n, v), errors);
    if let Err(e) = set_times(path, node, follow) {
        errors.push(format!("set times {}: {e}", path.display()));
    }
}

/// The same through an open file: no path lookups.
fn finish_meta_file(f: &fs::File, path: &Path, node: &Node, errors: &mut Vec<String>) {
    use std::os::unix::fs::PermissionsExt;
    use xattr::FileExt;
    let _ = std::os::unix::fs::fchown(f, Some(node.uid), Some(node.gid));
    let perm = fs::Permissions::from_mode(unix_perm_from_go(node.mode));
    if let Err(e) = f.set_permissions(perm) {
        errors.push(format!("chmod {}: {e}", path.display()));
    }
    let attrs = node.extended_attributes.as_ref();
    crate::xattrs::restore(attrs, path, |n, v| f.set_xattr(n, v), errors);
    let (a, m) = file_times(node);
    if let Err(e) = filetime::set_file_handle_times(f, Some(a), Some(m)) {
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
                        self.dirs.push((path, node));
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
                    self.plan_file(path, snap_path, node);
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
                            finish_meta_path(&path, &node, false, &mut self.summary.errors);
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

    /// Record a file (or a hard link to one planned earlier) in the plan.
    fn plan_file(&mut self, path: PathBuf, snap_path: PathBuf, node: Node) {
        // Hard links: files that shared an inode when backed up share one
        // again (as restic restores them); only the first is written.
        let link_key = (node.links > 1 && node.inode != 0).then_some((node.device_id, node.inode));
        if let Some(&first) = link_key.and_then(|k| self.hardlinks.get(&k)) {
            self.plan.links.push(LinkPlan {
                path,
                snap_path,
                node,
                first,
            });
            return;
        }
        // Every blob must be indexed (and plausible) before anything is
        // planned: a file that cannot be complete is reported, not written.
        let content = node.content.as_deref().unwrap_or_default();
        let mut entries = Vec::with_capacity(content.len());
        for id in content {
            match self.repo.lookup(BlobType::Data, id) {
                Some(e) if e.blob.length as usize >= CRYPTO_OVERHEAD => entries.push(*e),
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
        for e in &entries {
            self.plan.add_target(e, (idx, offset));
            offset += e.blob.data_length() as u64;
        }
        self.plan.files.push(FilePlan {
            path,
            snap_path,
            node,
            targets: entries.len(),
            remaining: AtomicUsize::new(entries.len()),
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
    files: &'a [FilePlan],
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
    /// restore of small files is waiting on file system calls).
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
        let n = n.min(jobs.len());
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
        let len = match u32::try_from(job.len) {
            Ok(l) => l,
            Err(_) => {
                let e = Error::format(format!("pack {}", job.pack), "blob run too long");
                return self.fail_all(job, &e);
            }
        };
        let data =
            match self
                .repo
                .backend
                .read_range(FileType::Pack, &job.pack.to_hex(), job.start, len)
            {
                Ok(d) => d,
                Err(e) => return self.fail_all(job, &e),
            };
        for b in &job.blobs {
            // A run holds up to hundreds of small blobs: stop between them.
            if self.cancel.is_cancelled() {
                return;
            }
            let at = (b.blob.offset as u64 - job.start) as usize;
            let Some(enc) = data.get(at..at + b.blob.length as usize) else {
                let e = Error::format(format!("pack {}", job.pack), "short read");
                self.fail_blob(b, &e);
                continue;
            };
            let e = IndexEntry {
                pack: job.pack,
                blob: b.blob,
            };
            match self.repo.decode_blob(&e, enc) {
                Ok(plain) => {
                    for &(f, off) in &b.targets {
                        self.write(f, off, &plain);
                    }
                }
                Err(e) => self.fail_blob(b, &e),
            }
        }
    }

    fn fail_all(&self, job: &Job, e: &Error) {
        for b in &job.blobs {
            self.fail_blob(b, e);
        }
    }

    fn fail_blob(&self, b: &BlobUse, e: &Error) {
        for &(f, _) in &b.targets {
            self.fail(f, e);
        }
    }

    /// A write for file `f` failed: report the file once, and count the
    /// write as done so that the file's state stays consistent.
    fn fail(&self, f: usize, e: &Error) {
        let fp = &self.files[f];
        if !fp.failed.swap(true, Ordering::Relaxed) {
            self.error(format!("{}: {e}", fp.snap_path.display()));
        }
        fp.remaining.fetch_sub(1, Ordering::AcqRel);
    }

    /// Write one blob's plaintext at `off` in file `f`.
    fn write(&self, f: usize, off: u64, data: &[u8]) {
        let fp = &self.files[f];
        if fp.failed.load(Ordering::Relaxed) {
            fp.remaining.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        if fp.targets == 1 {
            // The common case (small files): create, write, set metadata,
            // close, all on one descriptor.
            let r = create_file(&fp.path).and_then(|file| {
                file.write_all_at(data, 0)
                    .map_err(|e| Error::io("write", &fp.path, e))?;
                Ok(file)
            });
            fp.remaining.fetch_sub(1, Ordering::AcqRel);
            match r {
                Ok(file) => {
                    self.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                    self.finish(f, &file);
                }
                Err(e) => {
                    fp.failed.store(true, Ordering::Relaxed);
                    self.error(format!("{}: {e}", fp.snap_path.display()));
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
                        .open(&fp.path)
                        .map_err(|e| Error::io("open", &fp.path, e))?
                } else {
                    let file = create_file(&fp.path)?;
                    *created = true;
                    file
                }
            };
            file.write_all_at(data, off)
                .map_err(|e| Error::io("write", &fp.path, e))?;
            Ok::<_, Error>(file)
        })();
        match r {
            Ok(file) => {
                self.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                if fp.remaining.fetch_sub(1, Ordering::AcqRel) == 1
                    && !fp.failed.load(Ordering::Relaxed)
                {
                    self.finish(f, &file);
                }
            }
            Err(e) => self.fail(f, &e),
        }
    }

    /// File `f` has no content: create it empty and finish it.
    fn complete(&self, f: usize) {
        let fp = &self.files[f];
        match create_file(&fp.path) {
            Ok(file) => self.finish(f, &file),
            Err(e) => {
                fp.failed.store(true, Ordering::Relaxed);
                self.error(format!("{}: {e}", fp.snap_path.display()));
            }
        }
    }

    /// File `f` is complete: metadata through its open descriptor, then
    /// count, progress and verification.
    fn finish(&self, f: usize, file: &fs::File) {
        let fp = &self.files[f];
        let mut errs = Vec::new();
        finish_meta_file(file, &fp.path, &fp.node, &mut errs);
        self.counted(&fp.path, &fp.snap_path, &fp.node, errs);
    }

    /// Count a finished file, report progress and verify it if asked.
    fn counted(&self, path: &Path, snap_path: &Path, node: &Node, errs: Vec<String>) {
        if !errs.is_empty() {
            lock(&self.errors).extend(errs);
        }
        let files = self.done_files.fetch_add(1, Ordering::Relaxed) + 1;
        (lock(&self.progress))(RestoreProgress {
            files,
            bytes: self.bytes.load(Ordering::Relaxed),
        });
        if self.verify {
            match verify_file(self.repo, path, node) {
                Ok(()) => {
                    self.verified.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => self.error(format!("verify {}: {e}", snap_path.display())),
            }
        }
    }

    /// Restore a hard link to a complete file; if the file system refuses
    /// the link, copy the first file instead.
    fn link(&self, l: &LinkPlan) {
        let first = &self.files[l.first];
        if first.failed.load(Ordering::Relaxed) {
            return self.error(format!(
                "{}: not restored: its hard link {} failed",
                l.snap_path.display(),
                first.snap_path.display()
            ));
        }
        let _ = fs::remove_file(&l.path);
        let linked = fs::hard_link(&first.path, &l.path).is_ok();
        if !linked {
            if let Err(e) = create_file(&l.path).and_then(|mut out| {
                let mut src =
                    fs::File::open(&first.path).map_err(|e| Error::io("open", &first.path, e))?;
                std::io::copy(&mut src, &mut out)
                    .map(|_| ())
                    .map_err(|e| Error::io("copy", &l.path, e))
            }) {
                return self.error(format!("{}: {e}", l.snap_path.display()));
            }
        }
        let mut errs = Vec::new();
        finish_meta_path(&l.path, &l.node, true, &mut errs);
        self.counted(&l.path, &l.snap_path, &l.node, errs);
    }
}

/// Hash the restored file blob by blob against the content list.
fn verify_file(repo: &Repository, path: &Path, node: &Node) -> Result<()> {
    let mut f = fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut buf = Vec::new();
    for id in node.content.iter().flatten() {
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
mod tests {
    use super::*;
    use crate::backend::memory::MemoryBackend;
    use crate::crypto::KdfParams;
    use crate::format::snapshot::Snapshot;
    use crate::format::tree::{Node, Tree};
    use crate::repository::BlobSaver;

    #[test]
    fn hostile_names_stay_inside_the_target() {
        for (name, ok) in [
            ("a", true),
            ("..", false),
            (".", false),
            ("a/b", false),
            ("", false),
            ("x\0", false),
        ] {
            assert_eq!(crate::format::tree::is_safe_name(name), ok, "{name:?}");
        }
        // An authenticated but hostile tree (written with the key).
        let mut repo = Repository::init(
            Box::new(MemoryBackend::new()),
            b"pw",
            KdfParams::INSECURE_FAST,
        )
        .unwrap();
        let mut saver = BlobSaver::new();
        let (blob, _) = saver.save(&mut repo, BlobType::Data, b"evil").unwrap();
        let mk = |name: &str| Node {
            name: name.into(),
            node_type: "file".into(),
            mode: 0o644,
            mtime: crate::format::time::zero(),
            atime: crate::format::time::zero(),
            ctime: crate::format::time::zero(),
            uid: 0,
            gid: 0,
            user: String::new(),
            group: String::new(),
            inode: 0,
            device_id: 0,
            size: 4,
            links: 1,
            linktarget: String::new(),
            extended_attributes: None,
            device: 0,
            content: Some(vec![blob]),
            subtree: None,
            error: String::new(),
        };
        // A symlink "d" to the outside, then a directory "d" holding a file.
        let outside = tempfile::tempdir().unwrap();
        let sub = Tree {
            nodes: vec![mk("planted")],
        };
        let (sub_id, _) = saver
            .save(&mut repo, BlobType::Tree, &sub.to_json().unwrap())
            .unwrap();
        let mut link = mk("d");
        link.node_type = "symlink".into();
        link.content = None;
        link.linktarget = outside.path().display().to_string();
        let mut dir = mk("d");
        dir.node_type = "dir".into();
        dir.content = None;
        dir.subtree = Some(sub_id);
        let tree = Tree {
            nodes: vec![mk("../escaped"), link, dir, mk("fine")],
        };
        let (tid, _) = saver
            .save(&mut repo, BlobType::Tree, &tree.to_json().unwrap())
            .unwrap();
        saver.finish(&mut repo).unwrap();
        let snap = Snapshot::for_tests(tid, "/x");
        repo.save_snapshot(&snap).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("target");
        let r = restore(
            &repo,
            "latest",
            &RestoreOptions {
                target: target.clone(),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(r.files, 1);
        assert_eq!(r.errors.len(), 2, "{:?}", r.errors);
        assert!(!tmp.path().join("escaped").exists());
        assert!(!outside.path().join("planted").exists());
        assert_eq!(std::fs::read(target.join("fine")).unwrap(), b"evil");
    }
}

#[cfg(test)]
mod depth_tests {
    use super::*;
    use crate::backend::memory::MemoryBackend;
    use crate::crypto::KdfParams;
    use crate::format::snapshot::Snapshot;
    use crate::format::tree::{Node, Tree, MAX_TREE_DEPTH};
    use crate::repository::BlobSaver;

    fn dir(name: &str, sub: Id) -> Node {
        Node {
            name: name.into(),
            node_type: "dir".into(),
            mode: 0o755 | crate::format::tree::go::DIR,
            mtime: crate::format::time::zero(),
            atime: crate::format::time::zero(),
            ctime: crate::format::time::zero(),
            uid: 0,
            gid: 0,
            user: String::new(),
            group: String::new(),
            inode: 0,
            device_id: 0,
            size: 0,
            links: 0,
            linktarget: String::new(),
            extended_attributes: None,
            device: 0,
            content: None,
            subtree: Some(sub),
            error: String::new(),
        }
    }

    /// A chain of `depth` nested directories.
    fn chain(depth: usize) -> Repository {
        let mut repo = Repository::init(
            Box::new(MemoryBackend::new()),
            b"pw",
            KdfParams::INSECURE_FAST,
        )
        .unwrap();
        let mut saver = BlobSaver::new();
        let (mut id, _) = saver
            .save(
                &mut repo,
                BlobType::Tree,
                &Tree::default().to_json().unwrap(),
            )
            .unwrap();
        for _ in 0..depth {
            let t = Tree {
                nodes: vec![dir("d", id)],
            };
            id = saver
                .save(&mut repo, BlobType::Tree, &t.to_json().unwrap())
                .unwrap()
                .0;
        }
        saver.finish(&mut repo).unwrap();
        let snap = Snapshot::for_tests(id, "/d");
        repo.save_snapshot(&snap).unwrap();
        repo
    }

    /// Hostile nesting is an error, not a stack overflow, even on a 2 MiB
    /// stack (tokio's blocking threads, Rust's spawned threads).
    #[test]
    fn deep_trees_are_refused_within_a_small_stack() {
        let repo = chain(MAX_TREE_DEPTH + 5);
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("t");
        let r = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                restore(
                    &repo,
                    "latest",
                    &RestoreOptions {
                        target,
                        ..Default::default()
                    },
                )
            })
            .unwrap()
            .join()
            .unwrap();
        // The walk stops at the limit (or earlier, where the file system
        // refuses long paths) and reports it.
        let summary = r.unwrap();
        assert!(!summary.errors.is_empty());
    }

    #[test]
    fn deep_trees_are_refused_by_export_within_a_small_stack() {
        let repo = chain(MAX_TREE_DEPTH + 5);
        let r = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                crate::export::export_tar_gz(&repo, "latest", std::io::sink()).map(|_| ())
            })
            .unwrap()
            .join()
            .unwrap();
        assert!(r.is_err());
    }
}

#[cfg(test)]
mod plan_tests {
    use super::*;
    use crate::backend::local::LocalBackend;
    use crate::crypto::KdfParams;
    use crate::format::snapshot::Snapshot;
    use crate::format::tree::Tree;
    use crate::repository::BlobSaver;

    fn use_at(offset: u32, length: u32) -> BlobUse {
        BlobUse {
            blob: PackedBlob {
                id: Id::hash(&offset.to_le_bytes()),
                blob_type: BlobType::Data,
                offset,
                length,
                uncompressed_length: None,
            },
            targets: vec![(0, 0)],
        }
    }

    #[test]
    fn jobs_merge_neighbours_and_split_at_gaps_and_size() {
        const M: u32 = MAX_READ as u32;
        const G: u32 = MAX_GAP as u32;
        // (blobs as (offset, length), expected reads as (start, len, blobs))
        type Case = (Vec<(u32, u32)>, Vec<(u64, u64, usize)>);
        let cases: Vec<Case> = vec![
            (vec![(0, 100)], vec![(0, 100, 1)]),
            // Adjacent and out of order: one read.
            (vec![(100, 50), (0, 100)], vec![(0, 150, 2)]),
            // A small gap is read through.
            (vec![(0, 100), (100 + G, 10)], vec![(0, 110 + G as u64, 2)]),
            // A larger gap starts a new read.
            (
                vec![(0, 100), (101 + G, 10)],
                vec![(0, 100, 1), (101 + G as u64, 10, 1)],
            ),
            // Reads stop at MAX_READ...
            (
                vec![(0, M / 2), (M / 2, M / 2), (M, 1)],
                vec![(0, M as u64, 2), (M as u64, 1, 1)],
            ),
            // ... except a single blob larger than that, read alone.
            (
                vec![(0, 10), (10, 2 * M), (10 + 2 * M, 5)],
                vec![(0, 10, 1), (10, 2 * M as u64, 1), (10 + 2 * M as u64, 5, 1)],
            ),
        ];
        for (i, (blobs, want)) in cases.into_iter().enumerate() {
            let pack = Id::hash(b"pack");
            let jobs = plan_jobs(vec![(
                pack,
                blobs.iter().map(|&(o, l)| use_at(o, l)).collect(),
            )]);
            let got: Vec<(u64, u64, usize)> = jobs
                .iter()
                .map(|j| (j.start, j.len, j.blobs.len()))
                .collect();
            assert_eq!(got, want, "case {i}");
            for j in &jobs {
                assert_eq!(j.pack, pack);
                for b in &j.blobs {
                    assert!(b.blob.offset as u64 >= j.start, "case {i}");
                    assert!(b.blob.offset as u64 + b.blob.length as u64 <= j.start + j.len);
                }
            }
        }
        // Packs stay apart.
        let jobs = plan_jobs(vec![
            (Id::hash(b"a"), vec![use_at(0, 10)]),
            (Id::hash(b"b"), vec![use_at(10, 10)]),
        ]);
        assert_eq!(jobs.len(), 2);
    }

    fn file(name: &str, content: &[Id], size: u64, mode: u32) -> Node {
        Node {
            name: name.into(),
            node_type: "file".into(),
            mode,
            mtime: chrono::DateTime::parse_from_rfc3339("2021-05-06T07:08:09.123456789+02:00")
                .unwrap(),
            atime: crate::format::time::zero(),
            ctime: crate::format::time::zero(),
            uid: 0,
            gid: 0,
            user: String::new(),
            group: String::new(),
            inode: 0,
            device_id: 0,
            size,
            links: 1,
            linktarget: String::new(),
            extended_attributes: None,
            device: 0,
            content: Some(content.to_vec()),
            subtree: None,
            error: String::new(),
        }
    }

    /// Blobs in two packs: `a` alone in the first, `b` and `c` in the
    /// second. Files: `multi` = a+b+a (two packs, a blob twice), `dup1`
    /// and `dup2` = b (one blob, several files), `conly` = c, `aonly` = a,
    /// `empty`, all inside directory `x`.
    struct Fixture {
        _tmp: tempfile::TempDir,
        repo_path: PathBuf,
        repo: Repository,
        a: Vec<u8>,
        b: Vec<u8>,
        c: Vec<u8>,
    }

    fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let repo_path = tmp.path().join("repo");
        let mut repo = Repository::init(
            Box::new(LocalBackend::new(&repo_path)),
            b"pw",
            KdfParams::INSECURE_FAST,
        )
        .unwrap();
        let a = b"first blob, alone in its pack\n".repeat(40);
        let b = b"second blob shared by files\n".repeat(30);
        let c = b"third blob, b's pack neighbour\n".repeat(20);
        let mut s1 = BlobSaver::new();
        let (ia, _) = s1.save(&mut repo, BlobType::Data, &a).unwrap();
        s1.finish(&mut repo).unwrap();
        let mut s2 = BlobSaver::new();
        let (ib, _) = s2.save(&mut repo, BlobType::Data, &b).unwrap();
        let (ic, _) = s2.save(&mut repo, BlobType::Data, &c).unwrap();
        let la = a.len() as u64;
        let (lb, lc) = (b.len() as u64, c.len() as u64);
        let sub = Tree {
            nodes: vec![
                file("aonly", &[ia], la, 0o600),
                file("conly", &[ic], lc, 0o644),
                file("dup1", &[ib], lb, 0o644),
                file("dup2", &[ib], lb, 0o444),
                file("empty", &[], 0, 0o640),
                file("multi", &[ia, ib, ia], 2 * la + lb, 0o755),
            ],
        };
        let (sid, _) = s2
            .save(&mut repo, BlobType::Tree, &sub.to_json().unwrap())
            .unwrap();
        let mut dir = file("x", &[], 0, 0o755 | crate::format::tree::go::DIR);
        dir.node_type = "dir".into();
        dir.content = None;
        dir.subtree = Some(sid);
        let root = Tree { nodes: vec![dir] };
        let (tid, _) = s2
            .save(&mut repo, BlobType::Tree, &root.to_json().unwrap())
            .unwrap();
        s2.finish(&mut repo).unwrap();
        assert_ne!(
            repo.lookup(BlobType::Data, &ia).unwrap().pack,
            repo.lookup(BlobType::Data, &ib).unwrap().pack
        );
        let snap = Snapshot::for_tests(tid, "/x");
        repo.save_snapshot(&snap).unwrap();
        Fixture {
            _tmp: tmp,
            repo_path,
            repo,
            a,
            b,
            c,
        }
    }

    fn run(repo: &Repository, target: &Path, include: &[&str]) -> RestoreSummary {
        restore(
            repo,
            "latest",
            &RestoreOptions {
                target: target.to_path_buf(),
                include: include.iter().map(|s| s.to_string()).collect(),
                verify: true,
                ..Default::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn files_spanning_packs_and_shared_blobs_restore_exactly() {
        use std::os::unix::fs::PermissionsExt;
        let fx = fixture();
        let out = tempfile::tempdir().unwrap();
        let mut seen = Vec::new();
        let r = restore_with_progress(
            &fx.repo,
            "latest",
            &RestoreOptions {
                target: out.path().to_path_buf(),
                verify: true,
                ..Default::default()
            },
            |p| seen.push(p.files),
        )
        .unwrap();
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!((r.files, r.verified, r.dirs), (6, 6, 1));
        let multi = [fx.a.clone(), fx.b.clone(), fx.a.clone()].concat();
        let x = out.path().join("x");
        let want: [(&str, &[u8], u32); 6] = [
            ("aonly", &fx.a, 0o600),
            ("conly", &fx.c, 0o644),
            ("dup1", &fx.b, 0o644),
            ("dup2", &fx.b, 0o444),
            ("empty", b"", 0o640),
            ("multi", &multi, 0o755),
        ];
        for (name, content, mode) in want {
            let p = x.join(name);
            assert_eq!(fs::read(&p).unwrap(), content, "{name}");
            let md = fs::metadata(&p).unwrap();
            assert_eq!(md.permissions().mode() & 0o777, mode, "{name}");
            let mtime = filetime::FileTime::from_last_modification_time(&md);
            assert_eq!(
                (mtime.unix_seconds(), mtime.nanoseconds()),
                (1620277689, 123456789),
                "{name}"
            );
        }
        assert_eq!(
            r.bytes,
            (2 * fx.a.len() + 3 * fx.b.len() + fx.c.len() + fx.a.len()) as u64
        );
        // Progress once per file, counting up.
        assert_eq!(seen, (1..=6).collect::<Vec<u64>>());
        // Restoring again over the (partly read-only) result works.
        let again = run(&fx.repo, out.path(), &[]);
        assert!(again.errors.is_empty(), "{:?}", again.errors);
        assert_eq!(fs::read(x.join("dup2")).unwrap(), fx.b);
    }

    #[test]
    fn include_restores_only_the_selected_file() {
        let fx = fixture();
        let out = tempfile::tempdir().unwrap();
        let r = run(&fx.repo, out.path(), &["/x/multi"]);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.files, 1);
        let names: Vec<_> = fs::read_dir(out.path().join("x"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["multi"]);
        assert_eq!(
            fs::read(out.path().join("x/multi")).unwrap(),
            [fx.a.clone(), fx.b.clone(), fx.a.clone()].concat()
        );
    }

    #[test]
    fn a_damaged_blob_fails_only_the_files_using_it() {
        use std::os::unix::fs::PermissionsExt;
        let fx = fixture();
        let e = *fx.repo.lookup(BlobType::Data, &Id::hash(&fx.b)).unwrap();
        let hex = e.pack.to_hex();
        let pack = fx.repo_path.join("data").join(&hex[..2]).join(&hex);
        fs::set_permissions(&pack, fs::Permissions::from_mode(0o644)).unwrap();
        let mut bytes = fs::read(&pack).unwrap();
        bytes[e.blob.offset as usize + 40] ^= 1;
        fs::write(&pack, bytes).unwrap();

        let out = tempfile::tempdir().unwrap();
        let r = run(&fx.repo, out.path(), &[]);
        // The three files using b are named, once each; the rest, c from
        // the same pack included, is restored.
        assert_eq!(r.errors.len(), 3, "{:?}", r.errors);
        for (err, name) in r.errors.iter().zip(["dup1", "dup2", "multi"]) {
            assert!(err.starts_with(&format!("/x/{name}: ")), "{err}");
        }
        assert_eq!(r.files, 3);
        let x = out.path().join("x");
        assert_eq!(fs::read(x.join("aonly")).unwrap(), fx.a);
        assert_eq!(fs::read(x.join("conly")).unwrap(), fx.c);
        assert_eq!(fs::read(x.join("empty")).unwrap(), b"");
    }
}
