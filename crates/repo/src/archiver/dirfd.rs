//! Descriptor-relative file system access for the walk.
//!
//! A backup often runs as root over trees that other users can write to.
//! Between the moment the walk looks at an entry and the moment a reader
//! opens it (the walk runs hundreds of files ahead), such a user can
//! replace the entry: a file by a symlink to `/etc/shadow`, by a FIFO that
//! blocks an `open` forever, a directory by a symlink to `/root`. Paths
//! cannot be trusted across that gap, so below the paths the user named
//! nothing is opened by path:
//!
//! - directories are opened relative to their parent's descriptor with
//!   `O_DIRECTORY | O_NOFOLLOW`, and listed and stat'ed (`fstatat`,
//!   `AT_SYMLINK_NOFOLLOW`) through it, so no symlink is ever followed;
//! - files are opened relative to their directory's descriptor with
//!   `O_NOFOLLOW | O_NONBLOCK` (a FIFO or device opens without waiting)
//!   and `fstat`ed; the inode must be the one the walk saw, and its
//!   metadata is then taken from the descriptor, never from the path.
//!
//! An entry that is not what the walk saw is reported as
//! [`Opened::Changed`]; the archiver skips it with a warning.

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

/// What the archiver records of an inode, from `stat(2)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meta {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    /// `st_mode`: type and permission bits.
    pub(crate) mode: u32,
    pub(crate) nlink: u64,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) rdev: u64,
    pub(crate) size: u64,
    pub(crate) atime: (i64, i64),
    pub(crate) mtime: (i64, i64),
    pub(crate) ctime: (i64, i64),
}

impl Meta {
    // `From` rather than `as`: the field types of `struct stat` differ
    // between architectures (identities here are widenings elsewhere), and
    // `From` only ever widens.
    #[allow(clippy::useless_conversion)]
    fn from_stat(st: &Stat) -> Meta {
        let ns = |n| i64::try_from(u64::from(n)).unwrap_or(0);
        Meta {
            dev: u64::from(st.st_dev),
            ino: u64::from(st.st_ino),
            mode: u32::from(st.st_mode),
            nlink: u64::from(st.st_nlink),
            uid: st.st_uid,
            gid: st.st_gid,
            rdev: u64::from(st.st_rdev),
            size: u64::try_from(i64::from(st.st_size)).unwrap_or(0),
            atime: (i64::from(st.st_atime), ns(st.st_atime_nsec)),
            mtime: (i64::from(st.st_mtime), ns(st.st_mtime_nsec)),
            ctime: (i64::from(st.st_ctime), ns(st.st_ctime_nsec)),
        }
    }

    pub(crate) fn file_type(&self) -> FileType {
        FileType::from_raw_mode(self.mode)
    }

    /// The same inode of the same type as `seen` (what the walk stat'ed).
    fn is(&self, seen: &Meta) -> bool {
        self.dev == seen.dev && self.ino == seen.ino && self.file_type() == seen.file_type()
    }
}

/// An entry opened for reading, or the news that it is no longer the
/// entry the walk saw.
pub(crate) enum Opened<T> {
    /// The entry, with its metadata from the descriptor.
    Same(T, Meta),
    /// Replaced since it was stat'ed (by a symlink, a FIFO, another file
    /// or directory).
    Changed,
}

