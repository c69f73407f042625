//! `backup --git`: snapshot exactly the tree at a git repository's HEAD,
//! i.e. what `git archive HEAD` contains (tracked files only, no `.git`,
//! no build output, nothing marked `export-ignore`), recorded under the
//! repository's own path and tagged with the commit id.
//!
//! HEAD's tree is read with gitoxide (no `git` binary needed: servers that
//! run backups often have none) and written into a private temporary
//! directory, which is then backed up like any other path. Every entry gets
//! the commit time as its mtime and the mode `git archive` gives it, so
//! repeated backups of one commit are identical.
//!
//! Known differences from `git archive`: `export-subst` placeholders are not
//! expanded, and attributes from outside the repository (`core.attributesFile`,
//! `~/.config/git/attributes`, `/etc/gitattributes`) are not read: a backup
//! should not depend on the configuration of whoever runs it.

use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use filetime::FileTime;
use gix::bstr::{BStr, BString, ByteSlice};
use gix::objs::tree::EntryKind;
use gix::ObjectId;
use gix_attributes::glob::pattern::Case;
use gix_attributes::search::{MetadataCollection, Outcome};
use gix_attributes::{Search, StateRef};

use crate::archiver::{
    backup_sources, clean_absolute, BackupOptions, BackupProgress, BackupSummary,
};
use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::repository::Repository;

/// The modes `git archive` writes with its default `tar.umask` of 002.
const FILE_MODE: u32 = 0o664;
const EXEC_MODE: u32 = 0o775;
const DIR_MODE: u32 = 0o775;

/// A directory only this user can enter, removed however the backup ends.
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn create() -> Result<PrivateDir> {
        let p =
            std::env::temp_dir().join(format!("bulwark-git-{}", crate::id::Id::random().short()));
        // `create`, not `create_all`: an existing directory (someone else's
        // guess of the name) is an error, not something to write into.
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&p)
            .map_err(|e| Error::io("create", &p, e))?;
        Ok(PrivateDir(p))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// What HEAD points at.
#[derive(Debug)]
struct Head {
    commit: ObjectId,
    /// Committer time, seconds since the epoch (what `git archive` uses).
    time: i64,
    tree: ObjectId,
}

fn open(path: &Path) -> Result<gix::Repository> {
    // Isolated: only the repository's own configuration is read, so the
    // result does not depend on who runs the backup or their environment.
    gix::open_opts(path, gix::open::Options::isolated()).map_err(|e| {
        Error::InvalidArgument(format!("{}: not a git repository: {e}", path.display()))
    })
}

fn head(repo: &gix::Repository, path: &Path) -> Result<Head> {
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        Error::format(
            format!("git repository {}", path.display()),
            format!("{what}: {e}"),
        )
    };
    let mut head = repo.head().map_err(|e| bad("read HEAD", &e))?;
    if head.is_unborn() {
        return Err(Error::InvalidArgument(format!(
            "{}: git repository has no commits yet (HEAD is unborn)",
            path.display()
        )));
    }
    let commit = head
        .peel_to_commit()
        .map_err(|e| bad("resolve HEAD to a commit", &e))?;
    let time = commit.time().map_err(|e| bad("read commit time", &e))?;
    let tree = commit
        .tree_id()
        .map_err(|e| bad("read commit tree", &e))?
        .detach();
    Ok(Head {
        commit: commit.id,
        time: time.seconds,
        tree,
    })
}

/// Whether a tree entry name is safe to create in a directory. git itself
/// never records others, but a crafted repository could.
fn safe_name(name: &BStr) -> bool {
    !name.is_empty()
        && name != ".."
        && name != "."
        && name != ".git"
        && !name.contains(&b'/')
        && !name.contains(&0)
}

/// `.gitattributes` lookups for `export-ignore`, with git's precedence:
/// `$GIT_DIR/info/attributes` over a deeper `.gitattributes` over a
/// shallower one, later lines over earlier ones.
struct ExportIgnore {
    search: Search,
    collection: MetadataCollection,
    out: Outcome,
    /// `$GIT_DIR/info/attributes`, kept as the last (strongest) list.
    info: Option<Vec<u8>>,
}

