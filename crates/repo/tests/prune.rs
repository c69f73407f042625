//! `forget` + `prune` free space and leave a repository restic accepts.

mod common;

use std::fs;

use bulwark_repo::{
    backup, check, forget, prune, restore, BackupOptions, Cancel, ReadData, RestoreOptions,
    RetentionPolicy,
};
use common::*;

fn dir_size(p: &std::path::Path) -> u64 {
    let mut n = 0;
    for e in fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        let md = e.metadata().unwrap();
        n += if md.is_dir() {
            dir_size(&e.path())
        } else {
            md.len()
        };
    }
    n
}

#[test]
fn prune_removes_forgotten_data_and_repacks_partly_used_packs() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    make_tree(&src, 5);
    let repo_path = tmp.path().join("repo");
    let mut repo = init_repo(&repo_path);
    let opts = BackupOptions {
        paths: vec![src.clone()],
        ..Default::default()
    };
    backup(&mut repo, &opts, |_| {}).unwrap();
    // Drop the big random file (its own packs become unused) and one small
    // file (its pack shares space with files still in use: repacked).
    fs::remove_file(src.join("big/nine_mib.bin")).unwrap();
    fs::remove_file(src.join("a/small.bin")).unwrap();
    let second = backup(&mut repo, &opts, |_| {}).unwrap();
    let before = dir_size(&repo_path.join("data"));

    // Nothing is forgotten yet: prune finds nothing to delete.
    let dry = prune(&mut repo, true, &Cancel::default()).unwrap();
    assert_eq!(dry.packs_deleted + dry.packs_repacked, 0, "{dry:?}");

    forget(
        &repo,
        &RetentionPolicy {
            last: 1,
            ..Default::default()
        },
        false,
    )
    .unwrap();
    let s = prune(&mut repo, false, &Cancel::default()).unwrap();
    // Packs hold up to 16 MiB, so the dropped files share packs with kept
    // ones: those packs are repacked.
    assert!(s.packs_repacked >= 1 && s.blobs_unused >= 2, "{s:?}");
    let after = dir_size(&repo_path.join("data"));
    assert!(
        after + 9 * 1024 * 1024 < before,
        "before {before}, after {after}"
    );

    let report = check(&mut repo, ReadData::All, &Cancel::default(), |_, _| {}).unwrap();
    assert!(report.is_ok() && report.warnings.is_empty(), "{report:?}");
    restic_ok(&repo_path, &["check", "--read-data"]);

    let target = tmp.path().join("t");
    let r = restore(
        &repo,
        &second.snapshot_id.to_hex(),
        &RestoreOptions {
            target: target.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_same_tree(&src, &restored_path(&target, &src));

    // A second prune has nothing left to do.
    let again = prune(&mut repo, false, &Cancel::default()).unwrap();
    assert_eq!(
        (
            again.packs_deleted,
            again.packs_repacked,
            again.blobs_unused
        ),
        (0, 0, 0),
        "{again:?}"
    );
}

#[test]
fn prune_deletes_packs_nothing_uses() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    fs::create_dir_all(&a).unwrap();
    fs::create_dir_all(&b).unwrap();
    let mut noise = vec![0u8; 40 * 1024 * 1024];
    rand::Rng::fill(&mut rand::thread_rng(), &mut noise[..]);
    fs::write(a.join("noise"), &noise).unwrap();
    fs::write(b.join("keep"), b"keep me").unwrap();
    let mut repo = memory_repo();
    backup(
        &mut repo,
        &BackupOptions {
            paths: vec![a],
            ..Default::default()
        },
        |_| {},
    )
    .unwrap();
    let opts = BackupOptions {
        paths: vec![b.clone()],
        tags: vec!["keep".into()],
        ..Default::default()
    };
    backup(&mut repo, &opts, |_| {}).unwrap();
    forget(
        &repo,
        &RetentionPolicy {
            tags: vec!["keep".into()],
            ..Default::default()
        },
        false,
    )
    .unwrap();
    let s = prune(&mut repo, false, &Cancel::default()).unwrap();
    assert!(
        s.packs_deleted >= 1 && s.bytes_removed > 40 * 1024 * 1024,
        "{s:?}"
    );
    let report = check(&mut repo, ReadData::All, &Cancel::default(), |_, _| {}).unwrap();
    assert!(report.is_ok() && report.warnings.is_empty(), "{report:?}");
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
    assert_eq!(
        fs::read(restored_path(&t, &b).join("keep")).unwrap(),
        b"keep me"
    );
}

#[test]
fn prune_removes_torn_temporary_files() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), b"content ".repeat(1000)).unwrap();
    let repo_path = tmp.path().join("repo");
    let mut repo = init_repo(&repo_path);
    let opts = BackupOptions {
        paths: vec![src.clone()],
        ..Default::default()
    };
    backup(&mut repo, &opts, |_| {}).unwrap();
    // What a crash in the middle of writing a pack and an index leaves.
    let torn = [
        repo_path.join(format!("data/5e/.{}-tmp-0a1b2c3d", "5e".repeat(32))),
        repo_path.join(format!("index/.{}-tmp-99887766", "7f".repeat(32))),
    ];
    fs::write(&torn[0], vec![7u8; 4096]).unwrap();
    fs::write(&torn[1], b"{\"packs\":[").unwrap();

    let dry = prune(&mut repo, true, &Cancel::default()).unwrap();
    assert_eq!(
        (dry.temp_files_removed, dry.temp_bytes_removed),
        (2, 4096 + 10),
        "{dry:?}"
    );
    assert!(torn.iter().all(|t| t.exists()), "a dry run removed files");
    let s = prune(&mut repo, false, &Cancel::default()).unwrap();
    assert_eq!((s.temp_files_removed, s.temp_bytes_removed), (2, 4096 + 10));
    for t in &torn {
        assert!(!t.exists(), "{} is still there", t.display());
    }
    let again = prune(&mut repo, false, &Cancel::default()).unwrap();
    assert_eq!(again.temp_files_removed, 0);
    restic_ok(&repo_path, &["check", "--read-data"]);
    let report = check(&mut repo, ReadData::All, &Cancel::default(), |_, _| {}).unwrap();
    assert!(report.is_ok() && report.warnings.is_empty(), "{report:?}");
}
