//! An open repository: the master key, the config, the chunker tables and
//! the in-memory index, with the operations every command builds on
//! (load/save metadata files, load blobs, write packs and indexes).

use std::collections::{HashMap, HashSet};
use std::sync::{mpsc, Arc, Mutex};

use crate::backend::{Backend, FileType};
use crate::chunker::ChunkerTables;
use crate::crypto::{KdfParams, Key, CRYPTO_OVERHEAD};
use crate::error::{Error, Result};
use crate::format::config::Config;
use crate::format::index::{IndexJson, IndexPack};
use crate::format::keyfile::{KeyFile, MAX_KEY_FILE};
use crate::format::pack::{PackBuilder, PackedBlob};
use crate::format::snapshot::Snapshot;
use crate::format::tree::Tree;
use crate::format::{unpacked, BlobType};
use crate::id::Id;
use writer::{FileJob, FileWriter};

/// Largest metadata file (index, snapshot, lock) we read: bounds memory for
/// a hostile repository.
const MAX_METADATA_FILE: u64 = 1 << 30;
/// Largest blob plaintext we accept (data blobs are at most 8 MiB; trees of
/// huge directories can be bigger).
const MAX_BLOB: u32 = 1 << 30;
/// A pack is written once it reaches this size.
pub(crate) const PACK_TARGET: usize = 16 * 1024 * 1024;
/// An index file is written once it lists this many blobs, so that memory
/// stays bounded and a crash loses little.
const INDEX_MAX_BLOBS: usize = 50_000;

/// The snapshots of a repository, readable and not.
#[derive(Debug, Default)]
pub struct SnapshotList {
    /// Readable snapshots, oldest first.
    pub snapshots: Vec<(Id, Snapshot)>,
    /// Snapshot files that could not be read, with the reason.
    pub broken: Vec<(Id, Error)>,
}

/// Where a blob lives.
#[derive(Debug, Clone, Copy)]
pub struct IndexEntry {
    /// The pack holding it.
    pub pack: Id,
    /// Its position and lengths.
    pub blob: PackedBlob,
}

/// An open, unlocked repository.
pub struct Repository {
    pub(crate) backend: std::sync::Arc<dyn Backend>,
    pub(crate) key: Key,
    pub(crate) config: Config,
    pub(crate) tables: ChunkerTables,
    pub(crate) index: HashMap<(BlobType, Id), IndexEntry>,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("location", &self.backend.location())
            .field("id", &self.config.id)
            .field("version", &self.config.version)
            .finish()
    }
}

fn what(t: FileType, id: &str) -> String {
    match t {
        FileType::Config => "config".to_string(),
        _ => format!("{}/{}", t.dir(), id),
    }
}

impl Repository {
    /// Create a new format version 2 repository with a random chunker
    /// polynomial and one key for `password`.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] when a config file exists, backend failures.
    pub fn init(backend: Box<dyn Backend>, password: &[u8], kdf: KdfParams) -> Result<Repository> {
        if backend.stat(FileType::Config, "config").is_ok() {
            return Err(Error::AlreadyExists(backend.location()));
        }
        backend.create()?;
        let backend: std::sync::Arc<dyn Backend> = backend.into();
        let key = Key::random();
        let config = Config::new_v2();
        let kf = KeyFile::create(&key, password, kdf)?;
        backend.write(FileType::Key, &Id::hash(&kf).to_hex(), &kf)?;
        // The config is never compressed: its version says whether the
        // reader may expect compression.
        let cfg = serde_json::to_vec(&config).map_err(|e| Error::json("config", e))?;
        backend.write(FileType::Config, "config", &key.seal(&cfg))?;
        let tables =
            ChunkerTables::new(config.polynomial()?).map_err(|r| Error::format("config", r))?;
        Ok(Repository {
            backend,
            key,
            config,
            tables,
            index: HashMap::new(),
        })
    }

