use super::*;
use crate::backend::memory::MemoryBackend;
use crate::crypto::KdfParams;

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
