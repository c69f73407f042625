use super::*;
use crate::backend::memory::MemoryBackend;
use crate::crypto::KdfParams;
use std::sync::Mutex;

/// Memory storage whose pack writes fail once `fail` is set.
struct FailingPacks {
    inner: MemoryBackend,
    fail: std::sync::atomic::AtomicBool,
}

impl Backend for FailingPacks {
    fn location(&self) -> String {
        "failing".into()
    }
    fn create(&self) -> Result<()> {
        self.inner.create()
    }
    fn list(&self, t: FileType) -> Result<Vec<(String, u64)>> {
        self.inner.list(t)
    }
    fn read(&self, t: FileType, name: &str) -> Result<Vec<u8>> {
        self.inner.read(t, name)
    }
    fn read_range(&self, t: FileType, name: &str, offset: u64, length: u32) -> Result<Vec<u8>> {
        self.inner.read_range(t, name, offset, length)
    }
    fn read_with(
        &self,
        t: FileType,
        name: &str,
        length: Option<u64>,
        consumer: &mut dyn FnMut(&mut dyn std::io::Read) -> Result<()>,
    ) -> Result<()> {
        self.inner.read_with(t, name, length, consumer)
    }
    fn write(&self, t: FileType, name: &str, data: &[u8]) -> Result<()> {
        if t == FileType::Pack && self.fail.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(Error::format(name, "injected write failure"));
        }
        self.inner.write(t, name, data)
    }
    fn remove(&self, t: FileType, name: &str) -> Result<()> {
        self.inner.remove(t, name)
    }
    fn stat(&self, t: FileType, name: &str) -> Result<u64> {
        self.inner.stat(t, name)
    }
}

#[test]
fn packs_written_in_the_background_are_stored_before_their_index() {
    let backend = Arc::new(FailingPacks {
        inner: MemoryBackend::new(),
        fail: false.into(),
    });
    struct Shared(Arc<FailingPacks>);
    impl Backend for Shared {
        fn location(&self) -> String {
            self.0.location()
        }
        fn create(&self) -> Result<()> {
            self.0.create()
        }
        fn list(&self, t: FileType) -> Result<Vec<(String, u64)>> {
            self.0.list(t)
        }
        fn read(&self, t: FileType, n: &str) -> Result<Vec<u8>> {
            self.0.read(t, n)
        }
        fn read_range(&self, t: FileType, n: &str, o: u64, l: u32) -> Result<Vec<u8>> {
            self.0.read_range(t, n, o, l)
        }
        fn read_with(
            &self,
            t: FileType,
            n: &str,
            length: Option<u64>,
            consumer: &mut dyn FnMut(&mut dyn std::io::Read) -> Result<()>,
        ) -> Result<()> {
            self.0.read_with(t, n, length, consumer)
        }
        fn write(&self, t: FileType, n: &str, d: &[u8]) -> Result<()> {
            self.0.write(t, n, d)
        }
        fn remove(&self, t: FileType, n: &str) -> Result<()> {
            self.0.remove(t, n)
        }
        fn stat(&self, t: FileType, n: &str) -> Result<u64> {
            self.0.stat(t, n)
        }
    }
    let mut repo = Repository::init(
        Box::new(Shared(backend.clone())),
        b"pw",
        KdfParams::INSECURE_FAST,
    )
    .unwrap();
    // Success: after finish, the pack and its index are stored and a
    // fresh index load finds the blob.
    let mut s = BlobSaver::new();
    let (kept, _) = s.save(&mut repo, BlobType::Data, b"kept").unwrap();
    s.finish(&mut repo).unwrap();
    assert_eq!(backend.list(FileType::Pack).unwrap().len(), 1);
    repo.load_index().unwrap();
    assert_eq!(repo.load_blob(BlobType::Data, &kept).unwrap(), b"kept");

    // Failure: the error comes back from finish, no index file is
    // written for the lost pack, and the in-memory index forgets the
    // blob (a later save stores it again instead of deduplicating).
    backend
        .fail
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let mut s = BlobSaver::new();
    let (lost, new) = s.save(&mut repo, BlobType::Data, b"lost").unwrap();
    assert!(new);
    let err = s.finish(&mut repo).unwrap_err();
    assert!(err.to_string().contains("injected"), "{err}");
    assert_eq!(backend.list(FileType::Index).unwrap().len(), 1);
    assert!(repo.lookup(BlobType::Data, &lost).is_none());
    assert!(repo.lookup(BlobType::Data, &kept).is_some());
    backend
        .fail
        .store(false, std::sync::atomic::Ordering::Relaxed);
    let mut s = BlobSaver::new();
    let (_, new) = s.save(&mut repo, BlobType::Data, b"lost").unwrap();
    assert!(new);
    s.finish(&mut repo).unwrap();
    assert_eq!(repo.load_blob(BlobType::Data, &lost).unwrap(), b"lost");
}

/// What [`Recording`] saw.
#[derive(Default)]
struct Log {
    /// `(started, type, name)` in the order writes started and ended.
    events: Vec<(bool, FileType, String)>,
    writing: usize,
    max_writing: usize,
    packs_started: usize,
}

