//! Cancellation: a cancelled backup, restore, check or prune stops soon,
//! returns `Error::Cancelled`, releases its lock and leaves a repository
//! that our check and `restic check --read-data` both pass. Cancelling
//! from inside the progress callback makes the moment deterministic.

mod common;

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use bulwark_repo::{
    backup, check, forget, prune, restore_with_progress, BackupOptions, Cancel, Error, FileType,
    ReadData, Repository, RestoreOptions, RetentionPolicy,
};
use common::*;
use rand::{Rng, SeedableRng};

/// `files` small files, 100 to a directory.
fn small_files(src: &Path, files: usize) {
    for i in 0..files {
        let dir = src.join(format!("d{:02}", i / 100));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("f{i:04}")), format!("small file {i}\n")).unwrap();
    }
}

fn backup_opts(src: &Path, cancel: &Cancel) -> BackupOptions {
    BackupOptions {
        paths: vec![src.to_path_buf()],
        cancel: cancel.clone(),
        ..Default::default()
    }
}

fn count(repo: &Repository, t: FileType) -> usize {
    repo.backend().list(t).unwrap().len()
}

/// Our check and restic's full check pass, and no lock is left.
fn both_checks_clean(repo: &mut Repository, repo_path: &Path) {
    assert_eq!(count(repo, FileType::Lock), 0, "a lock was left behind");
    let report = check(repo, ReadData::All, &Cancel::default(), |_, _| {}).unwrap();
    assert!(report.is_ok(), "bulwark check: {:?}", report.errors);
    let out = restic_ok(repo_path, &["check", "--read-data"]);
    assert!(out.contains("no errors were found"), "{out}");
}

#[test]
fn backup_cancelled_at_its_first_file_saves_no_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let files = 2000;
    small_files(&src, files);
    let repo_path = tmp.path().join("repo");
    let mut repo = init_repo(&repo_path);
    let cancel = Cancel::new();
    let mut calls = 0u64;
    let r = backup(&mut repo, &backup_opts(&src, &cancel), |_| {
        calls += 1;
        cancel.cancel();
    });
    assert!(matches!(r, Err(Error::Cancelled)), "{r:?}");
    // The walk stops at its next entry; only files already read are still
    // counted (the walk is at most a few hundred files ahead).
    assert!(calls < files as u64 / 2, "{calls} files after the cancel");
    assert_eq!(count(&repo, FileType::Snapshot), 0);
    both_checks_clean(&mut repo, &repo_path);
}

/// Cancelled after packs were written but before their index was: the
/// repository keeps them unindexed (restic's semantics; prune removes
/// them), and the next backup with the same `Repository` value must not
/// deduplicate against blobs no index names.
#[test]
fn backup_cancelled_after_writing_packs_leaves_a_repository_the_next_backup_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    // Incompressible, so that the first 16 MiB pack is written early.
    for i in 0..40 {
        let mut v = vec![0u8; 1 << 20];
        rng.fill(&mut v[..]);
        fs::write(src.join(format!("r{i:02}")), v).unwrap();
    }
    let repo_path = tmp.path().join("repo");
    let mut repo = init_repo(&repo_path);
    let cancel = Cancel::new();
    let r = backup(&mut repo, &backup_opts(&src, &cancel), |p| {
        if p.bytes >= 24 << 20 {
            cancel.cancel();
        }
    });
    assert!(matches!(r, Err(Error::Cancelled)), "{r:?}");
    assert_eq!(count(&repo, FileType::Snapshot), 0);
    assert!(
        count(&repo, FileType::Pack) > 0,
        "no pack was written first"
    );
    // Checked through another value: `check` reloads the index, which
    // would hide what `repo` still believes.
    both_checks_clean(&mut open_repo(&repo_path), &repo_path);

    let s = backup(&mut repo, &backup_opts(&src, &Cancel::new()), |_| {}).unwrap();
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    both_checks_clean(&mut repo, &repo_path);
    let restored = restic_restore_latest(&repo_path, &tmp.path().join("restored"), &src);
    assert_same_tree(&src, &restored);
}

