//! `bulwark ops check` and `bulwark report` end to end: real processes, a
//! real SQLite file, a real repository, real loopback sockets.

use bulwark_ops::{open_incident, resolve_incident};
use std::net::TcpListener;
use std::path::Path;
use std::process::Output;

use bulwark_ops::{claim_run, finish_run, Actor, RunOutcome, Store, Trigger};

mod common;
use common::{bulwark_in, run, text, ts};

/// A config with one TCP monitor on `port`, an SLO on it, a backup, a drill
/// and a managed secret; the repository initialised.
fn setup(port: u16) -> tempfile::TempDir {
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
[[monitor]]
name = "api"
url = "tcp://127.0.0.1:{port}"
timeout = "2s"

[[slo]]
name = "api-availability"
monitor = "api"
target = 0.99
window = "30d"

[[backup]]
name = "app"
repo = "{}"
password_file = "{}"
paths = ["{}"]
schedule = "0 3 * * *"

[[drill]]
name = "weekly"
backup = "app"
start = "test -f index.html"
rpo_target = "1d"

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

fn rows(out: &Output) -> Vec<serde_json::Value> {
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)));
    v["rows"].as_array().unwrap().clone()
}

fn row<'a>(rows: &'a [serde_json::Value], area: &str, name: &str) -> &'a serde_json::Value {
    rows.iter()
        .find(|r| r["area"] == area && r["name"] == name)
        .unwrap_or_else(|| panic!("no {area}/{name} row in {rows:?}"))
}

