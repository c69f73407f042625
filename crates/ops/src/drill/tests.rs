//! Drills end to end: a real backup of a small app whose `start` command
//! serves a health endpoint (python's http.server).

use std::time::Duration;

use bulwark_repo::{open_backend, KdfParams, Repository};

use super::*;
use crate::settings;

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
    fixture_with(start, health, "").await
}

/// `extra` is appended to the `[[drill]]` table.
async fn fixture_with(start: &str, health: bool, extra: &str) -> Fixture {
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
{extra}
"#,
        repo = repo.display(),
        pw = dir.path().join("pw").display(),
        app = app.display(),
        start = start.replace("PORT", &port.to_string()),
        health = if health {
            // The token must never reach a report (analysts read them).
            format!("health_url = \"http://127.0.0.1:{port}/healthz?token=drill-secret-token\"")
        } else {
            String::new()
        },
    );
    let loaded = settings::parse(&text, None, &|_| None).unwrap_or_else(|e| panic!("{e}"));
    let config = loaded.config;
    crate::backups::run_backup(&config.backups[0], &Default::default())
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
        &Default::default(),
    )
    .await
    .unwrap();
    let names: Vec<_> = report
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.ok))
        .collect();
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
    assert!(last[0].passed);
    assert_eq!(last[0].drill, "weekly");
    assert_eq!(last[0].schema, REPORT_SCHEMA);
    let files: Vec<_> = std::fs::read_dir(data.join("logs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("dr_report_") && n.ends_with("Z.json"))
        .collect();
    assert_eq!(files.len(), 1);
    let file = std::fs::read_to_string(data.join("logs").join(&files[0])).unwrap();
    for shown in [serde_json::to_string(&last).unwrap(), file] {
        assert!(!shown.contains("drill-secret-token"), "{shown}");
        assert!(
            shown.contains("http://127.0.0.1:"),
            "the origin stays: {shown}"
        );
    }
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
async fn drill_start_command_sees_no_server_credentials() {
    // Code restored from a backup runs as `start`: it gets PATH, HOME, LANG,
    // the drill's own variables and what the config lists, nothing else.
    for (name, value) in [
        ("ROLES_JSON", r#"{"admin-key-in-env":"admin"}"#),
        ("BULWARK_PASSWORD", "repo-password-in-env"),
        ("TELEGRAM_BOT_TOKEN", "telegram-token-in-env"),
        (
            "SLACK_WEBHOOK_URL",
            "https://hooks.slack.test/slack-token-in-env",
        ),
        ("DRILL_PASSED", "listed-in-pass-env"),
    ] {
        std::env::set_var(name, value);
    }
    let seen = tempfile::tempdir().unwrap();
    let env_file = seen.path().join("env.txt");
    let f = fixture_with(
        &format!("env > {}; sh run.sh PORT", env_file.display()),
        true,
        r#"env = { APP_ENV = "drill" }
pass_env = ["DRILL_PASSED"]"#,
    )
    .await;
    let report = run(
        &f.store,
        &f.config,
        &f.config.drills[0],
        &f.dir.path().join("data"),
        &Actor::system("test"),
        &Default::default(),
    )
    .await
    .unwrap();
    assert!(report.passed, "{report:#?}");
    let env = std::fs::read_to_string(&env_file).unwrap();
    let port = url_port(f.config.drills[0].health_url.as_deref().unwrap()).unwrap();
    for wanted in [
        "APP_ENV=drill".to_string(),
        "DRILL_PASSED=listed-in-pass-env".to_string(),
        "BULWARK_DRILL_NAME=weekly".to_string(),
        format!("BULWARK_DRILL_PORT={port}"),
        "BULWARK_DRILL_SANDBOX=".to_string(),
        "PATH=".to_string(),
    ] {
        assert!(env.contains(&wanted), "{wanted} missing: {env}");
    }
    for leaked in [
        "admin-key-in-env",
        "repo-password-in-env",
        "telegram-token-in-env",
        "slack-token-in-env",
        "ROLES_JSON",
        "BULWARK_PASSWORD",
    ] {
        assert!(!env.contains(leaked), "start saw {leaked}: {env}");
    }
}

#[test]
fn url_port_table() {
    for (url, want) in [
        ("http://127.0.0.1:8080/healthz", Some(8080)),
        ("http://example.com/x", Some(80)),
        ("https://example.com?x=1", Some(443)),
        ("http://u:p@[::1]:9000/", Some(9000)),
        ("http://[::1]/", Some(80)),
    ] {
        assert_eq!(url_port(url), want, "{url}");
    }
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
        &Default::default(),
    )
    .await
    .unwrap();
    assert!(!report.passed);
    assert_eq!(report.failed_step.as_deref(), Some("health"));
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
        &Default::default(),
    )
    .await
    .unwrap();
    assert!(!report.passed);
    assert_eq!(report.failed_step.as_deref(), Some("snapshot_age"));
    assert_eq!(report.rpo_met, Some(false));
}

#[tokio::test]
async fn reports_stored_before_the_schema_field_read_as_version_1_and_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("bulwark.db"))
        .await
        .unwrap();
    // As an earlier version stored it: no `schema`, a health URL in full.
    let old = r#"{"id":"d_0a","drill":"weekly","backup":"app","actor":"system:scheduler",
        "started_at":"2026-01-04T01:00:00Z","finished_at":"2026-01-04T01:00:09Z","passed":true,
        "failed_step":null,"snapshot":"ab12","steps":[{"name":"health","ok":true,
        "started_at":"2026-01-04T01:00:05Z","duration_ms":400,
        "detail":"http://127.0.0.1:9200/healthz?token=old-secret answered 200 OK after 0.4s"}],
        "rto_seconds":6.0,"rto_target_seconds":900,"rto_met":true,"rpo_seconds":60.0,
        "rpo_target_seconds":86400,"rpo_met":true}"#;
    sqlx::query(
        "INSERT INTO drill_reports (id, drill, started_at, finished_at, passed, report)
         VALUES ('d_0a', 'weekly', 1767488400000, 1767488409000, 1, $1)",
    )
    .bind(old)
    .execute(store.pool())
    .await
    .unwrap();
    let reports = last(&store, 3).await.unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].schema, 1);
    assert_eq!(
        reports[0].steps[0].detail,
        "http://127.0.0.1:9200 answered 200 OK after 0.4s"
    );
}

