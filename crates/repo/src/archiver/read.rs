//! The reader threads: each opens a file the walk handed over (through its
//! directory's descriptor, only if it is still the inode the walk saw),
//! reads, chunks and hashes it, and saves its new chunks as data blobs.

// The walk's own types and limits; this is its other half.
use super::*;

/// A file to read: the entry `name` of directory `dir`, which must still
/// be the inode the walk saw.
pub(super) struct FileRef {
    pub(super) dir: Arc<OwnedFd>,
    pub(super) name: CString,
    /// For messages (and nothing else: paths are not trusted).
    pub(super) path: PathBuf,
    pub(super) seen: Meta,
}

/// A file for a reader.
pub(super) struct ReadJob {
    pub(super) file: FileRef,
    pub(super) reply: mpsc::SyncSender<ReadOutcome>,
}

/// What reading a file gave.
pub(super) enum ReadOutcome {
    /// Its content blobs, its size as read, its metadata from the opened
    /// descriptor and its extended attributes read through it.
    Read {
        content: Vec<Id>,
        size: u64,
        meta: Meta,
        xattrs: std::result::Result<Option<serde_json::Value>, String>,
    },
    /// It could not be read, or was replaced: left out of the snapshot,
    /// the backup goes on.
    Unreadable(String),
    /// Saving its blobs failed (the repository, not the file), or the
    /// backup was cancelled: the backup stops.
    Failed(Error),
}

/// A reader thread: files from the channel, one at a time, until it closes
/// or the walk failed.
pub(super) fn read_files(
    shared: &Mutex<Shared<'_>>,
    tables: &ChunkerTables,
    jobs: &Mutex<mpsc::Receiver<ReadJob>>,
    stop: &AtomicBool,
    cancel: &Cancel,
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
        let _ = job.reply.send(read_file(shared, tables, &job.file, cancel));
    }
}

/// Open `file` (through its directory's descriptor, checking it is the
/// inode the walk saw), then read, chunk and hash it, saving each new
/// chunk as a data blob. Only saving takes the shared lock.
pub(super) fn read_file(
    shared: &Mutex<Shared<'_>>,
    tables: &ChunkerTables,
    file: &FileRef,
    cancel: &Cancel,
) -> ReadOutcome {
    use std::io::Read;
    let path = &file.path;
    let save = |data: Vec<u8>| -> Result<Id> {
        cancel.check()?;
        let id = Id::hash(&data);
        let mut g = lock(shared)?;
        let Shared { repo, saver } = &mut *g;
        saver.save_hashed(repo, BlobType::Data, id, data)?;
        Ok(id)
    };
    if let Err(e) = cancel.check() {
        return ReadOutcome::Failed(e);
    }
    let (mut f, meta) = match dirfd::open_file_at(file.dir.as_fd(), &file.name, &file.seen) {
        Ok(Opened::Same(f, meta)) => (f, meta),
        Ok(Opened::Changed) => return ReadOutcome::Unreadable(changed_message(path)),
        Err(e) => return ReadOutcome::Unreadable(Error::io("open", path, e).to_string()),
    };
    let xattrs = crate::xattrs::read_file(&f, path);
    let done = |content, size| ReadOutcome::Read {
        content,
        size,
        meta,
        xattrs,
    };
    // Most files are smaller than the minimum chunk, so they are one
    // chunk whatever the content: read them straight into the blob's
    // buffer, without the chunker (whose 512 KiB read buffer, zeroed
    // for each of thousands of small files, cost more than hashing).
    let min = crate::chunker::MIN_SIZE as u64;
    let mut head = Vec::with_capacity(meta.size.min(min) as usize + 1);
    if let Err(e) = (&mut f).take(min).read_to_end(&mut head) {
        return ReadOutcome::Unreadable(Error::io("read", path, e).to_string());
    }
    if (head.len() as u64) < min {
        let size = head.len() as u64;
        if head.is_empty() {
            return done(Vec::new(), 0);
        }
        return match save(head) {
            Ok(id) => done(vec![id], size),
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
            Ok(false) => return done(content, size),
            Err(e) => return ReadOutcome::Unreadable(Error::io("read", path, e).to_string()),
        }
        size += buf.len() as u64;
        // `save` polls the cancellation: a large file stops within a chunk.
        match save(buf) {
            Ok(id) => content.push(id),
            Err(e) => return ReadOutcome::Failed(e),
        }
    }
}
