//! The on-disk formats: config, key files, the "unpacked" encoding of JSON
//! files, pack files, index files, trees and snapshots. Pure code: bytes in,
//! values out; no I/O.

pub(crate) mod config;
pub(crate) mod index;
pub(crate) mod keyfile;
pub(crate) mod pack;
pub(crate) mod snapshot;
pub(crate) mod time;
pub(crate) mod tree;
pub(crate) mod unpacked;

/// Blob kinds.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum BlobType {
    /// File content.
    Data,
    /// A directory listing (tree JSON).
    Tree,
}
