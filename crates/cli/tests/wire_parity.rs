//! One set of wire types: every `--json` output is the document its HTTP
//! route serves, field for field. Only fields computed from the clock at
//! the moment of the call (window starts, ages, next runs, probe times)
//! are set aside.

mod common;

use common::{bulwark_in, run, stdout, text, without, Api};

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("index.html"), "hello").unwrap();
    std::fs::write(dir.path().join("pw"), "pw").unwrap();
    let repo = dir.path().join("repo");
    // A push monitor: nothing probes it, so nothing changes between calls.
    std::fs::write(
        dir.path().join("bulwark.toml"),
        format!(
            r#"
[[monitor]]
name = "cron"
type = "push"
period = "1h"

[[slo]]
name = "cron-runs"
monitor = "cron"
target = 0.99
window = "7d"

[[backup]]
name = "app"
repo = "{repo}"
password_file = "{pw}"
paths = ["{app}"]

[[drill]]
name = "weekly"
backup = "app"

[[secret]]
name = "DASHBOARD_KEY"
"#,
            repo = repo.display(),
            pw = dir.path().join("pw").display(),
            app = app.display()
        ),
    )
    .unwrap();
    let init = run(bulwark_in(dir.path())
        .args(["init", "-r"])
        .arg(&repo)
        .arg("--password-file")
        .arg(dir.path().join("pw")));
    assert!(init.status.success(), "{}", text(&init));
    for args in [
        &["jobs", "run", "backup:app"][..],
        &["drill", "run", "weekly"],
        &["secrets", "rotate"],
    ] {
        let out = run(bulwark_in(dir.path()).args(args));
        assert!(out.status.success(), "{args:?}: {}", text(&out));
    }
    dir
}

fn cli_json(dir: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let out = run(bulwark_in(dir).arg("--json").args(args));
    // `uptime check` and `ops check` exit 1 when something is down.
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{args:?}: {}",
        text(&out)
    );
    serde_json::from_str(stdout(&out).trim())
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", text(&out)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_json_output_is_the_document_its_route_serves() {
    let dir = tokio::task::spawn_blocking(setup).await.unwrap();
    let d = dir.path().to_path_buf();
    let api = Api::over(&d).await;
    let repo = d.join("repo").display().to_string();
    let pw = d.join("pw").display().to_string();
    let now = chrono::Utc::now();
    let period = bulwark_ops::current_period(now).to_string();
    let report_path = format!("/api/v1/reports/{period}");
    let pairs: Vec<(Vec<&str>, &str, &str, &[&str])> = vec![
        (
            vec!["slo", "status"],
            "GET",
            "/api/ops/slo/status",
            &["window_start", "exhaustion_at"],
        ),
        (vec!["drill", "last"], "GET", "/api/ops/dr/last", &[]),
        (vec!["jobs", "list"], "GET", "/api/v1/jobs", &["next_run"]),
        (
            vec!["secrets", "list"],
            "GET",
            "/api/v1/secrets",
            &["age_seconds"],
        ),
        (
            vec!["uptime", "check", "--once"],
            "POST",
            "/api/ops/uptime/test",
            &["ts", "latency_ms"],
        ),
        (
            vec!["ops", "check"],
            "GET",
            "/api/v1/ops/check",
            &["detail"],
        ),
        (
            vec!["report", "--period", &period],
            "GET",
            &report_path,
            &["generated_at"],
        ),
    ];
    for (args, method, path, volatile) in pairs {
        let cli = {
            let (d, args) = (d.clone(), args.clone());
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                cli_json(&d, &args)
            })
            .await
            .unwrap()
        };
        let served = api.json(method, path).await;
        assert!(
            !served.as_array().is_some_and(|a| a.is_empty()),
            "{path} served nothing to compare"
        );
        assert_eq!(
            without(cli, volatile),
            without(served, volatile),
            "`bulwark --json {}` and {method} {path} differ",
            args.join(" ")
        );
    }

    // The `report` job archives last month's report as the same document.
    let last = bulwark_ops::current_period(now).previous().to_string();
    let (archived, printed) = {
        let d = d.clone();
        tokio::task::spawn_blocking(move || {
            let out = run(bulwark_in(&d).args(["jobs", "run", "report"]));
            assert!(out.status.success(), "{}", text(&out));
            let file = d.join(format!("data/reports/report_{last}.json"));
            let archived: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
            (archived, cli_json(&d, &["report", "--period", &last]))
        })
        .await
        .unwrap()
    };
    assert_eq!(archived["schema"], 1);
    assert_eq!(
        without(archived, &["generated_at"]),
        without(printed, &["generated_at"])
    );

    // Snapshots: the repository command's list is the configured backup's.
    let cli = tokio::task::spawn_blocking(move || {
        cli_json(&d, &["snapshots", "-r", &repo, "--password-file", &pw])
    })
    .await
    .unwrap();
    let served = api.json("GET", "/api/v1/snapshots").await;
    assert_eq!(served[0]["backup"], "app");
    assert_eq!(cli.as_array().map(Vec::len), Some(1));
    assert_eq!(cli, served[0]["snapshots"]);
}
