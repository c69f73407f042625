//! Repositories in object stores, against real servers started by
//! scripts/test.sh: S3 (moto), with restic as the oracle — it must read
//! what we write there and we must read what it writes —, Azure Blob
//! Storage (Azurite) and Google Cloud Storage (fake-gcs-server).

mod common;

use std::path::Path;

use bulwark_repo::{
    backup, check, copy_snapshots, forget, open_backend, open_backend_with, prune, restore,
    BackendOptions, BackupOptions, Cancel, Error, FileType, KdfParams, ReadData, Repository,
    RestoreOptions, RetentionPolicy,
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

/// The backend contract, as every object store must keep it.
fn keeps_the_backend_contract(location: &str) {
    let b = open_backend(location).unwrap();
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
    // Removal is idempotent: a missing object is already removed.
    b.remove(FileType::Pack, &id).unwrap();
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
    // Streamed: the whole object, or its first bytes; asking for more
    // than it holds is an error even for a consumer that ignores it.
    let streamed = |length| {
        let mut got = Vec::new();
        b.read_with(FileType::Pack, &id, length, &mut |r| {
            got.clear();
            let _ = r.read_to_end(&mut got);
            Ok(())
        })
        .map(|()| got)
    };
    assert_eq!(streamed(None).unwrap(), b"0123456789");
    assert_eq!(streamed(Some(10)).unwrap(), b"0123456789");
    assert_eq!(streamed(Some(3)).unwrap(), b"012");
    assert!(streamed(Some(11)).is_err());
    assert!(matches!(
        b.read_with(FileType::Pack, &"ee".repeat(32), None, &mut |_| Ok(())),
        Err(Error::NotFound(_))
    ));
    assert_eq!(b.list(FileType::Pack).unwrap(), vec![(id.clone(), 10)]);
    assert_eq!(b.list(FileType::Snapshot).unwrap().len(), 1);
    assert!(b.list(FileType::Index).unwrap().is_empty());
    // Names that could leave the prefix are refused before any request.
    assert!(b.read(FileType::Pack, "../config").is_err());
    b.remove(FileType::Pack, &id).unwrap();
    assert!(b.list(FileType::Pack).unwrap().is_empty());
    // An empty file is a file.
    b.write(FileType::Lock, &"ef".repeat(32), b"").unwrap();
    assert_eq!(b.stat(FileType::Lock, &"ef".repeat(32)).unwrap(), 0);
    assert_eq!(b.read(FileType::Lock, &"ef".repeat(32)).unwrap(), b"");
}

#[test]
fn s3_backend_keeps_the_backend_contract() {
    keeps_the_backend_contract(&s3_location("contract"));
}

#[test]
fn azure_backend_keeps_the_backend_contract() {
    keeps_the_backend_contract(&azure_location("contract"));
}

#[test]
fn gcs_backend_keeps_the_backend_contract() {
    keeps_the_backend_contract(&gcs_location("contract"));
}

/// Restore the latest snapshot of `repo` and compare it with `src`.
fn restore_latest_and_compare(repo: &Repository, src: &Path, target: &Path) {
    restore(
        repo,
        "latest",
        &RestoreOptions {
            target: target.to_path_buf(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_same_tree(src, &restored_path(target, src));
}

/// One snapshot of `src`, every file read.
fn backup_tree(repo: &mut Repository, src: &Path) {
    let opts = BackupOptions {
        paths: vec![src.to_path_buf()],
        ..Default::default()
    };
    let summary = backup(repo, &opts, |_| {}).unwrap();
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
}

fn check_all(location: &str) -> Repository {
    let mut repo = open_at(location);
    let report = check(&mut repo, ReadData::All, &Cancel::default(), |_, _| {}).unwrap();
    assert!(report.is_ok(), "{location}: {:?}", report.errors);
    repo
}

/// init, two backups, check with every pack read, restore byte-identical,
/// forget the first snapshot and prune, check and restore again.
fn full_cycle(location: &str, seed: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    make_tree(&src, seed);
    let mut repo = init_at(location);
    backup_tree(&mut repo, &src);
    // The second snapshot has a changed file, so pruning the first frees
    // data.
    std::fs::write(src.join("a/small.bin"), b"changed after the first snapshot").unwrap();
    backup_tree(&mut repo, &src);
    drop(repo);

    let repo = check_all(location);
    restore_latest_and_compare(&repo, &src, &tmp.path().join("first"));

    let decisions = forget(
        &repo,
        &RetentionPolicy {
            last: 1,
            ..Default::default()
        },
        false,
    )
    .unwrap();
    assert_eq!(
        decisions.iter().filter(|d| !d.keep).count(),
        1,
        "{decisions:?}"
    );
    let mut repo = repo;
    let pruned = prune(&mut repo, false, &Cancel::new()).unwrap();
    assert!(
        pruned.packs_deleted + pruned.packs_repacked > 0,
        "{pruned:?}"
    );
    drop(repo);

    let repo = check_all(location);
    assert_eq!(repo.snapshots().unwrap().len(), 1);
    restore_latest_and_compare(&repo, &src, &tmp.path().join("after-prune"));
}

#[test]
fn an_azure_repository_backs_up_checks_restores_and_prunes() {
    full_cycle(&azure_location("cycle"), 21);
}

#[test]
fn a_gcs_repository_backs_up_checks_restores_and_prunes() {
    full_cycle(&gcs_location("cycle"), 22);
}

#[test]
fn a_snapshot_copied_from_s3_to_azure_and_to_gcs_restores_from_each_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    make_tree(&src, 23);
    let s3 = s3_location("source");
    backup_tree(&mut init_at(&s3), &src);
    let source = open_at(&s3);
    for (name, location) in [
        ("azure", azure_location("copy")),
        ("gcs", gcs_location("copy")),
    ] {
        let mut dst = init_at(&location);
        dst.load_index().unwrap();
        let summary = copy_snapshots(&source, &mut dst, &[]).unwrap();
        assert_eq!(summary.copied.len(), 1, "{name}: {summary:?}");
        drop(dst);
        let dst = check_all(&location);
        restore_latest_and_compare(&dst, &src, &tmp.path().join(name));
    }
}

#[test]
fn azure_packs_go_to_the_access_tier_and_everything_else_stays_hot() {
    let location = azure_location("tiered");
    let container = location.split(':').nth(1).unwrap().to_string();
    let options = BackendOptions::parse(["azure.access-tier=cool"]).unwrap();
    let b = open_backend_with(&location, &options).unwrap();
    let id = "ab".repeat(32);
    b.write(FileType::Pack, &id, b"pack bytes").unwrap();
    b.write(FileType::Snapshot, &id, b"snapshot").unwrap();
    assert_eq!(b.read(FileType::Pack, &id).unwrap(), b"pack bytes");
    assert_eq!(
        azurite_access_tier(&container, &format!("tiered/data/ab/{id}")).as_deref(),
        Some("Cool")
    );
    assert_ne!(
        azurite_access_tier(&container, &format!("tiered/snapshots/{id}")).as_deref(),
        Some("Cool")
    );
}

#[test]
fn gcs_packs_carry_the_storage_class_and_everything_else_stays_standard() {
    let location = gcs_location("classes");
    let bucket = location.split(':').nth(1).unwrap().to_string();
    let options = BackendOptions::parse(["gs.storage-class=nearline"]).unwrap();
    let b = open_backend_with(&location, &options).unwrap();
    let id = "ab".repeat(32);
    b.write(FileType::Pack, &id, b"pack bytes").unwrap();
    b.write(FileType::Snapshot, &id, b"snapshot").unwrap();
    let host = std::env::var("BULWARK_TEST_GCS_EMULATOR_HOST").unwrap();
    let class = |name: &str| {
        let url = format!(
            "{host}/storage/v1/b/{bucket}/o/{}",
            name.replace('/', "%2F")
        );
        let (status, body) = http_request("GET", &url, &[], b"");
        let body = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(status, 200, "{name}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        (
            v["storageClass"].as_str().unwrap_or("").to_string(),
            v["contentType"].as_str().unwrap_or("").to_string(),
        )
    };
    let (pack_class, pack_type) = class(&format!("classes/data/ab/{id}"));
    assert_eq!(pack_class, "NEARLINE");
    assert_eq!(pack_type, "application/octet-stream");
    assert_ne!(class(&format!("classes/snapshots/{id}")).0, "NEARLINE");
}

#[test]
fn a_wrong_azure_account_key_is_one_clear_error_naming_the_repository() {
    let location = azure_location("wrong-key");
    let (endpoint, account, key) = azurite_account();
    // A well-formed key that is not the account's.
    let wrong = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3Jvbmc=";
    std::env::set_var(
        "AZURE_STORAGE_CONNECTION_STRING",
        format!(
            "DefaultEndpointsProtocol=http;AccountName={account};AccountKey={wrong};\
             BlobEndpoint={endpoint};"
        ),
    );
    let err = match Repository::init(
        open_backend(&location).unwrap(),
        PASSWORD.as_bytes(),
        KdfParams::INSECURE_FAST,
    ) {
        Ok(_) => panic!("a repository was created with a wrong account key"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains(&location.trim_end_matches('/').to_string()),
        "{err}"
    );
    assert!(
        err.contains("AuthenticationFailed") || err.contains("PermissionDenied"),
        "{err}"
    );
    assert!(!err.contains(wrong) && !err.contains(&key), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn azure_without_credentials_names_the_variables_to_set() {
    for k in [
        "AZURE_STORAGE_CONNECTION_STRING",
        "AZURE_ACCOUNT_NAME",
        "AZURE_ACCOUNT_KEY",
        "AZURE_ACCOUNT_SAS",
    ] {
        std::env::remove_var(k);
    }
    let err = match open_backend("azure:backups:/app") {
        Ok(_) => panic!("opened an azure repository without credentials"),
        Err(e) => e.to_string(),
    };
    for name in [
        "azure:backups:/app",
        "AZURE_STORAGE_CONNECTION_STRING",
        "AZURE_ACCOUNT_NAME",
        "AZURE_ACCOUNT_KEY",
        "AZURE_ACCOUNT_SAS",
    ] {
        assert!(err.contains(name), "{err}");
    }
}

#[test]
fn a_backup_through_an_azure_store_that_is_often_busy_succeeds() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    make_tree(&src, 24);
    let location = azure_location("flaky");
    let (endpoint, _, _) = azurite_account();
    let host = endpoint
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap();
    let proxy = FaultProxy::start_as(Busy::Azure, &format!("http://{host}"), 5, 7);
    let direct = std::env::var("AZURE_STORAGE_CONNECTION_STRING").unwrap();
    std::env::set_var(
        "AZURE_STORAGE_CONNECTION_STRING",
        direct.replacen(&format!("http://{host}"), &proxy.url, 1),
    );

    backup_tree(&mut init_at(&location), &src);
    let repo = check_all(&location);
    restore_latest_and_compare(&repo, &src, &tmp.path().join("restored"));

    let counts = &proxy.counts;
    let (failed, cut) = (
        counts.failed.load(std::sync::atomic::Ordering::SeqCst),
        counts.cut.load(std::sync::atomic::Ordering::SeqCst),
    );
    assert!(
        failed >= 5 && cut >= 2,
        "only {failed} failures and {cut} cut bodies injected"
    );
    // What reached Azurite is a whole, valid repository.
    std::env::set_var("AZURE_STORAGE_CONNECTION_STRING", direct);
    check_all(&location);
}

#[test]
fn restic_reads_our_s3_repository_and_we_restore_it_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    make_tree(&src, 11);
    let location = s3_location("ours");
    backup_tree(&mut init_at(&location), &src);
    let repo = check_all(&location);
    restore_latest_and_compare(&repo, &src, &tmp.path().join("ours"));

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
    let repo = check_all(&location);
    restore_latest_and_compare(&repo, &src, &tmp.path().join("restored"));
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

    backup_tree(&mut init_at(&flaky), &src);
    let repo = check_all(&flaky);
    restore_latest_and_compare(&repo, &src, &tmp.path().join("restored"));

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

/// A listing page whose body breaks off is asked for again: the command
/// does not fail on it (the transport retries statuses, not bodies).
#[test]
fn a_listing_cut_short_is_asked_again() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    make_tree(&src, 16);
    let direct = s3_location("listing");
    backup_tree(&mut init_at(&direct), &src);
    let endpoint = std::env::var("BULWARK_TEST_S3_ENDPOINT").unwrap();
    let proxy = FaultProxy::cutting_first_listing(&endpoint);
    let cut = direct.replacen(&endpoint, &proxy.url, 1);
    let listed = open_backend(&cut).unwrap().list(FileType::Pack).unwrap();
    let expected = open_backend(&direct).unwrap().list(FileType::Pack).unwrap();
    assert!(!expected.is_empty());
    assert_eq!(listed, expected);
    assert_eq!(
        proxy.counts.cut.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
}

/// Every pack `check --read-data` streams is cut half-way through its
/// body the first time: each is read again from its first byte, the
/// verifier starting over, and the check finds exactly what a check
/// without faults finds — a verifier that kept the broken attempt's
/// bytes or counts would fail the packs' hashes or count blobs twice.
#[test]
fn pack_streams_cut_short_are_read_again_from_the_start_and_the_check_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    make_tree(&src, 15);
    let direct = s3_location("cut");
    backup_tree(&mut init_at(&direct), &src);
    let clean = check(
        &mut open_at(&direct),
        ReadData::All,
        &Cancel::default(),
        |_, _| {},
    )
    .unwrap();
    assert!(clean.is_ok(), "{:?}", clean.errors);
    assert!(clean.packs_read >= 2, "{clean:?}");

    let endpoint = std::env::var("BULWARK_TEST_S3_ENDPOINT").unwrap();
    let proxy = FaultProxy::cutting_first_whole_reads(&endpoint, "/data/");
    let cut = direct.replacen(&endpoint, &proxy.url, 1);
    let report = check(
        &mut open_at(&cut),
        ReadData::All,
        &Cancel::default(),
        |_, _| {},
    )
    .unwrap();
    assert!(report.is_ok(), "{:?}", report.errors);
    assert_eq!(
        (report.packs_read, report.blobs_read),
        (clean.packs_read, clean.blobs_read)
    );
    assert_eq!(
        proxy.counts.cut.load(std::sync::atomic::Ordering::SeqCst),
        report.packs_read,
        "every pack's first stream was cut"
    );
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
    backup_tree(&mut repo, &src);
    backup_tree(&mut repo, &src);
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
    // Warm: only the config, the key and the listings; cold, each index
    // and snapshot file costs one GET (its size comes from the listing).
    let files = repo.backend().list(FileType::Index).unwrap().len()
        + repo.backend().list(FileType::Snapshot).unwrap().len();
    assert!(files >= 3, "{files}");
    assert_eq!(
        cold - warm,
        files as u64,
        "cold {cold}, warm {warm} requests"
    );

    // A check without the cache reads each index and snapshot file once,
    // and asks no HEAD for any file a listing already sized, nor before
    // deleting its lock.
    let mut uncached =
        Repository::open_location(&location, &options, PASSWORD.as_bytes(), None).unwrap();
    let seen = proxy.counts.lines.lock().unwrap().len();
    let report = bulwark_repo::check(
        &mut uncached,
        bulwark_repo::ReadData::None,
        &Default::default(),
        |_, _| {},
    )
    .unwrap();
    assert!(report.is_ok(), "{report:?}");
    let lines = proxy.counts.lines.lock().unwrap()[seen..].to_vec();
    let metadata_gets = lines
        .iter()
        .filter(|l| l.starts_with("GET ") && (l.contains("/index/") || l.contains("/snapshots/")))
        .count();
    assert_eq!(metadata_gets, files, "{lines:#?}");
    // No HEAD at all: removing its own lock at the end is one DELETE.
    assert!(!lines.iter().any(|l| l.starts_with("HEAD ")), "{lines:#?}");
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("DELETE ")).count(),
        1,
        "{lines:#?}"
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

/// `usage` of a repository written through each store with a pack class:
/// S3 reports every object's class itself (packs in STANDARD_IA, the rest
/// STANDARD); Azure and GCS are counted under the class written with,
/// and say so; objects outside restic's layout are not counted.
#[test]
fn usage_counts_bytes_per_storage_class_in_every_store() {
    let id = "ab".repeat(32);
    let write = |b: &dyn bulwark_repo::Backend| {
        b.write(FileType::Config, "config", &[1; 100]).unwrap();
        b.write(FileType::Pack, &id, &[2; 5000]).unwrap();
        b.write(FileType::Pack, &"cd".repeat(32), &[3; 3000])
            .unwrap();
        b.write(FileType::Index, &id, &[4; 70]).unwrap();
    };
    let classes = |u: &bulwark_repo::Usage| -> Vec<(String, u64, u64)> {
        u.by_class
            .iter()
            .map(|(k, c)| (k.clone(), c.objects, c.bytes))
            .collect()
    };
    let expect = |standard: &str, packs: &str| {
        let mut v = vec![(standard.to_string(), 2, 170), (packs.to_string(), 2, 8000)];
        v.sort();
        v
    };

    let location = s3_location("usage");
    let options = BackendOptions::parse(["s3.storage-class=STANDARD_IA"]).unwrap();
    write(open_backend_with(&location, &options).unwrap().as_ref());
    // Read back with no class option: the classes come from the listing.
    let u = bulwark_repo::usage(&location, &BackendOptions::default()).unwrap();
    assert_eq!(classes(&u), expect("STANDARD", "STANDARD_IA"));
    assert!(!u.assumed);

    let location = azure_location("usage");
    let options = BackendOptions::parse(["azure.access-tier=cool"]).unwrap();
    write(open_backend_with(&location, &options).unwrap().as_ref());
    let u = bulwark_repo::usage(&location, &options).unwrap();
    assert_eq!(classes(&u), expect("Hot", "Cool"));
    assert!(u.assumed);

    let location = gcs_location("usage");
    let options = BackendOptions::parse(["gs.storage-class=nearline"]).unwrap();
    write(open_backend_with(&location, &options).unwrap().as_ref());
    let u = bulwark_repo::usage(&location, &options).unwrap();
    assert_eq!(classes(&u), expect("STANDARD", "NEARLINE"));
    assert!(u.assumed);
}