    /// Open a repository, trying every key file with `password`. The index
    /// is not loaded yet: see [`Repository::load_index`].
    ///
    /// # Errors
    /// [`Error::NotFound`] without a config, [`Error::WrongPassword`] when
    /// no key opens, [`Error::UnsupportedVersion`].
    pub fn open(backend: Box<dyn Backend>, password: &[u8]) -> Result<Repository> {
        let cfg_enc = match backend.read(FileType::Config, "config") {
            Ok(c) => c,
            Err(Error::NotFound(_)) => {
                return Err(Error::NotFound(format!(
                    "no repository at {}",
                    backend.location()
                )))
            }
            Err(e) => return Err(e),
        };
        let mut key = None;
        let mut last_err = Error::WrongPassword;
        for (name, size) in backend.list(FileType::Key)? {
            if size > MAX_KEY_FILE {
                last_err = Error::format(what(FileType::Key, &name), "key file too large");
                continue;
            }
            let bytes = backend.read(FileType::Key, &name)?;
            match KeyFile::open(&bytes, password, &what(FileType::Key, &name)) {
                Ok(k) => {
                    // A key that decrypts but does not open the config is
                    // from another repository.
                    if k.open(&cfg_enc, "config").is_ok() {
                        key = Some(k);
                        break;
                    }
                }
                Err(Error::WrongPassword) => {}
                Err(e) => last_err = e,
            }
        }
        let key = match key {
            Some(k) => k,
            None => {
                return Err(match last_err {
                    Error::WrongPassword => Error::WrongPassword,
                    other => other,
                })
            }
        };
        let config = Config::parse(&key.open(&cfg_enc, "config")?)?;
        let backend: std::sync::Arc<dyn Backend> = backend.into();
        let tables =
            ChunkerTables::new(config.polynomial()?).map_err(|r| Error::format("config", r))?;
        Ok(Repository {
            backend,
            key,
            config,
            tables,
            index: HashMap::new(),
        })
    }

    /// The repository id from the config.
    pub fn id(&self) -> &str {
        &self.config.id
    }

    /// The repository format version (1 or 2).
    pub fn version(&self) -> u32 {
        self.config.version
    }

    /// [`Repository::open`] of the repository a location string names
    /// (`-r`), with `-o` options, and, for a remote one, index and snapshot
    /// files cached under `cache` (see [`Repository::use_cache`]; a local
    /// repository is its own cache).
    ///
    /// # Errors
    /// As [`crate::open_backend_with`] and [`Repository::open`].
    pub fn open_location(
        repo: &str,
        options: &crate::BackendOptions,
        password: &[u8],
        cache: Option<&std::path::Path>,
    ) -> Result<Repository> {
        let remote = !matches!(crate::Location::parse(repo)?, crate::Location::Local(_));
        let mut opened = Repository::open(crate::open_backend_with(repo, options)?, password)?;
        if let (true, Some(root)) = (remote, cache) {
            opened.use_cache(root);
        }
        Ok(opened)
    }

    /// Serve index and snapshot reads from a local cache under
    /// `root/<repository id>/` from now on (see `backend/cache.rs`): what
    /// restic's `~/.cache/restic` does for remote repositories. Call it
    /// before [`Repository::load_index`].
    pub fn use_cache(&mut self, root: &std::path::Path) {
        if let Some(cached) =
            crate::backend::cache::CachedBackend::new(self.backend.clone(), root, &self.config.id)
        {
            self.backend = std::sync::Arc::new(cached);
        }
    }

    /// The storage backend.
    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// Add a key file for another password.
    ///
    /// # Errors
    /// Backend failures.
    pub fn add_key(&self, password: &[u8], kdf: KdfParams) -> Result<Id> {
        let kf = KeyFile::create(&self.key, password, kdf)?;
        let id = Id::hash(&kf);
        self.backend.write(FileType::Key, &id.to_hex(), &kf)?;
        Ok(id)
    }

    /// Read, authenticate, decrypt and decode a metadata file (index,
    /// snapshot, lock) into JSON bytes. The file's hash must match its name.
    pub(crate) fn load_unpacked(&self, t: FileType, id: &Id) -> Result<Vec<u8>> {
        let size = self.backend.stat(t, &id.to_hex())?;
        self.load_listed(t, id, size)
    }

