//! `backup`: walk the given paths, chunk and deduplicate file content, and
//! write packs, then the index, then the snapshot (the order that keeps the
//! repository valid at every instant).
//!
//! Like restic, the snapshot's tree starts at `/`: backing up
//! `/srv/app` yields nodes `srv` and `srv/app`, the intermediate directories
//! carrying their own metadata.
//!
//! The work overlaps on every core: one thread walks (list, stat, compare
//! with the parent snapshot), reader threads read, chunk and hash files,
//! the saver's workers compress and encrypt, and a writer thread stores
//! packs. Memory is bounded: a file streams through its reader one chunk
//! (at most 8 MiB) at a time, the walk runs at most a few hundred files
//! ahead of the readers, and packs are flushed at 16 MiB.
//!
//! Below the paths the user named, entries are reached only through
//! directory descriptors, and a file is read only if the inode opened is
//! the one the walk saw (see [`dirfd`]): a tree that someone else can
//! write to cannot make a backup run as root read a file it points to.
//!
//! Descriptors are bounded too. The walk keeps at most
//! [`MAX_OPEN_DIRS`] of the directories it is inside open (deeper, it
//! closes the outermost and reopens it through `..` on the way back), and
//! each file handed to the readers holds its directory open until it is
//! read, which the [`MAX_OUTSTANDING`] limit bounds: at most about
//! `MAX_OPEN_DIRS + MAX_OUTSTANDING + MAX_READERS` descriptors, well under
//! the usual limit of 1024.

mod dirfd;
mod node;
mod read;
mod stream;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ffi::{CString, OsStr};
use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use chrono::{DateTime, FixedOffset};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use rustix::fs::FileType;

use self::dirfd::{Meta, Opened};
use self::node::Names;
use self::read::{read_file, read_files, FileRef, ReadJob, ReadOutcome};
use crate::cancel::Cancel;
use crate::chunker::{Chunker, ChunkerTables};
use crate::error::{Error, Result};
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Node, Tree};
use crate::format::{time, BlobType};
use crate::id::Id;
use crate::repository::{BlobSaver, Repository};

pub use self::stream::backup_stream;

/// What to back up and how.
#[derive(Debug, Clone, Default)]
pub struct BackupOptions {
    /// Files and directories to back up.
    pub paths: Vec<PathBuf>,
    /// Glob patterns to leave out. A pattern starting with `/` matches the
    /// absolute path; any other pattern matches at any depth (`*.tmp`,
    /// `cache/*`). `*` does not cross `/`; `**` does.
    pub excludes: Vec<String>,
    /// Tags for the snapshot.
    pub tags: Vec<String>,
    /// Host name to record (default: this machine's).
    pub hostname: Option<String>,
    /// The parent snapshot. `None` picks the latest snapshot with the same
    /// host and paths, as restic does.
    pub parent: Option<Id>,
    /// Read every file even when the parent says it is unchanged.
    pub force: bool,
    /// Snapshot time (default: now).
    pub time: Option<DateTime<FixedOffset>>,
    /// Stops the backup (polled per entry and per chunk read): it returns
    /// [`Error::Cancelled`] and saves no snapshot.
    pub cancel: Cancel,
}

/// Progress reported after each file.
#[derive(Debug, Clone, Copy, Default)]
pub struct BackupProgress {
    /// Files done so far.
    pub files: u64,
    /// Bytes of file content processed so far.
    pub bytes: u64,
}

/// What a backup did.
#[derive(Debug, Clone, Default)]
pub struct BackupSummary {
    /// The new snapshot.
    pub snapshot_id: Id,
    /// The parent used for change detection.
    pub parent: Option<Id>,
    /// Files not in the parent.
    pub files_new: u64,
    /// Files in the parent whose metadata changed (re-read).
    pub files_changed: u64,
    /// Files whose content was reused from the parent without reading.
    pub files_unmodified: u64,
    /// Directories.
    pub dirs: u64,
    /// Bytes of file content in the snapshot.
    pub bytes_processed: u64,
    /// New data blobs written.
    pub data_blobs_added: u64,
    /// New tree blobs written.
    pub tree_blobs_added: u64,
    /// Plaintext bytes of new data blobs.
    pub data_added: u64,
    /// Bytes of new data blobs as stored (compressed, encrypted).
    pub data_added_packed: u64,
    /// Pack files written.
    pub packs_written: u64,
    /// Entries that could not be read or changed type or inode while the
    /// backup looked at them (they are left out of the snapshot), and
    /// extended attributes that could not be read (the entry is kept).
    pub errors: Vec<String>,
}

