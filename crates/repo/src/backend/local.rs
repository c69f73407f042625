//! The local filesystem backend, in restic's default layout:
//! `config`, `keys/<id>`, `data/<first two hex chars>/<id>`, `index/<id>`,
//! `snapshots/<id>`, `locks/<id>`.
//!
//! Only the owner may read anything in it, whatever the umask: key files
//! let whoever copies them attack the password offline, and the rest
//! reveals sizes and timing. As restic does, directories are created 0700
//! and files 0600, then made read-only (0400) before they get their name.
//! Modes are given at creation, so no file is ever more open than that.

use std::fs;
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{Backend, FileType};
use crate::error::{Error, Result};

/// A repository in a local directory.
pub struct LocalBackend {
    root: PathBuf,
}

/// Mode of repository directories.
const DIR_MODE: u32 = 0o700;
/// Mode a repository file is written with.
const FILE_MODE: u32 = 0o600;
/// Mode of a complete repository file: read-only, so that a stray write
/// fails (restic's choice too).
const DONE_MODE: u32 = 0o400;

/// `mkdir -p` with [`DIR_MODE`] for every directory it creates.
fn create_dirs(d: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(d)
}

fn be(op: &'static str, what: &Path, source: std::io::Error) -> Error {
    if source.kind() == ErrorKind::NotFound {
        Error::NotFound(what.display().to_string())
    } else {
        Error::Backend {
            op,
            what: what.display().to_string(),
            source,
        }
    }
}

impl LocalBackend {
    /// A backend rooted at `root` (not created until [`Backend::create`]).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalBackend { root: root.into() }
    }

    fn path(&self, t: FileType, name: &str) -> Result<PathBuf> {
        if t == FileType::Config {
            return Ok(self.root.join("config"));
        }
        // Names come from listings and ids; refuse anything that could
        // escape the directory.
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Error::InvalidArgument(format!(
                "invalid file name {name:?}"
            )));
        }
        let mut p = self.root.join(t.dir());
        if t == FileType::Pack {
            p.push(&name[..name.len().min(2)]);
        }
        p.push(name);
        Ok(p)
    }

    fn list_dir(dir: &Path, out: &mut Vec<(String, u64)>) -> Result<()> {
        let rd = match fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(be("list", dir, e)),
        };
        for ent in rd {
            let ent = ent.map_err(|e| be("list", dir, e))?;
            let name = ent.file_name();
            let Some(name) = name.to_str() else { continue };
            // Skip temporary files of in-progress writes.
            if name.starts_with('.') || name.contains('-') {
                continue;
            }
            let md = ent.metadata().map_err(|e| be("stat", &ent.path(), e))?;
            if md.is_file() {
                out.push((name.to_string(), md.len()));
            }
        }
        Ok(())
    }
}

impl Backend for LocalBackend {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn create(&self) -> Result<()> {
        for t in FileType::DIRS {
            let d = self.root.join(t.dir());
            create_dirs(&d).map_err(|e| be("create", &d, e))?;
        }
        // restic creates the 256 pack subdirectories up front.
        for i in 0..256 {
            let d = self.root.join("data").join(format!("{i:02x}"));
            create_dirs(&d).map_err(|e| be("create", &d, e))?;
        }
        Ok(())
    }

