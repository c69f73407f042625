//! `restore`: recreate a snapshot's files under a target directory with
//! their content, modes, timestamps, symlinks and (as root) ownership.
//!
//! Paths in the snapshot are absolute (`/srv/app/x`); they are recreated
//! below the target (`TARGET/srv/app/x`), as restic does. Memory is bounded:
//! one blob at a time is in RAM.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use globset::GlobSet;

use crate::error::{Error, Result};
use crate::format::tree::{unix_perm_from_go, Node};
use crate::format::BlobType;
use crate::id::Id;
use crate::repository::Repository;

/// How to restore.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// Directory to restore into (created if missing).
    pub target: PathBuf,
    /// Restore only entries matching one of these patterns (and everything
    /// below a matching directory). Patterns use the exclude syntax: a
    /// leading `/` anchors at the snapshot root (`/srv/app/conf`), any other
    /// pattern matches at any depth (`*.conf`). Empty: restore everything.
    pub include: Vec<String>,
    /// Re-read every restored file and compare it with the snapshot.
    pub verify: bool,
}

/// What a restore did.
#[derive(Debug, Clone, Default)]
pub struct RestoreSummary {
    /// The snapshot restored.
    pub snapshot_id: Id,
    /// Files written.
    pub files: u64,
    /// Directories created.
    pub dirs: u64,
    /// Symlinks created.
    pub symlinks: u64,
    /// Bytes of file content written.
    pub bytes: u64,
    /// Files re-read and found identical (with `verify`).
    pub verified: u64,
    /// Entries not restored because their type needs privileges this
    /// build does not use (devices, fifos, sockets).
    pub skipped: Vec<String>,
    /// Problems that did not stop the restore (a damaged blob, an
    /// unsupported node type, a verification mismatch).
    pub errors: Vec<String>,
}

/// Progress reported after each restored file.
#[derive(Debug, Clone, Copy, Default)]
pub struct RestoreProgress {
    /// Files restored so far.
    pub files: u64,
    /// Bytes written so far.
    pub bytes: u64,
}

/// Restore snapshot `spec` (`latest`, an id or a unique prefix).
///
/// The index must be loaded. Files whose data cannot be read are reported
/// in [`RestoreSummary::errors`] and the rest is restored.
///
/// # Errors
/// Unknown snapshot, an unreadable root tree, a target that cannot be
/// created, an exclusive lock held by another process.
pub fn restore(repo: &Repository, spec: &str, opts: &RestoreOptions) -> Result<RestoreSummary> {
    restore_with_progress(repo, spec, opts, |_| {})
}

/// [`restore`], calling `progress` after each file.
///
/// # Errors
/// As [`restore`].
pub fn restore_with_progress(
    repo: &Repository,
    spec: &str,
    opts: &RestoreOptions,
    progress: impl FnMut(RestoreProgress) + Send,
) -> Result<RestoreSummary> {
    crate::with_big_stack(|| restore_inner(repo, spec, opts, progress))
}

fn restore_inner(
    repo: &Repository,
    spec: &str,
    opts: &RestoreOptions,
    progress: impl FnMut(RestoreProgress) + Send,
) -> Result<RestoreSummary> {
    let _lock = crate::lock::lock_for_reading(repo)?;
    let (sid, snap) = repo.find_snapshot(spec)?;
    fs::create_dir_all(&opts.target).map_err(|e| Error::io("create", &opts.target, e))?;
    let mut r = Restorer {
        repo,
        include: crate::archiver::build_globs(&opts.include)?,
        summary: RestoreSummary {
            snapshot_id: sid,
            ..Default::default()
        },
        verify: opts.verify,
        progress: Box::new(progress),
        hardlinks: Default::default(),
    };
    r.restore_tree(&snap.tree, &opts.target, Path::new("/"), false)?;
    Ok(r.summary)
}

struct Restorer<'r> {
    progress: Box<dyn FnMut(RestoreProgress) + 'r>,
    /// (device, inode) of multiply linked files -> where the first was restored.
    hardlinks: std::collections::HashMap<(u64, u64), PathBuf>,
    repo: &'r Repository,
    include: Option<GlobSet>,
    summary: RestoreSummary,
    verify: bool,
}

/// Set mtime and atime; `follow` false for symlinks.
fn set_times(path: &Path, node: &Node, follow: bool) -> std::io::Result<()> {
    let ft = |t: &chrono::DateTime<chrono::FixedOffset>| {
        filetime::FileTime::from_unix_time(t.timestamp(), t.timestamp_subsec_nanos())
    };
    if follow {
        filetime::set_file_times(path, ft(&node.atime), ft(&node.mtime))
    } else {
        filetime::set_symlink_file_times(path, ft(&node.atime), ft(&node.mtime))
    }
}