impl BackupSummary {
    /// restic's record of this backup in its snapshot, the counters being
    /// final (blob and pack statistics included).
    pub(crate) fn to_snapshot_summary(
        &self,
        started: DateTime<FixedOffset>,
    ) -> crate::format::snapshot::SnapshotSummary {
        crate::format::snapshot::SnapshotSummary {
            backup_start: started,
            backup_end: time::now(),
            files_new: self.files_new,
            files_changed: self.files_changed,
            files_unmodified: self.files_unmodified,
            dirs_new: None,
            dirs_changed: None,
            dirs_unmodified: None,
            data_blobs: self.data_blobs_added,
            tree_blobs: self.tree_blobs_added,
            data_added: self.data_added,
            data_added_packed: self.data_added_packed,
            total_files_processed: self.files_new + self.files_changed + self.files_unmodified,
            total_bytes_processed: self.bytes_processed,
        }
    }
}

/// Lexically normalise an absolute path (`.` and `..` removed) without
/// following symlinks, like Go's `filepath.Abs`.
pub(crate) fn clean_absolute(p: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(p).map_err(|e| Error::io("resolve", p, e))?;
    let mut out = PathBuf::from("/");
    for c in abs.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    Ok(out)
}

pub(crate) fn build_globs(patterns: &[String]) -> Result<Option<GlobSet>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let full = if p.starts_with('/') {
            p.clone()
        } else {
            format!("/**/{p}")
        };
        let g = GlobBuilder::new(&full)
            .literal_separator(true)
            .build()
            .map_err(|e| Error::InvalidArgument(format!("pattern {p:?}: {e}")))?;
        b.add(g);
    }
    b.build()
        .map(Some)
        .map_err(|e| Error::InvalidArgument(e.to_string()))
}

/// A directory on the way to a backed-up path, or the path itself.
enum Virtual {
    Dir(PathBuf, BTreeMap<String, Virtual>),
    Target(PathBuf),
}

/// The repository and the blob saver, shared by the walker (trees, parent
/// lookups) and the file readers (data blobs).
struct Shared<'r> {
    repo: &'r mut Repository,
    saver: BlobSaver,
}

type SharedLock<'s, 'r> = std::sync::MutexGuard<'s, Shared<'r>>;

fn lock<'s, 'r>(shared: &'s Mutex<Shared<'r>>) -> Result<SharedLock<'s, 'r>> {
    shared
        .lock()
        .map_err(|_| Error::format("backup", "a file reader panicked"))
}

/// File readers running at once: each reads, chunks and hashes one file.
const MAX_READERS: usize = 4;
/// Files handed to the readers whose outcome the walker has not taken yet:
/// how far the walk may run ahead of the reading.
const MAX_OUTSTANDING: usize = 256;
/// Directories walked whose tree is not saved yet (bounds memory when a
/// slow file holds up the queue).
const MAX_QUEUED_DIRS: usize = 4096;
/// Directories the walk is inside that it keeps open (see the module
/// documentation).
const MAX_OPEN_DIRS: usize = 64;

/// An entry of a directory whose tree is not saved yet.
enum Slot {
    Ready(Node),
    /// A file being read (its node is made from what the reader opened);
    /// `changed` when the parent snapshot had a file by that name.
    File {
        name: String,
        changed: bool,
        state: FileState,
    },
    /// A subdirectory: its tree is saved before this directory's (it is
    /// earlier in the queue) under this directory number.
    Dir(Node, usize),
}

enum FileState {
    Waiting(mpsc::Receiver<ReadOutcome>),
    Done(ReadOutcome),
}

/// A walked directory waiting for its files.
struct PendingDir {
    number: usize,
    slots: Vec<Slot>,
}

