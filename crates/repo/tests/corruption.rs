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

/// Damage to a pack's bytes that `check --read-data` must find while the
/// pack streams past it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Damage {
    /// The last 5 bytes gone, the listing still promising them.
    Truncated,
    /// One byte flipped inside a blob.
    FlippedInBlob,
    /// One byte flipped inside the encrypted header.
    GarbageHeader,
    /// The header length field overwritten.
    GarbageLength,
}

fn damage_pack(damage: Damage, data: &mut Vec<u8>, blob_offset: u32) {
    let n = data.len();
    match damage {
        Damage::Truncated => data.truncate(n - 5),
        Damage::FlippedInBlob => data[blob_offset as usize + 20] ^= 0x40,
        Damage::GarbageHeader => data[n - 10] ^= 0x40,
        Damage::GarbageLength => data[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes()),
    }
}

/// Each damage, on a local and on a memory backend, is reported as one
/// error naming the pack, the snapshot it breaks and what is wrong (the
/// words a whole-pack read gave), and every blob that is sound is still
/// verified; the undamaged copy checks clean.
#[test]
fn damaged_packs_are_reported_as_they_stream_from_local_and_memory_backends() {
    use bulwark_repo::{open_backend, Backend, FileType, MemoryBackend, Repository};
    use std::collections::HashMap;

    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let contents: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            format!("file {i} of the pack under test\n")
                .repeat(600)
                .into_bytes()
        })
        .collect();
    for (i, c) in contents.iter().enumerate() {
        fs::write(src.join(format!("f{i}")), c).unwrap();
    }
    let pristine = tmp.path().join("pristine");
    let mut repo = init_repo(&pristine);
    let snapshot = backup(
        &mut repo,
        &BackupOptions {
            paths: vec![src.clone()],
            ..Default::default()
        },
        |_| {},
    )
    .unwrap()
    .snapshot_id;
    let entries: Vec<_> = contents
        .iter()
        .map(|c| *repo.lookup(BlobType::Data, &Id::hash(c)).unwrap())
        .collect();
    let victim = entries[1];
    let pid = victim.pack;
    assert!(entries.iter().all(|e| e.pack == pid), "one data pack");
    let name = pid.to_hex();
    let size = repo.backend().stat(FileType::Pack, &name).unwrap();
    let healthy = check(&mut repo, ReadData::All, &Cancel::default(), |_, _| {}).unwrap();
    assert!(healthy.is_ok(), "{:?}", healthy.errors);
    let all_blobs = healthy.blobs_read;
    drop(repo);

    let cases: [(Option<Damage>, Vec<String>, u64); 5] = [
        (None, vec![], all_blobs),
        (
            Some(Damage::Truncated),
            vec![format!("{} of {size} bytes", size - 5)],
            all_blobs - 3,
        ),
        (
            Some(Damage::FlippedInBlob),
            vec![
                format!("pack {pid}: content hash is "),
                format!("pack {pid}: blob {}: authentication failed", victim.blob.id),
            ],
            all_blobs - 1,
        ),
        (
            Some(Damage::GarbageHeader),
            vec![
                format!("pack {pid}: content hash is "),
                format!("pack {pid}: header: authentication failed for pack {pid} header"),
            ],
            all_blobs,
        ),
        (
            Some(Damage::GarbageLength),
            vec![
                format!("pack {pid}: content hash is "),
                format!("pack {pid}: header: invalid pack {pid}: header length 4294967295 invalid for pack size {size}"),
            ],
            all_blobs,
        ),
    ];
    for on_disk in [true, false] {
        for (i, (damage, want, verified)) in cases.iter().enumerate() {
            let inner: Box<dyn Backend> = if on_disk {
                let dir = tmp.path().join(format!("case{i}"));
                copy_dir(&pristine, &dir);
                if let Some(d) = damage {
                    let path = dir.join("data").join(&name[..2]).join(&name);
                    let mut data = fs::read(&path).unwrap();
                    damage_pack(*d, &mut data, victim.blob.offset);
                    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
                    fs::write(&path, data).unwrap();
                }
                open_backend(dir.to_str().unwrap()).unwrap()
            } else {
                let mem: MemoryBackend =
                    copy_to_memory(&*open_backend(pristine.to_str().unwrap()).unwrap());
                if let Some(d) = damage {
                    mem.corrupt(FileType::Pack, &name, |data| {
                        damage_pack(*d, data, victim.blob.offset)
                    })
                    .unwrap();
                }
                Box::new(mem)
            };
            let extra = match damage {
                Some(Damage::Truncated) => HashMap::from([(name.clone(), 5)]),
                _ => HashMap::new(),
            };
            let mut r =
                Repository::open(Box::new(ListedLonger { inner, extra }), PASSWORD.as_bytes())
                    .unwrap();
            r.load_index().unwrap();
            let report = check(&mut r, ReadData::All, &Cancel::default(), |_, _| {}).unwrap();
            let case = format!("{damage:?} on {}", if on_disk { "disk" } else { "memory" });
            assert_eq!(report.blobs_read, *verified, "{case}: {:?}", report.errors);
            if damage.is_none() {
                assert!(report.is_ok(), "{case}: {:?}", report.errors);
                continue;
            }
            assert_eq!(report.errors.len(), 1, "{case}: {:?}", report.errors);
            let e = &report.errors[0];
            assert_eq!(e.pack, Some(pid), "{case}");
            assert_eq!(e.snapshots, vec![snapshot], "{case}");
            assert!(
                e.message.starts_with(&format!("pack {pid}: ")),
                "{case}: {}",
                e.message
            );
            for w in want {
                assert!(
                    e.message.contains(w.as_str()),
                    "{case}: {w:?} not in {}",
                    e.message
                );
            }
            // A damaged blob does not make a sound header look damaged,
            // nor the other way round.
            if *damage == Some(Damage::FlippedInBlob) {
                assert!(!e.message.contains("header"), "{case}: {}", e.message);
            }
            if matches!(damage, Some(Damage::GarbageHeader | Damage::GarbageLength)) {
                assert!(!e.message.contains("blob"), "{case}: {}", e.message);
            }
        }
    }
}