#[tokio::test]
async fn drill_records_whether_each_copy_holds_the_restored_snapshot() {
    let mut f = fixture("true", false).await;
    let init = |name: &str| {
        let path = f.dir.path().join(name);
        Repository::init(
            open_backend(path.to_str().unwrap()).unwrap(),
            b"pw",
            KdfParams::INSECURE_FAST,
        )
        .unwrap();
        path.display().to_string()
    };
    let (current, behind) = (init("copy-current"), init("copy-behind"));
    // A backup copied to one copy only: the other stays empty.
    f.config.backups[0].copies = vec![current.clone()];
    crate::backups::run_backup(&f.config.backups[0], &Default::default())
        .await
        .unwrap();
    f.config.backups[0].copies = vec![current.clone(), behind.clone()];
    let drill = |f: &Fixture| {
        let (store, config, data) = (f.store.clone(), f.config.clone(), f.dir.path().join("data"));
        async move {
            run(
                &store,
                &config,
                &config.drills[0],
                &data,
                &Actor::system("test"),
                &Default::default(),
            )
            .await
            .unwrap()
        }
    };
    let report = drill(&f).await;
    assert_eq!(report.copies.len(), 2, "{:?}", report.copies);
    let (c0, c1) = (&report.copies[0], &report.copies[1]);
    assert_eq!(c0.repo, current);
    assert!(c0.present && c0.rpo_met == Some(true) && c0.ok(), "{c0:?}");
    assert!(c0.age_seconds.unwrap() < 600.0, "{c0:?}");
    // Copied snapshots get ids of their own.
    assert_ne!(c0.snapshot, report.snapshot);
    assert_eq!(c1.repo, behind);
    assert!(!c1.present && c1.snapshot.is_none(), "{c1:?}");
    assert_eq!(c1.rpo_met, Some(false));
    assert!(!report.passed);
    assert_eq!(report.failed_step.as_deref(), Some("copies"));
    let step = report.steps.iter().find(|s| s.name == "copies").unwrap();
    assert!(step.detail.contains("has the snapshot"), "{}", step.detail);
    assert!(step.detail.contains("no snapshot"), "{}", step.detail);

    // The copy in order, the drill passes; the stored report keeps copies.
    f.config.backups[0].copies = vec![current.clone()];
    let report = drill(&f).await;
    assert!(report.passed, "{report:?}");
    let stored = super::last(&f.store, 1).await.unwrap();
    assert_eq!(stored[0].copies, report.copies);
}

