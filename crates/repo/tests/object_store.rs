//! Repositories in S3, against a real S3 server (moto, started by
//! scripts/test.sh), with restic as the oracle: it must read what we write
//! there and we must read what it writes.

mod common;

use bulwark_repo::{
    backup, check, open_backend, restore, BackupOptions, Cancel, Error, FileType, KdfParams,
    ReadData, Repository, RestoreOptions,
};
use common::*;

fn init_at(location: &str) -> Repository {
    let backend = open_backend(location).expect("backend");
    Repository::init(backend, PASSWORD.as_bytes(), KdfParams::INSECURE_FAST).expect("init")
}

fn open_at(location: &str) -> Repository {
    let mut repo = Repository::open(
        open_backend(location).expect("backend"),
        PASSWORD.as_bytes(),
    )
    .expect("open");
    repo.load_index().expect("index");
    repo
}

#[test]
fn s3_backend_keeps_the_backend_contract() {
    let location = s3_location("contract");
    let b = open_backend(&location).unwrap();
    b.create().unwrap();
    let id = "ab".repeat(32);
    assert!(matches!(
        b.read(FileType::Pack, &id),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        b.stat(FileType::Pack, &id),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        b.remove(FileType::Pack, &id),
        Err(Error::NotFound(_))
    ));
    b.write(FileType::Pack, &id, b"0123456789").unwrap();
    b.write(FileType::Config, "config", b"cfg").unwrap();
    b.write(FileType::Snapshot, &"cd".repeat(32), b"snap")
        .unwrap();
    assert_eq!(b.read(FileType::Pack, &id).unwrap(), b"0123456789");
    assert_eq!(b.read_range(FileType::Pack, &id, 2, 3).unwrap(), b"234");
    assert_eq!(b.stat(FileType::Pack, &id).unwrap(), 10);
    assert_eq!(b.read(FileType::Config, "config").unwrap(), b"cfg");
    // A range past the end is an error, never fewer bytes.
    assert!(b.read_range(FileType::Pack, &id, 8, 5).is_err());
    assert_eq!(b.list(FileType::Pack).unwrap(), vec![(id.clone(), 10)]);
    assert_eq!(b.list(FileType::Snapshot).unwrap().len(), 1);
    assert!(b.list(FileType::Index).unwrap().is_empty());
    // Names that could leave the prefix are refused before any request.
    assert!(b.read(FileType::Pack, "../config").is_err());
    b.remove(FileType::Pack, &id).unwrap();
    assert!(b.list(FileType::Pack).unwrap().is_empty());
}

