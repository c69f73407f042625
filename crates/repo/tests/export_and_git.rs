//! `export` (tar.gz) and `backup --git`.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use bulwark_repo::{backup, backup_git, export_tar_gz, restore, BackupOptions, RestoreOptions};
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
    let mut repo = memory_repo();
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

fn git_out(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "git {args:?}");
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

#[test]
fn git_backup_holds_exactly_head_and_is_tagged_with_the_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("proj");
    for d in ["src", "bin", "a/b/c", "secret", "d"] {
        fs::create_dir_all(work.join(d)).unwrap();
    }
    fs::write(work.join("src/main.rs"), b"fn main() {}\n").unwrap();
    fs::write(work.join("README"), b"hello\n").unwrap();
    fs::write(work.join(".gitignore"), b"target/\n").unwrap();
    fs::write(work.join("bin/run.sh"), b"#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(work.join("bin/run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(work.join("a/b/c/deep.txt"), b"deep\n").unwrap();
    std::os::unix::fs::symlink("README", work.join("link")).unwrap();
    // git archive leaves out what .gitattributes marks export-ignore; a
    // deeper .gitattributes overrides a shallower one.
    fs::write(
        work.join(".gitattributes"),
        b"secret/ export-ignore\n*.log export-ignore\n",
    )
    .unwrap();
    fs::write(work.join("secret/key"), b"k").unwrap();
    fs::write(work.join("notes.log"), b"log").unwrap();
    fs::write(work.join("d/.gitattributes"), b"keep.log -export-ignore\n").unwrap();
    fs::write(work.join("d/keep.log"), b"kept").unwrap();
    fs::write(work.join("d/drop.log"), b"dropped").unwrap();
    run(&work, &["init", "-q"]);
    run(&work, &["add", "."]);
    // A submodule: git archive writes an empty directory for it.
    run(
        &work,
        &[
            "update-index",
            "--add",
            "--cacheinfo",
            "160000,1234567890123456789012345678901234567890,sub",
        ],
    );
    run(&work, &["commit", "-q", "-m", "first"]);
    // Not in HEAD: an ignored build dir, an untracked file, an uncommitted
    // edit and an uncommitted mode change.
    fs::create_dir_all(work.join("target")).unwrap();
    fs::write(work.join("target/big"), b"build output").unwrap();
    fs::write(work.join("untracked"), b"u").unwrap();
    fs::write(work.join("README"), b"edited\n").unwrap();
    fs::set_permissions(work.join("src/main.rs"), fs::Permissions::from_mode(0o755)).unwrap();

    let repo_path = tmp.path().join("repo");
    let mut repo = init_repo(&repo_path);
    let s = backup_git(&mut repo, &work, &BackupOptions::default(), |_| {}).unwrap();
    let commit = git_out(&work, &["rev-parse", "HEAD"]);
    let (_, snap) = repo.find_snapshot(&s.snapshot_id.to_hex()).unwrap();
    assert_eq!(snap.tags, vec![commit.clone()]);
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

    // The oracle: what `git archive HEAD` holds, unpacked keeping modes
    // and times. It has no entry for the root, which we give the commit
    // time and git archive's directory mode.
    let oracle = tmp.path().join("oracle");
    fs::create_dir_all(&oracle).unwrap();
    let st = Command::new("sh")
        .arg("-c")
        .arg("git -C \"$1\" archive HEAD | tar -xpf - -C \"$2\"")
        .arg("sh")
        .arg(&work)
        .arg(&oracle)
        .status()
        .unwrap();
    assert!(st.success());
    let commit_time: i64 = git_out(&work, &["show", "-s", "--format=%ct", "HEAD"])
        .parse()
        .unwrap();
    fs::set_permissions(&oracle, fs::Permissions::from_mode(0o775)).unwrap();
    let ct = filetime::FileTime::from_unix_time(commit_time, 0);
    filetime::set_file_times(&oracle, ct, ct).unwrap();
    assert_same_content(&oracle, &got);

    // The same, spelled out, so a wrong oracle cannot hide a mistake.
    assert_eq!(fs::read(got.join("README")).unwrap(), b"hello\n");
    assert_eq!(
        fs::read(got.join("src/main.rs")).unwrap(),
        b"fn main() {}\n"
    );
    let mode = |p: &str| fs::symlink_metadata(got.join(p)).unwrap().mode() & 0o777;
    assert_eq!(mode("src/main.rs"), 0o664);
    assert_eq!(mode("bin/run.sh"), 0o775);
    assert_eq!(
        fs::read_link(got.join("link")).unwrap(),
        Path::new("README")
    );
    assert_eq!(fs::read(got.join("a/b/c/deep.txt")).unwrap(), b"deep\n");
    assert_eq!(fs::read_dir(got.join("sub")).unwrap().count(), 0);
    assert_eq!(fs::read(got.join("d/keep.log")).unwrap(), b"kept");
    assert!(got.join(".gitignore").exists() && got.join(".gitattributes").exists());
    assert_eq!(fs::metadata(got.join("a/b")).unwrap().mtime(), commit_time);
    for absent in [
        "target",
        "untracked",
        ".git",
        "secret",
        "notes.log",
        "d/drop.log",
    ] {
        assert!(
            fs::symlink_metadata(got.join(absent)).is_err(),
            "{absent} should not be in the snapshot"
        );
    }
    // The same commit again adds nothing new (same content, same times).
    let again = backup_git(&mut repo, &work, &BackupOptions::default(), |_| {}).unwrap();
    assert_eq!(again.data_blobs_added, 0);

    // A detached HEAD is fine: the snapshot is of the commit it names.
    run(&work, &["commit", "-q", "-a", "-m", "second"]);
    run(&work, &["checkout", "-q", "--detach", "HEAD~1"]);
    let detached = backup_git(&mut repo, &work, &BackupOptions::default(), |_| {}).unwrap();
    let (_, snap) = repo.find_snapshot(&detached.snapshot_id.to_hex()).unwrap();
    assert_eq!(snap.tags, vec![commit]);
    restic_ok(&repo_path, &["check", "--read-data"]);
}

#[test]
fn copy_moves_snapshots_to_another_repository_restic_can_read() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    make_tree(&src, 12);
    let mut a = memory_repo();
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
    let mut b = init_repo(&dst_path);
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
    let restored = restic_restore_latest(&dst_path, &tmp.path().join("t"), &src);
    assert_same_tree(&src, &restored);
}