impl ExportIgnore {
    fn new(info: Option<Vec<u8>>) -> ExportIgnore {
        let mut e = ExportIgnore {
            search: Search::default(),
            collection: MetadataCollection::default(),
            out: Outcome::default(),
            info,
        };
        e.add_info();
        e
    }

    fn add_info(&mut self) {
        if let Some(b) = &self.info {
            self.search.add_patterns_buffer(
                b,
                "info/attributes".into(),
                None,
                &mut self.collection,
                true,
            );
        }
    }

    /// Enter directory `dir` (repository-relative, "" for the root) whose
    /// `.gitattributes` holds `bytes` (empty when it has none).
    fn push(&mut self, dir: &BStr, bytes: &[u8]) {
        if self.info.is_some() {
            self.search.pop_pattern_list();
        }
        let mut source = PathBuf::from(std::ffi::OsStr::from_bytes(dir));
        source.push(".gitattributes");
        // git reads macro definitions (`[attr]name ...`) only from the
        // top-level file.
        self.search.add_patterns_buffer(
            bytes,
            source,
            Some(Path::new("")),
            &mut self.collection,
            dir.is_empty(),
        );
        self.add_info();
    }

    /// Leave the directory entered last.
    fn pop(&mut self) {
        if self.info.is_some() {
            self.search.pop_pattern_list();
        }
        self.search.pop_pattern_list();
        self.add_info();
    }

    /// Whether `path` (repository-relative) is marked `export-ignore`.
    fn ignored(&mut self, path: &BStr, is_dir: bool) -> bool {
        self.out
            .initialize_with_selection(&self.collection, ["export-ignore"]);
        self.search.pattern_matching_relative_path(
            path,
            Case::Sensitive,
            Some(is_dir),
            &mut self.out,
        );
        self.out
            .iter_selected()
            .next()
            .is_some_and(|m| m.assignment.state == StateRef::Set)
    }
}

/// Writes a git tree into a directory the way `git archive | tar -x` would.
struct Extractor<'r> {
    repo: &'r gix::Repository,
    /// The repository, for messages.
    what: String,
    time: FileTime,
    attrs: ExportIgnore,
    cancel: &'r Cancel,
}

