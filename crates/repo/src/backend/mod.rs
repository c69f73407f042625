//! Storage backends: where repository files live.
//!
//! The trait is deliberately small (rustic's shape) so that retry, caching
//! and fault injection can be wrappers. Local directories implement it,
//! and so do the object stores (S3, Azure Blob Storage, Google Cloud
//! Storage) in [`object`].
//! Every file except `config` is named by its id; the backend maps
//! `(FileType, name)` to a location using restic's layout.

pub(crate) mod cache;
pub(crate) mod local;
pub(crate) mod location;
pub(crate) mod memory;
pub(crate) mod object;
pub(crate) mod occupancy;
pub(crate) mod options;
pub(crate) mod stream;

use crate::error::Result;

pub use cache::default_cache_dir;
pub use location::Location;
pub use occupancy::{usage, ClassUsage, Usage, LOCAL_CLASS};
pub use options::{BackendOptions, Credentials, CREDENTIAL_VARIABLES, KNOWN_OPTIONS};

/// The kinds of files in a repository, one directory each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileType {
    /// The single `config` file (its name is ignored).
    Config,
    /// `keys/`: password-protected copies of the master key.
    Key,
    /// `data/xx/`: pack files.
    Pack,
    /// `index/`: which blob is in which pack.
    Index,
    /// `snapshots/`.
    Snapshot,
    /// `locks/`.
    Lock,
}

impl FileType {
    /// The directory name in restic's default layout.
    pub fn dir(self) -> &'static str {
        match self {
            FileType::Config => "",
            FileType::Key => "keys",
            FileType::Pack => "data",
            FileType::Index => "index",
            FileType::Snapshot => "snapshots",
            FileType::Lock => "locks",
        }
    }

    /// Every type that lives in a directory.
    pub const DIRS: [FileType; 5] = [
        FileType::Key,
        FileType::Pack,
        FileType::Index,
        FileType::Snapshot,
        FileType::Lock,
    ];
}

