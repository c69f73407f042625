//! Database backups and their drills on the real PostgreSQL server that
//! `scripts/test.sh` starts: a `kind = "postgres"` backup of a table with a
//! canary row, a drill that restores it into a throwaway cluster and
//! passes its checks, one whose check expects a missing row and fails,
//! naming it, with no cluster left behind; and a dump command that exits 1
//! leaves no snapshot.

mod common;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use bulwark_ops::{parse_settings, Actor, Instance, RunOutcome};
use sqlx::any::AnyConnectOptions;
use sqlx::ConnectOptions;

/// A fresh schema with `orders` (a canary row, id 0, and `rows` more).
async fn seed_orders(rows: i64) -> String {
    sqlx::any::install_default_drivers();
    let schema = format!("drill_{}", hex::encode(rand::random::<[u8; 5]>()));
    let mut conn = AnyConnectOptions::from_str(&common::postgres_url())
        .unwrap()
        .connect()
        .await
        .expect("connect to the test PostgreSQL server");
    for sql in [
        format!("CREATE SCHEMA {schema}"),
        format!("CREATE TABLE {schema}.orders (id BIGINT PRIMARY KEY, note TEXT NOT NULL)"),
        format!("INSERT INTO {schema}.orders VALUES (0, 'canary')"),
        format!(
            "INSERT INTO {schema}.orders SELECT g, 'order ' || g FROM generate_series(1, {rows}) g"
        ),
    ] {
        sqlx::query(&sql).execute(&mut conn).await.expect(&sql);
    }
    schema
}

fn init_repo(dir: &Path) -> (PathBuf, PathBuf) {
    let repo = dir.join("repo");
    let pw = dir.join("repo-password");
    std::fs::write(&pw, "correct horse").unwrap();
    bulwark_repo::Repository::init(
        bulwark_repo::open_backend(repo.to_str().unwrap()).unwrap(),
        b"correct horse",
        bulwark_repo::KdfParams::INSECURE_FAST,
    )
    .unwrap();
    (repo, pw)
}

fn snapshots(repo: &Path) -> Vec<bulwark_repo::Snapshot> {
    let r = bulwark_repo::Repository::open(
        bulwark_repo::open_backend(repo.to_str().unwrap()).unwrap(),
        b"correct horse",
    )
    .unwrap();
    r.snapshots().unwrap().into_iter().map(|(_, s)| s).collect()
}

/// What of a cluster directory survived: the directory itself, or a
/// process whose command line names it.
fn leftovers(dir: &str) -> Vec<String> {
    let mut found = Vec::new();
    if Path::new(dir).exists() {
        found.push(format!("{dir} exists"));
    }
    let out = std::process::Command::new("pgrep")
        .args(["-a", "-f", dir])
        .output()
        .expect("pgrep");
    let procs = String::from_utf8_lossy(&out.stdout);
    found.extend(procs.lines().map(|l| format!("process: {l}")));
    found
}

