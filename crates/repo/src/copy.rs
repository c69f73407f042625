//! `copy`: copy snapshots and the blobs they need into another repository
//! (another cloud, another region). Blobs are content-addressed, so they
//! are copied as they are, even though the destination's chunker
//! polynomial differs (restic's `copy` does the same).

use std::collections::HashSet;

use crate::error::Result;
use crate::format::BlobType;
use crate::id::Id;
use crate::repository::{BlobSaver, Repository};

/// What a copy did.
#[derive(Debug, Clone, Default)]
pub struct CopySummary {
    /// Snapshots copied: (source id, new id in the destination).
    pub copied: Vec<(Id, Id)>,
    /// Snapshots the destination already had.
    pub skipped: Vec<Id>,
    /// Blobs copied.
    pub blobs: u64,
}

/// Copy `snapshots` (all when empty) from `src` to `dst`. Both indexes must
/// be loaded. A snapshot is skipped when the destination has one with the
/// same time, tree, paths and host (so repeated copies are idempotent).
///
/// # Errors
/// Unreadable source blobs (nothing referring to them is written), backend
/// failures.
pub fn copy_snapshots(
    src: &Repository,
    dst: &mut Repository,
    snapshots: &[Id],
) -> Result<CopySummary> {
    let _src_lock = crate::lock::lock(src, false)?;
    let _dst_lock = crate::lock::lock(dst, false)?;
    let all = src.snapshots()?;
    let wanted: Vec<_> = all
        .into_iter()
        .filter(|(id, _)| snapshots.is_empty() || snapshots.contains(id))
        .collect();
    let existing = dst.snapshots()?;
    let mut summary = CopySummary::default();
    let mut saver = BlobSaver::new();
    let mut done_trees: HashSet<Id> = HashSet::new();
    let mut to_save = Vec::new();
    for (sid, s) in wanted {
        let dup = existing.iter().any(|(_, d)| {
            d.time == s.time && d.tree == s.tree && d.paths == s.paths && d.hostname == s.hostname
        });
        if dup {
            summary.skipped.push(sid);
            continue;
        }
        let mut stack = vec![s.tree];
        while let Some(tid) = stack.pop() {
            if !done_trees.insert(tid) {
                continue;
            }
            let tree = src.load_tree(&tid)?;
            for n in &tree.nodes {
                for b in n.content.iter().flatten() {
                    if dst.lookup(BlobType::Data, b).is_none() {
                        let data = src.load_blob(BlobType::Data, b)?;
                        saver.save_with_id(dst, BlobType::Data, *b, &data)?;
                        summary.blobs += 1;
                    }
                }
                if let Some(st) = n.subtree {
                    stack.push(st);
                }
            }
            if dst.lookup(BlobType::Tree, &tid).is_none() {
                let data = src.load_blob(BlobType::Tree, &tid)?;
                saver.save_with_id(dst, BlobType::Tree, tid, &data)?;
                summary.blobs += 1;
            }
        }
        let mut copy = s.clone();
        copy.original = Some(s.original.unwrap_or(sid));
        to_save.push((sid, copy));
    }
    // Packs and index first, snapshots last.
    saver.finish(dst)?;
    for (sid, s) in to_save {
        let new = dst.save_snapshot(&s)?;
        summary.copied.push((sid, new));
    }
    Ok(summary)
}
