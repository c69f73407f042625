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

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};

use chrono::{DateTime, FixedOffset};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::chunker::{Chunker, ChunkerTables};
use crate::error::{Error, Result};
use crate::format::snapshot::Snapshot;
use crate::format::tree::{go_mode_from_unix, Node, Tree};
use crate::format::{time, BlobType};
use crate::id::Id;
use crate::repository::{BlobSaver, Repository};

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
    /// Entries that could not be read (they are left out of the snapshot).
    pub errors: Vec<String>,
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

/// uid/gid to names from /etc/passwd and /etc/group (no libc needed).
#[derive(Default)]
struct Names {
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
}

impl Names {
    fn load() -> Names {
        fn parse(path: &str) -> HashMap<u32, String> {
            let mut m = HashMap::new();
            if let Ok(s) = fs::read_to_string(path) {
                for line in s.lines() {
                    let f: Vec<&str> = line.split(':').collect();
                    if let (Some(name), Some(id)) =
                        (f.first(), f.get(2).and_then(|x| x.parse().ok()))
                    {
                        m.entry(id).or_insert_with(|| name.to_string());
                    }
                }
            }
            m
        }
        Names {
            users: parse("/etc/passwd"),
            groups: parse("/etc/group"),
        }
    }
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

/// A file for a reader.
struct ReadJob {
    path: PathBuf,
    size_hint: u64,
    reply: mpsc::SyncSender<ReadOutcome>,
}

/// What reading a file gave.
enum ReadOutcome {
    /// Its content blobs and its size as read.
    Read(Vec<Id>, u64),
    /// It could not be read: left out of the snapshot, the backup goes on.
    Unreadable(Error),
    /// Saving its blobs failed (the repository, not the file): the backup
    /// stops.
    Failed(Error),
}

/// An entry of a directory whose tree is not saved yet.
enum Slot {
    Ready(Node),
    /// A file being read; `changed` when the parent snapshot had a file by
    /// that name.
    File {
        node: Node,
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
}

/// Back up `opts.paths` into `repo` and save a snapshot.
///
/// The index must be loaded ([`Repository::load_index`]) for deduplication.
/// Unreadable entries below the given paths are reported in
/// [`BackupSummary::errors`] and left out; a missing top-level path fails.
///
/// # Errors
/// Missing paths, bad exclude patterns, backend failures.
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
    crate::with_big_stack(|| backup_inner(repo, sources, opts, progress))
}

fn backup_inner(
    repo: &mut Repository,
    mut sources: Vec<(PathBuf, PathBuf)>,
    opts: &BackupOptions,
    progress: impl FnMut(BackupProgress) + Send,
) -> Result<BackupSummary> {
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

    // Parent: explicit, or the latest snapshot of the same host and paths.
    let parent = match opts.parent {
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
    };

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
    let walked = std::thread::scope(|s| {
        let mut started = 0;
        for i in 0..readers {
            let (shared, tables, rx, stop) = (&shared, &tables, &rx, &stop);
            let spawned = std::thread::Builder::new()
                .name(format!("bulwark-read-{i}"))
                .spawn_scoped(s, move || read_files(shared, tables, rx, stop));
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
    let (tree, summary) = match walked {
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
    let user = crate::current_user();
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
    };
    let id = repo.save_snapshot(&snap)?;
    let mut s = summary;
    s.snapshot_id = id;
    s.data_blobs_added = stats.data_blobs;
    s.tree_blobs_added = stats.tree_blobs;
    s.data_added = stats.data_added;
    s.data_added_packed = stats.data_added_packed;
    s.packs_written = stats.packs;
    Ok(s)
}

/// A reader thread: files from the channel, one at a time, until it closes
/// or the walk failed.
fn read_files(
    shared: &Mutex<Shared<'_>>,
    tables: &ChunkerTables,
    jobs: &Mutex<mpsc::Receiver<ReadJob>>,
    stop: &AtomicBool,
) {
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        if stop.load(Ordering::Relaxed) {
            return;
        }
        // The walker may have stopped waiting (it failed): nothing to tell.
        let _ = job
            .reply
            .send(read_file(shared, tables, &job.path, job.size_hint));
    }
}

/// Read, chunk and hash one file, saving each new chunk as a data blob.
/// Only saving takes the shared lock.
fn read_file(
    shared: &Mutex<Shared<'_>>,
    tables: &ChunkerTables,
    path: &Path,
    size_hint: u64,
) -> ReadOutcome {
    use std::io::Read;
    let save = |data: Vec<u8>| -> Result<Id> {
        let id = Id::hash(&data);
        let mut g = lock(shared)?;
        let Shared { repo, saver } = &mut *g;
        saver.save_hashed(repo, BlobType::Data, id, data)?;
        Ok(id)
    };
    let mut f = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return ReadOutcome::Unreadable(Error::io("open", path, e)),
    };
    // Most files are smaller than the minimum chunk, so they are one
    // chunk whatever the content: read them straight into the blob's
    // buffer, without the chunker (whose 512 KiB read buffer, zeroed
    // for each of thousands of small files, cost more than hashing).
    let min = crate::chunker::MIN_SIZE as u64;
    let mut head = Vec::with_capacity(size_hint.min(min) as usize + 1);
    if let Err(e) = (&mut f).take(min).read_to_end(&mut head) {
        return ReadOutcome::Unreadable(Error::io("read", path, e));
    }
    if (head.len() as u64) < min {
        let size = head.len() as u64;
        if head.is_empty() {
            return ReadOutcome::Read(Vec::new(), 0);
        }
        return match save(head) {
            Ok(id) => ReadOutcome::Read(vec![id], size),
            Err(e) => ReadOutcome::Failed(e),
        };
    }
    // Larger: the chunker decides, reading the head again from memory.
    let mut ch = Chunker::new(tables, std::io::Cursor::new(head).chain(f));
    let mut content = Vec::new();
    let mut size = 0u64;
    loop {
        let mut buf = Vec::new();
        match ch.next_chunk(&mut buf) {
            Ok(true) => {}
            Ok(false) => return ReadOutcome::Read(content, size),
            Err(e) => return ReadOutcome::Unreadable(Error::io("read", path, e)),
        }
        size += buf.len() as u64;
        match save(buf) {
            Ok(id) => content.push(id),
            Err(e) => return ReadOutcome::Failed(e),
        }
    }
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
                    mut node,
                    changed,
                    state,
                } => match state {
                    FileState::Done(ReadOutcome::Read(content, size)) => {
                        node.content = Some(content);
                        node.size = size;
                        if changed {
                            self.summary.files_changed += 1;
                        } else {
                            self.summary.files_new += 1;
                        }
                        self.file_done(size);
                        tree.nodes.push(node);
                    }
                    FileState::Done(ReadOutcome::Unreadable(e)) => {
                        self.summary.errors.push(e.to_string())
                    }
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
                Virtual::Dir(real, children) => {
                    let md = fs::symlink_metadata(real).map_err(|e| Error::io("stat", real, e))?;
                    let node = self.node_from_meta(name.clone(), &md, real, pn);
                    let number = self.walk_virtual(children, pn.and_then(|n| n.subtree))?;
                    slots.push(Slot::Dir(node, number));
                }
                Virtual::Target(real) => {
                    if let Some(slot) = self.archive_entry(real, name.clone(), pn)? {
                        slots.push(slot);
                    }
                }
            }
        }
        self.enqueue(slots)
    }

    /// The node of `path`, from its metadata and extended attributes. The
    /// attributes are the parent snapshot's when inode and ctime say the
    /// entry is untouched (setting an attribute changes ctime), so a
    /// no-change backup lists none; otherwise they are read, and a failure
    /// is reported with the entry kept.
    fn node_from_meta(
        &mut self,
        name: String,
        md: &fs::Metadata,
        path: &Path,
        parent: Option<&Node>,
    ) -> Node {
        let ctime = time::from_unix(md.ctime(), md.ctime_nsec());
        let extended_attributes = match parent {
            Some(p) if !self.force && p.inode == md.ino() && p.ctime == ctime => {
                p.extended_attributes.clone()
            }
            _ => crate::xattrs::read(path).unwrap_or_else(|e| {
                self.summary.errors.push(e);
                None
            }),
        };
        let ft = md.file_type();
        let node_type = if ft.is_dir() {
            "dir"
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_file() {
            "file"
        } else {
            use std::os::unix::fs::FileTypeExt;
            if ft.is_block_device() {
                "dev"
            } else if ft.is_char_device() {
                "chardev"
            } else if ft.is_fifo() {
                "fifo"
            } else {
                "socket"
            }
        };
        Node {
            name,
            node_type: node_type.to_string(),
            mode: go_mode_from_unix(md.mode()),
            mtime: time::from_unix(md.mtime(), md.mtime_nsec()),
            atime: time::from_unix(md.atime(), md.atime_nsec()),
            ctime,
            uid: md.uid(),
            gid: md.gid(),
            user: self.names.users.get(&md.uid()).cloned().unwrap_or_default(),
            group: self
                .names
                .groups
                .get(&md.gid())
                .cloned()
                .unwrap_or_default(),
            inode: md.ino(),
            device_id: md.dev(),
            size: if ft.is_file() { md.size() } else { 0 },
            links: md.nlink(),
            linktarget: String::new(),
            extended_attributes,
            device: if node_type == "dev" || node_type == "chardev" {
                md.rdev()
            } else {
                0
            },
            content: None,
            subtree: None,
            error: String::new(),
        }
    }

    fn excluded(&self, path: &Path) -> bool {
        self.excludes.as_ref().is_some_and(|g| g.is_match(path))
    }

    /// Archive one entry. `Ok(None)` means it was skipped (excluded or
    /// unreadable, recorded in the summary).
    fn archive_entry(
        &mut self,
        path: &Path,
        name: String,
        parent: Option<&Node>,
    ) -> Result<Option<Slot>> {
        if self.excluded(path) {
            return Ok(None);
        }
        let md = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) => {
                self.summary.errors.push(format!("{}: {e}", path.display()));
                return Ok(None);
            }
        };
        let mut node = self.node_from_meta(name, &md, path, parent);
        match node.node_type.as_str() {
            "file" => {
                if let Some(content) = self.unchanged_content(&node, parent)? {
                    node.content = Some(content);
                    self.summary.files_unmodified += 1;
                    self.file_done(node.size);
                    return Ok(Some(Slot::Ready(node)));
                }
                let changed = parent.is_some_and(|p| p.node_type == "file");
                let state = self.read(path, node.size);
                return Ok(Some(Slot::File {
                    node,
                    changed,
                    state,
                }));
            }
            "dir" => {
                let parent_tree = parent
                    .filter(|p| p.node_type == "dir")
                    .and_then(|p| p.subtree);
                let number = self.archive_dir(path, parent_tree)?;
                self.summary.dirs += 1;
                return Ok(Some(Slot::Dir(node, number)));
            }
            "symlink" => match fs::read_link(path) {
                Ok(t) => node.linktarget = t.to_string_lossy().into_owned(),
                Err(e) => {
                    self.summary.errors.push(format!("{}: {e}", path.display()));
                    return Ok(None);
                }
            },
            _ => {}
        }
        Ok(Some(Slot::Ready(node)))
    }

    /// Hand a file to the readers, or read it here without them.
    fn read(&mut self, path: &Path, size_hint: u64) -> FileState {
        if let Some(jobs) = &self.jobs {
            let (reply, rx) = mpsc::sync_channel(1);
            let job = ReadJob {
                path: path.to_path_buf(),
                size_hint,
                reply,
            };
            if jobs.send(job).is_ok() {
                self.outstanding += 1;
                return FileState::Waiting(rx);
            }
        }
        FileState::Done(read_file(self.shared, self.tables, path, size_hint))
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

    fn archive_dir(&mut self, path: &Path, parent_tree: Option<Id>) -> Result<usize> {
        let parents = self.parent_nodes(parent_tree)?;
        let mut entries: Vec<(String, PathBuf)> = Vec::new();
        match fs::read_dir(path) {
            Ok(rd) => {
                for e in rd {
                    match e {
                        Ok(e) => {
                            entries.push((e.file_name().to_string_lossy().into_owned(), e.path()))
                        }
                        Err(err) => self
                            .summary
                            .errors
                            .push(format!("{}: {err}", path.display())),
                    }
                }
            }
            Err(e) => self.summary.errors.push(format!("{}: {e}", path.display())),
        }
        entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let mut slots = Vec::new();
        for (name, p) in entries {
            let pn = parents.get(&name);
            if let Some(slot) = self.archive_entry(&p, name, pn)? {
                slots.push(slot);
            }
        }
        self.enqueue(slots)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclude_patterns_table() {
        let g = build_globs(&[
            "*.tmp".into(),
            "/srv/app/cache".into(),
            "node_modules".into(),
            "logs/*.log".into(),
        ])
        .unwrap()
        .unwrap();
        let cases = [
            ("/srv/app/a.tmp", true),
            ("/srv/app/deep/er/b.tmp", true),
            ("/srv/app/a.tmpx", false),
            ("/srv/app/cache", true),
            ("/srv/other/cache", false),
            ("/srv/app/x/node_modules", true),
            ("/srv/app/logs/x.log", true),
            ("/srv/app/logs/sub/x.log", false),
            ("/srv/app/main.rs", false),
        ];
        for (p, want) in cases {
            assert_eq!(g.is_match(p), want, "{p}");
        }
        assert!(build_globs(&["a[".into()]).is_err());
    }

    #[test]
    fn clean_absolute_is_lexical() {
        assert_eq!(
            clean_absolute(Path::new("/a/./b/../c")).unwrap(),
            PathBuf::from("/a/c")
        );
    }
}
