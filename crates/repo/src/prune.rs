//! `prune`: remove data no snapshot refers to.
//!
//! Under an exclusive lock: find every blob reachable from a snapshot;
//! packs with only unused blobs are deleted, packs with some are repacked
//! (their used blobs are written to new packs). The order keeps the
//! repository valid at every instant, as the design document requires: new
//! packs, then the new index, then removal of the old index files, and only
//! then removal of packs. Temporary files that interrupted writes left in
//! a local repository are removed too.
//!
//! Cancellation is polled while reading trees and before each repacked
//! blob, and no longer once old index files start to go: from there on
//! only deletions remain, and every earlier stopping point leaves at worst
//! what an interrupted prune leaves (new packs no index names, or two
//! index files naming the same pack), which `check` accepts and the next
//! prune cleans up.

use std::collections::{HashMap, HashSet};

use crate::backend::FileType;
use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::format::index::{IndexJson, IndexPack};
use crate::format::pack::PackedBlob;
use crate::format::BlobType;
use crate::id::Id;
use crate::repository::{BlobSaver, IndexEntry, Repository};

/// What `prune` did (or, in a dry run, would do).
#[derive(Debug, Clone, Default)]
pub struct PruneSummary {
    /// Packs kept as they are.
    pub packs_kept: u64,
    /// Packs deleted because nothing in them is used.
    pub packs_deleted: u64,
    /// Packs whose used blobs were copied to new packs before deletion.
    pub packs_repacked: u64,
    /// Packs in storage that no index listed (deleted too).
    pub packs_unindexed: u64,
    /// Blobs no snapshot uses.
    pub blobs_unused: u64,
    /// Bytes of the packs removed.
    pub bytes_removed: u64,
    /// Bytes of the new packs written by repacking.
    pub bytes_added: u64,
    /// Index files replaced.
    pub index_files_replaced: u64,
    /// Temporary files of interrupted writes removed (or, in a dry run,
    /// found).
    pub temp_files_removed: u64,
    /// Their bytes.
    pub temp_bytes_removed: u64,
}

/// Every blob reachable from a snapshot. Fails on any unreadable tree:
/// deleting on incomplete knowledge would lose data.
fn used_blobs(repo: &Repository, cancel: &Cancel) -> Result<HashSet<(BlobType, Id)>> {
    let mut used = HashSet::new();
    for (sid, s) in repo.snapshots()? {
        let mut stack = vec![s.tree];
        while let Some(t) = stack.pop() {
            if !used.insert((BlobType::Tree, t)) {
                continue;
            }
            cancel.check()?;
            let tree = repo.load_tree(&t).map_err(|e| {
                Error::format(
                    format!("snapshot {sid}"),
                    format!("tree {t}: {e}; refusing to prune"),
                )
            })?;
            for n in tree.nodes {
                for b in n.content.into_iter().flatten() {
                    used.insert((BlobType::Data, b));
                }
                if let Some(st) = n.subtree {
                    stack.push(st);
                }
            }
        }
    }
    Ok(used)
}