#[test]
fn a_copy_is_judged_by_the_same_tree_and_time_or_else_its_newest_snapshot() {
    let id = |b: u8| bulwark_repo::Id([b; 32]);
    let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
    let start = t("2026-01-10T00:00:00Z");
    let wanted = (id(1), t("2026-01-09T00:00:00Z"));
    let day = Some(Duration::from_secs(86_400 + 60));
    // Present under another id.
    let c = check_copy(
        "r",
        wanted,
        Ok(vec![
            (id(9), id(1), t("2026-01-09T00:00:00Z")),
            (id(8), id(2), t("2026-01-08T00:00:00Z")),
        ]),
        start,
        day,
    );
    assert!(c.present && c.rpo_met == Some(true), "{c:?}");
    assert_eq!(c.snapshot, Some(id(9).to_hex()));
    // The same tree at another time is another snapshot: the newest counts.
    let c = check_copy(
        "r",
        wanted,
        Ok(vec![(id(7), id(1), t("2026-01-05T00:00:00Z"))]),
        start,
        day,
    );
    assert!(!c.present && c.rpo_met == Some(false), "{c:?}");
    assert_eq!(c.age_seconds, Some(5.0 * 86_400.0));
    // Without a target only presence is recorded.
    let c = check_copy("r", wanted, Ok(vec![]), start, None);
    assert!(!c.present && c.rpo_met.is_none() && c.ok(), "{c:?}");
    let c = check_copy("r", wanted, Err("wrong password".into()), start, None);
    assert!(
        !c.ok() && c.error.as_deref() == Some("wrong password"),
        "{c:?}"
    );
}

/// Backs up the fixture's app again as it was `days_ago`, with a file
/// saying so; returns the snapshot's id.
fn backup_dated(f: &Fixture, days_ago: i64) -> String {
    let app = f.dir.path().join("app");
    std::fs::write(app.join("version"), format!("{days_ago} days ago\n")).unwrap();
    let mut repo = crate::backups::open(&f.config.backups[0]).unwrap();
    let time = Utc::now() - chrono::Duration::days(days_ago);
    let opts = bulwark_repo::BackupOptions {
        paths: vec![app],
        time: Some(time.fixed_offset()),
        ..Default::default()
    };
    bulwark_repo::backup(&mut repo, &opts, |_| {})
        .unwrap()
        .snapshot_id
        .to_hex()
}