    /// [`load_unpacked`](Self::load_unpacked) of a file whose size a listing
    /// gave, without a request to learn it (a HEAD per index, snapshot or
    /// lock file on an object store). The size only refuses files too large
    /// to be metadata before they are read; a store that lists a small
    /// size and serves more could as well lie to a HEAD, and the content
    /// hash below rejects whatever it serves.
    pub(crate) fn load_listed(&self, t: FileType, id: &Id, size: u64) -> Result<Vec<u8>> {
        let w = what(t, &id.to_hex());
        if size > MAX_METADATA_FILE {
            return Err(Error::format(
                &w,
                format!("file of {size} bytes is too large"),
            ));
        }
        let enc = self.backend.read(t, &id.to_hex())?;
        let actual = Id::hash(&enc);
        if actual != *id {
            return Err(Error::HashMismatch {
                what: w,
                expected: id.to_hex(),
                actual: actual.to_hex(),
            });
        }
        unpacked::decode(self.key.open(&enc, &w)?, &w)
    }

    /// Encode, encrypt and store a metadata file; returns its id.
    pub(crate) fn save_unpacked(&self, t: FileType, json: &[u8]) -> Result<Id> {
        save_unpacked(
            self.backend.as_ref(),
            &self.key,
            self.config.version,
            t,
            json,
        )
    }

    /// Names of all files of a type that look like ids.
    pub(crate) fn list_ids(&self, t: FileType) -> Result<Vec<(Id, u64)>> {
        Ok(self
            .backend
            .list(t)?
            .into_iter()
            .filter_map(|(n, s)| n.parse::<Id>().ok().map(|id| (id, s)))
            .collect())
    }

    /// Load every index file into memory. Returns the number of index files.
    ///
    /// # Errors
    /// The first index file that cannot be read or decoded.
    pub fn load_index(&mut self) -> Result<usize> {
        let ids = self.list_ids(FileType::Index)?;
        self.index.clear();
        for (id, size) in &ids {
            let idx = self.load_index_file(id, Some(*size))?;
            for p in &idx.packs {
                for b in &p.blobs {
                    self.index.insert(
                        (b.blob_type, b.id),
                        IndexEntry {
                            pack: p.id,
                            blob: b.to_packed(),
                        },
                    );
                }
            }
        }
        Ok(ids.len())
    }

    /// A metadata file, through [`load_listed`](Self::load_listed) when a
    /// listing gave its `size`.
    fn load_sized(&self, t: FileType, id: &Id, size: Option<u64>) -> Result<Vec<u8>> {
        match size {
            Some(size) => self.load_listed(t, id, size),
            None => self.load_unpacked(t, id),
        }
    }

    /// One index file; `size` when a listing gave it (saves a request).
    pub(crate) fn load_index_file(&self, id: &Id, size: Option<u64>) -> Result<IndexJson> {
        let j = self.load_sized(FileType::Index, id, size)?;
        serde_json::from_slice(&j).map_err(|e| Error::json(what(FileType::Index, &id.to_hex()), e))
    }

    /// Where a blob is, if the index knows it.
    pub fn lookup(&self, t: BlobType, id: &Id) -> Option<&IndexEntry> {
        self.index.get(&(t, *id))
    }

    /// Decrypt, decompress and verify one blob given where it is.
    pub(crate) fn decode_blob(&self, e: &IndexEntry, enc: &[u8]) -> Result<Vec<u8>> {
        // Built only for an error: formatting ids for every blob of a
        // restore or check costs more than it seems.
        let w = || {
            format!(
                "{:?} blob {} in pack {}",
                e.blob.blob_type, e.blob.id, e.pack
            )
            .to_lowercase()
        };
        let plain = self.key.open_with(enc, w)?;
        let data = match e.blob.uncompressed_length {
            None => plain,
            Some(n) => {
                if n > MAX_BLOB {
                    return Err(Error::format(
                        w(),
                        format!("uncompressed length {n} too large"),
                    ));
                }
                // The index gives the exact size: one allocation, and a
                // frame that would expand beyond it fails.
                let d = decompress(&plain, n as usize).map_err(|err| Error::Compression {
                    what: w(),
                    reason: err.to_string(),
                })?;
                if d.len() != n as usize {
                    return Err(Error::format(
                        w(),
                        format!("uncompressed to {} bytes, expected {n}", d.len()),
                    ));
                }
                d
            }
        };
        let actual = Id::hash(&data);
        if actual != e.blob.id {
            return Err(Error::HashMismatch {
                what: w(),
                expected: e.blob.id.to_hex(),
                actual: actual.to_hex(),
            });
        }
        Ok(data)
    }

