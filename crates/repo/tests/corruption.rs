//! Damage in the repository is found, named, and contained.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use bulwark_repo::{
    backup, check, restore, BackupOptions, BlobType, Cancel, Id, ReadData, RestoreOptions,
};
use common::*;

fn flip_byte(path: &std::path::Path, offset: u64) {
    let mut perm = fs::metadata(path).unwrap().permissions();
    perm.set_mode(0o644);
    fs::set_permissions(path, perm).unwrap();
    let mut data = fs::read(path).unwrap();
    data[offset as usize] ^= 0x40;
    fs::write(path, data).unwrap();
}

#[test]
fn flipped_byte_in_pack_names_pack_and_snapshot_and_spares_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("old")).unwrap();
    fs::write(
        src.join("old/keep.txt"),
        b"unaffected content\n".repeat(100),
    )
    .unwrap();
    let repo_path = tmp.path().join("repo");
    let mut repo = init_repo(&repo_path);
    let opts = BackupOptions {
        paths: vec![src.clone()],
        ..Default::default()
    };
    let first = backup(&mut repo, &opts, |_| {}).unwrap();

    let victim = b"this file's pack gets damaged\n".repeat(50);
    fs::write(src.join("victim.txt"), &victim).unwrap();
    let second = backup(&mut repo, &opts, |_| {}).unwrap();

    // The pack holding the victim's only blob, and a byte inside that blob.
    let entry = *repo.lookup(BlobType::Data, &Id::hash(&victim)).unwrap();
    let pack_path = repo_path
        .join("data")
        .join(&entry.pack.to_hex()[..2])
        .join(entry.pack.to_hex());
    flip_byte(&pack_path, entry.blob.offset as u64 + 20);

    // Structure alone looks fine: the pack is there, with the right size.
    let structural = check(&mut repo, ReadData::None, &Cancel::default(), |_, _| {}).unwrap();
    assert!(structural.is_ok(), "{:?}", structural.errors);

    let report = check(&mut repo, ReadData::All, &Cancel::default(), |_, _| {}).unwrap();
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    let e = &report.errors[0];
    assert_eq!(e.pack, Some(entry.pack));
    assert!(e.message.contains(&entry.pack.to_hex()), "{}", e.message);
    assert_eq!(e.snapshots, vec![second.snapshot_id]);

    // restic agrees that the repository is damaged.
    let o = restic(&repo_path, &["check", "--read-data"]);
    assert!(!o.status.success());

    // The first snapshot restores completely.
    let t1 = tmp.path().join("t1");
    let r = restore(
        &repo,
        &first.snapshot_id.to_hex()[..8],
        &RestoreOptions {
            target: t1.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(
        fs::read(restored_path(&t1, &src).join("old/keep.txt")).unwrap(),
        b"unaffected content\n".repeat(100)
    );

    // The second restores everything but the damaged file, and says so.
    let t2 = tmp.path().join("t2");
    let r = restore(
        &repo,
        "latest",
        &RestoreOptions {
            target: t2.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    assert!(r.errors[0].contains("victim.txt"), "{:?}", r.errors);
    assert_eq!(
        fs::read(restored_path(&t2, &src).join("old/keep.txt")).unwrap(),
        b"unaffected content\n".repeat(100)
    );
}

#[test]
fn damaged_metadata_files_are_reported_not_fatal() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), b"x").unwrap();
    let repo_path = tmp.path().join("repo");
    let mut repo = init_repo(&repo_path);
    let s = backup(
        &mut repo,
        &BackupOptions {
            paths: vec![src.clone()],
            ..Default::default()
        },
        |_| {},
    )
    .unwrap();
    // Flip a byte of the snapshot file: its name no longer matches its hash.
    let sp = repo_path.join("snapshots").join(s.snapshot_id.to_hex());
    flip_byte(&sp, 0);
    let report = check(&mut repo, ReadData::All, &Cancel::default(), |_, _| {}).unwrap();
    assert!(!report.is_ok());
    assert!(
        report.errors[0].message.contains(&s.snapshot_id.to_hex()),
        "{:?}",
        report.errors
    );
    // One damaged snapshot file neither blocks new backups nor hides the
    // other snapshots.
    let opts = BackupOptions {
        paths: vec![src.clone()],
        ..Default::default()
    };
    let s2 = backup(&mut repo, &opts, |_| {}).unwrap();
    let listed = repo.load_snapshots().unwrap();
    assert_eq!(listed.snapshots.len(), 1);
    assert_eq!(listed.broken.len(), 1);
    assert!(repo.snapshots().is_err());
    let t = tmp.path().join("t");
    let r = restore(
        &repo,
        "latest",
        &RestoreOptions {
            target: t.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.snapshot_id, s2.snapshot_id);
}

#[test]
fn read_data_subset_reads_a_sample() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    make_tree(&src, 9);
    let mut repo = memory_repo();
    backup(
        &mut repo,
        &BackupOptions {
            paths: vec![src],
            ..Default::default()
        },
        |_| {},
    )
    .unwrap();
    let all = check(&mut repo, ReadData::All, &Cancel::default(), |_, _| {}).unwrap();
    let some = check(
        &mut repo,
        ReadData::Subset(1.0),
        &Cancel::default(),
        |_, _| {},
    )
    .unwrap();
    assert!(all.is_ok() && some.is_ok());
    assert!(all.packs_read >= 2, "{all:?}");
    assert_eq!(some.packs_read, 1);
    // restic's n/t groups partition the packs.
    let mut total = 0;
    for n in 1..=3 {
        let g = check(
            &mut repo,
            ReadData::Group(n, 3),
            &Cancel::default(),
            |_, _| {},
        )
        .unwrap();
        assert!(g.is_ok());
        total += g.packs_read;
    }
    assert_eq!(total, all.packs_read);
    assert!(check(
        &mut repo,
        ReadData::Group(4, 3),
        &Cancel::default(),
        |_, _| {}
    )
    .is_err());
}