    fn list(&self, t: FileType) -> Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        if t == FileType::Config {
            if let Ok(md) = fs::metadata(self.root.join("config")) {
                out.push(("config".to_string(), md.len()));
            }
            return Ok(out);
        }
        let dir = self.root.join(t.dir());
        if t == FileType::Pack {
            let rd = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(out),
                Err(e) => return Err(be("list", &dir, e)),
            };
            for ent in rd {
                let ent = ent.map_err(|e| be("list", &dir, e))?;
                if ent.file_type().map(|ft| ft.is_dir()).unwrap_or(false) {
                    Self::list_dir(&ent.path(), &mut out)?;
                }
            }
        } else {
            Self::list_dir(&dir, &mut out)?;
        }
        out.sort();
        Ok(out)
    }

    fn read(&self, t: FileType, name: &str) -> Result<Vec<u8>> {
        let p = self.path(t, name)?;
        fs::read(&p).map_err(|e| be("read", &p, e))
    }

    fn read_range(&self, t: FileType, name: &str, offset: u64, length: u32) -> Result<Vec<u8>> {
        let p = self.path(t, name)?;
        let mut f = fs::File::open(&p).map_err(|e| be("open", &p, e))?;
        // Check the range against the file size before allocating: lengths
        // come from repository files, which are untrusted input.
        let size = f.metadata().map_err(|e| be("stat", &p, e))?.len();
        if offset
            .checked_add(length as u64)
            .is_none_or(|end| end > size)
        {
            return Err(Error::format(
                p.display().to_string(),
                format!("range {offset}+{length} past the end ({size} bytes)"),
            ));
        }
        f.seek(SeekFrom::Start(offset))
            .map_err(|e| be("seek", &p, e))?;
        let mut buf = vec![0u8; length as usize];
        f.read_exact(&mut buf).map_err(|e| be("read", &p, e))?;
        Ok(buf)
    }

    /// Straight from the file, through a buffer of the consumer's own size:
    /// nothing of it is held here.
    fn read_with(
        &self,
        t: FileType,
        name: &str,
        length: Option<u64>,
        consumer: &mut dyn FnMut(&mut dyn Read) -> Result<()>,
    ) -> Result<()> {
        let p = self.path(t, name)?;
        let f = fs::File::open(&p).map_err(|e| be("open", &p, e))?;
        let mut body = super::stream::Body::new(f, length);
        let verdict = consumer(&mut body);
        // A file shorter than asked, or a failing disk, is the read's
        // error whatever the consumer made of it.
        match body.take_failure() {
            Some(e) => Err(be("read", &p, e)),
            None => verdict,
        }
    }

    fn write(&self, t: FileType, name: &str, data: &[u8]) -> Result<()> {
        let p = self.path(t, name)?;
        let dir = p.parent().unwrap_or(&self.root).to_path_buf();
        create_dirs(&dir).map_err(|e| be("create", &dir, e))?;
        // Write under a temporary name, fsync, then rename: readers see the
        // whole file or nothing, even after a crash.
        let tmp = dir.join(format!(".{}-tmp-{}", name, crate::id::Id::random().short()));
        let res = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(FILE_MODE)
                .open(&tmp)?;
            f.write_all(data)?;
            // Read-only through the descriptor, before the name is visible.
            f.set_permissions(fs::Permissions::from_mode(DONE_MODE))?;
            f.sync_all()?;
            drop(f);
            fs::rename(&tmp, &p)?;
            // Persist the directory entry too.
            fs::File::open(&dir)?.sync_all()
        })();
        if let Err(e) = res {
            let _ = fs::remove_file(&tmp);
            return Err(be("write", &p, e));
        }
        Ok(())
    }

    fn remove(&self, t: FileType, name: &str) -> Result<()> {
        let p = self.path(t, name)?;
        match fs::remove_file(&p) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(be("remove", &p, e)),
            _ => Ok(()),
        }
    }

    fn stat(&self, t: FileType, name: &str) -> Result<u64> {
        let p = self.path(t, name)?;
        fs::metadata(&p)
            .map(|m| m.len())
            .map_err(|e| be("stat", &p, e))
    }

    fn remove_leftovers(&self, dry_run: bool) -> Result<(u64, u64)> {
        let mut dirs = vec![(self.root.clone(), false)];
        for t in FileType::DIRS {
            let d = self.root.join(t.dir());
            if t == FileType::Pack {
                let rd = match fs::read_dir(&d) {
                    Ok(rd) => rd,
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => return Err(be("list", &d, e)),
                };
                for ent in rd {
                    let ent = ent.map_err(|e| be("list", &d, e))?;
                    if ent.file_type().map(|ft| ft.is_dir()).unwrap_or(false) {
                        dirs.push((ent.path(), false));
                    }
                }
            } else {
                dirs.push((d, t == FileType::Lock));
            }
        }
        let (mut files, mut bytes) = (0, 0);
        for (dir, is_locks) in dirs {
            let rd = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(be("list", &dir, e)),
            };
            for ent in rd {
                let ent = ent.map_err(|e| be("list", &dir, e))?;
                let name = ent.file_name();
                if !is_temp_name(&name.to_string_lossy()) {
                    continue;
                }
                let md = match ent.metadata() {
                    Ok(md) => md,
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => return Err(be("stat", &ent.path(), e)),
                };
                if !md.is_file() {
                    continue;
                }
                // Other processes write their lock files before they find
                // ours, so a young temporary file in locks/ may be one in
                // flight; one older than a lock can live is not.
                if is_locks
                    && md
                        .modified()
                        .ok()
                        .and_then(|m| m.elapsed().ok())
                        .is_none_or(|age| age < LOCK_TEMP_MIN_AGE)
                {
                    continue;
                }
                if !dry_run {
                    match fs::remove_file(ent.path()) {
                        Ok(()) => {}
                        Err(e) if e.kind() == ErrorKind::NotFound => continue,
                        Err(e) => return Err(be("remove", &ent.path(), e)),
                    }
                }
                files += 1;
                bytes += md.len();
            }
        }
        Ok((files, bytes))
    }
}

