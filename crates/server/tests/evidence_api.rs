//! The evidence routes — snapshots of configured backups, `ops check`, the
//! monthly report and drill history — over a real local repository and a
//! real SQLite store.

use axum::http::StatusCode;
use bulwark_repo::{open_backend, KdfParams, Repository};

mod common;
use common::{Harness, ADMIN, ANALYST};

/// A repository holding one backup of a small tree, a second `[[backup]]`
/// whose repository does not exist, and a monitor on a closed port.
async fn with_backups() -> (Harness, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("index.html"), "<h1>hello</h1>").unwrap();
    let repo = dir.path().join("repo");
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "correct horse\n").unwrap();
    Repository::init(
        open_backend(repo.to_str().unwrap()).unwrap(),
        b"correct horse",
        KdfParams::INSECURE_FAST,
    )
    .unwrap();
    // Port 9 (discard) is closed on loopback in the test environment.
    let text = format!(
        r#"
[[monitor]]
name = "closed"
url = "tcp://127.0.0.1:9"
timeout = "500ms"

[[backup]]
name = "app"
repo = "{repo}"
password_file = "{pw}"
paths = ["{app}"]

[[backup]]
name = "gone"
repo = "{missing}"
password_file = "{pw}"
paths = ["{app}"]
"#,
        repo = repo.display(),
        pw = pw.display(),
        app = app.display(),
        missing = dir.path().join("missing").display(),
    );
    let h = Harness::new(&text).await;
    let run = bulwark_ops::run_backup(&h.state.instance.config.backups[0], &Default::default())
        .await
        .unwrap();
    assert_eq!(run.files, 1);
    (h, dir)
}