/// Remove unreferenced data. With `dry_run`, only report. `cancel` stops
/// it before it starts deleting (see the module documentation).
///
/// # Errors
/// A lock held by another process, an unreadable snapshot or tree (nothing
/// is deleted then), backend failures, [`Error::Cancelled`].
pub fn prune(repo: &mut Repository, dry_run: bool, cancel: &Cancel) -> Result<PruneSummary> {
    cancel.check()?;
    let _lock = crate::lock::lock(repo, true)?;
    let mut summary = PruneSummary::default();
    // Under the exclusive lock no other process writes (writers hold a
    // lock), so every temporary file is left over from a crash.
    let (files, bytes) = repo.backend.remove_leftovers(dry_run)?;
    summary.temp_files_removed = files;
    summary.temp_bytes_removed = bytes;
    let listed_index_files = repo.list_ids(FileType::Index)?;
    let old_index_files: Vec<Id> = listed_index_files.iter().map(|(id, _)| *id).collect();
    // Pack -> blobs, from every index file; the in-memory index picks one
    // location per blob, any other copy is a duplicate and unused.
    repo.index.clear();
    let mut packs: HashMap<Id, Vec<PackedBlob>> = HashMap::new();
    for (iid, size) in &listed_index_files {
        for p in repo.load_index_file(iid, Some(*size))?.packs {
            let list = packs.entry(p.id).or_default();
            for b in p.blobs {
                let pb = b.to_packed();
                if !list.contains(&pb) {
                    list.push(pb);
                }
                repo.index
                    .entry((pb.blob_type, pb.id))
                    .or_insert(IndexEntry {
                        pack: p.id,
                        blob: pb,
                    });
            }
        }
    }
    let used = used_blobs(repo, cancel)?;
    for k in &used {
        if !repo.index.contains_key(k) {
            return Err(Error::BlobNotFound(format!(
                "{} (used by a snapshot); refusing to prune",
                k.1
            )));
        }
    }
    let sizes: HashMap<Id, u64> = repo.list_ids(FileType::Pack)?.into_iter().collect();

    let mut keep: Vec<(Id, Vec<PackedBlob>)> = Vec::new();
    let mut delete: Vec<Id> = Vec::new();
    let mut repack: Vec<(Id, Vec<PackedBlob>)> = Vec::new();
    for (pid, blobs) in &packs {
        let is_used = |b: &PackedBlob| {
            used.contains(&(b.blob_type, b.id))
                && repo
                    .index
                    .get(&(b.blob_type, b.id))
                    .is_some_and(|e| e.pack == *pid)
        };
        let n_used = blobs.iter().filter(|b| is_used(b)).count();
        summary.blobs_unused += (blobs.len() - n_used) as u64;
        if !sizes.contains_key(pid) {
            if n_used > 0 {
                return Err(Error::NotFound(format!(
                    "pack {pid} holds used blobs but is missing; refusing to prune"
                )));
            }
            continue; // Missing and unused: just drop it from the index.
        }
        if n_used == blobs.len() {
            keep.push((*pid, blobs.clone()));
        } else if n_used == 0 {
            delete.push(*pid);
        } else {
            repack.push((*pid, blobs.iter().filter(|b| is_used(b)).copied().collect()));
        }
    }
    let unindexed: Vec<Id> = sizes
        .keys()
        .filter(|p| !packs.contains_key(p))
        .copied()
        .collect();
    summary.packs_kept = keep.len() as u64;
    summary.packs_deleted = delete.len() as u64;
    summary.packs_repacked = repack.len() as u64;
    summary.packs_unindexed = unindexed.len() as u64;
    let removed: Vec<Id> = delete
        .iter()
        .chain(repack.iter().map(|(p, _)| p))
        .chain(&unindexed)
        .copied()
        .collect();
    summary.bytes_removed = removed.iter().filter_map(|p| sizes.get(p)).sum();
    if dry_run || (removed.is_empty() && old_index_files.len() <= 1) {
        return Ok(summary);
    }

    // 1. Copy the used blobs of partly used packs into new packs.
    let mut saver = BlobSaver::new();
    let copied = repack_blobs(repo, &mut saver, &repack, cancel);
    if let Err(e) = copied {
        // Forget the copies that were only in memory; packs already
        // written stay unindexed until the next prune.
        saver.abort(repo);
        // The in-memory index lost the repacked blobs' entries: read it
        // again. Should that fail too, the first error is the one to
        // report; a short index only costs a later backup deduplication.
        let _ = repo.load_index();
        return Err(e);
    }
    // 2. Write the new packs and their index.
    let stats = saver.finish(repo)?;
    summary.bytes_added = stats.data_added_packed;
    // Last stopping point: the old index files still name every pack, the
    // new one names the copies, and the in-memory index matches that.
    cancel.check()?;
    // 3. One new index for the packs kept as they are.
    for chunk in keep.chunks(1000) {
        let idx = IndexJson {
            supersedes: old_index_files.clone(),
            packs: chunk.iter().map(|(p, b)| IndexPack::new(*p, b)).collect(),
        };
        let j = serde_json::to_vec(&idx).map_err(|e| Error::json("index", e))?;
        repo.save_unpacked(FileType::Index, &j)?;
    }
    // 4. Old index files, then 5. the packs.
    for iid in &old_index_files {
        repo.backend.remove(FileType::Index, &iid.to_hex())?;
    }
    summary.index_files_replaced = old_index_files.len() as u64;
    for p in &removed {
        repo.backend.remove(FileType::Pack, &p.to_hex())?;
    }
    repo.load_index()?;
    Ok(summary)
}

/// Step 1 of [`prune`]: copy the used blobs of partly used packs into new
/// packs. Their entries leave the in-memory index first so the saver does
/// not deduplicate them against the copies about to be deleted.
fn repack_blobs(
    repo: &mut Repository,
    saver: &mut BlobSaver,
    repack: &[(Id, Vec<PackedBlob>)],
    cancel: &Cancel,
) -> Result<()> {
    for (pid, blobs) in repack {
        for b in blobs {
            cancel.check()?;
            let e = IndexEntry {
                pack: *pid,
                blob: *b,
            };
            let enc = repo.backend.read_range(
                FileType::Pack,
                &pid.to_hex(),
                b.offset as u64,
                b.length,
            )?;
            let plain = repo.decode_blob(&e, &enc)?;
            repo.index.remove(&(b.blob_type, b.id));
            saver.save_with_id(repo, b.blob_type, b.id, &plain)?;
        }
    }
    Ok(())
}