    /// Load a blob's plaintext, verified against its id.
    ///
    /// # Errors
    /// [`Error::BlobNotFound`], backend failures, MAC or hash failures.
    pub fn load_blob(&self, t: BlobType, id: &Id) -> Result<Vec<u8>> {
        let e = *self
            .lookup(t, id)
            .ok_or_else(|| Error::BlobNotFound(id.to_hex()))?;
        if (e.blob.length as usize) < CRYPTO_OVERHEAD {
            return Err(Error::format(
                format!("index entry for blob {id}"),
                "length too small",
            ));
        }
        let (pack, offset, length) = (e.pack.to_hex(), e.blob.offset as u64, e.blob.length);
        if t == BlobType::Data {
            let enc = self
                .backend
                .read_range(FileType::Pack, &pack, offset, length)?;
            return self.decode_blob(&e, &enc);
        }
        let enc = self.backend.read_tree_pack_range(&pack, offset, length)?;
        match self.decode_blob(&e, &enc) {
            Ok(data) => Ok(data),
            // The cache checks a tree pack against its name once per
            // process; a copy changed on disk since then (another process,
            // a bad disk) must not fail every later read. The store's
            // bytes decide, and the copy is dropped so the next read
            // fetches the pack again. Without a cache this reads the same
            // range once more, only on a blob that is already failing.
            Err(Error::Mac(_) | Error::HashMismatch { .. }) => {
                self.backend.drop_tree_pack_copy(&pack);
                let enc = self
                    .backend
                    .read_range(FileType::Pack, &pack, offset, length)?;
                self.decode_blob(&e, &enc)
            }
            Err(other) => Err(other),
        }
    }

    /// Load and parse a tree.
    ///
    /// # Errors
    /// As [`Repository::load_blob`], plus JSON errors.
    pub fn load_tree(&self, id: &Id) -> Result<Tree> {
        let data = self.load_blob(BlobType::Tree, id)?;
        serde_json::from_slice(&data).map_err(|e| Error::json(format!("tree {id}"), e))
    }

    /// Every snapshot, oldest first.
    ///
    /// # Errors
    /// The first snapshot file that cannot be read or decoded.
    pub fn snapshots(&self) -> Result<Vec<(Id, Snapshot)>> {
        let mut l = self.load_snapshots()?;
        match l.broken.pop() {
            Some((_, e)) => Err(e),
            None => Ok(l.snapshots),
        }
    }

    /// Every readable snapshot, oldest first, and the snapshot files that
    /// could not be read. One damaged file must not hide the others (nor
    /// stop backups, which look for a parent).
    ///
    /// # Errors
    /// Only a failure to list the snapshot files.
    pub fn load_snapshots(&self) -> Result<SnapshotList> {
        let mut out = Vec::new();
        let mut broken = Vec::new();
        for (id, size) in self.list_ids(FileType::Snapshot)? {
            match self.load_snapshot_sized(&id, Some(size)) {
                Ok(s) => out.push((id, s)),
                Err(e) => broken.push((id, e)),
            }
        }
        out.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
        Ok(SnapshotList {
            snapshots: out,
            broken,
        })
    }

    /// Load one snapshot file.
    ///
    /// # Errors
    /// Backend, MAC and JSON errors naming the snapshot.
    pub fn load_snapshot(&self, id: &Id) -> Result<Snapshot> {
        self.load_snapshot_sized(id, None)
    }

    /// One snapshot file; `size` when a listing gave it (saves a request).
    pub(crate) fn load_snapshot_sized(&self, id: &Id, size: Option<u64>) -> Result<Snapshot> {
        let j = self.load_sized(FileType::Snapshot, id, size)?;
        serde_json::from_slice(&j)
            .map_err(|e| Error::json(what(FileType::Snapshot, &id.to_hex()), e))
    }

