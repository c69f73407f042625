//! Backup jobs and verification against real local repositories.

use std::path::Path;

use bulwark_repo::{open_backend, KdfParams, Repository};

use super::jobs::BackupJob;
use super::*;
use crate::config::{KeepPolicy, Notify, VerifyConfig};

struct Fixture {
    dir: tempfile::TempDir,
    cfg: BackupConfig,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir_all(app.join("conf")).unwrap();
    std::fs::write(app.join("index.html"), "<h1>hello</h1>").unwrap();
    std::fs::write(app.join("conf/app.toml"), "port = 9200\n").unwrap();
    // Big enough to span several chunks and packs' worth of blobs.
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(app.join("data.bin"), big).unwrap();
    let repo = dir.path().join("repo");
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "correct horse\n").unwrap();
    Repository::init(
        open_backend(repo.to_str().unwrap()).unwrap(),
        b"correct horse",
        KdfParams::INSECURE_FAST,
    )
    .unwrap();
    let cfg = BackupConfig {
        name: "app".into(),
        repo: repo.display().to_string(),
        location: bulwark_repo::Location::Local(repo.clone()),
        copies: Vec::new(),
        options: Default::default(),
        password: Some(PasswordSource::File(pw)),
        credentials: Vec::new(),
        paths: vec![app],
        exclude: Vec::new(),
        tags: Vec::new(),
        git: false,
        schedule: None,
        timezone: None,
        keep: KeepPolicy {
            last: Some(1),
            ..KeepPolicy::default()
        },
        verify: Some(VerifyConfig {
            schedule: None,
            read_data_subset: Some(100.0),
            sample_files: 20,
            notify: Notify::Failure,
        }),
        notify: Notify::Failure,
        kind: Default::default(),
        cost: Default::default(),
    };
    Fixture { dir, cfg }
}

fn packs(repo: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for sub in std::fs::read_dir(repo.join("data")).unwrap() {
        for f in std::fs::read_dir(sub.unwrap().path()).unwrap() {
            out.push(f.unwrap().path());
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn backup_job_snapshots_and_applies_retention() {
    let f = fixture();
    let first = run_backup(&f.cfg, &Cancel::default()).await.unwrap();
    assert_eq!(first.files, 3);
    assert_eq!(first.forgotten, 0);
    std::fs::write(f.cfg.paths[0].join("index.html"), "<h1>v2</h1>").unwrap();
    let second = run_backup(&f.cfg, &Cancel::default()).await.unwrap();
    assert_ne!(first.snapshot, second.snapshot);
    // keep = { last = 1 }: the first snapshot goes.
    assert_eq!(second.forgotten, 1);
    let repo = open(&f.cfg).unwrap();
    assert_eq!(repo.snapshots().unwrap().len(), 1);
}

#[tokio::test]
async fn verification_of_a_healthy_repository_passes_and_is_logged() {
    let f = fixture();
    run_backup(&f.cfg, &Cancel::default()).await.unwrap();
    let data = f.dir.path().join("data");
    let report = verify(&f.cfg, &data, &Cancel::default()).await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.files_sampled, 3);
    assert!(report.packs_read >= 1);
    let log = std::fs::read_to_string(data.join("logs").join(VERIFY_LOG)).unwrap();
    let line: serde_json::Value = serde_json::from_str(log.trim()).unwrap();
    assert_eq!(line["backup"], "app");
    assert_eq!(line["ok"], true);
}

#[tokio::test]
async fn verification_detects_a_corrupted_pack_and_names_the_files() {
    let f = fixture();
    run_backup(&f.cfg, &Cancel::default()).await.unwrap();
    let repo = Path::new(&f.cfg.repo);
    // The largest pack holds file data (trees are small): damage it, so
    // the trees still read and the damage shows as files that differ.
    let pack = packs(repo)
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&pack).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&pack, bytes).unwrap();
    let data = f.dir.path().join("data");
    let report = verify(&f.cfg, &data, &Cancel::default()).await.unwrap();
    assert!(!report.is_ok());
    assert!(!report.check_errors.is_empty(), "{report:?}");
    assert!(!report.mismatches.is_empty(), "{report:?}");
    assert!(report.mismatches.iter().all(|m| m.path.starts_with('/')));
    let log = std::fs::read_to_string(data.join("logs").join(VERIFY_LOG)).unwrap();
    let line: serde_json::Value = serde_json::from_str(log.trim()).unwrap();
    assert_eq!(line["ok"], false);
    assert!(line["mismatches"][0]["path"].is_string());
}

#[tokio::test]
async fn verification_detects_a_missing_pack() {
    let f = fixture();
    run_backup(&f.cfg, &Cancel::default()).await.unwrap();
    let repo = Path::new(&f.cfg.repo);
    let victims = packs(repo);
    std::fs::remove_file(&victims[0]).unwrap();
    let report = verify(&f.cfg, &f.dir.path().join("data"), &Cancel::default())
        .await
        .unwrap();
    assert!(!report.is_ok());
    assert!(
        report.check_errors.iter().any(|e| e.contains("pack")),
        "{:?}",
        report.check_errors
    );
}

