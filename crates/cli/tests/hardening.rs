//! Attacks from the hostile review that the binary itself must stop: a
//! spoofed `$USER` in the audit trail, a data directory readable by other
//! local users.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::{bulwark, run, stdout};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// `bulwark ARGS` under `umask 022`, the common default that made
/// everything world-readable.
fn under_umask_022(data: &Path, args: &[&str]) -> std::process::Output {
    let bin = bulwark(data);
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("umask 022; exec \"$@\"")
        .arg("sh")
        .arg(bin.get_program());
    cmd.args(bin.get_args()).args(args);
    for (k, v) in bin.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    run(&mut cmd)
}

#[test]
fn cli_actions_are_attributed_to_the_real_account_not_to_user() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let created = run(bulwark(&data)
        .env("USER", "mallory")
        .env("LOGNAME", "mallory")
        .args(["keys", "create", "--role", "analyst", "--name", "x"]));
    assert!(created.status.success(), "{created:?}");
    let export = stdout(&run(bulwark(&data).args(["audit", "export"])));
    let record: serde_json::Value = serde_json::from_str(export.lines().next().unwrap()).unwrap();
    let me = Command::new("id").arg("-un").output().unwrap();
    let me = String::from_utf8_lossy(&me.stdout).trim().to_string();
    assert_eq!(record["actor"], format!("cli:{me}"), "{export}");
}

#[test]
fn the_data_directory_is_private_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = under_umask_022(
        &data,
        &["keys", "create", "--role", "admin", "--name", "ops"],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(mode(&data), 0o700, "data directory");
    let mut seen = 0;
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        let want = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&path), want, "{}", path.display());
        seen += 1;
    }
    assert!(seen >= 1, "the database was created");
}

#[test]
fn no_grace_needs_a_secret_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(bulwark(&dir.path().join("data")).args(["secrets", "rotate", "--no-grace"]));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    // `bulwark jobs list | head -1` with head already gone: no panic.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bulwark.toml"),
        "[[secret]]\nname = \"A\"\n[[secret]]\nname = \"B\"\n",
    )
    .unwrap();
    let mut child = common::bulwark_in(dir.path())
        .args(["jobs", "list"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}