#[test]
fn restic_reads_our_s3_repository_and_we_restore_it_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    make_tree(&src, 11);
    let location = s3_location("ours");
    let mut repo = init_at(&location);
    let opts = BackupOptions {
        paths: vec![src.clone()],
        ..Default::default()
    };
    let summary = backup(&mut repo, &opts, |_| {}).unwrap();
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);

    let mut repo = open_at(&location);
    let report = check(&mut repo, ReadData::All, &Cancel::default(), |_, _| {}).unwrap();
    assert!(report.is_ok(), "{:?}", report.errors);
    let target = tmp.path().join("ours");
    restore(
        &repo,
        "latest",
        &RestoreOptions {
            target: target.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_same_tree(&src, &restored_path(&target, &src));

    restic_ok(&location, &["check", "--read-data"]);
    let by_restic = restic_restore_latest(&location, &tmp.path().join("restic"), &src);
    assert_same_tree(&src, &by_restic);
}

#[test]
fn we_read_a_repository_restic_wrote_to_s3() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    make_tree(&src, 12);
    let location = s3_location("theirs");
    restic_ok(&location, &["init"]);
    restic_ok(&location, &["backup", src.to_str().unwrap()]);
    let mut repo = open_at(&location);
    let report = check(&mut repo, ReadData::All, &Cancel::default(), |_, _| {}).unwrap();
    assert!(report.is_ok(), "{:?}", report.errors);
    let target = tmp.path().join("restored");
    restore(
        &repo,
        "latest",
        &RestoreOptions {
            target: target.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_same_tree(&src, &restored_path(&target, &src));
}

#[test]
fn a_missing_bucket_is_one_clear_error() {
    let location = s3_location("x");
    let missing = location.replacen("/bulwark-", "/bulwark-missing-", 1);
    let err = match Repository::open(open_backend(&missing).unwrap(), PASSWORD.as_bytes()) {
        Ok(_) => panic!("opened a repository in a bucket that does not exist"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("bulwark-missing-"), "{err}");
}

#[test]
fn a_backup_through_a_store_that_fails_one_request_in_five_succeeds_and_restic_checks_it() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    make_tree(&src, 13);
    let direct = s3_location("flaky");
    let endpoint = std::env::var("BULWARK_TEST_S3_ENDPOINT").unwrap();
    let proxy = FaultProxy::start(&endpoint, 5, 7);
    let flaky = direct.replacen(&endpoint, &proxy.url, 1);

    let mut repo = init_at(&flaky);
    let opts = BackupOptions {
        paths: vec![src.clone()],
        ..Default::default()
    };
    let summary = backup(&mut repo, &opts, |_| {}).unwrap();
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    drop(repo);
    let mut repo = open_at(&flaky);
    let report = check(&mut repo, ReadData::All, &Cancel::default(), |_, _| {}).unwrap();
    assert!(report.is_ok(), "{:?}", report.errors);
    let target = tmp.path().join("restored");
    restore(
        &repo,
        "latest",
        &RestoreOptions {
            target: target.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_same_tree(&src, &restored_path(&target, &src));

    // The faults happened: the test would pass without retries otherwise.
    let counts = &proxy.counts;
    let (failed, cut) = (
        counts.failed.load(std::sync::atomic::Ordering::SeqCst),
        counts.cut.load(std::sync::atomic::Ordering::SeqCst),
    );
    assert!(
        failed >= 5 && cut >= 2,
        "only {failed} failures and {cut} cut bodies injected"
    );
    // What reached the store is a whole, valid repository.
    restic_ok(&direct, &["check", "--read-data"]);
}

#[test]
fn the_metadata_cache_saves_the_index_and_snapshot_downloads_and_survives_tampering() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    make_tree(&src, 14);
    let direct = s3_location("cached");
    let endpoint = std::env::var("BULWARK_TEST_S3_ENDPOINT").unwrap();
    // A proxy that never fails: here it only counts requests.
    let proxy = FaultProxy::start(&endpoint, u64::MAX, u64::MAX);
    let location = direct.replacen(&endpoint, &proxy.url, 1);
    let mut repo = init_at(&location);
    for _ in 0..2 {
        let opts = BackupOptions {
            paths: vec![src.clone()],
            ..Default::default()
        };
        backup(&mut repo, &opts, |_| {}).unwrap();
    }
    drop(repo);
    let cache = tmp.path().join("cache");
    let options = bulwark_repo::BackendOptions::default();
    let requests = || {
        proxy
            .counts
            .requests
            .load(std::sync::atomic::Ordering::SeqCst)
    };
    let open_cached = || {
        let mut repo =
            Repository::open_location(&location, &options, PASSWORD.as_bytes(), Some(&cache))
                .unwrap();
        repo.load_index().unwrap();
        assert_eq!(repo.snapshots().unwrap().len(), 2);
        repo
    };
    let before = requests();
    let repo = open_cached();
    let cold = requests() - before;
    let before = requests();
    open_cached();
    let warm = requests() - before;
    // Warm: only the config, the key and the listings.
    let files = repo.backend().list(FileType::Index).unwrap().len()
        + repo.backend().list(FileType::Snapshot).unwrap().len();
    assert!(files >= 3, "{files}");
    assert_eq!(
        cold - warm,
        files as u64,
        "cold {cold}, warm {warm} requests"
    );

    // A tampered cache file is noticed, dropped and fetched again.
    let index_dir = cache.join(repo.id()).join("index");
    let cached = std::fs::read_dir(&index_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&cached, b"not an index").unwrap();
    let before = requests();
    open_cached();
    assert_eq!(requests() - before, warm + 1);
    assert_ne!(std::fs::read(&cached).unwrap(), b"not an index");
}
