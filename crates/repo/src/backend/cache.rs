//! A local cache of a remote repository's metadata, like restic's
//! `~/.cache/restic`: index and snapshot files, which every command reads
//! and which never change once written (their names are the SHA-256 of
//! their contents), are kept under `<root>/<repository id>/` so they are
//! downloaded once.
//!
//! The cache is only ever a faster copy: a cached file is used when its
//! content still hashes to its name (anything else is deleted and fetched
//! again), writes go to the repository first, files the repository no
//! longer lists are dropped, and a cache that cannot be written costs speed,
//! never a failure. Files are written to a temporary name and renamed, in
//! 0700 directories as 0600 files, like the repository's own.
//!
//! Packs of tree blobs are kept too (`<root>/<id>/trees/`), downloaded
//! whole the first time one of their trees is read: a backup reads its
//! parent's trees, and without them a no-change backup of a large tree
//! costs a request per directory.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{Backend, FileType};
use crate::error::Result;

/// `$XDG_CACHE_HOME/bulwark`, else `~/.cache/bulwark`; None without either.
pub fn default_cache_dir() -> Option<PathBuf> {
    let nonempty = |v: &str| std::env::var_os(v).filter(|s| !s.is_empty());
    nonempty("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| nonempty("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|base| base.join("bulwark"))
}

/// A backend whose index and snapshot reads are served from a local cache.
pub(crate) struct CachedBackend {
    inner: Arc<dyn Backend>,
    /// `<root>/<repository id>`.
    dir: PathBuf,
    /// Tree packs whose cached copy was checked against its name by this
    /// process: later reads take their range without hashing again (the
    /// blob's own MAC and hash still check every read).
    checked_tree_packs: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// Where tree packs are kept, beside `index/` and `snapshots/`.
const TREE_PACKS: &str = "trees";

fn cached(t: FileType) -> bool {
    matches!(t, FileType::Index | FileType::Snapshot)
}

/// Whether `data` is the content of the file named `name`.
fn matches_name(name: &str, data: &[u8]) -> bool {
    hex::encode(Sha256::digest(data)) == name
}

impl CachedBackend {
    /// `None` when `id` is not a repository id (a hostile config must not
    /// pick the cache's path).
    pub(crate) fn new(inner: Arc<dyn Backend>, root: &Path, id: &str) -> Option<CachedBackend> {
        let valid = id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
        valid.then(|| CachedBackend {
            inner,
            dir: root.join(id),
            checked_tree_packs: Default::default(),
        })
    }

    fn path(&self, t: FileType, name: &str) -> Option<PathBuf> {
        let plain = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric());
        (cached(t) && plain).then(|| self.dir.join(t.dir()).join(name))
    }

    /// Best effort: a failure leaves at most a temporary file, which the
    /// next store of the same name replaces.
    fn store(&self, path: &Path, data: &[u8]) {
        let Some(dir) = path.parent() else { return };
        if fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .is_err()
        {
            return;
        }
        let tmp = path.with_extension("tmp");
        let written = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| f.write_all(data));
        if written.is_err() || fs::rename(&tmp, path).is_err() {
            let _ = fs::remove_file(&tmp);
        }
    }
}

impl Backend for CachedBackend {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn connections(&self) -> usize {
        self.inner.connections()
    }

    fn create(&self) -> Result<()> {
        self.inner.create()
    }

    fn list(&self, t: FileType) -> Result<Vec<(String, u64)>> {
        let listed = self.inner.list(t)?;
        let dir = match t {
            FileType::Pack => Some(self.dir.join(TREE_PACKS)),
            t if cached(t) => Some(self.dir.join(t.dir())),
            _ => None,
        };
        if let Some(dir) = dir {
            // Forget what the repository no longer has (forget, prune).
            if let Ok(entries) = fs::read_dir(dir) {
                for entry in entries.flatten() {
                    let name = entry.file_name();
                    let name = name.to_string_lossy();
                    if !listed.iter().any(|(n, _)| *n == name) {
                        let _ = fs::remove_file(entry.path());
                    }
                }
            }
        }
        Ok(listed)
    }

    fn read(&self, t: FileType, name: &str) -> Result<Vec<u8>> {
        let Some(path) = self.path(t, name) else {
            return self.inner.read(t, name);
        };
        if let Ok(data) = fs::read(&path) {
            if matches_name(name, &data) {
                return Ok(data);
            }
            let _ = fs::remove_file(&path);
        }
        let data = self.inner.read(t, name)?;
        if matches_name(name, &data) {
            self.store(&path, &data);
        }
        Ok(data)
    }

    fn read_range(&self, t: FileType, name: &str, offset: u64, length: u32) -> Result<Vec<u8>> {
        self.inner.read_range(t, name, offset, length)
    }