/// The walk. Directories are listed depth first; each file to read goes to
/// the readers and the directory joins a queue in the order its listing
/// ended, children before parents. A directory's tree is saved from the
/// front of the queue once its files are read, so subtree ids are always
/// known by then, and the walk never runs more than [`MAX_OUTSTANDING`]
/// files ahead of the readers.
struct Archiver<'s, 'r, F> {
    shared: &'s Mutex<Shared<'r>>,
    /// `None` without reader threads: files are read on the walk.
    jobs: Option<mpsc::Sender<ReadJob>>,
    tables: &'s ChunkerTables,
    excludes: Option<GlobSet>,
    names: Names,
    summary: BackupSummary,
    progress: F,
    force: bool,
    queue: VecDeque<PendingDir>,
    /// Saved trees not yet taken by their parent, by directory number.
    saved: HashMap<usize, Id>,
    next_dir: usize,
    outstanding: usize,
    /// The directories the walk is inside, outermost first.
    open: Vec<OpenDir>,
    /// Whether `/proc/self/fd` exists (see [`dirfd::entry_path`]).
    have_proc: bool,
    cancel: &'s Cancel,
    // Empty outside tests.
    #[cfg_attr(not(test), allow(dead_code))]
    stat_hook: StatHook,
}

/// A directory the walk is inside: its descriptor while open, and what it
/// was when opened, to check it when it is opened again.
struct OpenDir {
    fd: Option<Arc<OwnedFd>>,
    seen: Meta,
}

/// Tests only: called by the walk right after it stat'ed and classified an
/// entry, before it opens it or hands it to a reader, so that a test can
/// swap the entry in that window.
#[cfg(test)]
type StatHook = Option<Box<dyn FnMut(&Path) + Send>>;
/// Nothing outside tests.
#[cfg(not(test))]
struct StatHook;

#[cfg(test)]
thread_local! {
    /// The hook the next backup on this thread takes.
    static STAT_HOOK: std::cell::RefCell<StatHook> = const { std::cell::RefCell::new(None) };
}

#[cfg(test)]
fn take_stat_hook() -> StatHook {
    STAT_HOOK.with(|h| h.borrow_mut().take())
}

#[cfg(not(test))]
fn take_stat_hook() -> StatHook {
    StatHook
}

/// "PATH: changed during backup ...": an entry replaced between the
/// walk's look at it and its opening.
fn changed_message(path: &Path) -> String {
    format!(
        "{}: changed during backup (replaced by another file), skipped",
        path.display()
    )
}

/// The parent snapshot: `opts.parent`, or (unless `opts.force`) the
/// latest snapshot of the same host and paths (`paths` sorted), as restic
/// picks it.
fn parent_snapshot(
    repo: &Repository,
    opts: &BackupOptions,
    hostname: &str,
    paths: &[String],
) -> Result<Option<(Id, Snapshot)>> {
    Ok(match opts.parent {
        Some(id) => Some((id, repo.load_snapshot(&id)?)),
        None if opts.force => None,
        None => repo
            .load_snapshots()?
            .snapshots
            .into_iter()
            .rev()
            .find(|(_, s)| {
                let mut sp = s.paths.clone();
                sp.sort();
                s.hostname == hostname && sp == paths
            }),
    })
}

/// Back up `opts.paths` into `repo` and save a snapshot.
///
/// The index must be loaded ([`Repository::load_index`]) for deduplication.
/// Unreadable entries below the given paths are reported in
/// [`BackupSummary::errors`] and left out; a missing top-level path fails.
///
/// # Errors
/// Missing paths, bad exclude patterns, backend failures,
/// [`Error::Cancelled`] (no snapshot is saved then).
pub fn backup(
    repo: &mut Repository,
    opts: &BackupOptions,
    progress: impl FnMut(BackupProgress) + Send,
) -> Result<BackupSummary> {
    if opts.paths.is_empty() {
        return Err(Error::InvalidArgument("no paths to back up".into()));
    }
    let mut sources = Vec::new();
    for p in &opts.paths {
        let a = clean_absolute(p)?;
        sources.push((a.clone(), a));
    }
    backup_sources(repo, sources, opts, progress)
}

/// Back up each `(logical, real)` pair: the content of `real` is recorded
/// in the snapshot under the absolute path `logical` (they differ for
/// `--git`, which backs up an extracted `git archive` in place of the
/// working tree).
pub(crate) fn backup_sources(
    repo: &mut Repository,
    sources: Vec<(PathBuf, PathBuf)>,
    opts: &BackupOptions,
    progress: impl FnMut(BackupProgress) + Send,
) -> Result<BackupSummary> {
    // Taken on the caller's thread: the walk runs on another.
    let hook = take_stat_hook();
    crate::with_big_stack(|| backup_inner(repo, sources, opts, progress, hook))
}