#[test]
fn ops_check_passes_when_everything_ran_and_is_up() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = setup(listener.local_addr().unwrap().port());
    for args in [
        &["jobs", "run", "backup:app"][..],
        &["jobs", "run", "verify:app"],
        &["drill", "run", "weekly"],
        &["secrets", "rotate"],
    ] {
        let out = run(bulwark_in(dir.path()).args(args));
        assert!(out.status.success(), "{args:?}: {}", text(&out));
    }
    let out = run(bulwark_in(dir.path()).args(["ops", "check"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("checks passed"), "{}", text(&out));

    let out = run(bulwark_in(dir.path()).args(["--json", "ops", "check"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let rows = rows(&out);
    for (area, name) in [
        ("monitor", "api"),
        ("slo", "api-availability"),
        ("backup", "app"),
        ("verify", "app"),
        ("drill", "weekly"),
        ("secret", "DASHBOARD_KEY"),
        ("audit", "chain"),
    ] {
        assert_eq!(
            row(&rows, area, name)["ok"],
            true,
            "{area}/{name}: {rows:?}"
        );
    }
    assert_eq!(rows[0]["area"], "config");
    // The secret's value is never on the table.
    let value =
        std::fs::read_to_string(dir.path().join("data/secrets/runtime/DASHBOARD_KEY")).unwrap();
    assert!(!text(&out).contains(value.trim()));
    drop(listener);
}

#[test]
fn ops_check_fails_naming_a_closed_port_and_a_backup_never_run() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = setup(port);
    let out = run(bulwark_in(dir.path()).args(["ops", "check"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("monitor") && t.contains("FAIL"), "{t}");

    let out = run(bulwark_in(dir.path()).args(["--json", "ops", "check"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let rows = rows(&out);
    assert_eq!(row(&rows, "monitor", "api")["ok"], false);
    let backup = row(&rows, "backup", "app");
    assert_eq!(backup["ok"], false);
    assert_eq!(backup["detail"], "no backup run recorded");
    assert_eq!(
        row(&rows, "drill", "weekly")["detail"],
        "no drill run recorded"
    );
    assert_eq!(row(&rows, "secret", "DASHBOARD_KEY")["ok"], false);
    assert_eq!(row(&rows, "audit", "chain")["ok"], true);
}

#[test]
fn ops_check_exits_1_on_an_invalid_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bulwark.toml"),
        "[[slo]]\nname = \"x\"\nmonitor = \"missing\"\ntarget = 0.99\n",
    )
    .unwrap();
    let out = run(bulwark_in(dir.path()).args(["--json", "ops", "check"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let rows = rows(&out);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["area"], "config");
    assert_eq!(rows[0]["ok"], false);
}

/// Seeds a month of evidence through the ops functions that write it.
async fn seed(data: &Path, period: &bulwark_ops::Period) {
    let store = Store::open(None, data).await.unwrap();
    let start = period.start();
    let ms = start.timestamp_millis();
    // Day 1: 10 probes, 2 failed; day 2: 10 good.
    for i in 0..20_i64 {
        let r = bulwark_ops::ProbeResult {
            monitor: "api".into(),
            at: ts(ms + (i / 10) * 86_400_000 + (i % 10) * 60_000),
            ok: !(i == 3 || i == 4),
            latency: std::time::Duration::from_millis(5),
            status: None,
            error: None,
        };
        bulwark_ops::record_result(&store, &r).await.unwrap();
    }
    open_incident(&store, "api", ts(ms + 3 * 60_000), "<b>refused</b>")
        .await
        .unwrap();
    resolve_incident(&store, "api", ts(ms + 5 * 60_000))
        .await
        .unwrap();
    for (i, outcome) in [
        RunOutcome::Success,
        RunOutcome::Failure,
        RunOutcome::Success,
    ]
    .into_iter()
    .enumerate()
    {
        let at = start + chrono::Duration::hours(3 + i as i64);
        let mut r = claim_run(
            &store,
            "backup:app",
            at,
            Trigger::Manual,
            "test",
            &Actor::cli(),
            at,
            std::time::Duration::from_secs(60),
        )
        .await
        .unwrap();
        finish_run(
            &store,
            &mut r,
            outcome,
            "seeded",
            at + chrono::Duration::minutes(1),
        )
        .await
        .unwrap();
    }
    store.close().await;
}

#[test]
fn report_renders_seeded_evidence_in_all_three_formats() {
    let dir = setup(1);
    // Rotations are audited at the real time, so the report is for this month.
    let period = bulwark_ops::current_period(chrono::Utc::now());
    let out = run(bulwark_in(dir.path()).args(["secrets", "rotate"]));
    assert!(out.status.success(), "{}", text(&out));
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(seed(&dir.path().join("data"), &period));
    let p = period.to_string();

    let out = run(bulwark_in(dir.path()).args(["report", "--period", &p, "--format", "json"]));
    assert!(out.status.success(), "{}", text(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["period"], p);
    assert_eq!(r["monitors"][0]["total"], 20);
    assert_eq!(r["monitors"][0]["failures"], 2);
    assert_eq!(r["monitors"][0]["uptime"], 0.9);
    assert_eq!(r["monitors"][0]["sla_met"], false);
    assert_eq!(r["monitors"][0]["daily"][1]["uptime"], 1.0);
    assert_eq!(r["incidents"][0]["duration_seconds"], 120);
    assert_eq!(r["slos"][0]["attainment"], 0.9);
    assert_eq!(r["backups"][0]["runs"], 3);
    assert_eq!(r["backups"][0]["failures"], 1);
    assert_eq!(r["rotations"][0]["secret"], "DASHBOARD_KEY");
    assert_eq!(r["rotations"][0]["version"], 1);

    let out = run(bulwark_in(dir.path()).args(["report", "--period", &p, "--format", "md"]));
    assert!(out.status.success(), "{}", text(&out));
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(
        md.contains(&format!("# Reliability evidence report {p}")),
        "{md}"
    );
    assert!(
        md.contains("| api | 90.000% | 99.000% | NO | 20 | 2 | 1 | 2m"),
        "{md}"
    );
    assert!(md.contains("DASHBOARD_KEY"), "{md}");

    let file = dir.path().join("report.html");
    let out = run(bulwark_in(dir.path())
        .args(["report", "--period", &p, "--format", "html", "--output"])
        .arg(&file));
    assert!(out.status.success(), "{}", text(&out));
    let html = std::fs::read_to_string(&file).unwrap();
    assert!(html.contains("<svg"), "{html}");
    assert!(html.contains("90.000%"));
    assert!(html.contains("&lt;b&gt;refused&lt;/b&gt;"), "{html}");
    assert!(!html.contains("<b>refused"));
    let value =
        std::fs::read_to_string(dir.path().join("data/secrets/runtime/DASHBOARD_KEY")).unwrap();
    assert!(!html.contains(value.trim()));
    assert!(!md.contains(value.trim()));

    // The scheduler's `report` job writes last month's report to the data dir.
    let out = run(bulwark_in(dir.path()).args(["jobs", "run", "report"]));
    assert!(out.status.success(), "{}", text(&out));
    let last = period.previous().to_string();
    for ext in ["html", "json"] {
        let f = dir.path().join(format!("data/reports/report_{last}.{ext}"));
        assert!(f.is_file(), "{}: {}", f.display(), text(&out));
    }
}

#[test]
fn report_rejects_a_bad_period_naming_it() {
    let dir = setup(1);
    for bad in ["2026-13", "2026-1", "Jan-2026"] {
        let out = run(bulwark_in(dir.path()).args(["report", "--period", bad]));
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains(&format!("\"{bad}\"")), "{}", text(&out));
    }
}