    /// Resolve `latest`, a full id or a unique id prefix.
    ///
    /// # Errors
    /// [`Error::Snapshot`] when nothing or more than one snapshot matches.
    pub fn find_snapshot(&self, spec: &str) -> Result<(Id, Snapshot)> {
        if spec == "latest" {
            return self
                .load_snapshots()?
                .snapshots
                .pop()
                .ok_or_else(|| Error::Snapshot("latest: the repository has no snapshots".into()));
        }
        let matches: Vec<Id> = self
            .list_ids(FileType::Snapshot)?
            .into_iter()
            .map(|(id, _)| id)
            .filter(|id| id.to_hex().starts_with(&spec.to_ascii_lowercase()))
            .collect();
        match matches.as_slice() {
            [id] => Ok((*id, self.load_snapshot(id)?)),
            [] => Err(Error::Snapshot(format!("{spec}: no matching snapshot"))),
            _ => Err(Error::Snapshot(format!("{spec}: prefix is ambiguous"))),
        }
    }

    /// Store a snapshot; returns its id.
    pub(crate) fn save_snapshot(&self, s: &Snapshot) -> Result<Id> {
        let j = serde_json::to_vec(s).map_err(|e| Error::json("snapshot", e))?;
        self.save_unpacked(FileType::Snapshot, &j)
    }
}

/// Encode, encrypt and store a metadata file; returns its id. A free
/// function so that the lock refresher thread can use it without the
/// repository.
pub(crate) fn save_unpacked(
    backend: &dyn Backend,
    key: &Key,
    version: u32,
    t: FileType,
    json: &[u8],
) -> Result<Id> {
    let enc = key.seal(&unpacked::encode(json, version)?);
    let id = Id::hash(&enc);
    backend.write(t, &id.to_hex(), &enc)?;
    Ok(id)
}

thread_local! {
    /// A zstd decompression context per thread, reused: creating one per
    /// blob (allocating and initialising its tables) cost more than
    /// decompressing the many small blobs of a source tree.
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Decompress one zstd frame into at most `capacity` bytes.
fn decompress(data: &[u8], capacity: usize) -> std::io::Result<Vec<u8>> {
    DECOMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.is_none() {
            *cell = zstd::bulk::Decompressor::new().ok();
        }
        match cell.as_mut() {
            Some(d) => d.decompress(data, capacity),
            None => zstd::bulk::decompress(data, capacity),
        }
    })
}

fn stopped() -> Error {
    Error::format("blob workers", "stopped unexpectedly")
}

/// A blob handed to a worker: compress (format v2) and encrypt.
struct Job {
    t: BlobType,
    id: Id,
    data: Vec<u8>,
}

/// A blob ready to be appended to a pack.
struct Sealed {
    t: BlobType,
    id: Id,
    plain_len: usize,
    enc: Vec<u8>,
    uncompressed_length: Option<u32>,
}

fn seal_blob(
    key: &Key,
    version: u32,
    job: Job,
    zstd: Option<&mut zstd::bulk::Compressor<'static>>,
) -> Result<Sealed> {
    // Format v2: compress, but keep the plain form when zstd does not help
    // (random or already compressed data); both forms may share a pack.
    let (enc, ulen) = if version >= 2 {
        // A worker's own compression context, reused: a fresh one per blob
        // (allocated and cleared each time) cost more than compressing the
        // many small blobs of a source tree.
        let c = match zstd {
            Some(z) => z.compress(&job.data).map_err(|e| Error::Compression {
                what: format!("data blob {}", job.id),
                reason: e.to_string(),
            })?,
            None => unpacked::compress(&job.data, "blob")?,
        };
        if c.len() < job.data.len() {
            (key.seal(&c), Some(job.data.len() as u32))
        } else {
            (key.seal(&job.data), None)
        }
    } else {
        (key.seal(&job.data), None)
    };
    Ok(Sealed {
        t: job.t,
        id: job.id,
        plain_len: job.data.len(),
        enc,
        uncompressed_length: ulen,
    })
}

