//! The dashboard in a real browser: headless Chromium (Debian's, at
//! `BULWARK_TEST_CHROMIUM`) driven by `playwright-core` (under
//! `BULWARK_TEST_NODE_MODULES`), both installed by scripts/test.sh, against
//! a real `bulwark serve` on loopback probing real monitors: one up (a
//! target this test serves, which the script can switch to failing, so a
//! state change must reach the open page without a reload) and one down
//! (a closed port). The browser side is `tests/browser/dashboard.mjs`;
//! its screenshots go to `screenshots/browser/` at the repository root
//! (git-ignored). Waits poll with generous deadlines; nothing asserts on
//! how long anything took.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

mod common;
use common::{free_port, run, text};

const ADMIN: &str = "k-admin-browser-test";
const ANALYST: &str = "k-analyst-browser-test";
/// Up, and public on the status page.
const UP: &str = "storefront";
/// Down (a closed port), and private.
const DOWN: &str = "ledger";
const SLO: &str = "storefront-availability";

/// A variable scripts/test.sh sets; a clear failure without it.
fn required(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: run the browser tests with scripts/test.sh, \
             which installs Chromium and playwright-core and sets it"
        )
    })
}

/// A loopback HTTP target: `GET /health` answers 200, or 503 after
/// `GET /control/fail` until `GET /control/recover`. The control paths
/// let the browser script change a monitor's state while a page is open.
struct Target {
    base: String,
}

fn target() -> Target {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let failing = Arc::new(AtomicBool::new(false));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let failing = failing.clone();
            std::thread::spawn(move || {
                let Ok(read) = stream.try_clone() else { return };
                let mut reader = BufReader::new(read);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    // Headers up to the blank line; requests here have no body.
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        if h == "\r\n" {
                            break;
                        }
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("");
                    match path {
                        "/control/fail" => failing.store(true, Ordering::SeqCst),
                        "/control/recover" => failing.store(false, Ordering::SeqCst),
                        _ => {}
                    }
                    let code = if path == "/health" && failing.load(Ordering::SeqCst) {
                        "503 Service Unavailable"
                    } else {
                        "200 OK"
                    };
                    let reply =
                        format!("HTTP/1.1 {code}\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok");
                    if stream.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    Target { base }
}

fn config(up_url: &str, down_url: &str, public: bool) -> String {
    let public = if public { "public = true\n" } else { "" };
    format!(
        r#"
[[monitor]]
name = "{UP}"
url = "{up_url}"
interval = "2s"
timeout = "1s"
strikes = 1
recover_after = 1
{public}
[[monitor]]
name = "{DOWN}"
url = "{down_url}"
interval = "2s"
timeout = "1s"
strikes = 1
recover_after = 1

[[slo]]
name = "{SLO}"
monitor = "{UP}"
target = 0.99
window = "1h"

[[secret]]
name = "STRIPE_WEBHOOK_SECRET"
"#
    )
}

/// Whether this build knows `[[monitor]] public` (it comes with the public
/// status page). When it does, the up monitor is made public and the
/// script requires `/status` to list it and nothing else; until then the
/// script checks `/status` only if the server answers it.
fn knows_public_monitors(dir: &Path) -> bool {
    let probe = dir.join("public-probe.toml");
    std::fs::write(
        &probe,
        config("http://127.0.0.1:9/health", "http://127.0.0.1:9/", true),
    )
    .unwrap();
    let out = run(common::bulwark(&dir.join("probe-data"))
        .arg("--config")
        .arg(&probe)
        .args(["config", "check"]));
    out.status.success()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn dashboard_in_chromium_shows_live_state_card_output_and_only_what_the_role_allows() {
    let chromium = required("BULWARK_TEST_CHROMIUM");
    let node_modules = required("BULWARK_TEST_NODE_MODULES");

    let up = target();
    // Nothing listens on a port just freed: connection refused, down.
    let down_url = format!("http://127.0.0.1:{}/health", free_port());
    let dir = tempfile::tempdir().unwrap();
    let public = knows_public_monitors(dir.path());
    let config_file = dir.path().join("bulwark.toml");
    std::fs::write(
        &config_file,
        config(&format!("{}/health", up.base), &down_url, public),
    )
    .unwrap();
    let log = dir.path().join("serve.log");
    let server = common::serve(
        common::bulwark(&dir.path().join("data"))
            .arg("--config")
            .arg(&config_file)
            .env(
                "ROLES_JSON",
                format!(r#"{{"{ADMIN}":"admin","{ANALYST}":"analyst"}}"#),
            ),
        Some(&log),
    );

    let screenshots = repo_root().join("screenshots/browser");
    std::fs::create_dir_all(&screenshots).unwrap();
    let script = repo_root().join("tests/browser/dashboard.mjs");
    let out = run(Command::new("node")
        .arg(&script)
        .env("BULWARK_TEST_CHROMIUM", &chromium)
        .env("BULWARK_TEST_NODE_MODULES", &node_modules)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .env("BULWARK_URL", format!("http://{}", server.addr))
        .env("BULWARK_ADMIN_KEY", ADMIN)
        .env("BULWARK_ANALYST_KEY", ANALYST)
        .env("BULWARK_UP_MONITOR", UP)
        .env("BULWARK_DOWN_MONITOR", DOWN)
        .env("BULWARK_SLO", SLO)
        .env("BULWARK_TARGET_CONTROL", format!("{}/control", up.base))
        .env("BULWARK_PUBLIC_MONITOR", if public { UP } else { "" })
        .env("BULWARK_SCREENSHOTS", &screenshots));
    let output = text(&out);
    // The script's own log ends with one line per check; show it either way
    // (nextest keeps it for failures, `--no-capture` shows it always).
    println!("{output}");
    assert!(
        out.status.success(),
        "the browser script failed ({}):\n{output}\n--- bulwark serve log ---\n{}",
        out.status,
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(
        output.contains("all browser checks passed"),
        "the script exited 0 without finishing:\n{output}"
    );
    drop(server);
}
