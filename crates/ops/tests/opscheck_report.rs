//! `run_ops_check` and `gather_report` against real SQLite and PostgreSQL:
//! the queries they add (incidents overlapping a month, job runs, drill
//! reports, rotations from the audit trail) must work on both engines.

mod common;

use std::time::Duration;

use bulwark_ops::{
    all_checks_ok, claim_run, finish_run, gather_report, open_incident, parse_settings,
    record_result, resolve_incident, run_ops_check, Actor, CheckRow, Config, Period, ProbeResult,
    RunOutcome, Store, Trigger,
};
use chrono::{TimeZone, Utc};
use common::TestDb;

fn config() -> Config {
    let text = r#"
[[monitor]]
name = "api"
url = "tcp://127.0.0.1:1"
timeout = "1s"

[[slo]]
name = "api-availability"
monitor = "api"
target = 0.99
window = "30d"

[[backup]]
name = "app"
repo = "/nonexistent/repo"
paths = ["/nonexistent"]
"#;
    parse_settings(text, None, &|_| None).unwrap().config
}

on_both!(report_gathers_a_month, report_body);
async fn report_body(store: Store, _db: TestDb) {
    let period = Period::parse("2026-01").unwrap();
    let t0 = bulwark_ops::Timestamp::from(period.start());
    let min = Duration::from_secs(60);
    for i in 0..10_i64 {
        let r = ProbeResult {
            monitor: "api".into(),
            at: t0 + min * i as u32,
            ok: i != 0,
            latency: Duration::from_millis(3),
            status: None,
            error: None,
        };
        record_result(&store, &r).await.unwrap();
    }
    // One incident inside the month, one that started the month before.
    open_incident(&store, "api", t0 + min, "refused")
        .await
        .unwrap();
    resolve_incident(&store, "api", t0 + 3 * min).await.unwrap();
    open_incident(&store, "api", t0 - 60 * min, "old")
        .await
        .unwrap();
    resolve_incident(&store, "api", t0 + 10 * min)
        .await
        .unwrap();
    let at = period.start() + chrono::Duration::hours(2);
    let mut run = claim_run(
        &store,
        "backup:app",
        at,
        Trigger::Manual,
        "t",
        &Actor::cli(),
        at,
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    finish_run(&store, &mut run, RunOutcome::Failure, "boom", at)
        .await
        .unwrap();

    let now = Utc.with_ymd_and_hms(2026, 2, 2, 0, 0, 0).unwrap();
    let r = gather_report(&store, &config(), period, now).await.unwrap();
    assert_eq!((r.monitors[0].total, r.monitors[0].failures), (10, 1));
    assert_eq!(r.monitors[0].incidents, 2);
    // 120 s inside plus 600 s of the one carried over from December.
    assert_eq!(r.monitors[0].downtime_seconds, 720);
    assert_eq!(r.incidents.len(), 2);
    assert_eq!(r.slos[0].attainment, 0.9);
    assert_eq!((r.backups[0].runs, r.backups[0].failures), (1, 1));
    assert_eq!(r.verifications[0].runs, 0);
    // Nothing of February leaks in.
    let feb = gather_report(&store, &config(), Period::parse("2026-02").unwrap(), now)
        .await
        .unwrap();
    assert_eq!(feb.monitors[0].total, 0);
    assert!(feb.incidents.is_empty());
}

on_both!(ops_check_rows_on_both_stores, opscheck_body);
async fn opscheck_body(store: Store, _db: TestDb) {
    let data = tempfile::tempdir().unwrap();
    let rows = run_ops_check(&store, &config(), data.path(), Utc::now())
        .await
        .unwrap();
    let find = |area: &str| rows.iter().find(|r| r.area == area).unwrap();
    assert!(!find("monitor").ok);
    assert!(find("slo").ok);
    assert_eq!(find("backup").detail, "no backup run recorded");
    assert!(find("verify").ok, "no verify section: {:?}", find("verify"));
    assert!(find("audit").ok);
    assert!(!all_checks_ok(&rows));
}

on_both!(ops_check_has_a_row_per_copy, copies_body);
async fn copies_body(store: Store, _db: TestDb) {
    use bulwark_repo::{open_backend, KdfParams, Repository};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.txt"), "a").unwrap();
    std::fs::write(dir.path().join("pw"), "pw").unwrap();
    let repos: Vec<String> = ["main", "copy"]
        .iter()
        .map(|n| {
            let p = dir.path().join(n);
            Repository::init(
                open_backend(p.to_str().unwrap()).unwrap(),
                b"pw",
                KdfParams::INSECURE_FAST,
            )
            .unwrap();
            p.display().to_string()
        })
        .collect();
    let text = format!(
        r#"
[[backup]]
name = "app"
repo = "{main}"
repos = ["{copy}"]
password_file = "{pw}"
paths = ["{src}"]
verify = {{ read_data_subset = "100%" }}
"#,
        main = repos[0],
        copy = repos[1],
        pw = dir.path().join("pw").display(),
        src = src.display(),
    );
    let config = parse_settings(&text, None, &|_| None).unwrap().config;
    let row_name = format!("app -> {}", repos[1]);
    let copy_row = |rows: &[CheckRow]| {
        rows.iter()
            .find(|r| r.area == "copy")
            .unwrap_or_else(|| panic!("no copy row: {rows:?}"))
            .clone()
    };

    // Never backed up: the copy is empty.
    let rows = run_ops_check(&store, &config, &data, Utc::now())
        .await
        .unwrap();
    let row = copy_row(&rows);
    assert_eq!(row.name, row_name);
    assert!(!row.ok);
    assert_eq!(row.detail, "no snapshot in this copy");

    // Backed up and copied, but never verified.
    let b = &config.backups[0];
    let run = bulwark_ops::run_backup(b, &Default::default())
        .await
        .unwrap();
    assert!(run.copies[0].result.is_ok(), "{:?}", run.copies);
    let row = copy_row(
        &run_ops_check(&store, &config, &data, Utc::now())
            .await
            .unwrap(),
    );
    assert!(!row.ok, "{row:?}");
    assert!(row.detail.starts_with("latest snapshot "), "{row:?}");
    assert!(
        row.detail.ends_with("; no verification recorded"),
        "{row:?}"
    );

    // Verified: the row passes.
    let reports = bulwark_ops::verify_all_backups(b, &data, &Default::default())
        .await
        .unwrap();
    assert!(reports.iter().all(|r| r.is_ok()), "{reports:?}");
    let row = copy_row(
        &run_ops_check(&store, &config, &data, Utc::now())
            .await
            .unwrap(),
    );
    assert!(row.ok, "{row:?}");
    assert!(row.detail.contains("; verified "), "{row:?}");

    // Someone empties the copy: the check reads the copy itself.
    for f in std::fs::read_dir(dir.path().join("copy/snapshots")).unwrap() {
        let path = f.unwrap().path();
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(&path, perms).unwrap();
        std::fs::remove_file(path).unwrap();
    }
    let rows = run_ops_check(&store, &config, &data, Utc::now())
        .await
        .unwrap();
    let row = copy_row(&rows);
    assert!(!row.ok);
    assert_eq!(row.detail, "no snapshot in this copy");
    // One row per copy, none for the main repository (it has its own).
    assert_eq!(
        rows.iter().filter(|r| r.area == "copy").count(),
        1,
        "{rows:?}"
    );
}

/// The cost job lists a backup's repositories with the backup's own
/// `credentials`, as backups and checks open them: without them it reads
/// the process environment's (here: no emulator, no account) and fails.
#[tokio::test]
async fn cost_listing_uses_the_backups_credentials() {
    let emulator = std::env::var("BULWARK_TEST_GCS_EMULATOR_HOST").unwrap_or_else(|_| {
        panic!("BULWARK_TEST_GCS_EMULATOR_HOST is not set: scripts/test.sh starts fake-gcs-server and sets it")
    });
    // nextest runs each test in its own process: the removal stays here.
    for v in bulwark_repo::CREDENTIAL_VARIABLES {
        std::env::remove_var(v);
    }
    let bucket = format!("costcreds{}", std::process::id());
    let made = reqwest::Client::new()
        .post(format!("{emulator}/storage/v1/b?project=test"))
        .json(&serde_json::json!({ "name": bucket }))
        .send()
        .await
        .unwrap();
    assert!(made.status().is_success(), "{}", made.status());
    let repo = format!("gs:{bucket}:/app");
    let mut options = bulwark_repo::BackendOptions::default();
    options
        .credentials
        .set("STORAGE_EMULATOR_HOST", emulator.clone())
        .unwrap();
    let r = repo.clone();
    tokio::task::spawn_blocking(move || {
        let b = bulwark_repo::open_backend_with(&r, &options).unwrap();
        b.write(bulwark_repo::FileType::Config, "config", &[7; 155])
            .unwrap();
    })
    .await
    .unwrap();
    let text = format!(
        "[cost]\nprices = {{ STANDARD = 0.02 }}\n[[backup]]\nname = \"app\"\nrepo = \"{repo}\"\npaths = [\"/a\"]\ncredentials = {{ STORAGE_EMULATOR_HOST = \"{emulator}\" }}\n"
    );
    let cfg = parse_settings(&text, None, &|_| None)
        .unwrap_or_else(|e| panic!("config:\n{e}"))
        .config;
    let (store, _db) = common::sqlite().await;
    let measured = bulwark_ops::measure_storage_cost(
        &store,
        &cfg,
        &bulwark_repo::Cancel::new(),
        bulwark_ops::Timestamp::now(),
    )
    .await
    .unwrap();
    assert!(measured.failures.is_empty(), "{:?}", measured.failures);
    assert_eq!(measured.costs[0].bytes, 155, "{:?}", measured.costs);
}