fn backup_inner(
    repo: &mut Repository,
    mut sources: Vec<(PathBuf, PathBuf)>,
    opts: &BackupOptions,
    progress: impl FnMut(BackupProgress) + Send,
    stat_hook: StatHook,
) -> Result<BackupSummary> {
    let started = time::now();
    opts.cancel.check()?;
    // A shared lock: prune (exclusive) must not delete packs that this
    // backup's snapshot will refer to.
    let _lock = crate::lock::lock(repo, false)?;
    for (logical, real) in &sources {
        fs::symlink_metadata(real).map_err(|e| Error::io("stat", real, e))?;
        if logical.parent().is_none() {
            return Err(Error::InvalidArgument(
                "backing up / itself is not supported yet".into(),
            ));
        }
    }
    sources.sort();
    sources.dedup_by(|a, b| a.0 == b.0);
    let paths: Vec<String> = sources
        .iter()
        .map(|p| p.0.to_string_lossy().into_owned())
        .collect();
    let hostname = opts.hostname.clone().unwrap_or_else(crate::hostname);

    let parent = parent_snapshot(repo, opts, &hostname, &paths)?;

    // Build the virtual tree from `/` down to each path.
    let mut root: BTreeMap<String, Virtual> = BTreeMap::new();
    for (a, target) in &sources {
        let comps: Vec<String> = a
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect();
        let mut cur = &mut root;
        let mut real = PathBuf::from("/");
        for (i, c) in comps.iter().enumerate() {
            real.push(c);
            if i + 1 == comps.len() {
                cur.insert(c.clone(), Virtual::Target(target.clone()));
                break;
            }
            let e = cur
                .entry(c.clone())
                .or_insert_with(|| Virtual::Dir(real.clone(), BTreeMap::new()));
            match e {
                Virtual::Dir(_, ch) => cur = ch,
                // A parent directory is itself backed up: it covers this path.
                Virtual::Target(_) => break,
            }
        }
    }

    let excludes = build_globs(&opts.excludes)?;
    let tables = repo.tables.clone();
    let shared = Mutex::new(Shared {
        repo,
        saver: BlobSaver::new(),
    });
    let readers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_READERS);
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<ReadJob>();
    let rx = Mutex::new(rx);
    let cancel = &opts.cancel;
    let walked = std::thread::scope(|s| {
        let mut started = 0;
        for i in 0..readers {
            let (shared, tables, rx, stop) = (&shared, &tables, &rx, &stop);
            let spawned = std::thread::Builder::new()
                .name(format!("bulwark-read-{i}"))
                .spawn_scoped(s, move || read_files(shared, tables, rx, stop, cancel));
            // A thread that cannot start only costs parallelism.
            started += usize::from(spawned.is_ok());
        }
        let mut a = Archiver {
            shared: &shared,
            jobs: (started > 0).then_some(tx),
            tables: &tables,
            excludes,
            names: Names::load(),
            summary: BackupSummary {
                parent: parent.as_ref().map(|p| p.0),
                ..Default::default()
            },
            progress,
            force: opts.force,
            queue: VecDeque::new(),
            saved: HashMap::new(),
            next_dir: 0,
            outstanding: 0,
            open: Vec::new(),
            have_proc: dirfd::have_proc(),
            cancel,
            stat_hook,
        };
        let tree = a.walk(&root, parent.as_ref().map(|p| p.1.tree));
        if tree.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        // Dropping the archiver closes the job channel: the readers end.
        tree.map(|t| (t, a.summary))
    });
    let Shared { repo, mut saver } = shared
        .into_inner()
        .map_err(|_| Error::format("backup", "a file reader panicked"))?;
    let (tree, summary) = match walked.and_then(|w| opts.cancel.check().map(|()| w)) {
        Ok(v) => v,
        Err(e) => {
            // Forget blobs that were only pending in memory or whose pack
            // may not have been written.
            saver.abort(repo);
            return Err(e);
        }
    };
    // On failure `finish` forgets those blobs itself.
    let stats = saver.finish(repo)?;
    // Cancelled while the last packs were written: they and their index
    // stay (the next backup uses them), the snapshot is not made.
    opts.cancel.check()?;
    let user = crate::current_user();
    let mut s = summary;
    s.data_blobs_added = stats.data_blobs;
    s.tree_blobs_added = stats.tree_blobs;
    s.data_added = stats.data_added;
    s.data_added_packed = stats.data_added_packed;
    s.packs_written = stats.packs;
    let snap = Snapshot {
        time: opts.time.unwrap_or_else(time::now),
        parent: parent.as_ref().map(|p| p.0),
        tree,
        paths,
        hostname,
        username: user.2,
        uid: user.0,
        gid: user.1,
        excludes: opts.excludes.clone(),
        tags: opts.tags.clone(),
        original: None,
        program_version: format!("bulwark {}", env!("CARGO_PKG_VERSION")),
        summary: Some(s.to_snapshot_summary(started)),
    };
    s.snapshot_id = repo.save_snapshot(&snap)?;
    Ok(s)
}