/// `lstat` by path: for the directories above the paths the user named.
pub(crate) fn lstat(path: &Path) -> io::Result<Meta> {
    Ok(Meta::from_stat(&rustix::fs::lstat(path)?))
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`: the entry itself.
pub(crate) fn stat_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Meta> {
    Ok(Meta::from_stat(&rustix::fs::statat(
        dir,
        name,
        AtFlags::SYMLINK_NOFOLLOW,
    )?))
}

/// Open the directory holding a path the user named, by path: symlinks in
/// it are the user's choice and are followed.
pub(crate) fn open_dir_path(path: &Path) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    Ok(rustix::fs::open(path, flags, Mode::empty())?)
}

/// The errors of an `O_NOFOLLOW` open that mean "not the entry stat'ed":
/// a symlink now (`ELOOP`; `EMLINK` on some BSDs), something that is not
/// a directory (`ENOTDIR`), or a socket (`ENXIO`).
fn replaced(e: Errno) -> bool {
    e == Errno::LOOP || e == Errno::MLINK || e == Errno::NOTDIR || e == Errno::NXIO
}

fn open_at(
    dir: BorrowedFd<'_>,
    name: &CStr,
    extra: OFlags,
    seen: &Meta,
) -> io::Result<Opened<OwnedFd>> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | extra;
    let fd = match rustix::fs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) if replaced(e) => return Ok(Opened::Changed),
        Err(e) => return Err(e.into()),
    };
    let now = Meta::from_stat(&rustix::fs::fstat(&fd)?);
    Ok(if now.is(seen) {
        Opened::Same(fd, now)
    } else {
        Opened::Changed
    })
}

/// Open the regular file `name` in `dir` that the walk saw as `seen`.
/// `O_NONBLOCK` makes a FIFO or device swapped in open at once (and then
/// fail the inode check) instead of waiting for a writer; `O_NOCTTY`
/// keeps a terminal from becoming the process's. Neither changes how a
/// regular file reads.
pub(crate) fn open_file_at(
    dir: BorrowedFd<'_>,
    name: &CStr,
    seen: &Meta,
) -> io::Result<Opened<File>> {
    let extra = OFlags::NONBLOCK | OFlags::NOCTTY;
    Ok(match open_at(dir, name, extra, seen)? {
        Opened::Same(fd, m) => Opened::Same(File::from(fd), m),
        Opened::Changed => Opened::Changed,
    })
}

/// Open the directory `name` in `dir` that the walk saw as `seen`.
pub(crate) fn open_dir_at(
    dir: BorrowedFd<'_>,
    name: &CStr,
    seen: &Meta,
) -> io::Result<Opened<OwnedFd>> {
    open_at(dir, name, OFlags::DIRECTORY, seen)
}

/// Open the directory a directory was found in again, through its `..`,
/// after the walk closed it to bound its descriptors. `Changed` if it is
/// no longer the directory `seen` (the child was moved elsewhere).
pub(crate) fn reopen_parent(child: BorrowedFd<'_>, seen: &Meta) -> io::Result<Opened<OwnedFd>> {
    open_at(child, c"..", OFlags::DIRECTORY, seen)
}

/// The names in a directory (not `.` and `..`), read through a duplicate
/// of `dir` so that `dir` stays usable for the entries.
pub(crate) fn list(dir: BorrowedFd<'_>) -> io::Result<Vec<CString>> {
    let mut names = Vec::new();
    let listing = rustix::fs::Dir::new(rustix::io::fcntl_dupfd_cloexec(dir, 0)?)?;
    for entry in listing {
        let entry = entry?;
        let name = entry.file_name();
        if name != c"." && name != c".." {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// The target of the symlink `name` in `dir`.
pub(crate) fn read_link_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<CString> {
    Ok(rustix::fs::readlinkat(dir, name, Vec::new())?)
}

/// A path naming the entry `name` of `dir` for calls that only take paths
/// (the `l*xattr` family, for symlinks and special files, which cannot be
/// opened): `/proc/self/fd/N` stands for the directory itself, so only the
/// last component is looked up, and the `l*` calls do not follow it.
/// Without `/proc`, `fallback` (the entry's path) is all there is.
pub(crate) fn entry_path(
    dir: BorrowedFd<'_>,
    name: &CStr,
    have_proc: bool,
    fallback: &Path,
) -> PathBuf {
    if !have_proc {
        return fallback.to_path_buf();
    }
    let mut p = PathBuf::from(format!("/proc/self/fd/{}", dir.as_fd().as_raw_fd()));
    p.push(OsStr::from_bytes(name.to_bytes()));
    p
}

/// Whether `/proc/self/fd` can stand for descriptors (see [`entry_path`]).
pub(crate) fn have_proc() -> bool {
    Path::new("/proc/self/fd").is_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_only_what_was_seen() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::write(d.join("f"), b"x").unwrap();
        std::fs::write(d.join("g"), b"y").unwrap();
        std::fs::create_dir(d.join("sub")).unwrap();
        let dir = open_dir_path(d).unwrap();
        let f = stat_at(dir.as_fd(), c"f").unwrap();
        let g = stat_at(dir.as_fd(), c"g").unwrap();
        let sub = stat_at(dir.as_fd(), c"sub").unwrap();
        assert!(
            matches!(open_file_at(dir.as_fd(), c"f", &f).unwrap(), Opened::Same(_, m) if m.ino == f.ino)
        );
        // Another inode under the name.
        assert!(matches!(
            open_file_at(dir.as_fd(), c"f", &g).unwrap(),
            Opened::Changed
        ));
        // A symlink under the name: not followed.
        std::fs::remove_file(d.join("f")).unwrap();
        std::os::unix::fs::symlink(d.join("g"), d.join("f")).unwrap();
        assert!(matches!(
            open_file_at(dir.as_fd(), c"f", &f).unwrap(),
            Opened::Changed
        ));
        assert!(matches!(
            open_file_at(dir.as_fd(), c"f", &g).unwrap(),
            Opened::Changed
        ));
        // Directories likewise, and `..` leads back to the parent.
        let s = match open_dir_at(dir.as_fd(), c"sub", &sub).unwrap() {
            Opened::Same(s, _) => s,
            Opened::Changed => panic!("sub changed"),
        };
        let parent = stat_at(dir.as_fd(), c".").unwrap();
        assert!(matches!(
            reopen_parent(s.as_fd(), &parent).unwrap(),
            Opened::Same(..)
        ));
        assert!(matches!(
            reopen_parent(s.as_fd(), &sub).unwrap(),
            Opened::Changed
        ));
        std::fs::remove_dir(d.join("sub")).unwrap();
        std::os::unix::fs::symlink("/", d.join("sub")).unwrap();
        assert!(matches!(
            open_dir_at(dir.as_fd(), c"sub", &sub).unwrap(),
            Opened::Changed
        ));
        let mut names = list(dir.as_fd()).unwrap();
        names.sort();
        assert_eq!(names, [c"f", c"g", c"sub"]);
        assert_eq!(read_link_at(dir.as_fd(), c"sub").unwrap().as_bytes(), b"/");
    }
}
