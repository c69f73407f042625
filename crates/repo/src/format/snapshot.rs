//! Snapshot files.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use crate::id::Id;

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// A snapshot as restic stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// When the backup started.
    #[serde(with = "super::time")]
    pub time: DateTime<FixedOffset>,
    /// The snapshot this one was based on (incremental backup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Id>,
    /// The root tree.
    pub tree: Id,
    /// Absolute paths backed up.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Host name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    /// User name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// User id.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub uid: u32,
    /// Group id.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub gid: u32,
    /// Exclude patterns used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excludes: Vec<String>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The first id of a snapshot whose metadata was rewritten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<Id>,
    /// The program that wrote it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub program_version: String,
    /// What the backup did, as restic 0.17 and later record it (its
    /// `snapshots` shows `total_bytes_processed` as the snapshot's size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<SnapshotSummary>,
}

/// restic's `SnapshotSummary`. The directory counters are kept when a
/// snapshot made by restic has them; our archiver counts directories
/// without telling new from changed ones, so it leaves them out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotSummary {
    #[serde(with = "super::time")]
    pub backup_start: DateTime<FixedOffset>,
    #[serde(with = "super::time")]
    pub backup_end: DateTime<FixedOffset>,
    #[serde(default)]
    pub files_new: u64,
    #[serde(default)]
    pub files_changed: u64,
    #[serde(default)]
    pub files_unmodified: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dirs_new: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dirs_changed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dirs_unmodified: Option<u64>,
    #[serde(default)]
    pub data_blobs: u64,
    #[serde(default)]
    pub tree_blobs: u64,
    #[serde(default)]
    pub data_added: u64,
    #[serde(default)]
    pub data_added_packed: u64,
    #[serde(default)]
    pub total_files_processed: u64,
    #[serde(default)]
    pub total_bytes_processed: u64,
}

#[cfg(test)]
impl Snapshot {
    /// A snapshot of `path` with root `tree`, taken now, with nothing else
    /// recorded: what unit tests that build trees by hand save.
    pub(crate) fn for_tests(tree: Id, path: &str) -> Snapshot {
        Snapshot {
            time: super::time::now(),
            parent: None,
            tree,
            paths: vec![path.into()],
            hostname: String::new(),
            username: String::new(),
            uid: 0,
            gid: 0,
            excludes: vec![],
            tags: vec![],
            original: None,
            program_version: String::new(),
            summary: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_restic_snapshot() {
        let j = r#"{"time":"2026-11-21T23:50:58.348024177Z","tree":"bf216423b11d6f37461141aa62b611a5c10fe22f7a875f76956e3958e018d87b","paths":["/tmp/rsrc"],"hostname":"vm","username":"root"}"#;
        let s: Snapshot = serde_json::from_str(j).unwrap();
        assert_eq!(s.paths, vec!["/tmp/rsrc"]);
        assert_eq!(serde_json::to_string(&s).unwrap(), j);
        assert!(serde_json::from_str::<Snapshot>(r#"{"time":"x","tree":"00"}"#).is_err());
    }
}
