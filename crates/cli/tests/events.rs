//! `bulwark events`: `ship --sink NAME` from stdin (the users'
//! log-shipping script), `list`, and `serve` exporting the audit trail to
//! a file sink as it grows.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::*;

fn setup(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bulwark.toml"), config).unwrap();
    dir
}

#[test]
fn ship_stdin_to_a_file_sink() {
    let dir = setup(
        "[[sink]]\nname = \"file\"\ntype = \"file\"\npath = \"shipped/app.ndjson\"\nbatch = 2\n",
    );
    let input = "{\"level\":\"error\",\"msg\":\"disk full\"}\nplain text, not json\n\n{\"n\":2}\n";
    let out = run_with_stdin(
        bulwark_in(dir.path()).args(["events", "ship", "--sink", "file"]),
        input.as_bytes().to_vec(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        stdout(&out).trim(),
        "shipped 3 lines in 2 batches to sink \"file\""
    );
    let path = dir.path().join("data/logs/shipped/app.ndjson");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines,
        vec![
            serde_json::json!({"level": "error", "msg": "disk full"}),
            serde_json::json!({"message": "plain text, not json"}),
            serde_json::json!({"n": 2}),
        ]
    );
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Appended, never rewritten.
    let out = run_with_stdin(
        bulwark_in(dir.path()).args(["--json", "events", "ship", "--sink", "file"]),
        b"last\n".to_vec(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        summary,
        serde_json::json!({"sink": "file", "lines": 1, "batches": 1})
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 4);
}

#[test]
fn ship_fails_clearly() {
    let port = free_port();
    let dir = setup(&format!(
        "[[sink]]\nname = \"siem\"\ntype = \"http\"\nurl = \"http://127.0.0.1:{port}/in?token=ship-token-secret\"\n"
    ));
    // Nothing listens there: retried a few times, then exit 2 naming the
    // sink and the endpoint's origin, never its token.
    let out = run_with_stdin(
        bulwark_in(dir.path()).args(["events", "ship", "--sink", "siem"]),
        b"one\ntwo\n".to_vec(),
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("sink \"siem\""), "{all}");
    assert!(all.contains(&format!("http://127.0.0.1:{port}")), "{all}");
    assert!(!all.contains("ship-token-secret"), "{all}");

    let out = run_with_stdin(
        bulwark_in(dir.path()).args(["events", "ship", "--sink", "nope"]),
        b"x\n".to_vec(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("no [[sink]] named \"nope\""),
        "{}",
        text(&out)
    );
}

#[test]
fn serve_exports_the_audit_trail_to_a_sink() {
    let dir = setup("[[sink]]\nname = \"trail\"\ntype = \"file\"\nevents = [\"audit\"]\n");
    let _server = serve(bulwark_in(dir.path()).current_dir(dir.path()), None);
    let out =
        run(bulwark_in(dir.path())
            .args(["keys", "create", "--role", "analyst", "--name", "exported"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let path = dir.path().join("data/logs/trail.ndjson");
    let deadline = Instant::now() + Duration::from_secs(60);
    let found = loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let hit = text.lines().find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            (v["body"]["action"] == "key.create" && v["body"]["detail"]["name"] == "exported")
                .then_some(v)
        });
        if let Some(v) = hit {
            break v;
        }
        assert!(Instant::now() < deadline, "never exported:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(found["kind"], "audit");
    // Per-sink metrics: events confirmed, and no lag once caught up.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let metrics = reqwest::blocking::get(format!("http://{}/metrics", _server.addr))
            .unwrap()
            .text()
            .unwrap();
        let shipped = metrics.lines().find_map(|l| {
            l.strip_prefix("bulwark_events_shipped_total{sink=\"trail\"} ")?
                .parse::<u64>()
                .ok()
        });
        let lag = metrics
            .lines()
            .find_map(|l| l.strip_prefix("bulwark_events_lag{sink=\"trail\"} "));
        if shipped.is_some_and(|n| n >= 1) && lag == Some("0") {
            break;
        }
        assert!(Instant::now() < deadline, "no event metrics:\n{metrics}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The same stream, read back.
    let out = run(bulwark_in(dir.path()).args(["--json", "events", "list", "--kind", "audit"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let list: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    // The very document the sink wrote, `at` to the millisecond included.
    assert!(list.contains(&found), "{found} not in {list:?}");
    let out = run(bulwark_in(dir.path()).args(["events", "list", "--kind", "logins"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("unknown event kind \"logins\""),
        "{}",
        text(&out)
    );
}
