//! `backup --stdin` and `--stdin-from-command`: one stream saved as the
//! file `/NAME` of a new snapshot, the way restic records it (so restic
//! restores it): the root tree holds that one file node, mode 0644, owned
//! by this process's user, modified at the snapshot's time; the snapshot's
//! paths are `["/NAME"]`.
//!
//! The stream goes through the same chunker and [`BlobSaver`] as a file's
//! content, one chunk (at most 8 MiB) at a time: nothing is staged on
//! disk and memory stays bounded whatever the length. Its chunks
//! deduplicate against every blob in the repository, so a dump that
//! changed little adds little.
//!
//! A read error ends the backup with no snapshot. The caller decides what
//! an error is: the CLI's command source fails its last read when the
//! command exits non-zero, so a half-written dump is never a snapshot.

use std::io::Read;

use super::{parent_snapshot, BackupOptions, BackupProgress, BackupSummary};
use crate::error::{Error, Result};
use crate::format::snapshot::Snapshot;
use crate::format::tree::{go_mode_from_unix, is_safe_name, Node, Tree};
use crate::format::{time, BlobType};
use crate::id::Id;
use crate::repository::{BlobSaver, Repository};

/// Back up everything `source` yields, until its end, as the file `/name`
/// of a new snapshot (restic's `backup --stdin --stdin-filename name`).
///
/// `opts.paths` must be empty; `opts.excludes` does not apply. Tags, host,
/// parent, time and the cancellation token work as for [`backup`](super::backup).
/// The cancellation is polled per chunk; a source that can block for
/// long should itself give up once the token is cancelled (it is checked
/// again after a failed read, so such a failure reads as
/// [`Error::Cancelled`]).
///
/// # Errors
/// An unsafe `name` (empty, `.`, `..`, or containing `/` or NUL), paths
/// given, a read error from `source` (no snapshot is saved; blobs already
/// written stay in packs for `prune`), backend failures,
/// [`Error::Cancelled`].
pub fn backup_stream(
    repo: &mut Repository,
    name: &str,
    source: &mut (dyn Read + Send),
    opts: &BackupOptions,
    progress: impl FnMut(BackupProgress) + Send,
) -> Result<BackupSummary> {
    if !is_safe_name(name) {
        return Err(Error::InvalidArgument(format!(
            "stdin file name {name:?}: must be one plain path component"
        )));
    }
    if !opts.paths.is_empty() {
        return Err(Error::InvalidArgument(
            "a stream backup takes no paths".into(),
        ));
    }
    opts.cancel.check()?;
    // Shared, as for files: prune must not delete what this refers to.
    let _lock = crate::lock::lock(repo, false)?;
    let path = format!("/{name}");
    let hostname = opts.hostname.clone().unwrap_or_else(crate::hostname);
    let parent = parent_snapshot(repo, opts, &hostname, std::slice::from_ref(&path))?;
    let started = time::now();
    let snapshot_time = opts.time.unwrap_or(started);

    let mut saver = BlobSaver::new();
    let read = read_stream(repo, &mut saver, name, source, opts, progress);
    let (content, size) = match read.and_then(|r| opts.cancel.check().map(|()| r)) {
        Ok(r) => r,
        Err(e) => {
            saver.abort(repo);
            return Err(e);
        }
    };

    let user = crate::current_user();
    let node = Node {
        name: name.to_string(),
        node_type: "file".to_string(),
        mode: go_mode_from_unix(0o100644),
        mtime: snapshot_time,
        atime: snapshot_time,
        ctime: snapshot_time,
        uid: user.0,
        gid: user.1,
        user: String::new(),
        group: String::new(),
        inode: 0,
        device_id: 0,
        size,
        links: 0,
        linktarget: String::new(),
        extended_attributes: None,
        device: 0,
        content: Some(content),
        subtree: None,
        error: String::new(),
    };
    let mut summary = BackupSummary {
        parent: parent.as_ref().map(|p| p.0),
        bytes_processed: size,
        ..Default::default()
    };
    // As restic counts it: the same content as the parent's file is
    // "unmodified", other content under that name "changed".
    let before = parent
        .as_ref()
        .and_then(|(_, s)| repo.load_tree(&s.tree).ok())
        .and_then(|t| t.nodes.into_iter().find(|n| n.name == name));
    match before {
        Some(b) if b.content == node.content => summary.files_unmodified = 1,
        Some(_) => summary.files_changed = 1,
        None => summary.files_new = 1,
    }
    let tree = Tree { nodes: vec![node] };
    let json = tree.to_json().map_err(|e| Error::json("tree", e))?;
    let tree_id = match saver.save(repo, BlobType::Tree, &json) {
        Ok((id, _)) => id,
        Err(e) => {
            saver.abort(repo);
            return Err(e);
        }
    };
    // On failure `finish` forgets the unwritten blobs itself.
    let stats = saver.finish(repo)?;
    opts.cancel.check()?;
    summary.data_blobs_added = stats.data_blobs;
    summary.tree_blobs_added = stats.tree_blobs;
    summary.data_added = stats.data_added;
    summary.data_added_packed = stats.data_added_packed;
    summary.packs_written = stats.packs;
    let snap = Snapshot {
        time: snapshot_time,
        parent: parent.as_ref().map(|p| p.0),
        tree: tree_id,
        paths: vec![path],
        hostname,
        username: user.2,
        uid: user.0,
        gid: user.1,
        excludes: Vec::new(),
        tags: opts.tags.clone(),
        original: None,
        program_version: format!("bulwark {}", env!("CARGO_PKG_VERSION")),
        summary: Some(summary.to_snapshot_summary(started)),
    };
    summary.snapshot_id = repo.save_snapshot(&snap)?;
    Ok(summary)
}

/// Chunk `source` to its end, saving each new chunk: the content list and
/// the number of bytes read.
fn read_stream(
    repo: &mut Repository,
    saver: &mut BlobSaver,
    name: &str,
    source: &mut (dyn Read + Send),
    opts: &BackupOptions,
    mut progress: impl FnMut(BackupProgress),
) -> Result<(Vec<Id>, u64)> {
    let tables = repo.tables.clone();
    let mut chunker = crate::chunker::Chunker::new(&tables, source);
    let mut content = Vec::new();
    let mut size = 0u64;
    loop {
        opts.cancel.check()?;
        let mut buf = Vec::new();
        match chunker.next_chunk(&mut buf) {
            Ok(true) => {}
            Ok(false) => return Ok((content, size)),
            Err(e) => {
                // A source that stopped because it was told to.
                opts.cancel.check()?;
                return Err(Error::io("read", format!("/{name}"), e));
            }
        }
        size += buf.len() as u64;
        let id = Id::hash(&buf);
        saver.save_hashed(repo, BlobType::Data, id, buf)?;
        content.push(id);
        progress(BackupProgress {
            files: 0,
            bytes: size,
        });
    }
}