impl<F: FnMut(BackupProgress)> Archiver<'_, '_, F> {
    /// Walk the virtual tree and everything below it; the root tree's id.
    fn walk(&mut self, root: &BTreeMap<String, Virtual>, parent_tree: Option<Id>) -> Result<Id> {
        let number = self.walk_virtual(root, parent_tree)?;
        while !self.queue.is_empty() {
            self.save_front(true)?;
        }
        // Closing the job channel ends the readers.
        self.jobs = None;
        self.saved
            .remove(&number)
            .ok_or_else(|| Error::format("backup", "root tree not saved"))
    }

    fn parent_nodes(&mut self, parent_tree: Option<Id>) -> Result<HashMap<String, Node>> {
        let Some(id) = parent_tree else {
            return Ok(HashMap::new());
        };
        // A damaged parent only costs speed: fall back to reading everything.
        let tree = lock(self.shared)?.repo.load_tree(&id).ok();
        Ok(tree
            .map(|t| t.nodes.into_iter().map(|n| (n.name.clone(), n)).collect())
            .unwrap_or_default())
    }

    /// Queue a walked directory and save the trees at the front of the
    /// queue whose files are read, waiting for them when the walk is too
    /// far ahead. Returns the directory's number.
    fn enqueue(&mut self, slots: Vec<Slot>) -> Result<usize> {
        let number = self.next_dir;
        self.next_dir += 1;
        self.queue.push_back(PendingDir { number, slots });
        loop {
            let wait = self.outstanding > MAX_OUTSTANDING || self.queue.len() > MAX_QUEUED_DIRS;
            if self.queue.is_empty() || !self.save_front(wait)? {
                return Ok(number);
            }
        }
    }

    /// Save the tree of the directory at the front of the queue if its
    /// files are read (waiting for them when `wait`). Whether it was saved.
    fn save_front(&mut self, wait: bool) -> Result<bool> {
        let Some(front) = self.queue.front_mut() else {
            return Ok(false);
        };
        for slot in &mut front.slots {
            if let Slot::File { state, .. } = slot {
                if let FileState::Waiting(rx) = state {
                    let got = if wait {
                        rx.recv().ok()
                    } else {
                        match rx.try_recv() {
                            Ok(o) => Some(o),
                            Err(mpsc::TryRecvError::Empty) => return Ok(false),
                            Err(mpsc::TryRecvError::Disconnected) => None,
                        }
                    };
                    let outcome = got.ok_or_else(|| {
                        Error::format("backup", "a file reader stopped unexpectedly")
                    })?;
                    *state = FileState::Done(outcome);
                    self.outstanding -= 1;
                }
            }
        }
        let Some(dir) = self.queue.pop_front() else {
            return Ok(false);
        };
        let mut tree = Tree::default();
        for slot in dir.slots {
            match slot {
                Slot::Ready(node) => tree.nodes.push(node),
                Slot::Dir(mut node, number) => {
                    let id = self
                        .saved
                        .remove(&number)
                        .ok_or_else(|| Error::format("backup", "subdirectory tree not saved"))?;
                    node.subtree = Some(id);
                    tree.nodes.push(node);
                }
                Slot::File {
                    name,
                    changed,
                    state,
                } => match state {
                    FileState::Done(ReadOutcome::Read {
                        content,
                        size,
                        meta,
                        xattrs,
                    }) => {
                        // Metadata from the descriptor that was read.
                        let mut node = self.names.node(name, &meta);
                        node.content = Some(content);
                        node.size = size;
                        node.extended_attributes = xattrs.unwrap_or_else(|e| {
                            self.summary.errors.push(e);
                            None
                        });
                        if changed {
                            self.summary.files_changed += 1;
                        } else {
                            self.summary.files_new += 1;
                        }
                        self.file_done(size);
                        tree.nodes.push(node);
                    }
                    FileState::Done(ReadOutcome::Unreadable(e)) => self.summary.errors.push(e),
                    FileState::Done(ReadOutcome::Failed(e)) => return Err(e),
                    FileState::Waiting(_) => return Err(Error::format("backup", "file not read")),
                },
            }
        }
        let id = self.save_tree(tree)?;
        self.saved.insert(dir.number, id);
        Ok(true)
    }