/// Memory storage that asks for `connections` parallel writes, makes pack
/// writes slow enough (1 s) to overlap, fails the `fail_pack`-th pack write
/// (counting from 1, 0 for never), and records what it was asked.
#[derive(Clone)]
struct Recording(Arc<(MemoryBackend, Mutex<Log>, usize, usize)>);

impl Recording {
    fn new(connections: usize, fail_pack: usize) -> Recording {
        Recording(Arc::new((
            MemoryBackend::new(),
            Mutex::default(),
            connections,
            fail_pack,
        )))
    }
    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.0 .1.lock().unwrap()
    }
}

impl Backend for Recording {
    fn location(&self) -> String {
        "recording".into()
    }
    fn connections(&self) -> usize {
        self.0 .2
    }
    fn create(&self) -> Result<()> {
        self.0 .0.create()
    }
    fn list(&self, t: FileType) -> Result<Vec<(String, u64)>> {
        self.0 .0.list(t)
    }
    fn read(&self, t: FileType, name: &str) -> Result<Vec<u8>> {
        self.0 .0.read(t, name)
    }
    fn read_range(&self, t: FileType, name: &str, offset: u64, length: u32) -> Result<Vec<u8>> {
        self.0 .0.read_range(t, name, offset, length)
    }
    fn read_with(
        &self,
        t: FileType,
        name: &str,
        length: Option<u64>,
        consumer: &mut dyn FnMut(&mut dyn std::io::Read) -> Result<()>,
    ) -> Result<()> {
        self.0 .0.read_with(t, name, length, consumer)
    }
    fn write(&self, t: FileType, name: &str, data: &[u8]) -> Result<()> {
        let nth = {
            let mut log = self.log();
            log.events.push((true, t, name.to_string()));
            log.writing += 1;
            log.max_writing = log.max_writing.max(log.writing);
            log.packs_started += usize::from(t == FileType::Pack);
            log.packs_started
        };
        let r = if t == FileType::Pack {
            std::thread::sleep(std::time::Duration::from_millis(1000));
            if nth == self.0 .3 {
                Err(Error::format(name, "injected write failure"))
            } else {
                self.0 .0.write(t, name, data)
            }
        } else {
            self.0 .0.write(t, name, data)
        };
        let mut log = self.log();
        log.writing -= 1;
        if r.is_ok() {
            log.events.push((false, t, name.to_string()));
        }
        r
    }
    fn remove(&self, t: FileType, name: &str) -> Result<()> {
        self.0 .0.remove(t, name)
    }
    fn stat(&self, t: FileType, name: &str) -> Result<u64> {
        self.0 .0.stat(t, name)
    }
}

/// Saves `packs` packs' worth of incompressible data blobs (4 MiB each,
/// four to a pack) and returns what `finish` said.
fn save_packs(repo: &mut Repository, packs: usize) -> Result<SaverStats> {
    use rand::RngCore;
    let mut s = BlobSaver::new();
    let mut blob = vec![0u8; 4 << 20];
    for _ in 0..packs * 4 {
        rand::thread_rng().fill_bytes(&mut blob);
        if let Err(e) = s.save(repo, BlobType::Data, &blob) {
            s.abort(repo);
            return Err(e);
        }
    }
    s.finish(repo)
}

#[test]
fn packs_are_written_connections_at_a_time_and_before_their_index() {
    let backend = Recording::new(3, 0);
    let mut repo =
        Repository::init(Box::new(backend.clone()), b"pw", KdfParams::INSECURE_FAST).unwrap();
    let stats = save_packs(&mut repo, 5).unwrap();
    assert_eq!(stats.packs, 5);
    let log = backend.log();
    // Three at most; at least two whenever the packs come faster than
    // the slow writes end (a loaded machine may not fill all three).
    assert!(
        (2..=3).contains(&log.max_writing),
        "{} writes at once",
        log.max_writing
    );
    // Every index file starts after each pack it names has ended.
    let position = |started: bool, t: FileType, name: &str| {
        log.events
            .iter()
            .position(|(s, et, n)| *s == started && *et == t && n == name)
    };
    let indexes = repo.list_ids(FileType::Index).unwrap();
    assert_eq!(indexes.len(), 1);
    for (id, _) in indexes {
        let index_start = position(true, FileType::Index, &id.to_hex()).unwrap();
        let idx = repo.load_index_file(&id, None).unwrap();
        assert_eq!(idx.packs.len(), 5);
        for p in &idx.packs {
            let pack_end = position(false, FileType::Pack, &p.id.to_hex()).unwrap();
            assert!(
                pack_end < index_start,
                "index {id} written before pack {}",
                p.id
            );
        }
    }
}

#[test]
fn a_failed_pack_among_parallel_writes_stops_the_index() {
    let backend = Recording::new(3, 2);
    let mut repo =
        Repository::init(Box::new(backend.clone()), b"pw", KdfParams::INSECURE_FAST).unwrap();
    let err = save_packs(&mut repo, 5).unwrap_err();
    assert!(err.to_string().contains("injected"), "{err}");
    assert!(repo.list_ids(FileType::Index).unwrap().is_empty());
    // Nothing is deduplicated against the lost packs: the next save
    // stores every blob again.
    assert!(repo.index.is_empty());
    let log = backend.log();
    assert!(log.events.iter().all(|(_, t, _)| *t != FileType::Index));
}
