//! Secret value files, written atomically with mode 0600 (see
//! [`crate::files`]): readers see the old value or the new one, never half
//! of either, and nobody else sees either.

use std::path::Path;

use crate::config::Secret;

/// Atomically replaces `path` with `value`, mode 0600.
pub(crate) fn write_atomic(path: &Path, value: &Secret<String>) -> std::io::Result<()> {
    crate::files::write_atomic(path, value.expose().as_bytes())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_a_missing_file_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(&dir.path().join("nope")).unwrap().is_none());
        assert!(!remove(&dir.path().join("nope")).unwrap());
    }
}
