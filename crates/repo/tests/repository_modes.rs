//! A local repository is readable by its owner only, whatever the umask of
//! the process that wrote it: anyone who can copy a key file can attack
//! the password offline.
//!
//! The umask is per process, so the repository is written by a child (this
//! test binary, re-executed under `sh -c 'umask ...'` with `CHILD_ENV`
//! set); the parent then checks every mode.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use bulwark_repo::{backup, BackupOptions, KdfParams};
use common::*;

/// Set in the child: the directory to work in.
const CHILD_ENV: &str = "BULWARK_REPO_MODES_CHILD";
const TEST: &str = "repository_is_private_to_its_owner_whatever_the_umask";

/// The child: a repository with every kind of file (config, two keys,
/// packs, an index, a snapshot; a lock while the backup runs).
fn run_child(dir: &Path) {
    fs::create_dir_all(dir.join("src/sub")).unwrap();
    fs::write(dir.join("src/sub/f"), b"content\n").unwrap();
    let mut repo = init_repo(&dir.join("repo"));
    repo.add_key(b"second", KdfParams::INSECURE_FAST).unwrap();
    let opts = BackupOptions {
        paths: vec![dir.join("src")],
        ..Default::default()
    };
    backup(&mut repo, &opts, |_| {}).unwrap();
}

/// Every (path, mode) below `dir`, directories included.
fn modes(dir: &Path, out: &mut Vec<(PathBuf, bool, u32)>) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let md = fs::symlink_metadata(e.path()).unwrap();
        out.push((e.path(), md.is_dir(), md.permissions().mode() & 0o7777));
        if md.is_dir() {
            modes(&e.path(), out);
        }
    }
}

#[test]
fn repository_is_private_to_its_owner_whatever_the_umask() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        return run_child(Path::new(&dir));
    }
    for umask in ["022", "002", "000"] {
        let tmp = tempfile::tempdir().unwrap();
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
            .arg(std::env::current_exe().unwrap())
            .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, tmp.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "umask {umask}: child failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let repo = tmp.path().join("repo");
        let mut all = Vec::new();
        modes(&repo, &mut all);
        let files: Vec<_> = all.iter().filter(|e| !e.1).collect();
        // config, 2 keys, a data and a tree pack, an index, a snapshot.
        assert!(files.len() >= 7, "umask {umask}: {files:?}");
        let root = fs::metadata(&repo).unwrap().permissions().mode() & 0o7777;
        assert_eq!(root, 0o700, "umask {umask}: {}", repo.display());
        for (path, is_dir, mode) in &all {
            // restic's modes: directories 0700, files 0600 while written
            // and read-only (0400) once complete.
            let want = if *is_dir { 0o700 } else { 0o400 };
            assert_eq!(*mode, want, "umask {umask}: {:o} {}", mode, path.display());
        }
    }
}
