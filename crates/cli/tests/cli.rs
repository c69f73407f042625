//! The `bulwark` binary end to end: real processes, a real SQLite file, a
//! real server on a loopback port.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{bulwark, free_port, run, stdout, Server};

#[test]
fn config_check_reports_every_mistake_with_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bulwark.toml");
    std::fs::write(
        &config,
        r#"[server]
listen = "127.0.0.1:8080"

[[monitor]]
name = "api"
url = "http://127.0.0.1:9000/health"
intervall = "60s"

[[monitor]]
name = "db"
url = "tcp://127.0.0.1:5432"
interval = "6o s"

[[slo]]
name = "api-availability"
monitor = "web"
target = 0.995
"#,
    )
    .unwrap();
    let out = run(bulwark(dir.path())
        .arg("--config")
        .arg(&config)
        .args(["config", "check"]));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "three problems and a summary:\n{text}");
    let expect = [
        (7, "monitor[0].intervall"),
        (12, "monitor[1].interval"),
        (16, "slo[0].monitor"),
    ];
    for ((line, field), got) in expect.iter().zip(&lines) {
        assert!(
            got.contains(&format!("bulwark.toml:{line}:")),
            "line {line} in {got:?}"
        );
        assert!(got.contains(field), "{field} in {got:?}");
    }
    assert!(lines[3].contains("invalid (3 errors)"), "{text}");

    let json = run(bulwark(dir.path())
        .arg("--config")
        .arg(&config)
        .args(["--json", "config", "check"]));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["diagnostics"].as_array().unwrap().len(), 3);

    std::fs::write(&config, "[server]\nlisten = \"127.0.0.1:8080\"\n").unwrap();
    let ok = run(bulwark(dir.path())
        .arg("--config")
        .arg(&config)
        .args(["config", "check"]));
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
}

#[test]
fn a_named_config_file_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let out =
        run(bulwark(dir.path()).args(["--config", "/nonexistent/bulwark.toml", "config", "check"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("/nonexistent/bulwark.toml"));
    // Without --config a missing ./bulwark.toml means the embedded default.
    let out = run(bulwark(dir.path())
        .current_dir(dir.path())
        .args(["config", "check"]));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn keys_and_audit_verify_catch_a_hand_edited_record() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let created = run(bulwark(&data).current_dir(dir.path()).args([
        "--json", "keys", "create", "--role", "analyst", "--name", "grafana",
    ]));
    assert!(created.status.success(), "{created:?}");
    let created: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    let key = created["key"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    assert!(run(bulwark(&data)
        .current_dir(dir.path())
        .args(["keys", "revoke", &id]))
    .status
    .success());
    run(bulwark(&data)
        .current_dir(dir.path())
        .args(["keys", "create", "--role", "admin", "--name", "ops"]));

    let list = stdout(&run(bulwark(&data)
        .current_dir(dir.path())
        .args(["keys", "list"])));
    assert!(
        list.contains("grafana") && list.contains("revoked") && !list.contains(&key),
        "{list}"
    );

    let verify = run(bulwark(&data)
        .current_dir(dir.path())
        .args(["audit", "verify"]));
    assert_eq!(verify.status.code(), Some(0), "{verify:?}");
    assert!(stdout(&verify).contains("intact: 3 records"));

    let export = dir.path().join("audit.ndjson");
    let out = run(bulwark(&data)
        .current_dir(dir.path())
        .args(["audit", "export", "--output"])
        .arg(&export));
    assert!(out.status.success(), "{out:?}");
    let exported = std::fs::read_to_string(&export).unwrap();
    let actions: Vec<String> = exported
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(actions, ["key.create", "key.revoke", "key.create"]);
    assert!(!exported.contains(&key));

    // Edit record 2 by hand, as an intruder with the database file would.
    let db = data.join("bulwark.db");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use sqlx::{Connection, Executor};
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        conn.execute("DROP TRIGGER audit_log_no_update")
            .await
            .unwrap();
        conn.execute("UPDATE audit_log SET actor = 'cli:nobody' WHERE seq = 2")
            .await
            .unwrap();
        conn.close().await.unwrap();
    });
    let verify = run(bulwark(&data)
        .current_dir(dir.path())
        .args(["audit", "verify"]));
    assert_eq!(verify.status.code(), Some(1), "{verify:?}");
    let text = stdout(&verify);
    assert!(
        text.contains("BROKEN at record 2") && text.contains("altered"),
        "{text}"
    );
}

/// Starts `bulwark serve` and waits for /healthz.
fn start_server(dir: &Path, data: &Path) -> Server {
    common::serve(bulwark(data).current_dir(dir), None)
}

#[test]
fn serve_prints_an_admin_key_once_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = bulwark(&data)
        .current_dir(dir.path())
        .args(["serve", "--listen", &addr])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let key = loop {
        let line = lines.next().expect("bootstrap banner").unwrap();
        if let Some(k) = line.trim().strip_prefix("bwk_") {
            break format!("bwk_{k}");
        }
    };
    let client = reqwest::blocking::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let me: serde_json::Value = loop {
        match client
            .get(format!("http://{addr}/api/v1/whoami"))
            .header("x-dash-key", &key)
            .send()
        {
            Ok(r) => break r.json().unwrap(),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("server did not come up: {e}"),
        }
    };
    assert_eq!(me["role"], "admin");
    assert_eq!(me["name"], "bootstrap-admin");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert_eq!(exit.code(), Some(0), "graceful shutdown exits 0");

    // A second start finds the admin key and prints nothing.
    drop(start_server(dir.path(), &data));
    let audit = stdout(&run(bulwark(&data)
        .current_dir(dir.path())
        .args(["--json", "audit", "verify"])));
    let v: serde_json::Value = serde_json::from_str(&audit).unwrap();
    assert_eq!(v["records"], 1, "one key created in two starts: {audit}");
}
