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
mod depth_tests;
#[cfg(test)]
mod plan_tests;
#[cfg(test)]
mod tests;