/// The cache checks a tree pack against its name once per process. A
/// copy changed on disk after that check (another process, a bad disk)
/// fails its blob's MAC; the store's bytes are then read instead and the
/// copy dropped, so one process does not fail every later read of that
/// tree. Damage in the store itself is still reported.
#[test]
fn a_cached_tree_pack_changed_after_its_check_is_read_again_from_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("dir")).unwrap();
    fs::write(src.join("dir/file.txt"), b"content\n").unwrap();
    let repo_path = tmp.path().join("repo");
    let mut repo = init_repo(&repo_path);
    let opts = BackupOptions {
        paths: vec![src.clone()],
        ..Default::default()
    };
    let summary = backup(&mut repo, &opts, |_| {}).unwrap();

    let cache = tmp.path().join("cache");
    let mut repo = open_repo(&repo_path);
    repo.use_cache(&cache);
    let tree = repo.snapshots().unwrap()[0].1.tree;
    assert_eq!(repo.snapshots().unwrap()[0].0, summary.snapshot_id);
    let first = repo.load_tree(&tree).unwrap();
    let entry = *repo.lookup(BlobType::Tree, &tree).unwrap();
    let pack = entry.pack.to_hex();
    let copy = cache.join(repo.id()).join("trees").join(&pack);
    let stored = repo_path.join("data").join(&pack[..2]).join(&pack);
    assert_eq!(fs::read(&copy).unwrap(), fs::read(&stored).unwrap());

    flip_byte(&copy, entry.blob.offset as u64 + 20);
    assert_eq!(repo.load_tree(&tree).unwrap(), first, "read from the store");
    assert!(!copy.exists(), "the changed copy is dropped");
    assert_eq!(repo.load_tree(&tree).unwrap(), first);
    assert_eq!(
        fs::read(&copy).unwrap(),
        fs::read(&stored).unwrap(),
        "fetched whole again"
    );

    flip_byte(&stored, entry.blob.offset as u64 + 20);
    flip_byte(&copy, entry.blob.offset as u64 + 20);
    let err = repo.load_tree(&tree).unwrap_err();
    assert!(matches!(err, bulwark_repo::Error::Mac(_)), "{err}");
}
