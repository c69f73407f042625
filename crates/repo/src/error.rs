//! The one error type of the crate.

use std::path::PathBuf;

/// Everything that can go wrong in the repository engine.
///
/// Variants carry the file, pack or snapshot at fault so that a message is
/// actionable without a debugger.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A storage backend operation failed.
    #[error("backend: {op} {what}: {source}")]
    Backend {
        /// The operation (read, write, list, ...).
        op: &'static str,
        /// The object (file type and name, or path).
        what: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A repository object does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// No key file could be decrypted with the password.
    #[error("wrong password or no key found")]
    WrongPassword,
    /// A MAC check failed: the object was modified or is damaged.
    #[error("authentication failed for {0}: data is corrupted or was tampered with")]
    Mac(String),
    /// A repository file does not have the expected structure.
    #[error("invalid {what}: {reason}")]
    Format {
        /// The file or object at fault.
        what: String,
        /// What was wrong with it.
        reason: String,
    },
    /// JSON (de)serialization of a repository object failed.
    #[error("invalid json in {what}: {source}")]
    Json {
        /// The file or object at fault.
        what: String,
        /// The parser error.
        #[source]
        source: serde_json::Error,
    },
    /// The repository uses a format version this build does not support.
    #[error("unsupported repository version {0}")]
    UnsupportedVersion(u32),
    /// A repository already exists where `init` was asked to create one.
    #[error("repository already exists at {0}")]
    AlreadyExists(String),
    /// A local file could not be read or written during backup or restore.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// The operation (open, read, create, ...).
        op: &'static str,
        /// The local path.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The snapshot requested does not exist or is ambiguous.
    #[error("snapshot {0}")]
    Snapshot(String),
    /// A blob is referenced but no index lists it.
    #[error("blob {0} not found in index")]
    BlobNotFound(String),
    /// The data read back does not hash to its id.
    #[error("hash mismatch for {what}: expected {expected}, got {actual}")]
    HashMismatch {
        /// The object at fault.
        what: String,
        /// The id it should have had.
        expected: String,
        /// The hash of what was read.
        actual: String,
    },
    /// The repository is locked by another process.
    #[error("repository is locked: {0}")]
    Locked(String),
    /// Another restore is writing into the same target directory.
    #[error("restore target {} is locked: another restore is writing into it", .0.display())]
    TargetBusy(PathBuf),
    /// The target, symlinks resolved, is outside the directories the
    /// restore was confined to.
    #[error("restore target {} is outside the directories restores may write to", .0.display())]
    TargetOutsideRoots(PathBuf),
    /// The restore was asked for an empty target and it has entries.
    #[error("restore target {} is not empty", .0.display())]
    TargetNotEmpty(PathBuf),
    /// An invalid argument was given (a bad exclude pattern, a bad parameter).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Key derivation failed (bad parameters).
    #[error("key derivation: {0}")]
    Kdf(String),
    /// Compression or decompression failed.
    #[error("compression in {what}: {reason}")]
    Compression {
        /// The object at fault.
        what: String,
        /// What went wrong.
        reason: String,
    },
    /// The operation was stopped through its [`Cancel`](crate::Cancel)
    /// token. What it wrote is consistent: no snapshot refers to data that
    /// was not stored; packs written without one are removed by `prune`.
    #[error("operation cancelled")]
    Cancelled,
}

impl Error {
    pub(crate) fn format(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Format {
            what: what.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        Error::Json {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