/// Plaintext bytes handed to the workers and not yet taken back: enough
/// to keep them busy with the tiny blobs of a source tree without a wake-up
/// per blob, and a bound on memory for big ones (at least one blob is
/// always let through).
const IN_FLIGHT_BYTES: usize = 4 << 20;

/// Compression and encryption threads. The caller keeps at most
/// [`IN_FLIGHT_BYTES`] outstanding, so memory stays bounded and neither
/// channel can grow without limit.
struct Workers {
    jobs: Option<mpsc::Sender<Job>>,
    /// Each result with the plaintext length of its job.
    results: mpsc::Receiver<(usize, Result<Sealed>)>,
    handles: Vec<std::thread::JoinHandle<()>>,
    outstanding: usize,
    outstanding_bytes: usize,
}

impl Workers {
    fn start(key: &Key, version: u32) -> Workers {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 8);
        let (jtx, jrx) = mpsc::channel::<Job>();
        let (rtx, rrx) = mpsc::channel::<(usize, Result<Sealed>)>();
        let jrx = Arc::new(Mutex::new(jrx));
        let mut handles = Vec::new();
        for i in 0..n {
            let (jrx, rtx, key) = (jrx.clone(), rtx.clone(), key.clone());
            let h = std::thread::Builder::new()
                .name(format!("bulwark-seal-{i}"))
                .spawn(move || {
                    // Without a context of its own the worker compresses
                    // with a fresh one per blob (slower, same result).
                    let mut zstd = zstd::bulk::Compressor::new(3).ok();
                    loop {
                        let job = match jrx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        let len = job.data.len();
                        if rtx
                            .send((len, seal_blob(&key, version, job, zstd.as_mut())))
                            .is_err()
                        {
                            return;
                        }
                    }
                });
            // A thread that cannot start only costs parallelism.
            if let Ok(h) = h {
                handles.push(h);
            }
        }
        Workers {
            jobs: Some(jtx),
            results: rrx,
            handles,
            outstanding: 0,
            outstanding_bytes: 0,
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        // Closing the job channel ends every worker loop.
        drop(self.jobs.take());
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// Collects new blobs into packs (data and tree blobs apart, as format v2
/// requires), writes full packs, and writes index files for what it wrote.
/// Call [`BlobSaver::finish`] before saving a snapshot that refers to them:
/// packs first, then indexes, then the snapshot.
///
/// Hashing happens on the caller's thread (backup's file readers hash
/// before they take the saver) and deduplication under `&mut self`;
/// compression and encryption run on worker threads.
pub(crate) struct BlobSaver {
    data: PackBuilder,
    tree: PackBuilder,
    pending_index: Vec<IndexPack>,
    pending_blobs: usize,
    in_flight: HashSet<(BlobType, Id)>,
    workers: Option<Workers>,
    writer: Option<FileWriter>,
    /// Packs handed to the writer: if it fails, their index entries go.
    sent_packs: HashSet<Id>,
    /// What was written so far.
    pub(crate) stats: SaverStats,
}

/// What a [`BlobSaver`] wrote.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SaverStats {
    pub(crate) data_blobs: u64,
    pub(crate) tree_blobs: u64,
    pub(crate) data_added: u64,
    pub(crate) data_added_packed: u64,
    pub(crate) packs: u64,
    pub(crate) index_files: u64,
}

impl BlobSaver {
    pub(crate) fn new() -> Self {
        BlobSaver {
            data: PackBuilder::new(BlobType::Data),
            tree: PackBuilder::new(BlobType::Tree),
            pending_index: Vec::new(),
            pending_blobs: 0,
            in_flight: HashSet::new(),
            workers: None,
            writer: None,
            sent_packs: HashSet::new(),
            stats: SaverStats::default(),
        }
    }

    /// Store a blob unless the repository already has it. Returns its id
    /// and whether it was new.
    pub(crate) fn save(
        &mut self,
        repo: &mut Repository,
        t: BlobType,
        data: &[u8],
    ) -> Result<(Id, bool)> {
        let id = Id::hash(data);
        if self.known(repo, t, &id) {
            return Ok((id, false));
        }
        self.submit(
            repo,
            Job {
                t,
                id,
                data: data.to_vec(),
            },
        )?;
        Ok((id, true))
    }