impl Extractor<'_> {
    fn bad(&self, reason: String) -> Error {
        Error::format(self.what.clone(), reason)
    }

    fn blob(&self, id: ObjectId, path: &BStr) -> Result<Vec<u8>> {
        let mut b = self
            .repo
            .find_blob(id)
            .map_err(|e| self.bad(format!("{path}: blob {id}: {e}")))?;
        Ok(b.take_data())
    }

    /// Write the tree `id`, found at `rel` ("" for the root), into the
    /// existing directory `dir`. Returns whether anything but directories
    /// was written: `git archive` leaves out directories that end up empty
    /// (all their content `export-ignore`d).
    fn tree(&mut self, id: ObjectId, rel: &BStr, dir: &Path) -> Result<bool> {
        let entries: Vec<(EntryKind, BString, ObjectId)> = {
            let tree = self
                .repo
                .find_tree(id)
                .map_err(|e| self.bad(format!("{rel}: tree {id}: {e}")))?;
            tree.iter()
                .map(|e| {
                    e.map(|e| {
                        (
                            e.inner.mode.kind(),
                            e.inner.filename.to_owned(),
                            e.inner.oid.to_owned(),
                        )
                    })
                })
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| self.bad(format!("{rel}: tree {id}: {e}")))?
        };
        // Like git since 2.32, a `.gitattributes` that is a symlink is
        // not read.
        let attrs = match entries.iter().find(|(k, n, _)| {
            n == ".gitattributes" && matches!(k, EntryKind::Blob | EntryKind::BlobExecutable)
        }) {
            Some((_, _, oid)) => self.blob(*oid, rel)?,
            None => Vec::new(),
        };
        self.attrs.push(rel, &attrs);
        let res = self.entries(&entries, rel, dir);
        self.attrs.pop();
        res
    }

    fn entries(
        &mut self,
        entries: &[(EntryKind, BString, ObjectId)],
        rel: &BStr,
        dir: &Path,
    ) -> Result<bool> {
        let mut wrote = false;
        for (kind, name, oid) in entries {
            self.cancel.check()?;
            let mut child_rel = BString::from(rel);
            if !child_rel.is_empty() {
                child_rel.push(b'/');
            }
            child_rel.extend_from_slice(name);
            if !safe_name(name.as_bstr()) {
                return Err(self.bad(format!("{child_rel}: unsafe name in tree")));
            }
            let is_dir = matches!(kind, EntryKind::Tree | EntryKind::Commit);
            if self.attrs.ignored(child_rel.as_bstr(), is_dir) {
                continue;
            }
            let path = dir.join(std::ffi::OsStr::from_bytes(name));
            match kind {
                EntryKind::Tree => {
                    mkdir(&path)?;
                    if self.tree(*oid, child_rel.as_bstr(), &path)? {
                        self.finish_dir(&path)?;
                        wrote = true;
                    } else {
                        fs::remove_dir(&path).map_err(|e| Error::io("remove", &path, e))?;
                    }
                }
                // A submodule: git archive writes an empty directory.
                EntryKind::Commit => {
                    mkdir(&path)?;
                    self.finish_dir(&path)?;
                    wrote = true;
                }
                EntryKind::Blob | EntryKind::BlobExecutable => {
                    let data = self.blob(*oid, child_rel.as_bstr())?;
                    let mode = if *kind == EntryKind::BlobExecutable {
                        EXEC_MODE
                    } else {
                        FILE_MODE
                    };
                    write_file(&path, &data, mode)?;
                    filetime::set_file_times(&path, self.time, self.time)
                        .map_err(|e| Error::io("set times", &path, e))?;
                    wrote = true;
                }
                EntryKind::Link => {
                    let target = self.blob(*oid, child_rel.as_bstr())?;
                    std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&target), &path)
                        .map_err(|e| Error::io("create symlink", &path, e))?;
                    filetime::set_symlink_file_times(&path, self.time, self.time)
                        .map_err(|e| Error::io("set times", &path, e))?;
                    wrote = true;
                }
            }
        }
        Ok(wrote)
    }

    /// Mode and times of a directory, once its content is written (writing
    /// into it changes its mtime).
    fn finish_dir(&self, path: &Path) -> Result<()> {
        fs::set_permissions(path, fs::Permissions::from_mode(DIR_MODE))
            .map_err(|e| Error::io("chmod", path, e))?;
        filetime::set_file_times(path, self.time, self.time)
            .map_err(|e| Error::io("set times", path, e))
    }
}

fn mkdir(path: &Path) -> Result<()> {
    // Fails on an existing entry (a crafted tree naming one entry twice),
    // so nothing is ever written through a symlink.
    fs::DirBuilder::new()
        .mode(0o700)
        .create(path)
        .map_err(|e| Error::io("create", path, e))
}

fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io("create", path, e))?;
    f.write_all(data).map_err(|e| Error::io("write", path, e))?;
    // Set explicitly: the umask must not change what is recorded.
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io("chmod", path, e))
}

/// Write HEAD's tree of the repository at `path` into the new directory
/// `dest`; returns the commit.
fn extract_head(path: &Path, dest: &Path, cancel: &Cancel) -> Result<ObjectId> {
    let repo = open(path)?;
    let head = head(&repo, path)?;
    let info_path = repo.common_dir().join("info").join("attributes");
    let info = match fs::read(&info_path) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io("read", &info_path, e)),
    };
    let mut x = Extractor {
        repo: &repo,
        what: format!("git repository {}", path.display()),
        time: FileTime::from_unix_time(head.time, 0),
        attrs: ExportIgnore::new(info),
        cancel,
    };
    mkdir(dest)?;
    x.tree(head.tree, BStr::new(""), dest)?;
    // The root stands for the work tree: it gets the commit time too.
    x.finish_dir(dest)?;
    Ok(head.commit)
}

