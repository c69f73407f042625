//! Extended attributes (`user.*`, `security.capability`, POSIX ACLs in
//! `system.*`, SELinux labels), as restic records them: a node's
//! `extended_attributes` is a JSON list of `{"name": ..., "value": base64}`.
//!
//! Neither side follows symlinks: a symlink's own attributes are read and
//! written. Backup reads those of files and directories through the
//! descriptor it opened and checked (see `archiver`), so a path swapped
//! after the check cannot redirect the read. A filesystem without extended attributes has none to read and
//! takes none on restore; that is not an error, as in restic.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::Path;

use base64::Engine;
use serde_json::{json, Value};

/// ENOTSUP (the same number as EOPNOTSUPP on Linux).
#[cfg(target_os = "linux")]
const ENOTSUP: i32 = 95;
#[cfg(not(target_os = "linux"))]
const ENOTSUP: i32 = 45;

fn unsupported(e: &io::Error) -> bool {
    e.raw_os_error() == Some(ENOTSUP)
}

/// The attributes of the entry at `path` itself (a symlink is not
/// followed) in restic's form, `None` when it has none. Messages name
/// `what`: `path` may be a `/proc/self/fd/...` alias of it.
///
/// # Errors
/// A message naming `what` when they cannot be read.
pub(crate) fn read(path: &Path, what: &Path) -> Result<Option<Value>, String> {
    collect(what, xattr::list(path), |name| xattr::get(path, name))
}

/// The attributes of an open file or directory, as [`read`].
///
/// # Errors
/// A message naming `what` when they cannot be read.
pub(crate) fn read_file(f: &File, what: &Path) -> Result<Option<Value>, String> {
    use xattr::FileExt;
    collect(what, f.list_xattr(), |name| f.get_xattr(name))
}

fn collect(
    what: &Path,
    names: io::Result<impl Iterator<Item = OsString>>,
    get: impl Fn(&OsString) -> io::Result<Option<Vec<u8>>>,
) -> Result<Option<Value>, String> {
    let path = what;
    let names = match names {
        Ok(names) => names,
        Err(e) if unsupported(&e) => return Ok(None),
        Err(e) => return Err(format!("{}: list extended attributes: {e}", path.display())),
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = Vec::new();
    for name in names {
        let value = match get(&name) {
            Ok(Some(v)) => v,
            // Removed since it was listed.
            Ok(None) => continue,
            Err(e) => {
                return Err(format!(
                    "{}: extended attribute {}: {e}",
                    path.display(),
                    name.to_string_lossy()
                ))
            }
        };
        out.push(json!({ "name": name.to_string_lossy(), "value": b64.encode(value) }));
    }
    Ok((!out.is_empty()).then_some(Value::Array(out)))
}

/// Set the attributes a node records with `set`, collecting problems in
/// `errors`. The list comes from a repository, so it is untrusted: an entry
/// that is not a name and a base64 value is reported, not applied.
pub(crate) fn restore(
    recorded: Option<&Value>,
    path: &Path,
    mut set: impl FnMut(&str, &[u8]) -> io::Result<()>,
    errors: &mut Vec<String>,
) {
    let Some(recorded) = recorded else { return };
    let Some(entries) = recorded.as_array() else {
        errors.push(format!(
            "{}: extended attributes are not a list",
            path.display()
        ));
        return;
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    for entry in entries {
        let name = entry.get("name").and_then(Value::as_str);
        // Go writes an empty byte slice as null.
        let value = match entry.get("value") {
            None | Some(Value::Null) => Some(Vec::new()),
            Some(v) => v.as_str().and_then(|s| b64.decode(s).ok()),
        };
        let (Some(name), Some(value)) = (name, value) else {
            errors.push(format!(
                "{}: malformed extended attribute entry",
                path.display()
            ));
            continue;
        };
        match set(name, &value) {
            Ok(()) => {}
            Err(e) if unsupported(&e) => return,
            Err(e) => errors.push(format!(
                "{}: set extended attribute {name}: {e}",
                path.display()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_lists_are_reported_and_the_rest_applied() {
        let recorded = json!([
            { "name": "user.a", "value": "eA==" },
            { "name": "user.b", "value": "not base64!" },
            { "value": "eA==" },
            { "name": "user.c", "value": null },
        ]);
        let mut set = Vec::new();
        let mut errors = Vec::new();
        restore(
            Some(&recorded),
            Path::new("/t"),
            |n, v| {
                set.push((n.to_string(), v.to_vec()));
                Ok(())
            },
            &mut errors,
        );
        assert_eq!(
            set,
            [
                ("user.a".to_string(), b"x".to_vec()),
                ("user.c".to_string(), vec![])
            ]
        );
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors.iter().all(|e| e.contains("/t: malformed")),
            "{errors:?}"
        );

        let mut errors = Vec::new();
        restore(
            Some(&json!({"a": 1})),
            Path::new("/t"),
            |_, _| Ok(()),
            &mut errors,
        );
        assert_eq!(errors, ["/t: extended attributes are not a list"]);
    }

    #[test]
    fn read_and_restore_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("f");
        std::fs::write(&f, b"x").unwrap();
        assert_eq!(read(&f, &f).unwrap(), None);
        let value = b"bin\0ary\xff";
        match xattr::set(&f, "user.bulwark", value) {
            Err(e) if unsupported(&e) => return, // no user xattrs here
            r => r.unwrap(),
        }
        let recorded = read(&f, &f).unwrap().unwrap();
        let opened = File::open(&f).unwrap();
        assert_eq!(read_file(&opened, &f).unwrap(), Some(recorded.clone()));
        assert_eq!(
            recorded,
            json!([{ "name": "user.bulwark", "value": b64(value) }])
        );
        let g = tmp.path().join("g");
        std::fs::write(&g, b"y").unwrap();
        let mut errors = Vec::new();
        restore(
            Some(&recorded),
            &g,
            |n, v| xattr::set(&g, n, v),
            &mut errors,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(xattr::get(&g, "user.bulwark").unwrap().unwrap(), value);
    }

    fn b64(v: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(v)
    }
}