/// The cluster directory the `initdb` step names.
fn cluster_dir(report: &bulwark_ops::DrillReport) -> String {
    let initdb = report
        .steps
        .iter()
        .find(|s| s.name == "initdb")
        .unwrap_or_else(|| panic!("no initdb step: {report:#?}"));
    let data = initdb
        .detail
        .strip_prefix("initdb ")
        .and_then(|d| d.split(' ').next())
        .unwrap_or_else(|| panic!("initdb detail: {}", initdb.detail));
    Path::new(data).parent().unwrap().display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_backup_restores_into_a_throwaway_cluster_and_its_checks_decide() {
    let (store, _db) = common::sqlite().await;
    let schema = seed_orders(1_500).await;
    let data = tempfile::tempdir().unwrap();
    let (repo, pw) = init_repo(data.path());
    let url = common::postgres_url();
    let text = format!(
        r#"
[[backup]]
name = "db"
kind = "postgres"
url = "{url}"
pg_dump_options = ["-Fc", "-n", "{schema}"]
repo = "{repo}"
password_file = "{pw}"

[[drill]]
name = "db-restore"
backup = "db"
rpo_target = "1h"
checks = [
  {{ sql = "SELECT count(*) FROM {schema}.orders", min = 1000 }},
  {{ sql = "SELECT note FROM {schema}.orders WHERE id = 0", equals = "canary" }},
]

[[drill]]
name = "db-missing-row"
backup = "db"
checks = [
  {{ sql = "SELECT count(*) FROM {schema}.orders", max = 100000 }},
  {{ sql = "SELECT note FROM {schema}.orders WHERE id = 999999", equals = "canary" }},
]
"#,
        repo = repo.display(),
        pw = pw.display(),
    );
    let loaded = parse_settings(&text, None, &|_| None).expect("config");
    let config = Arc::new(loaded.config);
    let instance = Instance::new(config.clone(), store.clone(), data.path());

    // The backup: one snapshot, the dump as /bulwark_test.dump, tagged
    // with the database.
    let run = instance
        .scheduler
        .run_now("backup:db", &Actor::cli())
        .await
        .unwrap();
    assert_eq!(run.outcome, RunOutcome::Success, "{}", run.summary);
    let snaps = snapshots(&repo);
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0].paths, vec!["/bulwark_test.dump".to_string()]);
    assert!(
        snaps[0].tags.iter().any(|t| t == "bulwark_test"),
        "{:?}",
        snaps[0].tags
    );

    let cancel = bulwark_repo::Cancel::default();
    let actor = Actor::cli();
    let report =
        bulwark_ops::run_drill(&store, &config, "db-restore", data.path(), &actor, &cancel)
            .await
            .unwrap();
    let names: Vec<&str> = report.steps.iter().map(|s| s.name.as_str()).collect();
    assert!(report.passed, "{report:#?}");
    for wanted in [
        "restore",
        "verify_files",
        "initdb",
        "start_cluster",
        "load",
        "cleanup",
    ] {
        assert!(names.contains(&wanted), "{wanted} missing from {names:?}");
    }
    let checks: Vec<_> = report
        .steps
        .iter()
        .filter(|s| s.name.starts_with("check: "))
        .collect();
    assert_eq!(checks.len(), 2, "{names:?}");
    assert!(
        checks[0].detail.contains("returned \"1501\""),
        "{}",
        checks[0].detail
    );
    assert!(
        checks[1].detail.contains("returned \"canary\""),
        "{}",
        checks[1].detail
    );
    assert!(
        report.rto_seconds.is_some() && report.rpo_met == Some(true),
        "{report:#?}"
    );
    let dir = cluster_dir(&report);
    assert_eq!(leftovers(&dir), Vec::<String>::new());

    // A check that expects a row that is not there fails the drill, named
    // with its SQL and what it got; the other check still ran, and the
    // cluster is gone all the same.
    let report = bulwark_ops::run_drill(
        &store,
        &config,
        "db-missing-row",
        data.path(),
        &actor,
        &cancel,
    )
    .await
    .unwrap();
    assert!(!report.passed, "{report:#?}");
    let missing = format!("check: SELECT note FROM {schema}.orders WHERE id = 999999");
    assert_eq!(report.failed_step.as_deref(), Some(missing.as_str()));
    let failed = report.steps.iter().find(|s| s.name == missing).unwrap();
    assert!(!failed.ok);
    assert!(
        failed.detail.contains("WHERE id = 999999` returned no row"),
        "{}",
        failed.detail
    );
    let cleanup = report.steps.iter().find(|s| s.name == "cleanup").unwrap();
    assert!(cleanup.ok, "{}", cleanup.detail);
    let dir = cluster_dir(&report);
    assert_eq!(leftovers(&dir), Vec::<String>::new());
    // No drill sandbox is left in the data directory either.
    let sandboxes: Vec<_> = std::fs::read_dir(data.path().join("drills"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(sandboxes.is_empty(), "{sandboxes:?}");

    // The database password is in no report.
    let password = url
        .split(':')
        .nth(2)
        .and_then(|s| s.split('@').next())
        .unwrap();
    let stored = bulwark_ops::last_drills(&store, 10).await.unwrap();
    let json = serde_json::to_string(&stored).unwrap();
    assert!(!json.contains(&format!(":{password}@")), "{json}");
    assert!(!json.contains(&url), "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_command_that_exits_1_leaves_no_snapshot() {
    let (store, _db) = common::sqlite().await;
    let data = tempfile::tempdir().unwrap();
    let (repo, pw) = init_repo(data.path());
    let text = format!(
        r#"
[[backup]]
name = "mysql"
kind = "command"
command = ["sh", "-c", "echo partial dump; echo \"access denied for user $DUMP_USER\" >&2; exit 1"]
env = {{ DUMP_USER = "shop" }}
repo = "{repo}"
password_file = "{pw}"
"#,
        repo = repo.display(),
        pw = pw.display(),
    );
    let loaded = parse_settings(&text, None, &|_| None).expect("config");
    let instance = Instance::new(Arc::new(loaded.config), store, data.path());
    let run = instance
        .scheduler
        .run_now("backup:mysql", &Actor::cli())
        .await
        .unwrap();
    assert_eq!(run.outcome, RunOutcome::Failure, "{}", run.summary);
    assert!(
        run.summary.contains("exited with status 1")
            && run.summary.contains("access denied for user shop"),
        "{}",
        run.summary
    );
    assert!(snapshots(&repo).is_empty());
}
