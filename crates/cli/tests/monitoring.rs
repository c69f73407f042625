//! Monitoring end to end with real processes on loopback: a target server
//! that can be switched to fail, `bulwark serve` probing it every second,
//! and a webhook receiver counting notifications. Waits poll with generous
//! deadlines; nothing asserts on how long anything took.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;
use common::{run, Server};

const ADMIN: &str = "k-admin-monitoring";

/// `bulwark` with [`ADMIN`] as its one admin key.
fn bulwark(data_dir: &Path) -> Command {
    let mut cmd = common::bulwark(data_dir);
    cmd.env("ROLES_JSON", format!(r#"{{"{ADMIN}":"admin"}}"#));
    cmd
}

/// Reads one HTTP/1.1 request; returns (request line, body).
fn read_request(stream: &mut std::net::TcpStream) -> Option<(String, Vec<u8>)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut len = 0;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        if h == "\r\n" || h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some((line, body))
}

/// Answers 200 `{"status":"UP"}`, or 503 while `failing` is set.
struct Target {
    url: String,
    failing: Arc<AtomicBool>,
}

fn target() -> Target {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/health", listener.local_addr().unwrap());
    let failing = Arc::new(AtomicBool::new(false));
    let f = failing.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let f = f.clone();
            std::thread::spawn(move || {
                while read_request(&mut stream).is_some() {
                    let (code, body) = if f.load(Ordering::SeqCst) {
                        ("503 Service Unavailable", r#"{"status":"DOWN"}"#)
                    } else {
                        ("200 OK", r#"{"status":"UP"}"#)
                    };
                    let reply = format!(
                        "HTTP/1.1 {code}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    Target { url, failing }
}

/// Collects every webhook body it receives.
struct Receiver {
    url: String,
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Receiver {
    /// (status, monitor) of each incident notification (`MonitorDown`) so
    /// far. SLO alerts about the same monitor come from the SLO evaluator,
    /// on its own schedule, and are left out.
    fn events(&self) -> Vec<(String, String)> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .filter(|b| b["alerts"][0]["labels"]["alertname"] == "MonitorDown")
            .map(|b| {
                (
                    b["status"].as_str().unwrap_or("").to_string(),
                    b["alerts"][0]["labels"]["monitor"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                )
            })
            .collect()
    }
}

fn receiver() -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let b = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let b = b.clone();
            std::thread::spawn(move || {
                while let Some((_, body)) = read_request(&mut stream) {
                    b.lock()
                        .unwrap()
                        .push(serde_json::from_slice(&body).unwrap_or_default());
                    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
                }
            });
        }
    });
    Receiver { url, bodies }
}

fn get(server: &Server, path: &str) -> (u16, serde_json::Value) {
    let r = reqwest::blocking::Client::new()
        .get(format!("http://{}{path}", server.addr))
        .header("x-dash-key", ADMIN)
        .send()
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().unwrap_or_default())
}

/// Polls `f` until it returns Some, failing after a generous deadline.
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Raw results of `monitor`, newest first, as (ok, ts).
fn results(server: &Server, monitor: &str) -> Vec<(bool, String)> {
    let (_, v) = get(
        server,
        &format!("/api/v1/monitors/{monitor}/results?limit=1000"),
    );
    v["results"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| {
            (
                r["ok"].as_bool().unwrap_or(false),
                r["ts"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn incident_opens_after_strikes_notifies_once_per_change_and_respects_silences() {
    let api = target();
    let quiet = target();
    let hook = receiver();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("bulwark.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[monitor]]
name = "api"
url = "{api}"
interval = "1s"
timeout = "900ms"
strikes = 3
recover_after = 2
json = {{ "status" = "UP" }}

[[monitor]]
name = "quiet"
url = "{quiet}"
interval = "1s"
timeout = "900ms"
strikes = 2
recover_after = 2

[[slo]]
name = "api-availability"
monitor = "api"
target = 0.999
window = "1h"

[[channel]]
name = "ops"
type = "webhook"
url = "{hook}"
"#,
            api = api.url,
            quiet = quiet.url,
            hook = hook.url
        ),
    )
    .unwrap();

    // Silence "quiet" before serving, through the CLI.
    let out = run(bulwark(&data).arg("--config").arg(&config).args([
        "silence",
        "add",
        "--monitor",
        "quiet",
        "--duration",
        "1h",
        "--comment",
        "test",
    ]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let server = common::serve(bulwark(&data).arg("--config").arg(&config), None);
    wait_for("first successful probes", || {
        let r = results(&server, "api");
        (r.len() >= 2 && r.iter().all(|(ok, _)| *ok)).then_some(())
    });
    let (code, body) = get(&server, "/healthz/strict");
    assert_eq!(code, 200, "{body}");

    api.failing.store(true, Ordering::SeqCst);
    quiet.failing.store(true, Ordering::SeqCst);
    wait_for("the firing notification", || {
        hook.events()
            .contains(&("firing".to_string(), "api".to_string()))
            .then_some(())
    });
    // The incident opened on the third failure in a row, not before.
    let (_, incidents) = get(&server, "/api/v1/incidents?monitor=api");
    let incident = incidents[0].clone();
    assert!(incident["resolved_at"].is_null(), "{incident}");
    let time = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap();
    let opened_at = time(incident["opened_at"].as_str().unwrap());
    let history = results(&server, "api");
    let failures_until_open = history
        .iter()
        .filter(|(ok, ts)| !ok && time(ts) <= opened_at)
        .count();
    assert_eq!(failures_until_open, 3, "{history:?} opened {opened_at}");
    wait_for("quiet's incident", || {
        let (_, v) = get(&server, "/api/v1/incidents?monitor=quiet&open=true");
        (v.as_array().map_or(0, Vec::len) == 1).then_some(())
    });

    // The budget of a 99.9% SLO is gone after a few failures in an hour;
    // `/healthz/strict` shows it from the engine's next SLO evaluation.
    let body = wait_for("/healthz/strict to fail", || {
        let (code, body) = get(&server, "/healthz/strict");
        (code == 503).then_some(body)
    });
    assert_eq!(body["failing"][0], "api-availability");
    let (_, monitors) = get(&server, "/api/v1/monitors");
    let api_state = monitors
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "api")
        .unwrap()
        .clone();
    assert_eq!(api_state["up"], false);
    let metrics = reqwest::blocking::get(format!("http://{}/metrics", server.addr))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("bulwark_monitor_up{monitor=\"api\"} 0"),
        "{metrics}"
    );

    // A few more failures change nothing: still one notification.
    let seen = results(&server, "api").len();
    wait_for("more failed probes", || {
        (results(&server, "api").len() >= seen + 2).then_some(())
    });

    api.failing.store(false, Ordering::SeqCst);
    quiet.failing.store(false, Ordering::SeqCst);
    wait_for("the resolved notification", || {
        hook.events()
            .contains(&("resolved".to_string(), "api".to_string()))
            .then_some(())
    });
    wait_for("quiet to recover", || {
        let (_, v) = get(&server, "/api/v1/incidents?monitor=quiet&open=true");
        (v.as_array().map_or(1, Vec::len) == 0).then_some(())
    });
    // Give the outbox worker a few more rounds to send anything extra.
    let seen = results(&server, "api").len();
    wait_for("more successful probes", || {
        (results(&server, "api").len() >= seen + 3).then_some(())
    });
    let api_events: Vec<_> = hook
        .events()
        .into_iter()
        .filter(|(_, m)| m == "api")
        .map(|(s, _)| s)
        .collect();
    assert_eq!(
        api_events,
        ["firing", "resolved"],
        "exactly one per state change"
    );
    assert!(
        !hook.events().iter().any(|(_, m)| m == "quiet"),
        "a silenced monitor sends nothing: {:?}",
        hook.events()
    );
    let (_, incidents) = get(&server, "/api/v1/incidents?monitor=api");
    assert!(!incidents[0]["resolved_at"].is_null());

    // The event logs in the data directory.
    let uptime_log = std::fs::read_to_string(data.join("logs/uptime.ndjson")).unwrap();
    let first: serde_json::Value =
        serde_json::from_str(uptime_log.lines().next().unwrap()).unwrap();
    assert!(first["monitor"].is_string() && first["ok"].is_boolean());
    assert!(data.join("logs/slo_guard.ndjson").exists());
}

#[test]
fn uptime_check_once_exits_1_when_a_monitor_is_down() {
    let up = target();
    let down = target();
    down.failing.store(true, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("bulwark.toml");
    let write = |monitors: &[(&str, &str)]| {
        let text: String = monitors
            .iter()
            .map(|(n, u)| format!("[[monitor]]\nname = \"{n}\"\nurl = \"{u}\"\n\n"))
            .collect();
        std::fs::write(&config, text).unwrap();
    };
    write(&[("up", &up.url)]);
    let out = run(bulwark(&data)
        .arg("--config")
        .arg(&config)
        .args(["--json", "uptime", "check", "--once"]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);

    write(&[("up", &up.url), ("down", &down.url)]);
    let out = run(bulwark(&data)
        .arg("--config")
        .arg(&config)
        .args(["uptime", "check", "--once"]));
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("DOWN") && text.contains("unexpected status 503"),
        "{text}"
    );

    let out = run(bulwark(&data)
        .arg("--config")
        .arg(&config)
        .args(["--json", "slo", "status"]));
    assert_eq!(out.status.code(), Some(0));
}

/// The original scripts ran on environment variables alone: with BASE_URL,
/// SLO_TARGET, SLO_WINDOW_DAYS and ROTATE_DASHBOARD_KEY and no config file,
/// the base_url monitor is probed and logged, has its SLO, and the
/// dashboard key is a managed secret.
#[test]
fn env_only_set_up_works_as_the_seed_scripts_did() {
    let up = target();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let base = up.url.trim_end_matches("/health").to_string();
    let with_env = |cmd: &mut Command| -> std::process::Output {
        // No --config: ./bulwark.toml is absent, so the embedded default.
        cmd.current_dir(dir.path())
            .env_remove("BULWARK_CONFIG")
            .env("BASE_URL", &base)
            .env("SLO_TARGET", "0.99")
            .env("SLO_WINDOW_DAYS", "7")
            .env("ROTATE_DASHBOARD_KEY", "1");
        run(cmd)
    };
    let out = with_env(bulwark(&data).args(["--json", "uptime", "check", "--once"]));
    // The monitor probes BASE_URL + /healthz, which the target answers 200.
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = std::fs::read_to_string(data.join("logs/uptime.ndjson")).unwrap();
    let line: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(line["monitor"], "base_url");
    assert_eq!(line["ok"], true);

    let out = with_env(bulwark(&data).args(["--json", "slo", "status"]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let slos: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(slos[0]["name"], "base_url");
    assert_eq!(slos[0]["target"], 0.99);

    let out = with_env(bulwark(&data).args(["--json", "secrets", "list"]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secrets: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(secrets[0]["name"], "DASHBOARD_KEY", "{secrets}");
    assert_eq!(secrets[0]["rotate"], true);
}