    /// Store `data`, whose SHA-256 the caller computed as `id` (so that it
    /// can hash without holding the saver), taking ownership of it.
    /// Whether it was new.
    pub(crate) fn save_hashed(
        &mut self,
        repo: &mut Repository,
        t: BlobType,
        id: Id,
        data: Vec<u8>,
    ) -> Result<bool> {
        if self.known(repo, t, &id) {
            return Ok(false);
        }
        self.submit(repo, Job { t, id, data })?;
        Ok(true)
    }

    /// Store a blob whose id the caller knows (copy, prune).
    pub(crate) fn save_with_id(
        &mut self,
        repo: &mut Repository,
        t: BlobType,
        id: Id,
        data: &[u8],
    ) -> Result<bool> {
        if self.known(repo, t, &id) {
            return Ok(false);
        }
        self.submit(
            repo,
            Job {
                t,
                id,
                data: data.to_vec(),
            },
        )?;
        Ok(true)
    }

    fn known(&self, repo: &Repository, t: BlobType, id: &Id) -> bool {
        repo.index.contains_key(&(t, *id)) || self.in_flight.contains(&(t, *id))
    }

    fn submit(&mut self, repo: &mut Repository, job: Job) -> Result<()> {
        self.in_flight.insert((job.t, job.id));
        let w = self
            .workers
            .get_or_insert_with(|| Workers::start(&repo.key, repo.config.version));
        if w.handles.is_empty() {
            // No worker thread could start: do the work here.
            let sealed = seal_blob(&repo.key, repo.config.version, job, None)?;
            return self.add(repo, sealed);
        }
        // Bound the bytes in flight (and so memory) before adding a blob.
        let len = job.data.len();
        while self
            .workers
            .as_ref()
            .is_some_and(|w| w.outstanding > 0 && w.outstanding_bytes + len > IN_FLIGHT_BYTES)
        {
            let sealed = self.next_result(true)?.ok_or_else(stopped)??;
            self.add(repo, sealed)?;
        }
        let w = self.workers.as_mut().ok_or_else(stopped)?;
        w.jobs
            .as_ref()
            .ok_or_else(stopped)?
            .send(job)
            .map_err(|_| stopped())?;
        w.outstanding += 1;
        w.outstanding_bytes += len;
        // Take whatever is ready without waiting.
        while let Some(r) = self.next_result(false)? {
            self.add(repo, r?)?;
        }
        Ok(())
    }

    /// One result from the workers: waiting for it when `block`, else only
    /// if one is ready.
    fn next_result(&mut self, block: bool) -> Result<Option<Result<Sealed>>> {
        let Some(w) = self.workers.as_mut() else {
            return Ok(None);
        };
        if w.outstanding == 0 {
            return Ok(None);
        }
        let r = if block {
            Some(w.results.recv().map_err(|_| stopped())?)
        } else {
            w.results.try_recv().ok()
        };
        Ok(r.map(|(len, sealed)| {
            w.outstanding -= 1;
            w.outstanding_bytes -= len;
            sealed
        }))
    }

    /// Append a sealed blob to its pack; write the pack when full.
    fn add(&mut self, repo: &mut Repository, s: Sealed) -> Result<()> {
        self.in_flight.remove(&(s.t, s.id));
        let pb = match s.t {
            BlobType::Data => &mut self.data,
            BlobType::Tree => &mut self.tree,
        };
        pb.add(s.id, &s.enc, s.uncompressed_length);
        // Known from now on; the pack id is filled in when the pack is written.
        if let Some(b) = pb.blobs.last() {
            repo.index.insert(
                (s.t, s.id),
                IndexEntry {
                    pack: Id::default(),
                    blob: *b,
                },
            );
        }
        match s.t {
            BlobType::Data => {
                self.stats.data_blobs += 1;
                self.stats.data_added += s.plain_len as u64;
                self.stats.data_added_packed += s.enc.len() as u64;
            }
            BlobType::Tree => self.stats.tree_blobs += 1,
        }
        if pb.data.len() >= PACK_TARGET {
            self.flush_pack(repo, s.t)?;
        }
        Ok(())
    }