#[test]
fn restore_cancelled_at_its_first_file_stops() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let files = 500;
    small_files(&src, files);
    let repo_path = tmp.path().join("repo");
    let mut repo = init_repo(&repo_path);
    backup(&mut repo, &backup_opts(&src, &Cancel::new()), |_| {}).unwrap();

    let cancel = Cancel::new();
    let target = tmp.path().join("target");
    let mut calls = 0u64;
    let opts = RestoreOptions {
        target: target.clone(),
        cancel: cancel.clone(),
        ..Default::default()
    };
    let r = restore_with_progress(&repo, "latest", &opts, |_| {
        calls += 1;
        cancel.cancel();
    });
    assert!(matches!(r, Err(Error::Cancelled)), "{r:?}");
    // Workers stop between blobs: one per worker may still complete.
    assert!(calls < 20, "{calls} files restored after the cancel");
    let written = walkdir_files(&target);
    assert!(written < files, "{written} files written");
    both_checks_clean(&mut repo, &repo_path);
}

fn walkdir_files(dir: &Path) -> usize {
    let mut n = 0;
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            n += walkdir_files(&e.path());
        } else {
            n += 1;
        }
    }
    n
}

#[test]
fn check_cancelled_while_reading_packs_stops() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let repo_path = tmp.path().join("repo");
    let mut repo = init_repo(&repo_path);
    // One data and one tree pack per backup.
    for i in 0..40 {
        fs::write(src.join("f"), format!("version {i}\n")).unwrap();
        backup(&mut repo, &backup_opts(&src, &Cancel::new()), |_| {}).unwrap();
    }
    let packs = count(&repo, FileType::Pack) as u64;
    assert!(packs >= 80, "{packs}");

    let cancelled = Cancel::new();
    cancelled.cancel();
    let r = check(&mut repo, ReadData::All, &cancelled, |_, _| {});
    assert!(matches!(r, Err(Error::Cancelled)), "{r:?}");

    let cancel = Cancel::new();
    let calls = AtomicU64::new(0);
    let r = check(&mut repo, ReadData::All, &cancel, |_, _| {
        calls.fetch_add(1, Ordering::Relaxed);
        cancel.cancel();
    });
    assert!(matches!(r, Err(Error::Cancelled)), "{r:?}");
    // Packs already being read finish; no other starts.
    let read = calls.load(Ordering::Relaxed);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    assert!(
        read <= threads,
        "{read} of {packs} packs read after the cancel"
    );
    both_checks_clean(&mut repo, &repo_path);
}

#[test]
fn prune_cancelled_before_it_starts_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let repo_path = tmp.path().join("repo");
    let mut repo = init_repo(&repo_path);
    for i in 0..3 {
        fs::write(src.join("f"), format!("version {i}\n").repeat(1000)).unwrap();
        backup(&mut repo, &backup_opts(&src, &Cancel::new()), |_| {}).unwrap();
    }
    let policy = RetentionPolicy {
        last: 1,
        ..Default::default()
    };
    forget(&repo, &policy, false).unwrap();
    let listing = |repo: &Repository| {
        let mut all = Vec::new();
        for t in [FileType::Pack, FileType::Index, FileType::Snapshot] {
            all.extend(repo.backend().list(t).unwrap());
        }
        all
    };
    let before = listing(&repo);

    let cancelled = Cancel::new();
    cancelled.cancel();
    let r = prune(&mut repo, false, &cancelled);
    assert!(matches!(r, Err(Error::Cancelled)), "{r:?}");
    assert_eq!(listing(&repo), before);
    both_checks_clean(&mut repo, &repo_path);

    // Not cancelled, the same prune removes the forgotten data.
    let s = prune(&mut repo, false, &Cancel::new()).unwrap();
    assert!(s.packs_deleted + s.packs_repacked > 0, "{s:?}");
    both_checks_clean(&mut repo, &repo_path);
}
