//! Drills end to end: a real backup of a small app whose `start` command
//! serves a health endpoint (python's http.server).

use std::time::Duration;

use bulwark_repo::{open_backend, KdfParams, Repository};

use super::*;
use crate::config;

struct Fixture {
    dir: tempfile::TempDir,
    config: Config,
    store: Store,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

async fn fixture(start: &str, health: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir_all(app.join("static")).unwrap();
    std::fs::write(app.join("static/healthz"), "ok\n").unwrap();
    std::fs::write(
        app.join("run.sh"),
        "#!/bin/sh\nexec python3 -m http.server \"$1\" --bind 127.0.0.1 --directory static\n",
    )
    .unwrap();
    let repo = dir.path().join("repo");
    std::fs::write(dir.path().join("pw"), "pw\n").unwrap();
    Repository::init(
        open_backend(repo.to_str().unwrap()).unwrap(),
        b"pw",
        KdfParams::INSECURE_FAST,
    )
    .unwrap();
    let port = free_port();
    let text = format!(
        r#"
[[backup]]
name = "app"
repo = "{repo}"
password_file = "{pw}"
paths = ["{app}"]

[[drill]]
name = "weekly"
backup = "app"
start = "{start}"
{health}
rto_target = "5m"
rpo_target = "1d"
timeout = "5m"
"#,
        repo = repo.display(),
        pw = dir.path().join("pw").display(),
        app = app.display(),
        start = start.replace("PORT", &port.to_string()),
        health = if health {
            format!("health_url = \"http://127.0.0.1:{port}/healthz\"")
        } else {
            String::new()
        },
    );
    let loaded = config::parse(&text, None, &|_| None).unwrap_or_else(|e| panic!("{e}"));
    let config = loaded.config;
    crate::backups::run_backup(&config.backups[0])
        .await
        .unwrap();
    let store = Store::open_sqlite(&dir.path().join("bulwark.db"))
        .await
        .unwrap();
    Fixture { dir, config, store }
}

#[tokio::test]
async fn drill_restores_starts_and_measures_rto_and_rpo() {
    let f = fixture("sh run.sh PORT", true).await;
    let data = f.dir.path().join("data");
    let report = run(
        &f.store,
        &f.config,
        &f.config.drills[0],
        &data,
        &Actor::system("test"),
    )
    .await
    .unwrap();
    let names: Vec<_> = report.steps.iter().map(|s| (s.name, s.ok)).collect();
    assert_eq!(
        names,
        [
            ("validate_config", true),
            ("snapshot_age", true),
            ("restore", true),
            ("verify_files", true),
            ("start", true),
            ("health", true),
            ("cleanup", true),
        ],
        "{report:#?}"
    );
    assert!(report.passed);
    assert!(report.rto_seconds.is_some());
    assert_eq!(report.rto_met, Some(true));
    assert_eq!(report.rpo_met, Some(true));
    assert_eq!(report.rto_target_seconds, Some(300));
    // The sandbox is gone and the app stopped: its port is free again.
    let left: Vec<_> = std::fs::read_dir(data.join("drills")).unwrap().collect();
    assert!(left.is_empty());

    // Stored, served newest first, and written as a file.
    let last = last(&f.store, 3).await.unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0]["passed"], true);
    assert_eq!(last[0]["drill"], "weekly");
    let files: Vec<_> = std::fs::read_dir(data.join("logs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("dr_report_") && n.ends_with("Z.json"))
        .collect();
    assert_eq!(files.len(), 1);
    let audited = crate::audit::query(
        &f.store,
        &crate::audit::Filter {
            action: Some("drill.run".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(audited[0].outcome, "success");
}

#[tokio::test]
async fn drill_whose_app_fails_to_start_reports_the_failed_step() {
    let f = fixture("exit 3", true).await;
    let data = f.dir.path().join("data");
    let report = run(
        &f.store,
        &f.config,
        &f.config.drills[0],
        &data,
        &Actor::system("test"),
    )
    .await
    .unwrap();
    assert!(!report.passed);
    assert_eq!(report.failed_step, Some("health"));
    let health = report.steps.iter().find(|s| s.name == "health").unwrap();
    assert!(health.detail.contains("exited"), "{}", health.detail);
    assert_eq!(report.rto_seconds, None);
    assert_eq!(report.rto_met, Some(false));
    // Cleanup still ran.
    assert!(report.steps.last().unwrap().ok);
    let audited = crate::audit::query(
        &f.store,
        &crate::audit::Filter {
            action: Some("drill.run".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(audited[0].outcome, "failure");
}

#[tokio::test]
async fn drill_with_a_snapshot_older_than_the_rpo_target_fails() {
    let mut f = fixture("true", false).await;
    f.config.drills[0].rpo_target = Some(Duration::from_millis(1));
    tokio::time::sleep(Duration::from_millis(5)).await;
    let report = run(
        &f.store,
        &f.config,
        &f.config.drills[0],
        &f.dir.path().join("data"),
        &Actor::system("test"),
    )
    .await
    .unwrap();
    assert!(!report.passed);
    assert_eq!(report.failed_step, Some("snapshot_age"));
    assert_eq!(report.rpo_met, Some(false));
}
