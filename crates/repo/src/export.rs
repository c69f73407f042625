//! `export`: a snapshot as a tar.gz stream (what shell backup scripts
//! produce), written blob by blob so memory stays bounded.

use std::io::{Read, Write};

use std::path::Path;

use crate::error::{Error, Result};
use crate::format::tree::unix_perm_from_go;
use crate::format::BlobType;
use crate::id::Id;
use crate::repository::Repository;

/// What an export wrote.
#[derive(Debug, Clone, Default)]
pub struct ExportSummary {
    /// The snapshot exported.
    pub snapshot_id: Id,
    /// Entries written (files, directories, symlinks).
    pub entries: u64,
    /// Bytes of file content.
    pub bytes: u64,
}

/// Reads a file's content blob by blob.
struct ContentReader<'r> {
    repo: &'r Repository,
    blobs: std::vec::IntoIter<Id>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ContentReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.cur.len() {
            let Some(id) = self.blobs.next() else {
                return Ok(0);
            };
            self.cur = self
                .repo
                .load_blob(BlobType::Data, &id)
                .map_err(std::io::Error::other)?;
            self.pos = 0;
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Write snapshot `spec` as a gzip-compressed tar to `out`. Paths inside
/// are relative (`srv/app/...`). Devices, fifos and sockets are skipped.
///
/// # Errors
/// Unknown snapshot, unreadable trees or blobs (the archive is then
/// incomplete and must be discarded), write failures.
pub fn export_tar_gz(
    repo: &Repository,
    spec: &str,
    out: impl Write + Send,
) -> Result<ExportSummary> {
    crate::with_big_stack(|| export_inner(repo, spec, out))
}

fn export_inner(repo: &Repository, spec: &str, out: impl Write) -> Result<ExportSummary> {
    let _lock = crate::lock::lock_for_reading(repo)?;
    let (sid, snap) = repo.find_snapshot(spec)?;
    let gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    let mut summary = ExportSummary {
        snapshot_id: sid,
        ..Default::default()
    };
    add_tree(repo, &mut tar, &snap.tree, Path::new(""), &mut summary)?;
    let gz = tar.into_inner().map_err(|e| Error::io("write", "tar", e))?;
    gz.finish().map_err(|e| Error::io("write", "gzip", e))?;
    Ok(summary)
}

fn add_tree<W: Write>(
    repo: &Repository,
    tar: &mut tar::Builder<W>,
    tid: &Id,
    dir: &Path,
    summary: &mut ExportSummary,
) -> Result<()> {
    if dir.components().count() > crate::format::tree::MAX_TREE_DEPTH {
        return Err(Error::format(
            format!("tree {tid}"),
            "directories nested too deeply",
        ));
    }
    let tree = repo.load_tree(tid)?;
    for node in &tree.nodes {
        if !crate::format::tree::is_safe_name(&node.name) {
            return Err(Error::format(
                format!("tree {tid}"),
                format!("unsafe name {:?}", node.name),
            ));
        }
        let path = dir.join(&node.name);
        let mut h = tar::Header::new_gnu();
        h.set_mode(unix_perm_from_go(node.mode));
        h.set_mtime(node.mtime.timestamp().max(0) as u64);
        h.set_uid(node.uid as u64);
        h.set_gid(node.gid as u64);
        let _ = h.set_username(&node.user);
        let _ = h.set_groupname(&node.group);
        let err = |e: std::io::Error| Error::io("write", &path, e);
        match node.node_type.as_str() {
            "dir" => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                tar.append_data(&mut h, &path, std::io::empty())
                    .map_err(err)?;
                summary.entries += 1;
                let sub = node
                    .subtree
                    .ok_or_else(|| Error::format(format!("tree {tid}"), "dir without subtree"))?;
                add_tree(repo, tar, &sub, &path, summary)?;
            }
            "file" => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(node.size);
                let blobs = node.content.clone().unwrap_or_default();
                // tar pads by what was copied, not by the header: a size
                // field that disagrees with the content would corrupt the
                // archive, so check it first.
                let mut total = 0u64;
                for b in &blobs {
                    let e = repo
                        .lookup(BlobType::Data, b)
                        .ok_or_else(|| Error::BlobNotFound(b.to_hex()))?;
                    total += e.blob.data_length() as u64;
                }
                if total != node.size {
                    return Err(Error::format(
                        path.display().to_string(),
                        format!("size {} but content has {total} bytes", node.size),
                    ));
                }
                let rd = ContentReader {
                    repo,
                    blobs: blobs.into_iter(),
                    cur: Vec::new(),
                    pos: 0,
                };
                tar.append_data(&mut h, &path, rd).map_err(err)?;
                summary.entries += 1;
                summary.bytes += node.size;
            }
            "symlink" => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                tar.append_link(&mut h, &path, &node.linktarget)
                    .map_err(err)?;
                summary.entries += 1;
            }
            _ => {}
        }
    }
    Ok(())
}
