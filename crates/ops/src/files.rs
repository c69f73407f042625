//! Files in the data directory: private and never half-written.
//!
//! Everything Bulwark keeps there (the SQLite database, managed secrets,
//! event logs, drill reports, monthly reports) is readable by its owner
//! only: directories 0700, files 0600, whatever the umask. The modes are
//! given at creation, so no file is ever readable by others, not even
//! between its creation and a chmod; a file or directory left wider by an
//! older version is narrowed when Bulwark next opens it.
//!
//! Whole files are replaced atomically: a temporary file in the same
//! directory, flushed, renamed over the old one, then the directory flushed
//! so the rename survives a power cut. Readers see the old content or the
//! new, never half of either.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The event logs Bulwark writes under `<data-dir>/logs/`, by the names
/// the original scripts gave them; file sinks may not write to them.
pub(crate) const UPTIME_LOG: &str = "uptime.ndjson";
pub(crate) const SLO_GUARD_LOG: &str = "slo_guard.ndjson";
pub(crate) const VERIFY_LOG: &str = "backup_verify.ndjson";
pub(crate) const ROTATION_LOG: &str = "secret_rotations.ndjson";
pub(crate) const OWN_LOGS: [&str; 4] = [UPTIME_LOG, SLO_GUARD_LOG, VERIFY_LOG, ROTATION_LOG];

/// Mode of every file Bulwark creates in its data directory.
pub(crate) const FILE_MODE: u32 = 0o600;
/// Mode of every directory Bulwark creates in its data directory.
pub(crate) const DIR_MODE: u32 = 0o700;

/// Creates `dir` and any missing parents with mode 0700, and narrows `dir`
/// itself to 0700 if it already existed with a wider mode.
///
/// # Errors
/// When a directory cannot be created or its mode cannot be set.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)?;
    narrow(dir, DIR_MODE)
}

/// Sets `path`'s permission bits to `mode` when it grants anything more.
fn narrow(path: &Path, mode: u32) -> io::Result<()> {
    let current = fs::metadata(path)?.permissions().mode() & 0o7777;
    if current & !mode != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// Creates `path` empty with mode 0600 if it does not exist, and narrows
/// it to 0600 if it does (the SQLite database before SQLite opens it: its
/// `-wal` and `-shm` files then take the database file's mode).
///
/// # Errors
/// When the file cannot be created or its mode cannot be set.
pub(crate) fn private_file(path: &Path) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(path)?;
    narrow(path, FILE_MODE)
}

/// Atomically replaces `path` with `bytes`, mode 0600, creating the
/// directory (0700) when missing.
///
/// # Errors
/// When the directory or the file cannot be written; the temporary file is
/// removed and `path` keeps its old content.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::other(format!("{} has no file name", path.display())))?;
    private_dir(dir)?;
    let tmp: PathBuf = dir.join(format!(
        ".{}.tmp-{}",
        file_name.to_string_lossy(),
        hex::encode(rand::random::<[u8; 6]>())
    ));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Flushes a directory's entries (a rename) to disk.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Opens `path` for appending, mode 0600, its directory 0700.
pub(crate) fn open_append(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent() {
        private_dir(dir)?;
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(FILE_MODE)
        .open(path)?;
    narrow(path, FILE_MODE)?;
    Ok(file)
}

/// An event stream in the data directory's `logs/` (`uptime.ndjson`,
/// `secret_rotations.ndjson`, ...), read by log shippers: one JSON object
/// per line. Each append is one `write` on an `O_APPEND` file, so writers
/// in several processes never interleave within a line.
#[derive(Debug)]
pub(crate) struct NdjsonLog {
    /// None when the file could not be opened: events are then only logged.
    file: Mutex<Option<File>>,
}

impl NdjsonLog {
    /// Opens `<data_dir>/logs/<name>`; a failure is logged once and the log
    /// becomes a no-op, so monitoring goes on without its event file.
    pub(crate) fn open(data_dir: &Path, name: &str) -> NdjsonLog {
        let file = open_append(&data_dir.join("logs").join(name))
            .map_err(|e| tracing::warn!(file = name, error = %e, "cannot open event log; continuing without it"))
            .ok();
        NdjsonLog {
            file: Mutex::new(file),
        }
    }

    /// Appends one event.
    pub(crate) fn write(&self, value: &serde_json::Value) {
        let mut line = value.to_string();
        line.push('\n');
        self.append(&line);
    }

    /// Appends already formatted lines in one write.
    pub(crate) fn append(&self, lines: &str) {
        if lines.is_empty() {
            return;
        }
        if let Ok(mut guard) = self.file.lock() {
            if let Some(f) = guard.as_mut() {
                if let Err(e) = f.write_all(lines.as_bytes()) {
                    tracing::warn!(error = %e, "cannot append to event log");
                }
            }
        }
    }
}

/// Appends one event to `<data_dir>/logs/<name>`, for streams written now
/// and then (rotations, verifications) rather than kept open.
///
/// # Errors
/// When the file cannot be opened or written.
pub(crate) fn append_event(
    data_dir: &Path,
    name: &str,
    value: &serde_json::Value,
) -> io::Result<()> {
    let mut f = open_append(&data_dir.join("logs").join(name))?;
    let mut line = value.to_string();
    line.push('\n');
    f.write_all(line.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn atomic_write_replaces_with_mode_0600_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/NAME");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(mode(&path), FILE_MODE);
        assert_eq!(mode(&dir.path().join("sub")), DIR_MODE);
        let names: Vec<_> = fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("NAME")]);
    }

    #[test]
    fn wider_modes_left_by_older_versions_are_narrowed() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        fs::create_dir(&data).unwrap();
        fs::set_permissions(&data, fs::Permissions::from_mode(0o755)).unwrap();
        let db = data.join("bulwark.db");
        fs::write(&db, b"").unwrap();
        fs::set_permissions(&db, fs::Permissions::from_mode(0o644)).unwrap();
        private_dir(&data).unwrap();
        private_file(&db).unwrap();
        assert_eq!(mode(&data), DIR_MODE);
        assert_eq!(mode(&db), FILE_MODE);

        let log = data.join("logs/uptime.ndjson");
        fs::create_dir(data.join("logs")).unwrap();
        fs::write(&log, b"{}\n").unwrap();
        fs::set_permissions(&log, fs::Permissions::from_mode(0o644)).unwrap();
        NdjsonLog::open(&data, "uptime.ndjson").write(&serde_json::json!({"ok": true}));
        assert_eq!(mode(&log), FILE_MODE);
        assert_eq!(fs::read_to_string(&log).unwrap().lines().count(), 2);
    }
}
