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
