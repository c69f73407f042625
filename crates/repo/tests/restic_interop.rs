//! Interoperability with restic itself, the format oracle: restic must read
//! what we write, and we must read what restic writes.

mod common;

use std::fs;

use bulwark_repo::{
    backup, check, open_backend, restore, BackupOptions, Cancel, ReadData, Repository,
    RestoreOptions,
};
use common::*;

fn open(repo: &std::path::Path) -> Repository {
    let mut r = Repository::open(
        open_backend(repo.to_str().unwrap()).unwrap(),
        PASSWORD.as_bytes(),
    )
    .unwrap();
    r.load_index().unwrap();
    r
}

#[test]
fn restic_reads_our_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    make_tree(&src, 1);
    let repo_path = tmp.path().join("repo");
    let mut repo = init_repo(&repo_path);
    repo.load_index().unwrap();
    let opts = BackupOptions {
        paths: vec![src.clone()],
        tags: vec!["t1".into()],
        ..Default::default()
    };
    let s = backup(&mut repo, &opts, |_| {}).unwrap();
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    assert_eq!(s.files_new, TREE_FILES);
    assert!(s.data_blobs_added >= 10, "{s:?}");

    let check_out = restic_ok(&repo_path, &["check", "--read-data"]);
    assert!(check_out.contains("no errors were found"), "{check_out}");
    let snaps = restic_ok(&repo_path, &["snapshots", "--json"]);
    assert!(snaps.contains(&s.snapshot_id.to_hex()), "{snaps}");
    assert!(snaps.contains("\"t1\""), "{snaps}");

    let r_root = restic_restore_latest(&repo_path, &tmp.path().join("restored"), &src);
    assert_same_tree(&src, &r_root);
    assert!(
        same_inode(&r_root.join("tiny.txt"), &r_root.join("a/hardlink_to_tiny")),
        "hard link not restored"
    );

    // Our own check agrees, and so does our restore.
    let report = check(&mut repo, ReadData::All, &Cancel::default(), |_, _| {}).unwrap();
    assert!(report.is_ok(), "{:?}", report.errors);
    let ours = tmp.path().join("ours");
    let r = restore(
        &repo,
        "latest",
        &RestoreOptions {
            target: ours.clone(),
            verify: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.verified, TREE_FILES);
    assert_same_tree(&src, &restored_path(&ours, &src));
    let r_root = restored_path(&ours, &src);
    assert!(
        same_inode(&r_root.join("tiny.txt"), &r_root.join("a/hardlink_to_tiny")),
        "hard link not restored"
    );
}

#[test]
fn incremental_backup_reuses_unchanged_files_and_restic_agrees() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    make_tree(&src, 2);
    let repo_path = tmp.path().join("repo");
    let mut repo = init_repo(&repo_path);
    let opts = BackupOptions {
        paths: vec![src.clone()],
        ..Default::default()
    };
    let first = backup(&mut repo, &opts, |_| {}).unwrap();
    fs::write(src.join("a/small.bin"), b"changed").unwrap();
    fs::write(src.join("new.txt"), b"new file").unwrap();
    // A new attribute changes only ctime: the file is read again (same
    // content, no new blob) and the snapshot holds the attribute, while
    // untouched entries keep theirs from the parent.
    let xattrs_here = xattr::set(src.join("a/b/c/deep.txt"), "user.new", b"1").is_ok();
    let second = backup(&mut repo, &opts, |_| {}).unwrap();
    assert_eq!(second.parent, Some(first.snapshot_id));
    let touched = 1 + u64::from(xattrs_here);
    assert_eq!(
        (
            second.files_new,
            second.files_changed,
            second.files_unmodified
        ),
        (1, touched, TREE_FILES - touched)
    );
    assert_eq!(second.data_blobs_added, 2);
    restic_ok(&repo_path, &["check", "--read-data"]);
    let r_root = restic_restore_latest(&repo_path, &tmp.path().join("restored"), &src);
    assert_same_tree(&src, &r_root);
    assert!(
        same_inode(&r_root.join("tiny.txt"), &r_root.join("a/hardlink_to_tiny")),
        "hard link not restored"
    );
}

