//! What the CLI tests share: the binary with a clean environment, output
//! helpers and a served instance that is killed when dropped.
#![allow(dead_code)] // each test binary uses a different part

use std::path::Path;
use std::process::{Child, Command, Output};

/// Environment variables Bulwark reads: none of the developer's may leak
/// into a test.
const ENV: &[&str] = &[
    "ROLES_JSON",
    "BULWARK_CONFIG",
    "BULWARK_DATA_DIR",
    "BULWARK_LISTEN",
    "BASE_URL",
    "SLACK_WEBHOOK_URL",
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_CHAT_ID",
    "UPTIME_STRIKES",
    "UPTIME_INTERVAL_SEC",
    "SLO_WINDOW_DAYS",
    "SLO_TARGET",
    "ROTATE_DASHBOARD_KEY",
    "ROTATE_STRIPE_WEBHOOK",
    "BULWARK_PASSWORD",
    "RESTIC_PASSWORD",
    "BULWARK_PASSWORD_FILE",
    "RESTIC_PASSWORD_FILE",
    "BULWARK_REPOSITORY",
    "RESTIC_REPOSITORY",
];

/// `bulwark --data-dir DATA_DIR`.
pub fn bulwark(data_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bulwark"));
    cmd.arg("--data-dir").arg(data_dir);
    for var in ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// `bulwark --data-dir DIR/data --config DIR/bulwark.toml`.
pub fn bulwark_in(dir: &Path) -> Command {
    let mut cmd = bulwark(&dir.join("data"));
    cmd.arg("--config").arg(dir.join("bulwark.toml"));
    cmd
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run bulwark")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stdout then stderr.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `bulwark serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The HTTP API over the same config and data directory as the binary, in
/// process (no engine, no scheduler loop: nothing changes between a CLI
/// call and an API call but the clock). `ROLES_JSON` holds [`API_KEY`].
pub struct Api {
    app: axum::Router,
}

/// An admin key for [`Api`].
pub const API_KEY: &str = "parity-admin-key";

impl Api {
    pub async fn over(dir: &Path) -> Api {
        let file = dir.join("bulwark.toml");
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let env = |k: &str| (k == "ROLES_JSON").then(|| format!(r#"{{"{API_KEY}":"admin"}}"#));
        let config = bulwark_ops::settings::parse(&text, Some(&file), &env)
            .expect("config")
            .config;
        let instance = bulwark_ops::Instance::open(std::sync::Arc::new(config), &dir.join("data"))
            .await
            .unwrap();
        let state = bulwark_server::AppState::new(std::sync::Arc::new(instance))
            .with_view_ttl(std::time::Duration::ZERO);
        Api {
            app: bulwark_server::app(std::sync::Arc::new(state)),
        }
    }

    /// The JSON body of `METHOD PATH` with the admin key.
    pub async fn json(&self, method: &str, path: &str) -> serde_json::Value {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let req = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header("x-dash-key", API_KEY)
            .body(axum::body::Body::empty())
            .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(
            status.is_success(),
            "{method} {path}: {status} {}",
            String::from_utf8_lossy(&bytes)
        );
        serde_json::from_slice(&bytes).unwrap()
    }
}

/// `value` with every field named in `volatile` (at any depth) set to null:
/// fields that depend on the instant they are computed at.
pub fn without(mut value: serde_json::Value, volatile: &[&str]) -> serde_json::Value {
    fn walk(v: &mut serde_json::Value, volatile: &[&str]) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, child) in map.iter_mut() {
                    if volatile.contains(&k.as_str()) {
                        *child = serde_json::Value::Null;
                    } else {
                        walk(child, volatile);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|c| walk(c, volatile)),
            _ => {}
        }
    }
    walk(&mut value, volatile);
    value
}