/// Storage for repository files. Implementations must make `write` atomic:
/// a reader sees the whole file or nothing.
pub trait Backend: Send + Sync {
    /// A human-readable location, for messages.
    fn location(&self) -> String;
    /// Create the directory structure of an empty repository.
    ///
    /// # Errors
    /// I/O failures.
    fn create(&self) -> Result<()>;
    /// Names of all files of type `t` with their sizes.
    ///
    /// # Errors
    /// I/O failures.
    fn list(&self, t: FileType) -> Result<Vec<(String, u64)>>;
    /// The whole file.
    ///
    /// # Errors
    /// [`crate::Error::NotFound`] when it does not exist, I/O failures.
    fn read(&self, t: FileType, name: &str) -> Result<Vec<u8>>;
    /// `length` bytes at `offset`; fails if the file is shorter.
    ///
    /// # Errors
    /// [`crate::Error::NotFound`], short files, I/O failures.
    fn read_range(&self, t: FileType, name: &str, offset: u64, length: u32) -> Result<Vec<u8>>;
    /// The file's bytes as a stream: `consumer` gets a reader of the whole
    /// file, or of its first `length` bytes when given, and reads as much
    /// as it wants. What `check --read-data` verifies a pack with, so that
    /// only the blob being decoded is in memory, not the whole pack
    /// (restic's `Load(ctx, h, length, offset, fn(io.Reader) error)`,
    /// without the offset nobody needs: ranges have [`Backend::read_range`]).
    ///
    /// The contract, for backends and consumers:
    /// - The reader never ends early: a body shorter than `length` (or than
    ///   the store announced) makes a read fail, and the call returns an
    ///   error even if the consumer swallowed it and returned `Ok`. Short
    ///   data is never handed over as if it were the file.
    /// - A backend may call `consumer` again, from the file's first byte,
    ///   when a body breaks off (an object store retries it). A consumer
    ///   must therefore start from fresh state on every call, and only the
    ///   last call's outcome counts.
    /// - An error the consumer returns while the body was sound is its
    ///   verdict on the bytes: it is returned as it is, never retried.
    ///
    /// The consumer is a `&mut dyn FnMut` (not a generic) so the trait
    /// stays object-safe: the engine holds backends as `dyn Backend`.
    ///
    /// The default reads the file whole and hands over a cursor on it: a
    /// correct stream for backends that hold files in memory anyway.
    ///
    /// # Errors
    /// [`crate::Error::NotFound`], a file shorter than `length`, I/O
    /// failures, and whatever `consumer` returns.
    fn read_with(
        &self,
        t: FileType,
        name: &str,
        length: Option<u64>,
        consumer: &mut dyn FnMut(&mut dyn std::io::Read) -> Result<()>,
    ) -> Result<()> {
        let data = self.read(t, name)?;
        stream::from_memory(t, name, &data, length, consumer)
    }
    /// [`Backend::read_range`] of a pack that holds tree blobs only. Every
    /// backup, restore and check walks trees, so a cache keeps such packs
    /// whole (as restic's cache does) instead of asking the store for
    /// every tree again.
    ///
    /// # Errors
    /// As [`Backend::read_range`].
    fn read_tree_pack_range(&self, name: &str, offset: u64, length: u32) -> Result<Vec<u8>> {
        self.read_range(FileType::Pack, name, offset, length)
    }
    /// Drops a local copy of tree pack `name` whose bytes failed their
    /// blob's MAC or hash: a cache forgets it, so the next read fetches the
    /// pack again. Backends without a local copy have nothing to drop.
    fn drop_tree_pack_copy(&self, _name: &str) {}
    /// Write a new file atomically.
    ///
    /// # Errors
    /// I/O failures.
    fn write(&self, t: FileType, name: &str, data: &[u8]) -> Result<()>;
    /// [`Backend::write`] of a buffer the caller gives up, for backends
    /// that would otherwise copy it (a 16 MiB pack into a request body).
    ///
    /// # Errors
    /// As [`Backend::write`].
    fn write_owned(&self, t: FileType, name: &str, data: Vec<u8>) -> Result<()> {
        self.write(t, name, &data)
    }
    /// How many requests the engine should keep in flight at once (pack
    /// uploads, restore reads): one for local disks, which gain nothing
    /// from more, `connections` for object stores.
    fn connections(&self) -> usize {
        1
    }
    /// Remove a file. A file already gone is not an error: removal is
    /// idempotent, as object stores make it, so a retried request agrees
    /// with the first, and no store is asked whether the file exists first
    /// (a request per removed pack).
    ///
    /// # Errors
    /// I/O failures.
    fn remove(&self, t: FileType, name: &str) -> Result<()>;
    /// The size of a file.
    ///
    /// # Errors
    /// [`crate::Error::NotFound`], I/O failures.
    fn stat(&self, t: FileType, name: &str) -> Result<u64>;
    /// Remove what interrupted writes left behind (a local backend's
    /// temporary files); with `dry_run`, only count them. Returns (files,
    /// bytes). Call it only under the repository's exclusive lock: every
    /// writer then holds a lock or is gone, so no temporary file belongs to
    /// a write in progress. Backends whose writes are atomic by themselves
    /// have nothing to remove.
    ///
    /// # Errors
    /// I/O failures.
    fn remove_leftovers(&self, dry_run: bool) -> Result<(u64, u64)> {
        let _ = dry_run;
        Ok((0, 0))
    }
    /// What the store does against deleting and overwriting objects
    /// (versioning, Object Lock), for those that have such settings (S3);
    /// `None` for the others. Questions the store refuses to answer (no
    /// permission, an endpoint without the API) come back as
    /// [`Protection::Unknown`], not as errors.
    ///
    /// # Errors
    /// Only failures to build the question; the store's answers are data.
    fn protection(&self) -> Result<Option<BucketProtection>> {
        Ok(None)
    }
    /// The repository's files by storage class ([`Usage`]), from one
    /// listing. Object stores say what the store bills; a backend on a
    /// local disk counts everything as [`LOCAL_CLASS`].
    ///
    /// # Errors
    /// I/O failures and refused listings.
    fn usage(&self) -> Result<Usage> {
        occupancy::listed_usage(self, LOCAL_CLASS)
    }
}

/// The state of one protection setting of a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protection {
    /// On.
    Enabled,
    /// Was on, now off (S3 versioning: versions made so far are kept).
    Suspended,
    /// Never turned on.
    Disabled,
    /// The store did not say; why (an error code such as `AccessDenied`).
    Unknown(String),
}

impl Protection {
    /// `enabled`, `suspended`, `disabled` or `unknown`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Protection::Enabled => "enabled",
            Protection::Suspended => "suspended",
            Protection::Disabled => "disabled",
            Protection::Unknown(_) => "unknown",
        }
    }
}