async fn run_drill(f: &Fixture, drill: &DrillConfig) -> DrillReport {
    run(
        &f.store,
        &f.config,
        drill,
        &f.dir.path().join("data"),
        &Actor::system("test"),
        &Default::default(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn older_than_restores_the_newest_snapshot_at_least_that_old() {
    let f = fixture("true", false).await;
    let d100 = backup_dated(&f, 100);
    let d40 = backup_dated(&f, 40);
    let d10 = backup_dated(&f, 10);
    let mut drill = f.config.drills[0].clone();
    drill.rpo_target = None;

    drill.snapshot = SnapshotSpec::parse("older-than:30d", false).unwrap();
    let report = run_drill(&f, &drill).await;
    assert!(report.passed, "{report:#?}");
    assert_eq!(report.snapshot.as_deref(), Some(d40.as_str()));
    assert_eq!(
        report.snapshot_choice.as_deref(),
        Some("older-than:30d: the newest snapshot at least that old")
    );
    // The RPO is the restored snapshot's age, not the newest's.
    assert!(
        report.rpo_seconds.unwrap() >= 40.0 * 86_400.0,
        "{report:#?}"
    );

    drill.snapshot = SnapshotSpec::parse("older-than:50d", false).unwrap();
    assert_eq!(run_drill(&f, &drill).await.snapshot, Some(d100.clone()));
    drill.snapshot = SnapshotSpec::parse("older-than:5d", false).unwrap();
    assert_eq!(run_drill(&f, &drill).await.snapshot, Some(d10));

    // None old enough: the drill fails naming the age asked and the oldest's.
    drill.snapshot = SnapshotSpec::parse("older-than:365d", false).unwrap();
    let report = run_drill(&f, &drill).await;
    assert!(!report.passed);
    assert_eq!(report.failed_step.as_deref(), Some("snapshot_age"));
    let age = &report.steps[1].detail;
    assert!(
        age.contains("no snapshot is at least 365d old: the oldest is 100d"),
        "{age}"
    );

    // An id, as `drill run --snapshot ID` gives it.
    drill.snapshot = SnapshotSpec::parse(&d100[..10], true).unwrap();
    let report = run_drill(&f, &drill).await;
    assert_eq!(report.snapshot, Some(d100));
    assert!(report.passed, "{report:#?}");
}

#[tokio::test]
async fn random_restores_one_of_the_repositorys_snapshots() {
    let f = fixture("true", false).await;
    let mut ids = vec![backup_dated(&f, 3), backup_dated(&f, 2)];
    ids.extend(
        crate::backups::snapshots(&f.config.backups[0])
            .unwrap()
            .into_iter()
            .map(|(id, _)| id.to_hex()),
    );
    let mut drill = f.config.drills[0].clone();
    drill.rpo_target = None;
    drill.snapshot = SnapshotSpec::Random;
    let report = run_drill(&f, &drill).await;
    assert!(report.passed, "{report:#?}");
    assert!(
        ids.contains(report.snapshot.as_ref().unwrap()),
        "{report:#?}"
    );
    assert_eq!(
        report.snapshot_choice.as_deref(),
        Some("random: one of the 3 snapshots in the repository")
    );
}

#[tokio::test]
async fn expect_files_names_every_missing_file() {
    let f = fixture("true", false).await;
    let app = f.dir.path().join("app");
    let mut drill = f.config.drills[0].clone();
    // Relative to the backup's first path (where `start` runs), or
    // absolute as in the snapshot.
    drill.expect_files = vec![
        "run.sh".to_string(),
        "static/healthz".to_string(),
        app.join("static/healthz").display().to_string(),
    ];
    let report = run_drill(&f, &drill).await;
    assert!(report.passed, "{report:#?}");
    let step = report
        .steps
        .iter()
        .find(|s| s.name == "expect_files")
        .unwrap();
    assert_eq!(step.detail, "all 3 expected files restored");

    drill.expect_files = vec![
        "run.sh".to_string(),
        "etc/app.toml".to_string(),
        app.join("static/missing.db").display().to_string(),
    ];
    let report = run_drill(&f, &drill).await;
    assert!(!report.passed);
    assert_eq!(report.failed_step.as_deref(), Some("expect_files"));
    let step = report
        .steps
        .iter()
        .find(|s| s.name == "expect_files")
        .unwrap();
    assert_eq!(
        step.detail,
        format!(
            "2 of 3 expected files missing: etc/app.toml, {}",
            app.join("static/missing.db").display()
        )
    );
    // Not started with files missing; still cleaned up.
    assert!(report.steps.iter().all(|s| s.name != "start"));
    assert!(report
        .steps
        .last()
        .is_some_and(|s| s.name == "cleanup" && s.ok));
}