    fn file_done(&mut self, size: u64) {
        self.summary.bytes_processed += size;
        let s = &self.summary;
        (self.progress)(BackupProgress {
            files: s.files_new + s.files_changed + s.files_unmodified,
            bytes: s.bytes_processed,
        });
    }

    fn save_tree(&mut self, mut tree: Tree) -> Result<Id> {
        tree.nodes
            .sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        let json = tree.to_json().map_err(|e| Error::json("tree", e))?;
        let mut g = lock(self.shared)?;
        let Shared { repo, saver } = &mut *g;
        let (id, _) = saver.save(repo, BlobType::Tree, &json)?;
        Ok(id)
    }

    fn walk_virtual(
        &mut self,
        dir: &BTreeMap<String, Virtual>,
        parent_tree: Option<Id>,
    ) -> Result<usize> {
        let parents = self.parent_nodes(parent_tree)?;
        let mut slots = Vec::new();
        for (name, v) in dir {
            let pn = parents.get(name);
            match v {
                // Above the paths the user named: by path, as named.
                Virtual::Dir(real, children) => {
                    let meta = dirfd::lstat(real).map_err(|e| Error::io("stat", real, e))?;
                    let mut node = self.names.node(name.clone(), &meta);
                    node.extended_attributes =
                        self.xattrs(&meta, pn, || crate::xattrs::read(real, real));
                    let number = self.walk_virtual(children, pn.and_then(|n| n.subtree))?;
                    slots.push(Slot::Dir(node, number));
                }
                // A path the user named: its directory is opened by path,
                // the entry itself (maybe a symlink) is not followed.
                Virtual::Target(real) => {
                    let (Some(parent), Some(file_name)) = (real.parent(), real.file_name()) else {
                        return Err(Error::InvalidArgument(format!(
                            "cannot back up {}",
                            real.display()
                        )));
                    };
                    let dir =
                        dirfd::open_dir_path(parent).map_err(|e| Error::io("open", parent, e))?;
                    let cname = CString::new(file_name.as_bytes())
                        .map_err(|_| Error::InvalidArgument(format!("path {real:?}")))?;
                    let dir = Arc::new(dir);
                    if let Some(slot) =
                        self.archive_entry(&dir, real.clone(), cname, name.clone(), pn)?
                    {
                        slots.push(slot);
                    }
                }
            }
        }
        self.enqueue(slots)
    }

    /// An entry's extended attributes: the parent snapshot's when inode
    /// and ctime say the entry is untouched (setting an attribute changes
    /// ctime), so a no-change backup lists none; otherwise `read`, and a
    /// failure is reported with the entry kept.
    fn xattrs(
        &mut self,
        md: &Meta,
        parent: Option<&Node>,
        read: impl FnOnce() -> std::result::Result<Option<serde_json::Value>, String>,
    ) -> Option<serde_json::Value> {
        let ctime = time::from_unix(md.ctime.0, md.ctime.1);
        match parent {
            Some(p) if !self.force && p.inode == md.ino && p.ctime == ctime => {
                p.extended_attributes.clone()
            }
            _ => read().unwrap_or_else(|e| {
                self.summary.errors.push(e);
                None
            }),
        }
    }

    fn excluded(&self, path: &Path) -> bool {
        self.excludes.as_ref().is_some_and(|g| g.is_match(path))
    }