    /// Cached files (small, read whole anyway) come from the cache as
    /// [`read`](Self::read) serves them; packs stream from the store.
    fn read_with(
        &self,
        t: FileType,
        name: &str,
        length: Option<u64>,
        consumer: &mut dyn FnMut(&mut dyn std::io::Read) -> Result<()>,
    ) -> Result<()> {
        if self.path(t, name).is_some() {
            let data = self.read(t, name)?;
            return super::stream::from_memory(t, name, &data, length, consumer);
        }
        self.inner.read_with(t, name, length, consumer)
    }

    fn read_tree_pack_range(&self, name: &str, offset: u64, length: u32) -> Result<Vec<u8>> {
        let plain = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric());
        if !plain {
            return self.inner.read_range(FileType::Pack, name, offset, length);
        }
        let path = self.dir.join(TREE_PACKS).join(name);
        let range = |data: &[u8]| -> Option<Vec<u8>> {
            let start = usize::try_from(offset).ok()?;
            let end = start.checked_add(length as usize)?;
            data.get(start..end).map(<[u8]>::to_vec)
        };
        let checked = self
            .checked_tree_packs
            .lock()
            .is_ok_and(|c| c.contains(name));
        let past_end = || {
            crate::Error::format(
                format!("pack {name}"),
                format!("no {length} bytes at {offset}"),
            )
        };
        if checked {
            if let Some(part) = read_at(&path, offset, length) {
                return Ok(part);
            }
            // The checked copy is whole: a range outside it is outside the pack.
            if path.exists() {
                return Err(past_end());
            }
        } else if let Ok(data) = fs::read(&path) {
            if matches_name(name, &data) {
                if let Ok(mut c) = self.checked_tree_packs.lock() {
                    c.insert(name.to_string());
                }
                if let Some(part) = range(&data) {
                    return Ok(part);
                }
            }
            let _ = fs::remove_file(&path);
        }
        // One request for the whole pack instead of one per tree in it.
        let data = self.inner.read(FileType::Pack, name)?;
        if matches_name(name, &data) {
            self.store(&path, &data);
            if let Ok(mut c) = self.checked_tree_packs.lock() {
                c.insert(name.to_string());
            }
        }
        range(&data).ok_or_else(past_end)
    }

    fn drop_tree_pack_copy(&self, name: &str) {
        if let Ok(mut c) = self.checked_tree_packs.lock() {
            c.remove(name);
        }
        let plain = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric());
        if plain {
            let _ = fs::remove_file(self.dir.join(TREE_PACKS).join(name));
        }
    }

    fn write(&self, t: FileType, name: &str, data: &[u8]) -> Result<()> {
        self.inner.write(t, name, data)?;
        if let Some(path) = self.path(t, name) {
            self.store(&path, data);
        }
        Ok(())
    }

    fn write_owned(&self, t: FileType, name: &str, data: Vec<u8>) -> Result<()> {
        match self.path(t, name) {
            Some(path) => {
                self.inner.write(t, name, &data)?;
                self.store(&path, &data);
                Ok(())
            }
            None => self.inner.write_owned(t, name, data),
        }
    }

    fn remove(&self, t: FileType, name: &str) -> Result<()> {
        if let Some(path) = self.path(t, name) {
            let _ = fs::remove_file(path);
        }
        if t == FileType::Pack && name.bytes().all(|b| b.is_ascii_alphanumeric()) {
            let _ = fs::remove_file(self.dir.join(TREE_PACKS).join(name));
        }
        self.inner.remove(t, name)
    }

    /// A cached index or snapshot file answers from disk: reading one
    /// starts with its size (the bound on metadata files), and asking the
    /// store would cost a request per file on every command. The copy was
    /// stored only when it hashed to its name, and [`read`](Self::read)
    /// checks that again.
    fn stat(&self, t: FileType, name: &str) -> Result<u64> {
        if let Some(meta) = self.path(t, name).and_then(|p| fs::metadata(p).ok()) {
            return Ok(meta.len());
        }
        self.inner.stat(t, name)
    }

    fn remove_leftovers(&self, dry_run: bool) -> Result<(u64, u64)> {
        self.inner.remove_leftovers(dry_run)
    }

    fn protection(&self) -> Result<Option<super::BucketProtection>> {
        self.inner.protection()
    }

    fn usage(&self) -> Result<super::Usage> {
        self.inner.usage()
    }
}