#[tokio::test]
async fn verification_of_a_hostile_snapshot_reads_nothing_outside_its_sandbox() {
    // A tree node named `../../../../etc/hostname`, written by someone with
    // the key: verification must fail on it, not hash the host's file.
    let f = fixture();
    let mut repo = open(&f.cfg).unwrap();
    let host_file = std::fs::read("/etc/hostname").unwrap_or_default();
    let host_sha = hex::encode(Sha256::digest(&host_file));
    bulwark_repo::fuzzing::save_snapshot_with_names(
        &mut repo,
        &["../../../../etc/hostname", "fine"],
        b"planted",
    )
    .unwrap();
    let data = f.dir.path().join("data");
    let report = verify(&f.cfg, &data, &Cancel::default()).await.unwrap();
    assert!(!report.is_ok());
    assert!(
        report
            .check_errors
            .iter()
            .any(|e| e.contains("unsafe name \"../../../../etc/hostname\"")),
        "{report:?}"
    );
    let log = std::fs::read_to_string(data.join("logs").join(VERIFY_LOG)).unwrap();
    assert!(!log.contains(&host_sha), "{log}");
}

#[tokio::test]
async fn verification_samples_files_whose_names_look_like_patterns() {
    let f = fixture();
    let weird = ["we[ird", "*", "a?b", "{x,y}", "back\\slash"];
    for name in weird {
        std::fs::write(f.cfg.paths[0].join(name), name).unwrap();
    }
    run_backup(&f.cfg, &Cancel::default()).await.unwrap();
    let report = verify(&f.cfg, &f.dir.path().join("data"), &Cancel::default())
        .await
        .unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.files_sampled, 3 + weird.len());
}

#[test]
fn glob_literal_matches_only_its_path() {
    assert_eq!(glob_literal("/a/we[ird"), "/a/we\\[ird");
    assert_eq!(glob_literal("/x/*.{a,b}?"), "/x/\\*.\\{a,b\\}\\?");
}

#[test]
fn retention_maps_keep_flags_and_within() {
    let keep = KeepPolicy {
        daily: Some(7),
        weekly: Some(4),
        within: Some(std::time::Duration::from_secs(2 * 86_400 + 5 * 3_600)),
        tags: vec!["keep".into()],
        ..KeepPolicy::default()
    };
    let p = retention(&keep);
    assert_eq!((p.daily, p.weekly, p.last), (7, 4, 0));
    let w = p.within.unwrap();
    assert_eq!((w.days, w.hours), (2, 5));
    assert_eq!(p.tags, vec!["keep".to_string()]);
    assert!(retention(&KeepPolicy::default()).is_empty());
}

#[tokio::test]
async fn a_backup_with_copies_copies_each_new_snapshot_and_verifies_every_repository() {
    let mut f = fixture();
    let copy = f.dir.path().join("copy");
    Repository::init(
        open_backend(copy.to_str().unwrap()).unwrap(),
        b"correct horse",
        KdfParams::INSECURE_FAST,
    )
    .unwrap();
    let missing = f.dir.path().join("never-initialised");
    f.cfg.copies = vec![copy.display().to_string(), missing.display().to_string()];

    let run = run_backup(&f.cfg, &Cancel::default()).await.unwrap();
    assert_eq!(run.copies.len(), 2);
    let done = run.copies[0].result.as_ref().unwrap();
    assert!(done.contains(&run.snapshot[..8]), "{done}");
    assert!(run.copies[1].result.is_err(), "{:?}", run.copies[1]);
    // The failed copy fails the job, naming the repository.
    let job = BackupJob {
        config: std::sync::Arc::new(crate::settings::parse("", None, &|_| None).unwrap().config),
        name: "app".into(),
    };
    let judged = crate::scheduler::Task::judge(&job, &run).unwrap_err();
    assert!(
        judged.contains("never-initialised") && judged.contains("FAILED"),
        "{judged}"
    );

    // The copy holds the same snapshot, with the retention applied there
    // too (keep last 1), and restores byte for byte.
    std::fs::write(f.cfg.paths[0].join("index.html"), "<h1>v2</h1>").unwrap();
    f.cfg.copies.pop();
    let second = run_backup(&f.cfg, &Cancel::default()).await.unwrap();
    assert!(second.copies[0].result.is_ok(), "{:?}", second.copies);
    let mut copied = Repository::open(
        open_backend(copy.to_str().unwrap()).unwrap(),
        b"correct horse",
    )
    .unwrap();
    copied.load_index().unwrap();
    let snaps = copied.snapshots().unwrap();
    assert_eq!(snaps.len(), 1, "retention in the copy");
    let primary = open(&f.cfg).unwrap().snapshots().unwrap();
    assert_eq!(snaps[0].1.tree, primary[0].1.tree);

    f.cfg.copies.push(missing.display().to_string());
    let data = f.dir.path().join("data");
    let reports = verify_all(&f.cfg, &data, &Cancel::default()).await.unwrap();
    assert_eq!(reports.len(), 3);
    assert!(reports[0].is_ok() && reports[1].is_ok(), "{reports:?}");
    assert_eq!(reports[1].repo, copy.display().to_string());
    assert!(reports[1].files_sampled > 0);
    assert!(!reports[2].is_ok());
    let log = std::fs::read_to_string(data.join("logs").join(VERIFY_LOG)).unwrap();
    assert_eq!(log.lines().count(), 3, "{log}");
    assert!(log.contains("never-initialised"));
}