/// An S3 bucket's defences against ransomware and mistakes: versioning
/// keeps overwritten and deleted objects, Object Lock forbids deleting
/// them before their retention ends.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BucketProtection {
    /// `GET ?versioning`.
    pub versioning: Protection,
    /// `GET ?object-lock`.
    pub object_lock: Protection,
    /// The default retention new objects get under Object Lock, as S3
    /// states it: mode and period (`GOVERNANCE 30 days`).
    pub default_retention: Option<String>,
}

/// Open the backend a repository string names ([`Location::parse`]) with
/// default options: a local directory, S3, Azure Blob Storage or Google
/// Cloud Storage.
///
/// # Errors
/// [`crate::Error::InvalidArgument`] for an invalid location, a cloud
/// whose credentials are missing, or a client that cannot be built.
pub fn open_backend(repo: &str) -> Result<Box<dyn Backend>> {
    open_backend_with(repo, &BackendOptions::default())
}

/// [`open_backend`] with `-o` options ([`BackendOptions`]); options for
/// another kind of store than `repo`'s are ignored.
///
/// # Errors
/// As [`open_backend`].
pub fn open_backend_with(repo: &str, options: &BackendOptions) -> Result<Box<dyn Backend>> {
    match Location::parse(repo)? {
        Location::Local(path) => Ok(Box::new(local::LocalBackend::new(path))),
        cloud => Ok(Box::new(object::ObjectBackend::open(&cloud, options)?)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The contract every backend must keep.
    pub(crate) fn check_backend(b: &dyn Backend) {
        b.create().unwrap();
        let id = "ab".repeat(32);
        assert!(matches!(
            b.read(FileType::Pack, &id),
            Err(crate::Error::NotFound(_))
        ));
        b.write(FileType::Pack, &id, b"0123456789").unwrap();
        b.write(FileType::Config, "config", b"cfg").unwrap();
        assert_eq!(b.read(FileType::Config, "config").unwrap(), b"cfg");
        assert_eq!(b.read(FileType::Pack, &id).unwrap(), b"0123456789");
        assert_eq!(b.read_range(FileType::Pack, &id, 3, 4).unwrap(), b"3456");
        assert!(b.read_range(FileType::Pack, &id, 8, 4).is_err());
        check_read_with(b, &id);
        assert_eq!(b.stat(FileType::Pack, &id).unwrap(), 10);
        assert_eq!(b.list(FileType::Pack).unwrap(), vec![(id.clone(), 10)]);
        assert!(b.list(FileType::Index).unwrap().is_empty());
        b.remove(FileType::Pack, &id).unwrap();
        b.remove(FileType::Pack, &id).unwrap();
        assert!(b.list(FileType::Pack).unwrap().is_empty());
        assert!(b.stat(FileType::Pack, &id).is_err());
        assert!(matches!(
            b.read_with(FileType::Pack, &id, None, &mut |_| Ok(())),
            Err(crate::Error::NotFound(_))
        ));
    }

    /// [`Backend::read_with`] on a pack `id` holding `0123456789`.
    pub(crate) fn check_read_with(b: &dyn Backend, id: &str) {
        let read = |length| {
            let mut got = Vec::new();
            b.read_with(FileType::Pack, id, length, &mut |r| {
                got.clear();
                r.read_to_end(&mut got)
                    .map_err(|e| crate::Error::format("test", e.to_string()))?;
                Ok(())
            })
            .map(|()| got)
        };
        assert_eq!(read(None).unwrap(), b"0123456789");
        assert_eq!(read(Some(10)).unwrap(), b"0123456789");
        assert_eq!(read(Some(4)).unwrap(), b"0123");
        // Shorter than asked: an error, even for a consumer that ignores
        // the failed read.
        assert!(read(Some(11)).is_err());
        let mut ignore = |r: &mut dyn std::io::Read| {
            let _ = r.read_to_end(&mut Vec::new());
            Ok(())
        };
        assert!(b
            .read_with(FileType::Pack, id, Some(11), &mut ignore)
            .is_err());
        // The consumer's own error comes back as it is.
        let mut refuse = |_: &mut dyn std::io::Read| Err(crate::Error::format("x", "refused"));
        let e = b
            .read_with(FileType::Pack, id, None, &mut refuse)
            .unwrap_err();
        assert!(e.to_string().contains("refused"), "{e}");
    }
}