    #[cfg(test)]
    fn after_stat(&mut self, path: &Path) {
        if let Some(hook) = self.stat_hook.as_mut() {
            hook(path);
        }
    }

    #[cfg(not(test))]
    fn after_stat(&mut self, _path: &Path) {}

    /// Archive the entry `cname` of the directory `dir`, found at `path`
    /// and recorded as `name`. `Ok(None)` means it was skipped (excluded,
    /// unreadable or replaced, recorded in the summary).
    fn archive_entry(
        &mut self,
        dir: &Arc<OwnedFd>,
        path: PathBuf,
        cname: CString,
        name: String,
        parent: Option<&Node>,
    ) -> Result<Option<Slot>> {
        self.cancel.check()?;
        if self.excluded(&path) {
            return Ok(None);
        }
        let md = match dirfd::stat_at(dir.as_fd(), &cname) {
            Ok(m) => m,
            Err(e) => {
                self.summary.errors.push(format!("{}: {e}", path.display()));
                return Ok(None);
            }
        };
        self.after_stat(&path);
        let mut node = self.names.node(name, &md);
        match md.file_type() {
            FileType::RegularFile => {
                if let Some(content) = self.unchanged_content(&node, parent)? {
                    // Unchanged inode and ctime: so are the attributes.
                    node.extended_attributes = parent.and_then(|p| p.extended_attributes.clone());
                    node.content = Some(content);
                    self.summary.files_unmodified += 1;
                    self.file_done(node.size);
                    return Ok(Some(Slot::Ready(node)));
                }
                let changed = parent.is_some_and(|p| p.node_type == "file");
                let state = self.read(FileRef {
                    dir: dir.clone(),
                    name: cname,
                    path,
                    seen: md,
                });
                return Ok(Some(Slot::File {
                    name: node.name,
                    changed,
                    state,
                }));
            }
            FileType::Directory => {
                if path.components().count() > crate::format::tree::MAX_TREE_DEPTH {
                    // Restore refuses deeper trees: say so now.
                    self.summary.errors.push(format!(
                        "{}: directories nested too deeply, skipped",
                        path.display()
                    ));
                    return Ok(None);
                }
                let parent_tree = parent
                    .filter(|p| p.node_type == "dir")
                    .and_then(|p| p.subtree);
                let fd = match dirfd::open_dir_at(dir.as_fd(), &cname, &md) {
                    Ok(Opened::Same(fd, now)) => {
                        node = self.names.node(node.name, &now);
                        let f = fs::File::from(fd);
                        node.extended_attributes =
                            self.xattrs(&now, parent, || crate::xattrs::read_file(&f, &path));
                        Some((OwnedFd::from(f), now))
                    }
                    Ok(Opened::Changed) => {
                        self.summary.errors.push(changed_message(&path));
                        return Ok(None);
                    }
                    // Unreadable (no permission): kept, empty, as restic
                    // does, with the error reported.
                    Err(e) => {
                        self.summary.errors.push(format!("{}: {e}", path.display()));
                        let at = dirfd::entry_path(dir.as_fd(), &cname, self.have_proc, &path);
                        node.extended_attributes =
                            self.xattrs(&md, parent, || crate::xattrs::read(&at, &path));
                        None
                    }
                };
                let number = match fd {
                    Some((fd, now)) => self.archive_dir(&path, fd, now, parent_tree)?,
                    None => self.enqueue(Vec::new())?,
                };
                self.summary.dirs += 1;
                return Ok(Some(Slot::Dir(node, number)));
            }
            FileType::Symlink => match dirfd::read_link_at(dir.as_fd(), &cname) {
                Ok(t) => node.linktarget = String::from_utf8_lossy(t.as_bytes()).into_owned(),
                Err(e) => {
                    self.summary.errors.push(format!("{}: {e}", path.display()));
                    return Ok(None);
                }
            },
            _ => {}
        }
        // Symlinks and special files are never opened: their attributes
        // are read by name within the directory's descriptor.
        let at = dirfd::entry_path(dir.as_fd(), &cname, self.have_proc, &path);
        node.extended_attributes = self.xattrs(&md, parent, || crate::xattrs::read(&at, &path));
        Ok(Some(Slot::Ready(node)))
    }