/// More files than the walk may run ahead of the file readers, in many
/// directories, so that directories wait in the walk's queue for their
/// files: restic reads the result byte for byte, and the snapshot's tree
/// does not depend on which reader finished first.
#[test]
fn wide_tree_read_in_parallel_is_exact_and_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    make_tree(&src.join("mixed"), 4);
    let mut files = 0u64;
    for d in 0..40usize {
        let dir = src.join(format!("d{d:02}/sub"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..25 {
            // Small files of all sizes from empty, and one per directory
            // past the minimum chunk, which the small ones overtake.
            let len = if f == 7 {
                520 * 1024 + d * 1000
            } else {
                (d * 25 + f) * 37 % 5000
            };
            let body: Vec<u8> = (0..len).map(|i| (i * 31 + d * 7 + f) as u8).collect();
            fs::write(dir.join(format!("f{f:02}")), body).unwrap();
            files += 1;
        }
    }
    let repo_path = tmp.path().join("repo");
    let mut repo = init_repo(&repo_path);
    let mut opts = BackupOptions {
        paths: vec![src.clone()],
        ..Default::default()
    };
    let mut last_files = 0;
    let first = backup(&mut repo, &opts, |p| last_files = p.files).unwrap();
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    assert_eq!(first.files_new, files + TREE_FILES);
    assert_eq!(last_files, first.files_new, "progress saw every file");

    // Read everything again: the same entries in the same order with the
    // same content (reading changed only access times).
    opts.force = true;
    let again = backup(&mut repo, &opts, |_| {}).unwrap();
    assert_eq!(again.files_new, first.files_new);
    assert_eq!(again.data_blobs_added, 0, "{again:?}");
    let listing = |snapshot| {
        let mut out = Vec::new();
        let mut dirs = vec![(String::new(), repo.load_snapshot(&snapshot).unwrap().tree)];
        while let Some((path, tree)) = dirs.pop() {
            for n in repo.load_tree(&tree).unwrap().nodes {
                let p = format!("{path}/{}", n.name);
                if let Some(sub) = n.subtree {
                    dirs.push((p.clone(), sub));
                }
                out.push((p, n.node_type, n.size, n.mtime, n.content));
            }
        }
        // The directories above `src` (`/tmp` ...) change as other tests
        // create their own directories: only what is below is compared.
        let below = src.to_str().unwrap();
        out.retain(|e| e.0.starts_with(below));
        out
    };
    let entries = listing(first.snapshot_id);
    assert!(
        entries.len() as u64 > files + TREE_FILES,
        "{}",
        entries.len()
    );
    assert_eq!(listing(again.snapshot_id), entries);

    restic_ok(&repo_path, &["check", "--read-data"]);
    let restored = restic_restore_latest(&repo_path, &tmp.path().join("restored"), &src);
    assert_same_tree(&src, &restored);
}

#[test]
fn we_restore_restic_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    make_tree(&src, 3);
    let repo_path = tmp.path().join("repo");
    restic_ok(&repo_path, &["init", "--repository-version", "2"]);
    restic_ok(&repo_path, &["backup", src.to_str().unwrap()]);

    let mut repo = open(&repo_path);
    assert_eq!(repo.version(), 2);
    let target = tmp.path().join("restored");
    let r = restore(
        &repo,
        "latest",
        &RestoreOptions {
            target: target.clone(),
            verify: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_same_tree(&src, &restored_path(&target, &src));
    let r_root = restored_path(&target, &src);
    assert!(
        same_inode(&r_root.join("tiny.txt"), &r_root.join("a/hardlink_to_tiny")),
        "hard link not restored"
    );

    let report = check(&mut repo, ReadData::All, &Cancel::default(), |_, _| {}).unwrap();
    assert!(report.is_ok(), "{:?}", report.errors);
    assert!(report.packs_read >= 2);
}

/// Same polynomial, same boundaries: backing up what restic already stored
/// adds no data blob, which proves our chunker cuts where restic's does.
#[test]
fn our_chunker_deduplicates_against_restic_data() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    make_tree(&src, 4);
    let repo_path = tmp.path().join("repo");
    restic_ok(&repo_path, &["init", "--repository-version", "2"]);
    restic_ok(&repo_path, &["backup", src.to_str().unwrap()]);

    let mut repo = open(&repo_path);
    let s = backup(
        &mut repo,
        &BackupOptions {
            paths: vec![src.clone()],
            force: true,
            ..Default::default()
        },
        |_| {},
    )
    .unwrap();
    assert_eq!(s.data_blobs_added, 0, "{s:?}");
    assert_eq!(s.files_new, TREE_FILES);
    // And restic is happy with the mixed repository.
    restic_ok(&repo_path, &["check", "--read-data"]);
}

#[test]
fn wrong_password_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_path = tmp.path().join("repo");
    restic_ok(&repo_path, &["init", "--repository-version", "2"]);
    let e =
        Repository::open(open_backend(repo_path.to_str().unwrap()).unwrap(), b"nope").unwrap_err();
    assert!(matches!(e, bulwark_repo::Error::WrongPassword), "{e}");
}