/// A name from a tree must be one plain path component: a hostile tree must
/// not write outside the target.
fn safe_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

impl Restorer<'_> {
    fn selected(&self, snap_path: &Path) -> bool {
        self.include.as_ref().is_none_or(|g| g.is_match(snap_path))
    }

    /// Restore the nodes of tree `id` into `dir`. `included` is true when an
    /// ancestor matched the include filter. Returns whether anything was
    /// restored (so that directories leading nowhere are not created).
    fn restore_tree(
        &mut self,
        id: &Id,
        dir: &Path,
        snap_dir: &Path,
        included: bool,
    ) -> Result<bool> {
        if snap_dir.components().count() > crate::format::tree::MAX_TREE_DEPTH {
            return Err(Error::format(
                format!("tree {id}"),
                "directories nested too deeply",
            ));
        }
        let tree = self.repo.load_tree(id)?;
        let mut any = false;
        for node in &tree.nodes {
            if !safe_name(&node.name) {
                self.summary
                    .errors
                    .push(format!("tree {id}: unsafe name {:?} skipped", node.name));
                continue;
            }
            let path = dir.join(&node.name);
            let snap_path = snap_dir.join(&node.name);
            let inc = included || self.selected(&snap_path);
            match node.node_type.as_str() {
                "dir" => {
                    let Some(sub) = node.subtree else {
                        self.summary.errors.push(format!(
                            "{}: directory without subtree",
                            snap_path.display()
                        ));
                        continue;
                    };
                    // Never descend through a symlink: a hostile tree could
                    // list a symlink and a directory of the same name to
                    // write outside the target.
                    if fs::symlink_metadata(&path).is_ok_and(|m| !m.is_dir()) {
                        self.summary.errors.push(format!(
                            "{}: exists and is not a directory",
                            snap_path.display()
                        ));
                        continue;
                    }
                    if inc {
                        fs::create_dir_all(&path).map_err(|e| Error::io("create", &path, e))?;
                    }
                    let restored = match self.restore_tree(&sub, &path, &snap_path, inc) {
                        Ok(r) => r,
                        Err(e) => {
                            self.summary
                                .errors
                                .push(format!("{}: {e}", snap_path.display()));
                            inc
                        }
                    };
                    if inc || restored {
                        // Metadata last: writing children changes the mtime.
                        self.finish_meta(&path, node, true);
                        self.summary.dirs += 1;
                        any = true;
                    }
                }
                _ if !inc => {}
                "file" => {
                    fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
                    match self.restore_file(&path, node) {
                        Ok(()) => {
                            self.finish_meta(&path, node, true);
                            self.summary.files += 1;
                            (self.progress)(RestoreProgress {
                                files: self.summary.files,
                                bytes: self.summary.bytes,
                            });
                            if self.verify {
                                match self.verify_file(&path, node) {
                                    Ok(()) => self.summary.verified += 1,
                                    Err(e) => self
                                        .summary
                                        .errors
                                        .push(format!("verify {}: {e}", snap_path.display())),
                                }
                            }
                        }
                        Err(e) => self
                            .summary
                            .errors
                            .push(format!("{}: {e}", snap_path.display())),
                    }
                    any = true;
                }
                "symlink" => {
                    fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
                    let _ = fs::remove_file(&path);
                    match std::os::unix::fs::symlink(&node.linktarget, &path) {
                        Ok(()) => {
                            self.finish_meta(&path, node, false);
                            self.summary.symlinks += 1;
                        }
                        Err(e) => self.summary.errors.push(format!("{}: {e}", path.display())),
                    }
                    any = true;
                }
                other => {
                    // Devices, fifos and sockets need mknod (privileged,
                    // libc): listed rather than silently dropped, but not
                    // errors, since they hold no data.
                    self.summary
                        .skipped
                        .push(format!("{} ({other})", snap_path.display()));
                }
            }
        }
        Ok(any)
    }

    fn finish_meta(&mut self, path: &Path, node: &Node, follow: bool) {
        if follow {
            use std::os::unix::fs::PermissionsExt;
            let perm = fs::Permissions::from_mode(unix_perm_from_go(node.mode));
            if let Err(e) = fs::set_permissions(path, perm) {
                self.summary
                    .errors
                    .push(format!("chmod {}: {e}", path.display()));
            }
        }
        // Ownership only sticks for root; for others it is expected to fail.
        let _ = std::os::unix::fs::lchown(path, Some(node.uid), Some(node.gid));
        if let Err(e) = set_times(path, node, follow) {
            self.summary
                .errors
                .push(format!("set times {}: {e}", path.display()));
        }
    }

    fn restore_file(&mut self, path: &Path, node: &Node) -> Result<()> {
        // Remove first: the file may exist read-only from an earlier run.
        let _ = fs::remove_file(path);
        // Hard links: files that shared an inode when backed up share one
        // again (as restic restores them); only the first is written.
        let link_key = (node.links > 1 && node.inode != 0).then_some((node.device_id, node.inode));
        if let Some(first) = link_key.and_then(|k| self.hardlinks.get(&k)) {
            if fs::hard_link(first, path).is_ok() {
                return Ok(());
            }
        }
        if let Some(k) = link_key {
            self.hardlinks.insert(k, path.to_path_buf());
        }
        let mut f = fs::File::create(path).map_err(|e| Error::io("create", path, e))?;
        for id in node.content.iter().flatten() {
            let data = self.repo.load_blob(BlobType::Data, id)?;
            f.write_all(&data)
                .map_err(|e| Error::io("write", path, e))?;
            self.summary.bytes += data.len() as u64;
        }
        // No fsync per file: a restore is not a commit point (the repository
        // stays the source of truth and an interrupted restore is simply run
        // again), and one fsync per file made restoring a source tree of 15k
        // small files twice as slow as restic, which does not sync either.
        Ok(())
    }

    /// Hash the restored file blob by blob against the content list.
    fn verify_file(&self, path: &Path, node: &Node) -> Result<()> {
        let mut f = fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
        let mut buf = Vec::new();
        for id in node.content.iter().flatten() {
            let e = self
                .repo
                .lookup(BlobType::Data, id)
                .ok_or_else(|| Error::BlobNotFound(id.to_hex()))?;
            let len = e.blob.data_length() as usize;
            buf.resize(len, 0);
            f.read_exact(&mut buf)
                .map_err(|e| Error::io("read", path, e))?;
            let got = Id::hash(&buf);
            if got != *id {
                return Err(Error::HashMismatch {
                    what: path.display().to_string(),
                    expected: id.to_hex(),
                    actual: got.to_hex(),
                });
            }
        }
        let mut extra = [0u8; 1];
        if f.read(&mut extra).map_err(|e| Error::io("read", path, e))? != 0 {
            return Err(Error::format(
                path.display().to_string(),
                "file is longer than in the snapshot",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryBackend;
    use crate::crypto::KdfParams;
    use crate::format::snapshot::Snapshot;
    use crate::format::tree::{Node, Tree};
    use crate::repository::BlobSaver;

    #[test]
    fn hostile_names_stay_inside_the_target() {
        for (name, ok) in [
            ("a", true),
            ("..", false),
            (".", false),
            ("a/b", false),
            ("", false),
            ("x\0", false),
        ] {
            assert_eq!(safe_name(name), ok, "{name:?}");
        }
        // An authenticated but hostile tree (written with the key).
        let mut repo = Repository::init(
            Box::new(MemoryBackend::new()),
            b"pw",
            KdfParams::INSECURE_FAST,
        )
        .unwrap();
        let mut saver = BlobSaver::new();
        let (blob, _) = saver.save(&mut repo, BlobType::Data, b"evil").unwrap();
        let mk = |name: &str| Node {
            name: name.into(),
            node_type: "file".into(),
            mode: 0o644,
            mtime: crate::format::time::zero(),
            atime: crate::format::time::zero(),
            ctime: crate::format::time::zero(),
            uid: 0,
            gid: 0,
            user: String::new(),
            group: String::new(),
            inode: 0,
            device_id: 0,
            size: 4,
            links: 1,
            linktarget: String::new(),
            extended_attributes: None,
            device: 0,
            content: Some(vec![blob]),
            subtree: None,
            error: String::new(),
        };
        // A symlink "d" to the outside, then a directory "d" holding a file.
        let outside = tempfile::tempdir().unwrap();
        let sub = Tree {
            nodes: vec![mk("planted")],
        };
        let (sub_id, _) = saver
            .save(&mut repo, BlobType::Tree, &sub.to_json().unwrap())
            .unwrap();
        let mut link = mk("d");
        link.node_type = "symlink".into();
        link.content = None;
        link.linktarget = outside.path().display().to_string();
        let mut dir = mk("d");
        dir.node_type = "dir".into();
        dir.content = None;
        dir.subtree = Some(sub_id);
        let tree = Tree {
            nodes: vec![mk("../escaped"), link, dir, mk("fine")],
        };
        let (tid, _) = saver
            .save(&mut repo, BlobType::Tree, &tree.to_json().unwrap())
            .unwrap();
        saver.finish(&mut repo).unwrap();
        let snap = Snapshot {
            time: crate::format::time::now(),
            parent: None,
            tree: tid,
            paths: vec!["/x".into()],
            hostname: String::new(),
            username: String::new(),
            uid: 0,
            gid: 0,
            excludes: vec![],
            tags: vec![],
            original: None,
            program_version: String::new(),
        };
        repo.save_snapshot(&snap).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("target");
        let r = restore(
            &repo,
            "latest",
            &RestoreOptions {
                target: target.clone(),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(r.files, 1);
        assert_eq!(r.errors.len(), 2, "{:?}", r.errors);
        assert!(!tmp.path().join("escaped").exists());
        assert!(!outside.path().join("planted").exists());
        assert_eq!(std::fs::read(target.join("fine")).unwrap(), b"evil");
    }
}

#[cfg(test)]
mod depth_tests {
    use super::*;
    use crate::backend::memory::MemoryBackend;
    use crate::crypto::KdfParams;
    use crate::format::snapshot::Snapshot;
    use crate::format::tree::{Node, Tree, MAX_TREE_DEPTH};
    use crate::repository::BlobSaver;

    fn dir(name: &str, sub: Id) -> Node {
        Node {
            name: name.into(),
            node_type: "dir".into(),
            mode: 0o755 | crate::format::tree::go::DIR,
            mtime: crate::format::time::zero(),
            atime: crate::format::time::zero(),
            ctime: crate::format::time::zero(),
            uid: 0,
            gid: 0,
            user: String::new(),
            group: String::new(),
            inode: 0,
            device_id: 0,
            size: 0,
            links: 0,
            linktarget: String::new(),
            extended_attributes: None,
            device: 0,
            content: None,
            subtree: Some(sub),
            error: String::new(),
        }
    }

    /// A chain of `depth` nested directories.
    fn chain(depth: usize) -> Repository {
        let mut repo = Repository::init(
            Box::new(MemoryBackend::new()),
            b"pw",
            KdfParams::INSECURE_FAST,
        )
        .unwrap();
        let mut saver = BlobSaver::new();
        let (mut id, _) = saver
            .save(
                &mut repo,
                BlobType::Tree,
                &Tree::default().to_json().unwrap(),
            )
            .unwrap();
        for _ in 0..depth {
            let t = Tree {
                nodes: vec![dir("d", id)],
            };
            id = saver
                .save(&mut repo, BlobType::Tree, &t.to_json().unwrap())
                .unwrap()
                .0;
        }
        saver.finish(&mut repo).unwrap();
        let snap = Snapshot {
            time: crate::format::time::now(),
            parent: None,
            tree: id,
            paths: vec!["/d".into()],
            hostname: String::new(),
            username: String::new(),
            uid: 0,
            gid: 0,
            excludes: vec![],
            tags: vec![],
            original: None,
            program_version: String::new(),
        };
        repo.save_snapshot(&snap).unwrap();
        repo
    }

    /// Hostile nesting is an error, not a stack overflow, even on a 2 MiB
    /// stack (tokio's blocking threads, Rust's spawned threads).
    #[test]
    fn deep_trees_are_refused_within_a_small_stack() {
        let repo = chain(MAX_TREE_DEPTH + 5);
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("t");
        let r = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                restore(
                    &repo,
                    "latest",
                    &RestoreOptions {
                        target,
                        ..Default::default()
                    },
                )
            })
            .unwrap()
            .join()
            .unwrap();
        // The walk stops at the limit (or earlier, where the file system
        // refuses long paths) and reports it.
        let summary = r.unwrap();
        assert!(!summary.errors.is_empty());
    }

    #[test]
    fn deep_trees_are_refused_by_export_within_a_small_stack() {
        let repo = chain(MAX_TREE_DEPTH + 5);
        let r = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                crate::export::export_tar_gz(&repo, "latest", std::io::sink()).map(|_| ())
            })
            .unwrap()
            .join()
            .unwrap();
        assert!(r.is_err());
    }
}
