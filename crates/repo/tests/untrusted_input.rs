//! Repository files are untrusted input: damaged or hostile files give
//! errors, never panics, and restore never writes outside its target.

mod common;

use std::fs;

use bulwark_repo::{
    backup, check, restore, Backend, BackupOptions, Cancel, FileType, KdfParams, MemoryBackend,
    ReadData, Repository, RestoreOptions,
};
use rand::{Rng, SeedableRng};

fn small_repo(src: &std::path::Path) -> Repository {
    fs::create_dir_all(src.join("d")).unwrap();
    fs::write(src.join("d/f"), b"content ".repeat(5000)).unwrap();
    fs::write(src.join("g"), b"other").unwrap();
    let mut repo = Repository::init(
        Box::new(MemoryBackend::new()),
        b"pw",
        KdfParams::INSECURE_FAST,
    )
    .unwrap();
    backup(
        &mut repo,
        &BackupOptions {
            paths: vec![src.to_path_buf()],
            ..Default::default()
        },
        |_| {},
    )
    .unwrap();
    repo
}

#[test]
fn mutated_repository_files_give_errors_not_panics() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let repo = small_repo(&src);
    let mut files = Vec::new();
    for t in [FileType::Pack, FileType::Index, FileType::Snapshot] {
        for (name, _) in repo.backend().list(t).unwrap() {
            files.push((t, name));
        }
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for round in 0..60 {
        // A fresh copy of the repository for every mutation.
        let mem = MemoryBackend::new();
        for t in [
            FileType::Config,
            FileType::Key,
            FileType::Pack,
            FileType::Index,
            FileType::Snapshot,
        ] {
            for (name, _) in repo.backend().list(t).unwrap() {
                mem.write(t, &name, &repo.backend().read(t, &name).unwrap())
                    .unwrap();
            }
        }
        let (t, name) = &files[round % files.len()];
        mem.corrupt(*t, name, |data| match round % 4 {
            0 => {
                let i = rng.gen_range(0..data.len());
                data[i] ^= 1 << rng.gen_range(0..8);
            }
            1 => data.truncate(rng.gen_range(0..data.len())),
            2 => {
                // Huge header length / garbage tail.
                let n = data.len();
                if n >= 4 {
                    data[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
                }
            }
            _ => data.clear(),
        })
        .unwrap();
        let mut r = Repository::open(Box::new(mem), b"pw").unwrap();
        let _ = r.load_index();
        let report = check(&mut r, ReadData::All, &Cancel::default(), |_, _| {}).unwrap();
        assert!(
            !report.is_ok(),
            "round {round}: mutation of {t:?} {name} not detected"
        );
        let target = tmp.path().join(format!("t{round}"));
        let _ = restore(
            &r,
            "latest",
            &RestoreOptions {
                target,
                ..Default::default()
            },
        );
    }
}

#[test]
fn garbage_key_and_config_files_are_errors() {
    assert!(Repository::open(Box::new(MemoryBackend::new()), b"pw").is_err());
    let key = "ab".repeat(32);
    let huge_n = br#"{"kdf":"scrypt","N":1099511627776,"r":8,"p":1,"salt":"","data":"","created":"2020-01-01T00:00:00Z"}"#;
    for bad in [&b"{}"[..], b"not json", huge_n] {
        let mem = MemoryBackend::new();
        mem.write(FileType::Config, "config", b"garbage").unwrap();
        mem.write(FileType::Key, &key, bad).unwrap();
        assert!(Repository::open(Box::new(mem), b"pw").is_err());
    }
}

#[test]
fn restore_include_filter_selects_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let repo = small_repo(&src);
    let target = tmp.path().join("t");
    let anchored = format!("{}/d", src.display());
    let r = restore(
        &repo,
        "latest",
        &RestoreOptions {
            target: target.clone(),
            include: vec![anchored],
            verify: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let base = common::restored_path(&target, &src);
    assert_eq!(
        fs::read(base.join("d/f")).unwrap(),
        b"content ".repeat(5000)
    );
    assert!(!base.join("g").exists());
    assert_eq!((r.files, r.verified), (1, 1));

    let t2 = tmp.path().join("t2");
    let r = restore(
        &repo,
        "latest",
        &RestoreOptions {
            target: t2.clone(),
            include: vec!["g".into()],
            verify: false,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.files, 1);
    assert!(common::restored_path(&t2, &src).join("g").exists());
    assert!(!common::restored_path(&t2, &src).join("d").exists());
}
