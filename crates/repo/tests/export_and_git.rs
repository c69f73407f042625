//! `export` (tar.gz) and `backup --git`.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use bulwark_repo::{
    backup, backup_git, export_tar_gz, open_backend, restore, BackupOptions, KdfParams,
    MemoryBackend, Repository, RestoreOptions,
};
use common::*;

/// Same names, types, content, permission bits, symlink targets and mtime
/// seconds (tar keeps whole seconds).
fn assert_same_content(e: &Path, a: &Path) {
    let (me, ma) = (
        fs::symlink_metadata(e).unwrap(),
        fs::symlink_metadata(a).unwrap(),
    );
    assert_eq!(me.file_type(), ma.file_type(), "{}", a.display());
    if me.is_symlink() {
        assert_eq!(
            fs::read_link(e).unwrap(),
            fs::read_link(a).unwrap(),
            "{}",
            a.display()
        );
        return;
    }
    assert_eq!(me.mode() & 0o7777, ma.mode() & 0o7777, "{}", a.display());
    assert_eq!(me.mtime(), ma.mtime(), "{}", a.display());
    if me.is_file() {
        assert!(
            fs::read(e).unwrap() == fs::read(a).unwrap(),
            "{} content",
            a.display()
        );
    } else {
        let names = |d: &Path| {
            let mut v: Vec<_> = fs::read_dir(d)
                .unwrap()
                .map(|x| x.unwrap().file_name())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names(e), names(a), "{}", a.display());
        for n in names(e) {
            assert_same_content(&e.join(&n), &a.join(&n));
        }
    }
}

#[test]
fn export_writes_a_tar_gz_of_the_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    make_tree(&src, 11);
    let mut repo = Repository::init(
        Box::new(MemoryBackend::new()),
        b"pw",
        KdfParams::INSECURE_FAST,
    )
    .unwrap();
    backup(
        &mut repo,
        &BackupOptions {
            paths: vec![src.clone()],
            ..Default::default()
        },
        |_| {},
    )
    .unwrap();
    let out = tmp.path().join("snap.tar.gz");
    let s = export_tar_gz(&repo, "latest", fs::File::create(&out).unwrap()).unwrap();
    assert!(s.bytes > 20 * 1024 * 1024, "{s:?}");
    let x = tmp.path().join("x");
    fs::create_dir_all(&x).unwrap();
    let st = Command::new("tar")
        .arg("-xzpf")
        .arg(&out)
        .arg("-C")
        .arg(&x)
        .status()
        .unwrap();
    assert!(st.success());
    assert_same_content(&src, &restored_path(&x, &src));
}

fn run(dir: &Path, args: &[&str]) {
    let o = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .expect("git is needed for backup --git");
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn git_backup_holds_exactly_head_and_is_tagged_with_the_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("proj");
    fs::create_dir_all(work.join("src")).unwrap();
    fs::write(work.join("src/main.rs"), b"fn main() {}\n").unwrap();
    fs::write(work.join("README"), b"hello\n").unwrap();
    fs::write(work.join(".gitignore"), b"target/\n").unwrap();
    run(&work, &["init", "-q"]);
    run(&work, &["add", "."]);
    run(&work, &["commit", "-q", "-m", "first"]);
    // Not in HEAD: an ignored build dir, an untracked file, an uncommitted edit.
    fs::create_dir_all(work.join("target")).unwrap();
    fs::write(work.join("target/big"), b"build output").unwrap();
    fs::write(work.join("untracked"), b"u").unwrap();
    fs::write(work.join("README"), b"edited\n").unwrap();

    let repo_path = tmp.path().join("repo");
    let mut repo = Repository::init(
        open_backend(repo_path.to_str().unwrap()).unwrap(),
        PASSWORD.as_bytes(),
        KdfParams::INSECURE_FAST,
    )
    .unwrap();
    let s = backup_git(&mut repo, &work, &BackupOptions::default(), |_| {}).unwrap();
    let commit = String::from_utf8(
        Command::new("git")
            .arg("-C")
            .arg(&work)
            .args(["rev-parse", "HEAD"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    let (_, snap) = repo.find_snapshot(&s.snapshot_id.to_hex()).unwrap();
    assert_eq!(snap.tags, vec![commit]);
    assert_eq!(snap.paths, vec![work.to_string_lossy().to_string()]);

    let t = tmp.path().join("t");
    restore(
        &repo,
        "latest",
        &RestoreOptions {
            target: t.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    let got = restored_path(&t, &work);
    assert_eq!(fs::read(got.join("README")).unwrap(), b"hello\n");
    assert_eq!(
        fs::read(got.join("src/main.rs")).unwrap(),
        b"fn main() {}\n"
    );
    assert!(got.join(".gitignore").exists());
    for absent in ["target", "untracked", ".git"] {
        assert!(
            !got.join(absent).exists(),
            "{absent} should not be in the snapshot"
        );
    }
    // The same commit again adds nothing new (same content, same times).
    let again = backup_git(&mut repo, &work, &BackupOptions::default(), |_| {}).unwrap();
    assert_eq!(again.data_blobs_added, 0);
    restic_ok(&repo_path, &["check", "--read-data"]);
}

#[test]
fn copy_moves_snapshots_to_another_repository_restic_can_read() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    make_tree(&src, 12);
    let mut a = Repository::init(
        Box::new(MemoryBackend::new()),
        b"pw",
        KdfParams::INSECURE_FAST,
    )
    .unwrap();
    let s = backup(
        &mut a,
        &BackupOptions {
            paths: vec![src.clone()],
            ..Default::default()
        },
        |_| {},
    )
    .unwrap();
    let dst_path = tmp.path().join("dst");
    let mut b = Repository::init(
        open_backend(dst_path.to_str().unwrap()).unwrap(),
        PASSWORD.as_bytes(),
        KdfParams::INSECURE_FAST,
    )
    .unwrap();
    let c = bulwark_repo::copy_snapshots(&a, &mut b, &[]).unwrap();
    assert_eq!(c.copied.len(), 1);
    assert_eq!(c.copied[0].0, s.snapshot_id);
    // Idempotent.
    let again = bulwark_repo::copy_snapshots(&a, &mut b, &[]).unwrap();
    assert_eq!(
        (again.copied.len(), again.skipped.len(), again.blobs),
        (0, 1, 0)
    );
    restic_ok(&dst_path, &["check", "--read-data"]);
    let t = tmp.path().join("t");
    restic_ok(
        &dst_path,
        &["restore", "latest", "--target", t.to_str().unwrap()],
    );
    assert_same_tree(&src, &restored_path(&t, &src));
}
