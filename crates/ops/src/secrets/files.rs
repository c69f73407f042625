//! Crash-safe files: a secret is written to a temporary file in the same
//! directory, flushed to disk, and renamed over the old one, then the
//! directory itself is flushed so the rename survives a power cut. Readers
//! see either the old value or the new one, never half of either.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::Secret;

#[cfg(unix)]
fn restricted(options: &mut std::fs::OpenOptions, mode: u32) {
    use std::os::unix::fs::OpenOptionsExt;
    options.mode(mode);
}

#[cfg(not(unix))]
fn restricted(_options: &mut std::fs::OpenOptions, _mode: u32) {}

/// Creates `dir` (and parents) readable by the owner only.
pub(crate) fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Atomically replaces `path` with `value`, mode 0600.
pub(crate) fn write_atomic(path: &Path, value: &Secret<String>) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("secret path has no parent directory"))?;
    let file_name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("secret path has no file name"))?;
    let tmp: PathBuf = dir.join(format!(
        ".{}.tmp-{}",
        file_name.to_string_lossy(),
        hex::encode(rand::random::<[u8; 6]>())
    ));
    let result = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        // 0600 from creation, so the value is never readable by others, not
        // even between create and chmod.
        restricted(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(value.expose().as_bytes())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Flushes a directory's entries (the rename) to disk.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Reads a secret file; `None` when it does not exist.
pub(crate) fn read(path: &Path) -> std::io::Result<Option<Secret<String>>> {
    match std::fs::read_to_string(path) {
        Ok(v) => Ok(Some(Secret::new(
            v.trim_end_matches(['\n', '\r']).to_string(),
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes a file, treating "already gone" as success.
pub(crate) fn remove(path: &Path) -> std::io::Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Appends one JSON line to `<data_dir>/logs/<file>`: the seed's event
/// streams, read by log shippers. One `write` per line on an `O_APPEND`
/// file, so concurrent writers do not interleave within a line.
pub(crate) fn append_ndjson(
    data_dir: &Path,
    file: &str,
    value: &serde_json::Value,
) -> std::io::Result<()> {
    let dir = data_dir.join("logs");
    std::fs::create_dir_all(&dir)?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(file))?;
    let mut line = value.to_string();
    line.push('\n');
    f.write_all(line.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_with_mode_0600_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("NAME");
        write_atomic(&path, &Secret::new("one".to_string())).unwrap();
        write_atomic(&path, &Secret::new("two".to_string())).unwrap();
        assert_eq!(read(&path).unwrap().unwrap().expose(), "two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("NAME")]);
    }

    #[test]
    fn reading_a_missing_file_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(&dir.path().join("nope")).unwrap().is_none());
        assert!(!remove(&dir.path().join("nope")).unwrap());
    }
}