    /// Hand a file to the readers, or read it here without them.
    fn read(&mut self, file: FileRef) -> FileState {
        let file = match &self.jobs {
            Some(jobs) => {
                let (reply, rx) = mpsc::sync_channel(1);
                match jobs.send(ReadJob { file, reply }) {
                    Ok(()) => {
                        self.outstanding += 1;
                        return FileState::Waiting(rx);
                    }
                    Err(mpsc::SendError(job)) => job.file,
                }
            }
            None => file,
        };
        FileState::Done(read_file(self.shared, self.tables, &file, self.cancel))
    }

    /// The parent's content list when size, mtime, ctime and inode are
    /// unchanged and every blob is still indexed.
    fn unchanged_content(&self, node: &Node, parent: Option<&Node>) -> Result<Option<Vec<Id>>> {
        let Some(p) = parent.filter(|_| !self.force) else {
            return Ok(None);
        };
        if p.node_type != "file"
            || p.size != node.size
            || p.mtime != node.mtime
            || p.ctime != node.ctime
            || p.inode != node.inode
        {
            return Ok(None);
        }
        let Some(c) = p.content.as_ref() else {
            return Ok(None);
        };
        let g = lock(self.shared)?;
        Ok(c.iter()
            .all(|id| g.repo.lookup(BlobType::Data, id).is_some())
            .then(|| c.clone()))
    }

    /// Walk the directory open as `fd` (stat'ed as `seen`) at `path`.
    /// Returns its number in the queue.
    fn archive_dir(
        &mut self,
        path: &Path,
        fd: OwnedFd,
        seen: Meta,
        parent_tree: Option<Id>,
    ) -> Result<usize> {
        let parents = self.parent_nodes(parent_tree)?;
        let mut entries: Vec<(String, CString)> = match dirfd::list(fd.as_fd()) {
            Ok(names) => names
                .into_iter()
                .map(|n| (String::from_utf8_lossy(n.to_bytes()).into_owned(), n))
                .collect(),
            Err(e) => {
                self.summary.errors.push(format!("{}: {e}", path.display()));
                Vec::new()
            }
        };
        entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        self.enter(fd, seen);
        let mut slots = Vec::new();
        for (name, cname) in entries {
            // Re-read for every entry: a subdirectory walked just now may
            // have had this directory closed and opened again.
            let Some(dir) = self.open.last().and_then(|d| d.fd.clone()) else {
                break;
            };
            let pn = parents.get(&name);
            let p = path.join(OsStr::from_bytes(cname.to_bytes()));
            if let Some(slot) = self.archive_entry(&dir, p, cname, name, pn)? {
                slots.push(slot);
            }
        }
        self.leave(path);
        self.enqueue(slots)
    }

    /// Enter a directory: it becomes the innermost open one, and the
    /// outermost is closed when more than [`MAX_OPEN_DIRS`] are open.
    fn enter(&mut self, fd: OwnedFd, seen: Meta) {
        self.open.push(OpenDir {
            fd: Some(Arc::new(fd)),
            seen,
        });
        if let Some(i) = self.open.len().checked_sub(MAX_OPEN_DIRS + 1) {
            self.open[i].fd = None;
        }
    }

    /// Leave the directory at `path`. If its parent was closed, open it
    /// again through `..`; should that no longer be the same directory
    /// (this one was moved elsewhere), the rest of the parent is skipped:
    /// the walk never continues in a directory it did not come from.
    fn leave(&mut self, path: &Path) {
        let Some(child) = self.open.pop() else { return };
        let Some(parent) = self.open.last_mut() else {
            return;
        };
        if parent.fd.is_some() {
            return;
        }
        let problem = match child
            .fd
            .map(|c| dirfd::reopen_parent(c.as_fd(), &parent.seen))
        {
            Some(Ok(Opened::Same(fd, _))) => {
                parent.fd = Some(Arc::new(fd));
                return;
            }
            Some(Ok(Opened::Changed)) => "changed during backup (moved)".to_string(),
            Some(Err(e)) => format!("cannot open it again: {e}"),
            // This directory was lost the same way: nothing leads back.
            None => "a directory in it changed during backup".to_string(),
        };
        self.summary.errors.push(format!(
            "{}: {problem}, the rest of it skipped",
            path.parent().unwrap_or(path).display()
        ));
    }
}