/// `length` bytes at `offset` of the file at `path`, or None.
fn read_at(path: &Path, offset: u64, length: u32) -> Option<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let f = fs::File::open(path).ok()?;
    // The length comes from an index; never allocate past the file.
    let size = f.metadata().ok()?.len();
    if offset.checked_add(u64::from(length))? > size {
        return None;
    }
    let mut buf = vec![0; length as usize];
    f.read_exact_at(&mut buf, offset).ok()?;
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryBackend;

    #[test]
    fn cached_files_are_checked_by_hash_and_follow_the_repository() {
        let tmp = tempfile::tempdir().unwrap();
        let inner: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        let id = "ab".repeat(32);
        assert!(CachedBackend::new(inner.clone(), tmp.path(), "../x").is_none());
        let cache = CachedBackend::new(inner.clone(), tmp.path(), &id).unwrap();
        let data = b"an index file".to_vec();
        let name = hex::encode(Sha256::digest(&data));
        cache.write(FileType::Index, &name, &data).unwrap();
        let file = tmp.path().join(&id).join("index").join(&name);
        assert_eq!(fs::read(&file).unwrap(), data);

        // Served from the cache even when the repository's copy is gone...
        inner.remove(FileType::Index, &name).unwrap();
        assert_eq!(cache.read(FileType::Index, &name).unwrap(), data);
        // (its size too, with no request)
        assert_eq!(
            cache.stat(FileType::Index, &name).unwrap(),
            data.len() as u64
        );
        // ...but never when it no longer hashes to its name.
        fs::write(&file, b"tampered").unwrap();
        assert!(cache.read(FileType::Index, &name).is_err());
        assert!(!file.exists());

        // A file the repository stops listing leaves the cache.
        inner.write(FileType::Index, &name, &data).unwrap();
        cache.read(FileType::Index, &name).unwrap();
        assert!(file.exists());
        inner.remove(FileType::Index, &name).unwrap();
        assert!(cache.list(FileType::Index).unwrap().is_empty());
        assert!(!file.exists());
    }

    /// Counts the requests that reach the store.
    struct Counting(Arc<dyn Backend>, std::sync::atomic::AtomicUsize);

    impl Backend for Counting {
        fn location(&self) -> String {
            self.0.location()
        }
        fn create(&self) -> Result<()> {
            self.0.create()
        }
        fn list(&self, t: FileType) -> Result<Vec<(String, u64)>> {
            self.0.list(t)
        }
        fn read(&self, t: FileType, name: &str) -> Result<Vec<u8>> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.0.read(t, name)
        }
        fn read_range(&self, t: FileType, name: &str, o: u64, l: u32) -> Result<Vec<u8>> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.0.read_range(t, name, o, l)
        }
        fn read_with(
            &self,
            t: FileType,
            name: &str,
            length: Option<u64>,
            consumer: &mut dyn FnMut(&mut dyn std::io::Read) -> Result<()>,
        ) -> Result<()> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.0.read_with(t, name, length, consumer)
        }
        fn write(&self, t: FileType, name: &str, data: &[u8]) -> Result<()> {
            self.0.write(t, name, data)
        }
        fn remove(&self, t: FileType, name: &str) -> Result<()> {
            self.0.remove(t, name)
        }
        fn stat(&self, t: FileType, name: &str) -> Result<u64> {
            self.0.stat(t, name)
        }
        fn remove_leftovers(&self, dry_run: bool) -> Result<(u64, u64)> {
            self.0.remove_leftovers(dry_run)
        }
    }

    #[test]
    fn tree_packs_are_fetched_whole_once_and_follow_the_repository() {
        use std::sync::atomic::Ordering;
        let tmp = tempfile::tempdir().unwrap();
        let store: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        let counting = Arc::new(Counting(store.clone(), Default::default()));
        let id = "cd".repeat(32);
        let cache = CachedBackend::new(counting.clone(), tmp.path(), &id).unwrap();
        let pack = b"tree one|tree two|tree three".to_vec();
        let name = hex::encode(Sha256::digest(&pack));
        store.write(FileType::Pack, &name, &pack).unwrap();

        assert_eq!(
            cache.read_tree_pack_range(&name, 9, 8).unwrap(),
            b"tree two"
        );
        assert_eq!(
            cache.read_tree_pack_range(&name, 0, 8).unwrap(),
            b"tree one"
        );
        assert_eq!(
            cache.read_tree_pack_range(&name, 18, 10).unwrap(),
            b"tree three"
        );
        assert_eq!(
            counting.1.load(Ordering::SeqCst),
            1,
            "one request for the pack"
        );
        assert!(
            cache.read_tree_pack_range(&name, 20, 100).is_err(),
            "past its end"
        );

        // A new process checks the cached copy against its name first.
        let file = tmp.path().join(&id).join(TREE_PACKS).join(&name);
        let again = CachedBackend::new(counting.clone(), tmp.path(), &id).unwrap();
        assert_eq!(
            again.read_tree_pack_range(&name, 9, 8).unwrap(),
            b"tree two"
        );
        assert_eq!(counting.1.load(Ordering::SeqCst), 1);
        fs::write(&file, b"tampered tampered tampered!!").unwrap();
        let third = CachedBackend::new(counting.clone(), tmp.path(), &id).unwrap();
        assert_eq!(
            third.read_tree_pack_range(&name, 9, 8).unwrap(),
            b"tree two"
        );
        assert_eq!(counting.1.load(Ordering::SeqCst), 2, "fetched again");
        assert_eq!(fs::read(&file).unwrap(), pack);

        // Pruned from the repository: gone from the cache.
        store.remove(FileType::Pack, &name).unwrap();
        cache.list(FileType::Pack).unwrap();
        assert!(!file.exists());
    }
}
