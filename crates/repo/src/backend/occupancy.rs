//! What a repository occupies in its store, by storage class: the input
//! of storage cost. Object stores bill each class at its own price per
//! GB-month, so bytes are counted per class as the store lists them.

use std::collections::BTreeMap;

use super::{Backend, FileType};
use crate::error::Result;

/// The class files on a local disk are counted under.
pub const LOCAL_CLASS: &str = "local";

/// Objects and bytes of one storage class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClassUsage {
    /// Files (objects) in the class.
    pub objects: u64,
    /// Their total size in bytes.
    pub bytes: u64,
}

/// A repository's files by storage class, from one listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Usage {
    /// Class name as the store spells it (`STANDARD`, `STANDARD_IA`,
    /// `GLACIER_IR`; Azure `Hot`, `Cool`; [`LOCAL_CLASS`] on disk).
    pub by_class: BTreeMap<String, ClassUsage>,
    /// The store's listing did not say each object's class (Azure and
    /// GCS here), so files are counted under the class they were written
    /// with: `azure.access-tier` / `gs.storage-class` for data packs, the
    /// standard class for everything else. Lifecycle rules that moved
    /// objects since are not seen.
    pub assumed: bool,
}

impl Usage {
    /// Count one file of `bytes` in `class`.
    pub fn add(&mut self, class: &str, bytes: u64) {
        let c = self.by_class.entry(class.to_string()).or_default();
        // Sizes are the store's word: a bogus one saturates, never panics.
        c.objects = c.objects.saturating_add(1);
        c.bytes = c.bytes.saturating_add(bytes);
    }

    /// Bytes in every class.
    pub fn total_bytes(&self) -> u64 {
        self.by_class
            .values()
            .fold(0, |sum: u64, c| sum.saturating_add(c.bytes))
    }
}

/// Whether `key` (relative to the repository's prefix) is a repository
/// file in restic's layout: `config` or anything under `keys/`, `data/`,
/// `index/`, `snapshots/`, `locks/`. Other objects that share a bucket
/// with the repository are not its cost.
pub(crate) fn in_layout(key: &str) -> bool {
    key == "config"
        || FileType::DIRS.iter().any(|t| {
            key.strip_prefix(t.dir())
                .is_some_and(|r| r.starts_with('/'))
        })
}

/// [`Backend::usage`] of a backend that cannot tell classes apart: every
/// file it lists, under `class`.
pub(crate) fn listed_usage(b: &(impl Backend + ?Sized), class: &str) -> Result<Usage> {
    let mut usage = Usage::default();
    match b.stat(FileType::Config, "config") {
        Ok(size) => usage.add(class, size),
        Err(crate::Error::NotFound(_)) => {}
        Err(e) => return Err(e),
    }
    for t in FileType::DIRS {
        for (_, size) in b.list(t)? {
            usage.add(class, size);
        }
    }
    Ok(usage)
}

/// What the repository at `repo` occupies by storage class, from one
/// listing of its store (no password needed: nothing is decrypted).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = std::env::temp_dir().join(format!("bulwark-usage-doc-{}", std::process::id()));
/// let repo = dir.to_str().unwrap();
/// let backend = bulwark_repo::open_backend(repo)?;
/// backend.create()?;
/// backend.write(bulwark_repo::FileType::Config, "config", b"12345")?;
/// let usage = bulwark_repo::usage(repo, &bulwark_repo::BackendOptions::default())?;
/// assert_eq!(usage.by_class[bulwark_repo::LOCAL_CLASS].bytes, 5);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(()) }
/// ```
///
/// # Errors
/// As [`super::open_backend_with`], and failures of the listing.
pub fn usage(repo: &str, options: &super::BackendOptions) -> Result<Usage> {
    super::open_backend_with(repo, options)?.usage()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes come from a listing the store sends: a bogus one (u64::MAX)
    /// must not overflow the sum and panic the cost job.
    #[test]
    fn absurd_listed_sizes_saturate() {
        let mut u = Usage::default();
        u.add("STANDARD", u64::MAX);
        u.add("STANDARD", 1);
        u.add("GLACIER_IR", u64::MAX);
        assert_eq!(u.by_class["STANDARD"].bytes, u64::MAX);
        assert_eq!(u.by_class["STANDARD"].objects, 2);
        assert_eq!(u.total_bytes(), u64::MAX);
    }

    #[test]
    fn the_layout_is_restic_s() {
        for (key, want) in [
            ("config", true),
            ("data/ab/abcd", true),
            ("keys/k", true),
            ("locks/l", true),
            ("index/i", true),
            ("snapshots/s", true),
            ("datax/ab", false),
            ("notes.txt", false),
            ("configs", false),
            ("data", false),
        ] {
            assert_eq!(in_layout(key), want, "{key}");
        }
    }

    #[test]
    fn memory_and_local_backends_count_every_file_once() {
        let b = crate::backend::memory::MemoryBackend::new();
        b.create().unwrap();
        b.write(FileType::Config, "config", b"abc").unwrap();
        b.write(FileType::Pack, &"ab".repeat(32), &[0; 1000])
            .unwrap();
        b.write(FileType::Index, &"cd".repeat(32), &[0; 10])
            .unwrap();
        let u = b.usage().unwrap();
        assert_eq!(
            u.by_class[LOCAL_CLASS],
            ClassUsage {
                objects: 3,
                bytes: 1013
            }
        );
        assert_eq!(u.total_bytes(), 1013);
        assert!(!u.assumed);
    }
}