    fn flush_pack(&mut self, repo: &mut Repository, t: BlobType) -> Result<()> {
        let pb = match t {
            BlobType::Data => std::mem::replace(&mut self.data, PackBuilder::new(BlobType::Data)),
            BlobType::Tree => std::mem::replace(&mut self.tree, PackBuilder::new(BlobType::Tree)),
        };
        if pb.is_empty() {
            return Ok(());
        }
        let (bytes, pack_id, blobs) = pb.finish(&repo.key);
        self.sent_packs.insert(pack_id);
        self.write_file(repo, (FileType::Pack, pack_id.to_hex(), bytes))?;
        for b in &blobs {
            repo.index.insert(
                (b.blob_type, b.id),
                IndexEntry {
                    pack: pack_id,
                    blob: *b,
                },
            );
        }
        self.pending_blobs += blobs.len();
        self.pending_index.push(IndexPack::new(pack_id, &blobs));
        self.stats.packs += 1;
        if self.pending_blobs >= INDEX_MAX_BLOBS {
            self.write_index(repo)?;
        }
        Ok(())
    }

    fn write_index(&mut self, repo: &Repository) -> Result<()> {
        if self.pending_index.is_empty() {
            return Ok(());
        }
        let idx = IndexJson {
            supersedes: Vec::new(),
            packs: std::mem::take(&mut self.pending_index),
        };
        let j = serde_json::to_vec(&idx).map_err(|e| Error::json("index", e))?;
        let enc = repo.key.seal(&unpacked::encode(&j, repo.config.version)?);
        let id = Id::hash(&enc);
        self.write_file(repo, (FileType::Index, id.to_hex(), enc))?;
        self.pending_blobs = 0;
        self.stats.index_files += 1;
        Ok(())
    }

    /// Hand a file to the writer threads (started on first use), or write
    /// it here if no thread can start.
    fn write_file(&mut self, repo: &Repository, job: FileJob) -> Result<()> {
        if self.writer.is_none() {
            self.writer = FileWriter::start(repo.backend.clone());
        }
        match self.writer.as_mut() {
            Some(w) => w.send(job),
            None => repo.backend.write_owned(job.0, &job.1, job.2),
        }
    }

    /// Write the partial packs and the index for everything saved, and
    /// wait until all of it is stored.
    pub(crate) fn finish(mut self, repo: &mut Repository) -> Result<SaverStats> {
        let r = (|| {
            while let Some(r) = self.next_result(true)? {
                self.add(repo, r?)?;
            }
            drop(self.workers.take());
            self.flush_pack(repo, BlobType::Data)?;
            self.flush_pack(repo, BlobType::Tree)?;
            self.write_index(repo)?;
            match self.writer.as_mut() {
                Some(w) => w.finish(),
                None => Ok(()),
            }
        })();
        match r {
            Ok(()) => Ok(self.stats),
            Err(e) => {
                self.abort(repo);
                Err(e)
            }
        }
    }

    /// After a failure or a cancellation: stop the threads and forget the
    /// blobs that may not have been stored (pending in memory, or in a
    /// pack handed to the writer) or that no stored index names (in a
    /// pack whose index file was not written yet), so that a later backup
    /// with this repository value does not deduplicate against them: its
    /// snapshot would refer to blobs the repository cannot find.
    pub(crate) fn abort(&mut self, repo: &mut Repository) {
        drop(self.workers.take());
        let written = self
            .writer
            .as_mut()
            .is_none_or(|w| w.finish().is_ok() && !w.failed);
        let sent = std::mem::take(&mut self.sent_packs);
        let unindexed: HashSet<Id> = self.pending_index.drain(..).map(|p| p.id).collect();
        repo.index.retain(|_, e| {
            e.pack != Id::default()
                && !unindexed.contains(&e.pack)
                && (written || !sent.contains(&e.pack))
        });
    }
}

#[cfg(test)]
mod tests;
mod writer;
