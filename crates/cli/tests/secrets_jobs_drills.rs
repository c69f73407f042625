//! `bulwark secrets`, `jobs`, `verify` and `drill` end to end: real
//! processes, a real SQLite file, a real repository.

mod common;
use common::{bulwark_in, run, text};

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("index.html"), "hello").unwrap();
    std::fs::write(dir.path().join("pw"), "pw").unwrap();
    let repo = dir.path().join("repo");
    std::fs::write(
        dir.path().join("bulwark.toml"),
        format!(
            r#"
[[backup]]
name = "app"
repo = "{}"
password_file = "{}"
paths = ["{}"]

[[secret]]
name = "DASHBOARD_KEY"
"#,
            repo.display(),
            dir.path().join("pw").display(),
            app.display()
        ),
    )
    .unwrap();
    let init = run(bulwark_in(dir.path())
        .args(["init", "-r"])
        .arg(&repo)
        .arg("--password-file")
        .arg(dir.path().join("pw")));
    assert!(init.status.success(), "{}", text(&init));
    dir
}

#[test]
fn secrets_rotate_and_list_never_print_the_value() {
    let dir = setup();
    let out = run(bulwark_in(dir.path()).args(["secrets", "rotate"]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("DASHBOARD_KEY: rotated to version 1"));
    let value =
        std::fs::read_to_string(dir.path().join("data/secrets/runtime/DASHBOARD_KEY")).unwrap();
    let out = run(bulwark_in(dir.path()).args(["secrets", "rotate", "DASHBOARD_KEY"]));
    assert!(text(&out).contains("not due"), "{}", text(&out));
    let out = run(bulwark_in(dir.path()).args([
        "--json",
        "secrets",
        "rotate",
        "DASHBOARD_KEY",
        "--force",
    ]));
    assert!(out.status.success(), "{}", text(&out));
    let listed = run(bulwark_in(dir.path()).args(["--json", "secrets", "list"]));
    let json: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(json[0]["version"], 2);
    for o in [&out, &listed] {
        assert!(!text(o).contains(&value));
    }
    let unknown = run(bulwark_in(dir.path()).args(["secrets", "rotate", "NOPE"]));
    assert_eq!(unknown.status.code(), Some(2));
}

#[test]
fn jobs_list_and_run_backup_then_verify_passes() {
    let dir = setup();
    let out = run(bulwark_in(dir.path()).args(["--json", "jobs", "list"]));
    assert!(out.status.success(), "{}", text(&out));
    let jobs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<_> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        ["backup:app", "report", "rotate:DASHBOARD_KEY", "verify:app"]
    );

    let out = run(bulwark_in(dir.path()).args(["jobs", "run", "backup:app"]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("backup:app: success"), "{}", text(&out));
    let out = run(bulwark_in(dir.path()).args(["verify", "app"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(dir.path().join("data/logs/backup_verify.ndjson").is_file());

    let out = run(bulwark_in(dir.path()).args(["jobs", "list"]));
    assert!(text(&out).contains("success"), "{}", text(&out));
    let out = run(bulwark_in(dir.path()).args(["jobs", "run", "nope"]));
    assert_eq!(out.status.code(), Some(2));
}

/// `(status, body)` of the job-failure alert of `job`, as the alert router
/// stored it, read the way an operator with the database would.
fn job_alert(dir: &std::path::Path, job: &str) -> Option<String> {
    let db = dir.join("data/bulwark.db");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use sqlx::{Connection, Row};
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let rows = sqlx::query("SELECT status, body FROM alerts")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        rows.iter().find_map(|r| {
            let body: String = r.get("body");
            (body.contains("JobFailed") && body.contains(job)).then(|| r.get("status"))
        })
    })
}

/// The last run of `job` as `jobs list --json` shows it.
fn last_run(dir: &std::path::Path, job: &str) -> serde_json::Value {
    let out = run(bulwark_in(dir).args(["--json", "jobs", "list"]));
    let jobs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    jobs.as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == job)
        .map(|j| j["last_run"].clone())
        .unwrap_or_default()
}

#[test]
fn cli_verify_is_a_job_run_that_alerts_on_failure_and_resolves_on_success() {
    let dir = setup();
    assert!(
        run(bulwark_in(dir.path()).args(["jobs", "run", "backup:app"]))
            .status
            .success()
    );
    // Every pack gone: the repository is broken.
    let data = dir.path().join("repo/data");
    let aside = dir.path().join("repo/data.aside");
    std::fs::rename(&data, &aside).unwrap();
    std::fs::create_dir(&data).unwrap();
    let out = run(bulwark_in(dir.path()).args(["verify", "app"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("FAILED"));
    let failed = last_run(dir.path(), "verify:app");
    assert_eq!(failed["outcome"], "failure", "{failed}");
    assert_eq!(failed["trigger"], "manual", "{failed}");
    assert_eq!(
        job_alert(dir.path(), "verify:app").as_deref(),
        Some("firing")
    );

    // Repaired: the next run passes and resolves the alert.
    std::fs::remove_dir(&data).unwrap();
    std::fs::rename(&aside, &data).unwrap();
    let out = run(bulwark_in(dir.path()).args(["verify", "app"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(last_run(dir.path(), "verify:app")["outcome"], "success");
    assert_eq!(
        job_alert(dir.path(), "verify:app").as_deref(),
        Some("resolved")
    );
}

#[test]
fn drill_run_writes_a_report_that_drill_last_shows() {
    let dir = setup();
    let config = dir.path().join("bulwark.toml");
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml.push_str(
        "\n[[drill]]\nname = \"weekly\"\nbackup = \"app\"\nstart = \"test -f index.html\"\nrpo_target = \"1d\"\n",
    );
    std::fs::write(&config, toml).unwrap();
    // No snapshot yet: the drill fails at its snapshot step, exit 1.
    let out = run(bulwark_in(dir.path()).args(["drill", "run", "weekly"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        run(bulwark_in(dir.path()).args(["jobs", "run", "backup:app"]))
            .status
            .success()
    );
    let out = run(bulwark_in(dir.path()).args(["drill", "run"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("PASSED"));
    assert!(
        text(&out).contains("(latest: the newest snapshot)"),
        "{}",
        text(&out)
    );
    // `--snapshot` overrides the drill's choice: nothing is a year old.
    let out = run(bulwark_in(dir.path()).args([
        "drill",
        "run",
        "weekly",
        "--snapshot",
        "older-than:365d",
    ]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("no snapshot is at least 365d old: the oldest is"),
        "{}",
        text(&out)
    );
    // A spec that is none of the choices is refused before anything runs.
    let out = run(bulwark_in(dir.path()).args(["drill", "run", "weekly", "--snapshot", "oldest"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--snapshot: \"oldest\" is not a snapshot choice"));
    let out = run(bulwark_in(dir.path()).args(["--json", "drill", "last", "-n", "3"]));
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reports.as_array().unwrap().len(), 3);
    assert_eq!(reports[0]["failed_step"], "snapshot_age");
    assert_eq!(reports[1]["passed"], true);
    assert_eq!(reports[1]["snapshot_choice"], "latest: the newest snapshot");
    assert_eq!(reports[2]["failed_step"], "snapshot_age");
    let files = std::fs::read_dir(dir.path().join("data/logs"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("dr_report_")
        })
        .count();
    assert!(files >= 1);
}