#[tokio::test]
async fn snapshots_are_listed_per_backup_and_an_unreadable_repository_is_named() {
    let (h, _dir) = with_backups().await;
    assert_eq!(
        h.call("GET", "/api/v1/snapshots", None, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, list) = h
        .call("GET", "/api/v1/snapshots", Some(ANALYST), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["backup"], "app");
    assert_eq!(list[0]["error"], serde_json::Value::Null);
    let snaps = list[0]["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0]["id"].as_str().unwrap().len(), 64);
    assert!(snaps[0]["paths"][0].as_str().unwrap().ends_with("/app"));
    assert_eq!(list[1]["backup"], "gone");
    assert!(list[1]["snapshots"].as_array().unwrap().is_empty());
    let err = list[1]["error"].as_str().unwrap();
    assert!(err.contains("gone"), "{err}");
    // The password never leaves the process.
    assert!(!list.iter().any(|b| b.to_string().contains("correct horse")));

    let (status, one) = h
        .call("GET", "/api/v1/snapshots?backup=app", Some(ANALYST), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one.as_array().unwrap().len(), 1);
    let (status, body) = h
        .call("GET", "/api/v1/snapshots?backup=nope", Some(ANALYST), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.to_string().contains("nope"), "{body}");
}

#[tokio::test]
async fn ops_check_names_the_failing_rows() {
    let (h, _dir) = with_backups().await;
    let (status, check) = h
        .call("GET", "/api/v1/ops/check", Some(ANALYST), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{check}");
    assert_eq!(check["ok"], false);
    let rows = check["rows"].as_array().unwrap();
    let row = |area: &str, name: &str| {
        rows.iter()
            .find(|r| r["area"] == area && r["name"] == name)
            .unwrap_or_else(|| panic!("no {area} row for {name}: {check}"))
            .clone()
    };
    assert_eq!(row("monitor", "closed")["ok"], false);
    assert_eq!(row("audit", "chain")["ok"], true, "{check}");
}

#[tokio::test]
async fn monthly_report_in_each_format_and_bad_periods_are_refused() {
    let h = Harness::new("[[monitor]]\nname = \"api\"\nurl = \"tcp://127.0.0.1:9\"\n").await;
    let (status, json) = h
        .call("GET", "/api/v1/reports/2026-10", Some(ANALYST), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert!(json.is_object(), "{json}");
    let (status, md) = h
        .text(
            "GET",
            "/api/v1/reports/2026-10?format=md",
            Some(ANALYST),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(md.starts_with('#') && md.contains("2026-10"), "{md}");
    let (status, html) = h
        .text(
            "GET",
            "/api/v1/reports/2026-10?format=html",
            Some(ANALYST),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<html") && html.contains("api"), "{html}");

    for (uri, needle) in [
        ("/api/v1/reports/2026-13", "2026-13"),
        ("/api/v1/reports/2026-10?format=pdf", "pdf"),
    ] {
        let (status, body) = h.call("GET", uri, Some(ANALYST), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(body.to_string().contains(needle), "{uri}: {body}");
    }
}

#[tokio::test]
async fn drills_and_slos_under_the_versioned_api() {
    let h = Harness::new(
        "[[monitor]]\nname = \"api\"\nurl = \"tcp://127.0.0.1:9\"\n\n[[slo]]\nname = \"api-availability\"\nmonitor = \"api\"\ntarget = 0.99\nwindow = \"1h\"\n",
    )
    .await;
    let (status, drills) = h.call("GET", "/api/v1/drills", Some(ANALYST), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(drills, serde_json::json!([]));
    let (status, body) = h
        .call("GET", "/api/v1/drills?limit=0", Some(ANALYST), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.to_string().contains("limit"), "{body}");

    let (_, v1) = h.call("GET", "/api/v1/slos", Some(ANALYST), None).await;
    let (_, ops) = h
        .call("GET", "/api/ops/slo/status", Some(ANALYST), None)
        .await;
    // The same answer, but for the window's start: it moves with the clock.
    let without_clock = |mut v: serde_json::Value| {
        v[0].as_object_mut().unwrap().remove("window_start");
        v
    };
    assert_eq!(v1[0]["name"], "api-availability");
    assert_eq!(without_clock(v1), without_clock(ops));

    let (_, doc) = h.call("GET", "/api/openapi.json", None, None).await;
    for path in [
        "/api/v1/snapshots",
        "/api/v1/ops/check",
        "/api/v1/reports/{period}",
        "/api/v1/drills",
        "/api/v1/slos",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_ops_checks_run_one_check() {
    let (h, _dir) = with_backups().await;
    let answers = h.concurrently(8, "/api/v1/ops/check", Some(ANALYST)).await;
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::OK, "{body}");
        assert_eq!(body, &answers[0].1, "one check, one answer");
    }
    assert_eq!(h.view_computations("ops_check"), 1);
    // Within the TTL, later calls are answered from the cache.
    let (status, _) = h
        .call("GET", "/api/v1/ops/check", Some(ANALYST), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h.view_computations("ops_check"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_snapshot_listings_open_each_repository_once() {
    let (h, _dir) = with_backups().await;
    let answers = h.concurrently(16, "/api/v1/snapshots", Some(ANALYST)).await;
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::OK, "{body}");
        assert_eq!(body, &answers[0].1);
    }
    // Two configured backups ("app" and the unreadable "gone"): two
    // openings, not thirty-two.
    assert_eq!(h.view_computations("snapshots"), 2);
    let (status, one) = h
        .call("GET", "/api/v1/snapshots?backup=app", Some(ANALYST), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one[0]["snapshots"].as_array().unwrap().len(), 1);
    assert_eq!(h.view_computations("snapshots"), 2);
}

/// Polls a started run until it ends; its final document.
async fn finished_run(h: &Harness, id: &str) -> serde_json::Value {
    for _ in 0..600 {
        let (status, run) = h
            .call(
                "GET",
                &format!("/api/v1/jobs/runs/{id}"),
                Some(ANALYST),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{run}");
        if run["outcome"] != "running" {
            assert!(run["progress"].is_null(), "no progress once ended: {run}");
            return run;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("run {id} did not end");
}

#[tokio::test]
async fn restore_through_the_api_runs_as_a_job_and_is_audited() {
    let (h, dir) = with_backups().await;
    let target = dir.path().join("restored");
    let body = |snapshot: &str, target: &std::path::Path, overwrite: bool| {
        serde_json::json!({ "snapshot": snapshot, "target": target, "overwrite": overwrite })
            .to_string()
    };
    let uri = "/api/v1/backups/app/restore";

    let (status, _) = h
        .call(
            "POST",
            uri,
            Some(ANALYST),
            Some(&body("latest", &target, false)),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = h
        .call(
            "POST",
            "/api/v1/backups/nope/restore",
            Some(common::ADMIN),
            Some(&body("latest", &target, false)),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, err) = h
        .call(
            "POST",
            uri,
            Some(common::ADMIN),
            Some(r#"{"snapshot":"latest","target":"relative/dir"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(err["error"].as_str().unwrap().contains("absolute"), "{err}");
    // Into the root, however spelt, the files would land on the originals.
    for root in ["/", "/tmp/../"] {
        let (status, err) = h
            .call(
                "POST",
                uri,
                Some(common::ADMIN),
                Some(&body("latest", std::path::Path::new(root), true)),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{root}: {err}");
    }
    let actions = h.audit_actions().await;
    assert!(
        actions[0].starts_with("backup.restore denied app"),
        "refusals are audited: {actions:?}"
    );

    let (status, started) = h
        .call(
            "POST",
            uri,
            Some(common::ADMIN),
            Some(&body("latest", &target, false)),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let id = started["run_id"].as_str().unwrap().to_string();
    assert_eq!(started["job"], "restore:app");
    assert_eq!(started["status_url"], format!("/api/v1/jobs/runs/{id}"));
    let run = finished_run(&h, &id).await;
    assert_eq!(run["outcome"], "success", "{run}");
    assert!(
        run["summary"].as_str().unwrap().contains("1 files"),
        "{run}"
    );
    let app = dir.path().join("app");
    let restored = target
        .join(app.strip_prefix("/").unwrap())
        .join("index.html");
    assert_eq!(
        std::fs::read_to_string(&restored).unwrap(),
        "<h1>hello</h1>"
    );

    // The run's own record follows its end (the scheduler audits once the
    // run is over), so it may land a moment after the run reads as ended.
    let mut actions = h.audit_actions().await;
    for _ in 0..200 {
        if actions.contains(&"job.run success restore:app".to_string()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        actions = h.audit_actions().await;
    }
    assert!(
        actions.contains(&"backup.restore success app".to_string()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"job.run success restore:app".to_string()),
        "{actions:?}"
    );

    // The target now has the tree: refused unless asked to overwrite.
    let (status, err) = h
        .call(
            "POST",
            uri,
            Some(common::ADMIN),
            Some(&body("latest", &target, false)),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        err["error"].as_str().unwrap().contains("overwrite"),
        "{err}"
    );

    // By the archive name `bulwark export` gives, into a fresh directory.
    let (_, snaps) = h
        .call("GET", "/api/v1/snapshots?backup=app", Some(ANALYST), None)
        .await;
    let snap = &snaps[0]["snapshots"][0];
    // restic's summary, with the snapshot's size.
    assert_eq!(snap["summary"]["total_bytes_processed"], 14, "{snap}");
    assert_eq!(snap["summary"]["total_files_processed"], 1, "{snap}");
    let time = chrono::DateTime::parse_from_rfc3339(snap["time"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    let name = format!("app-backup-{}.tar.gz", time.format("%Y%m%d_%H%M%S"));
    let (status, started) = h
        .call(
            "POST",
            uri,
            Some(common::ADMIN),
            Some(&body(&name, &dir.path().join("by-name"), false)),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let run = finished_run(&h, started["run_id"].as_str().unwrap()).await;
    assert_eq!(run["outcome"], "success", "{run}");
    assert!(
        run["summary"]
            .as_str()
            .unwrap()
            .contains(&snap["short_id"].as_str().unwrap()[..8]),
        "{run}"
    );

    // A name that matches nothing: the run fails and says why.
    let (_, started) = h
        .call(
            "POST",
            uri,
            Some(common::ADMIN),
            Some(&body(
                "app-backup-20000101_000000.tar.gz",
                &dir.path().join("none"),
                false,
            )),
        )
        .await;
    let run = finished_run(&h, started["run_id"].as_str().unwrap()).await;
    assert_eq!(run["outcome"], "failure", "{run}");
    assert!(
        run["summary"]
            .as_str()
            .unwrap()
            .contains("no snapshot taken at"),
        "{run}"
    );
}

/// Two restores into one empty directory, both checked before either ran
/// (two API calls a moment apart): the second finds the first's files
/// under the target's lock and fails, instead of mixing two restores in
/// one tree.
#[tokio::test]
async fn a_restore_into_a_target_filled_since_its_request_fails_instead_of_mixing() {
    let (h, dir) = with_backups().await;
    let request = bulwark_ops::RestoreRequest {
        snapshot: "latest".into(),
        target: dir.path().join("restored"),
        include: vec![],
        overwrite: false,
    };
    request.validate(&[]).unwrap();
    request.validate(&[]).unwrap();
    let backup = h.state.instance.config.backups[0].clone();
    let actor = bulwark_ops::Actor::system("test");
    let mut outcomes = Vec::new();
    for _ in 0..2 {
        let task = bulwark_ops::RestoreJob {
            backup: backup.clone(),
            request: request.clone(),
            roots: vec![],
        };
        let scheduler = &h.state.instance.scheduler;
        let run = scheduler
            .start_task("restore:app", task, &actor)
            .await
            .unwrap();
        outcomes.push(finished_run(&h, &run.id).await);
    }
    assert_eq!(outcomes[0]["outcome"], "success", "{}", outcomes[0]);
    assert_eq!(outcomes[1]["outcome"], "failure", "{}", outcomes[1]);
    let summary = outcomes[1]["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains("is not empty; pass \"overwrite\": true"),
        "{summary}"
    );
    assert!(!summary.contains("repository"), "{summary}");
}

/// Every documented JSON operation serves exactly the shape
/// `/api/openapi.json` gives the status it answered, read strictly (no
/// undocumented field, every documented one present, formats checked), and
/// every schema those operations can return holds a served value at least
/// once: the store has something in every list (a backup with a copy, a
/// verification, a drill with its copy check, a rotation, a restore, an
/// incident, a storage cost, a key, a silence, a maintenance window, a push
/// token and its ping, probe results, the monthly report), and a restore is
/// caught in flight for its progress.
#[tokio::test]
async fn every_json_route_serves_the_schema_it_documents() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("index.html"), "<h1>hello</h1>").unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "correct horse\n").unwrap();
    for name in ["repo", "copy"] {
        Repository::init(
            open_backend(dir.path().join(name).to_str().unwrap()).unwrap(),
            b"correct horse",
            KdfParams::INSECURE_FAST,
        )
        .unwrap();
    }
    let backup = |name: &str, pw: &std::path::Path| {
        format!(
            "[[backup]]\nname = \"{name}\"\nrepo = \"{}\"\npassword_file = \"{}\"\npaths = [\"{}\"]\n",
            dir.path().join("repo").display(),
            pw.display(),
            app.display()
        )
    };
    let h = Harness::new(&format!(
        r#"
[cost]
prices = {{ local = 10.0 }}

[[monitor]]
name = "closed"
url = "tcp://127.0.0.1:9"
timeout = "500ms"

[[monitor]]
name = "cron"
type = "push"
period = "1h"

[[slo]]
name = "closed-availability"
monitor = "closed"
target = 0.99
window = "7d"

{app}repos = ["{copy}"]

[[drill]]
name = "weekly"
backup = "app"

[[secret]]
name = "DASHBOARD_KEY"
"#,
        app = backup("app", &pw),
        copy = dir.path().join("copy").display(),
    ))
    .await;
    let store = &h.state.instance.store;
    let now = chrono::Utc::now().timestamp_millis();
    // Some budget spent, not enough to fail `/healthz/strict`.
    h.seed_hour("closed", now - now % 3_600_000 - 3_600_000, 1000, 1)
        .await;
    bulwark_ops::open_incident(store, "closed", common::ts(now), "connection refused")
        .await
        .unwrap();
    let restore = |to: &str| {
        serde_json::json!({ "snapshot": "latest", "target": dir.path().join(to) }).to_string()
    };
    let period = bulwark_ops::current_period(chrono::Utc::now()).to_string();
    let mut c = h.conformance().await;

    // Changes first, so every list below has an entry.
    for job in [
        "backup:app",
        "verify:app",
        "drill:weekly",
        "rotate:DASHBOARD_KEY",
        "slo",
        "cost",
    ] {
        let uri = format!("/api/v1/jobs/{job}/run");
        c.check(&h, "POST", "/api/v1/jobs/{name}/run", &uri, ADMIN, None)
            .await;
    }
    let started = c
        .check(
            &h,
            "POST",
            "/api/v1/backups/{name}/restore",
            "/api/v1/backups/app/restore",
            ADMIN,
            Some(&restore("restored")),
        )
        .await;
    let run = started["run_id"].as_str().unwrap_or_default().to_string();
    finished_run(&h, &run).await;
    let key = c
        .check(
            &h,
            "POST",
            "/api/v1/keys",
            "/api/v1/keys",
            ADMIN,
            Some(r#"{"role":"analyst","name":"ci"}"#),
        )
        .await;
    c.check(
        &h,
        "POST",
        "/api/v1/secrets/{name}/rotate",
        "/api/v1/secrets/DASHBOARD_KEY/rotate?force=true",
        ADMIN,
        None,
    )
    .await;
    let silence = r#"{"monitor":"closed","duration":"2h","comment":"deploy"}"#;
    let silence = c
        .check(
            &h,
            "POST",
            "/api/v1/silences",
            "/api/v1/silences",
            ADMIN,
            Some(silence),
        )
        .await;
    let window = r#"{"name":"upgrade","monitors":["closed"],"starts_at":"2030-01-01T00:00:00Z","ends_at":"2030-01-01T02:00:00Z"}"#;
    c.check(
        &h,
        "POST",
        "/api/v1/maintenance",
        "/api/v1/maintenance",
        ADMIN,
        Some(window),
    )
    .await;
    let made = c
        .check(
            &h,
            "POST",
            "/api/v1/monitors/{name}/push-token",
            "/api/v1/monitors/cron/push-token",
            ADMIN,
            None,
        )
        .await;
    let ping = format!(
        "/api/v1/push/{}",
        made["token"].as_str().unwrap_or_default()
    );
    c.check(&h, "POST", "/api/v1/push/{token}", &ping, ADMIN, None)
        .await;
    c.check(&h, "GET", "/api/v1/push/{token}", &ping, ADMIN, None)
        .await;
    c.check(
        &h,
        "POST",
        "/api/ops/uptime/test",
        "/api/ops/uptime/test",
        ADMIN,
        None,
    )
    .await;

    for (template, uri) in [
        ("/healthz", "/healthz".to_string()),
        ("/healthz/strict", "/healthz/strict".to_string()),
        ("/api/v1/whoami", "/api/v1/whoami".to_string()),
        ("/api/v1/keys", "/api/v1/keys".to_string()),
        ("/api/v1/audit", "/api/v1/audit".to_string()),
        ("/api/v1/secrets", "/api/v1/secrets".to_string()),
        ("/api/v1/jobs", "/api/v1/jobs".to_string()),
        ("/api/v1/jobs/runs/{id}", format!("/api/v1/jobs/runs/{run}")),
        ("/api/ops/dr/last", "/api/ops/dr/last".to_string()),
        ("/api/v1/drills", "/api/v1/drills".to_string()),
        ("/api/v1/snapshots", "/api/v1/snapshots".to_string()),
        ("/api/v1/ops/check", "/api/v1/ops/check".to_string()),
        (
            "/api/v1/reports/{period}",
            format!("/api/v1/reports/{period}"),
        ),
        ("/api/ops/slo/status", "/api/ops/slo/status".to_string()),
        ("/api/v1/slos", "/api/v1/slos".to_string()),
        ("/api/v1/monitors", "/api/v1/monitors".to_string()),
        (
            "/api/v1/monitors/{name}/results",
            "/api/v1/monitors/closed/results".to_string(),
        ),
        (
            "/api/v1/monitors/{name}/results",
            "/api/v1/monitors/closed/results?resolution=minute&since=2000-01-01T00:00:00Z"
                .to_string(),
        ),
        ("/api/v1/incidents", "/api/v1/incidents".to_string()),
        ("/api/v1/silences", "/api/v1/silences".to_string()),
        ("/api/v1/maintenance", "/api/v1/maintenance".to_string()),
    ] {
        c.check(&h, "GET", template, &uri, ADMIN, None).await;
    }
    // Removals answer with what they removed.
    let uri = format!("/api/v1/keys/{}", key["id"].as_str().unwrap_or_default());
    c.check(&h, "DELETE", "/api/v1/keys/{id}", &uri, ADMIN, None)
        .await;
    let uri = format!(
        "/api/v1/silences/{}",
        silence["id"].as_str().unwrap_or_default()
    );
    c.check(&h, "DELETE", "/api/v1/silences/{id}", &uri, ADMIN, None)
        .await;

    // A restore in flight shows its progress: its backup's password file
    // is a FIFO, so opening the repository waits until the test writes it.
    let fifo = dir.path().join("pw.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let slow = Harness::new(&backup("slow", &fifo)).await;
    let started = slow
        .call(
            "POST",
            "/api/v1/backups/slow/restore",
            Some(ADMIN),
            Some(&restore("restored-slowly")),
        )
        .await
        .1;
    let uri = format!(
        "/api/v1/jobs/runs/{}",
        started["run_id"].as_str().unwrap_or_default()
    );
    loop {
        let (_, run) = slow.call("GET", &uri, Some(ADMIN), None).await;
        if run["progress"].is_object() {
            break;
        }
        assert_eq!(run["outcome"], "running", "{run}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    c.check(&slow, "GET", "/api/v1/jobs/runs/{id}", &uri, ADMIN, None)
        .await;
    tokio::task::spawn_blocking(move || std::fs::write(fifo, "correct horse\n"))
        .await
        .unwrap()
        .unwrap();
    let run = finished_run(&slow, started["run_id"].as_str().unwrap_or_default()).await;
    assert_eq!(run["outcome"], "success", "{run}");

    c.finish();
}

/// With `[server] restore_roots`, the restore API writes only below them: a
/// target elsewhere is a 400 naming the setting, and the refusal is
/// audited.
#[tokio::test]
async fn restores_through_the_api_stay_inside_restore_roots() {
    let dir = tempfile::tempdir().unwrap();
    let roots = dir.path().join("restores");
    let h = Harness::new(&format!(
        "[server]\nrestore_roots = [\"{}\"]\n\n[[backup]]\nname = \"app\"\nrepo = \"{}\"\npaths = [\"/srv/app\"]\n",
        roots.display(),
        dir.path().join("repo").display()
    ))
    .await;
    let body = |target: std::path::PathBuf| {
        serde_json::json!({ "snapshot": "latest", "target": target }).to_string()
    };
    let uri = "/api/v1/backups/app/restore";
    let outside = body(dir.path().join("elsewhere"));
    let (status, err) = h.call("POST", uri, Some(ADMIN), Some(&outside)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert!(
        err.to_string().contains("outside [server] restore_roots"),
        "{err}"
    );
    assert!(h.audit_actions().await[0].starts_with("backup.restore denied app"));

    let inside = body(roots.join("app"));
    let (status, started) = h.call("POST", uri, Some(ADMIN), Some(&inside)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
}