/// See [`Backend::remove_leftovers`]: temporary files in locks/ younger than
/// this may belong to a process taking a lock right now.
const LOCK_TEMP_MIN_AGE: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Whether `name` is one of [`LocalBackend::write`]'s temporary names:
/// `.<name>-tmp-<random>`.
fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains("-tmp-")
}

#[cfg(test)]
mod tests {
    use super::super::{Backend, FileType};

    #[test]
    fn temp_names() {
        let cases = [
            (".abcd-tmp-1234", true),
            (".config-tmp-ff", true),
            ("abcd", false),
            (".hidden", false),
            ("abcd-tmp-12", false),
        ];
        for (name, want) in cases {
            assert_eq!(super::is_temp_name(name), want, "{name}");
        }
    }

    #[test]
    fn leftovers_are_removed_but_files_and_young_lock_temps_stay() {
        let d = tempfile::tempdir().unwrap();
        let b = super::LocalBackend::new(d.path().join("repo"));
        b.create().unwrap();
        let id = "ab".repeat(32);
        b.write(FileType::Pack, &id, b"pack").unwrap();
        let root = d.path().join("repo");
        let torn = [
            root.join(format!("data/ab/.{id}-tmp-0123")),
            root.join(".config-tmp-77"),
            root.join("index/.cd-tmp-99"),
        ];
        for t in &torn {
            std::fs::write(t, b"torn").unwrap();
        }
        let young_lock = root.join("locks/.ef-tmp-11");
        std::fs::write(&young_lock, b"l").unwrap();
        assert_eq!(b.remove_leftovers(true).unwrap(), (3, 12));
        assert!(torn.iter().all(|t| t.exists()), "dry run removed files");
        assert_eq!(b.remove_leftovers(false).unwrap(), (3, 12));
        assert!(torn.iter().all(|t| !t.exists()));
        assert!(young_lock.exists());
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(31 * 60);
        filetime::set_file_mtime(&young_lock, filetime::FileTime::from_system_time(old)).unwrap();
        assert_eq!(b.remove_leftovers(false).unwrap(), (1, 1));
        assert_eq!(b.read(FileType::Pack, &id).unwrap(), b"pack");
        assert_eq!(b.remove_leftovers(false).unwrap(), (0, 0));
    }

    #[test]
    fn local_backend_keeps_the_contract() {
        let d = tempfile::tempdir().unwrap();
        let b = super::LocalBackend::new(d.path().join("repo"));
        super::super::tests::check_backend(&b);
        assert!(d.path().join("repo/data/ab").is_dir());
    }
}