/// Back up HEAD of the git repository at `git_dir` (its work tree, or a
/// bare repository). The commit id is added to `opts.tags`; `opts.paths`
/// is ignored. Detached HEADs are fine.
///
/// # Errors
/// Not a git repository, no commit yet, unreadable git objects, backup
/// errors.
pub fn backup_git(
    repo: &mut Repository,
    git_dir: &Path,
    opts: &BackupOptions,
    progress: impl FnMut(BackupProgress) + Send,
) -> Result<BackupSummary> {
    let logical = clean_absolute(git_dir)?;
    let tmp = PrivateDir::create()?;
    let root = tmp.0.join("tree");
    // Trees can be deep: walk them on a thread with room for it.
    let commit = crate::with_big_stack(|| extract_head(&logical, &root, &opts.cancel))?;
    let mut o = opts.clone();
    o.tags.push(commit.to_string());
    backup_sources(repo, vec![(logical, root)], &o, progress)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names() {
        let cases: [(&str, bool); 9] = [
            ("a", true),
            (".gitignore", true),
            ("..x", true),
            ("", false),
            (".", false),
            ("..", false),
            (".git", false),
            ("a/b", false),
            ("a\0b", false),
        ];
        for (name, want) in cases {
            assert_eq!(safe_name(BStr::new(name)), want, "{name:?}");
        }
    }

    /// (info/attributes, [(dir, .gitattributes)], path, is_dir, ignored?)
    type Case<'a> = (
        Option<&'a str>,
        &'a [(&'a str, &'a str)],
        &'a str,
        bool,
        bool,
    );

    #[test]
    fn export_ignore_precedence() {
        let cases: &[Case] = &[
            (None, &[], "a", false, false),
            (None, &[("", "a export-ignore\n")], "a", false, true),
            (
                None,
                &[("", "*.log export-ignore\n")],
                "d/x.log",
                false,
                true,
            ),
            (None, &[("", "/x export-ignore\n")], "d/x", false, false),
            (
                None,
                &[("", "secret/ export-ignore\n")],
                "secret",
                true,
                true,
            ),
            (
                None,
                &[("", "secret/ export-ignore\n")],
                "secret",
                false,
                false,
            ),
            // A deeper file overrides a shallower one...
            (
                None,
                &[
                    ("", "*.txt export-ignore\n"),
                    ("d", "*.txt -export-ignore\n"),
                ],
                "d/k.txt",
                false,
                false,
            ),
            // ...and applies only below its directory, relative to it.
            (
                None,
                &[("", ""), ("d", "/k export-ignore\n")],
                "d/k",
                false,
                true,
            ),
            (
                None,
                &[("", ""), ("d", "k export-ignore\n")],
                "k",
                false,
                false,
            ),
            // info/attributes overrides every .gitattributes.
            (
                Some("a -export-ignore\n"),
                &[("", "a export-ignore\n"), ("d", "a export-ignore\n")],
                "d/a",
                false,
                false,
            ),
            (
                Some("*.bin export-ignore\n"),
                &[("", "")],
                "x.bin",
                false,
                true,
            ),
            // Macros from the top-level file.
            (
                None,
                &[("", "[attr]noexport export-ignore\nb noexport\n")],
                "b",
                false,
                true,
            ),
        ];
        for (i, (info, stack, path, is_dir, want)) in cases.iter().enumerate() {
            let mut e = ExportIgnore::new(info.map(|s| s.as_bytes().to_vec()));
            for (dir, content) in *stack {
                e.push(BStr::new(dir), content.as_bytes());
            }
            assert_eq!(e.ignored(BStr::new(path), *is_dir), *want, "case {i}");
            // Leaving the directories restores the outer state.
            for _ in *stack {
                e.pop();
            }
            assert!(
                !e.ignored(BStr::new(path), *is_dir) || info.is_some(),
                "case {i} after pop"
            );
        }
    }
}
