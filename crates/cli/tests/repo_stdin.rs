//! `backup --stdin` and `--stdin-from-command` as real processes, with
//! restic as the oracle: the exact bytes back from both tools, no snapshot
//! when the command fails, deduplication, cancellation and the audit trail.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{
    audit_records, bulwark_repo, noise, ok, restic, run, run_with_stdin, snapshots, text,
};

/// A new repository at `dir/repo`; its path.
fn init(dir: &Path) -> std::path::PathBuf {
    let repo = dir.join("repo");
    ok(
        "init",
        run(bulwark_repo(&dir.join("data"))
            .arg("init")
            .arg("-r")
            .arg(&repo)),
    );
    repo
}

fn backup(data: &Path, repo: &Path) -> Command {
    let mut cmd = bulwark_repo(data);
    cmd.arg("backup").arg("-r").arg(repo);
    cmd
}

/// The `message_type: summary` line of `--json` output.
fn summary(stdout: &str) -> serde_json::Value {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message_type"] == "summary")
        .unwrap_or_else(|| panic!("no summary in {stdout}"))
}

#[test]
fn stdin_backup_restores_exactly_with_both_tools_and_deduplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // A data directory: backups and restores are audited.
    std::fs::create_dir_all(&data).unwrap();
    let repo = init(tmp.path());
    let bytes = noise(5 << 20, 42);

    let first = run_with_stdin(
        backup(&data, &repo).args([
            "--json",
            "--stdin",
            "--stdin-filename",
            "db.dump",
            "--tag",
            "nightly",
        ]),
        bytes.clone(),
    );
    let first = summary(&ok("backup --stdin", first));
    assert_eq!(first["files_new"], 1);
    assert_eq!(first["total_bytes_processed"], bytes.len() as u64);
    assert!(first["data_added"].as_u64().unwrap() >= bytes.len() as u64);
    let id = first["snapshot_id"].as_str().unwrap().to_string();

    let listed = snapshots(&data, &repo);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["paths"], serde_json::json!(["/db.dump"]));
    assert_eq!(listed[0]["tags"], serde_json::json!(["nightly"]));

    // Both tools restore the exact bytes at /db.dump.
    let ours = tmp.path().join("ours");
    ok(
        "restore",
        run(bulwark_repo(&data)
            .args(["restore", "latest", "-r"])
            .arg(&repo)
            .arg("--target")
            .arg(&ours)),
    );
    assert!(
        std::fs::read(ours.join("db.dump")).unwrap() == bytes,
        "bulwark restore differs"
    );
    let theirs = tmp.path().join("theirs");
    ok(
        "restic restore",
        restic(
            &repo,
            &["restore", "latest", "--target", theirs.to_str().unwrap()],
        ),
    );
    assert!(
        std::fs::read(theirs.join("db.dump")).unwrap() == bytes,
        "restic restore differs"
    );
    let listing = ok("restic ls", restic(&repo, &["ls", "latest"]));
    assert!(listing.lines().any(|l| l == "/db.dump"), "{listing}");

    // The same stream again: a new snapshot with the first as parent and no
    // new data (only its one-node tree, whose mtime is new).
    let second = run_with_stdin(
        backup(&data, &repo).args(["--json", "--stdin", "--stdin-filename", "db.dump"]),
        bytes.clone(),
    );
    let second = summary(&ok("second backup --stdin", second));
    assert_eq!(second["parent"], serde_json::json!(id));
    assert_eq!(second["files_unmodified"], 1);
    assert_eq!(second["data_blobs"], 0);
    assert_eq!(second["data_added"], 0);
    assert_eq!(snapshots(&data, &repo).len(), 2);
    ok("restic check", restic(&repo, &["check", "--read-data"]));

    // Audited: who, what, on which repository, which snapshot.
    let records = audit_records(&data);
    let created: Vec<_> = records
        .iter()
        .filter(|r| r["action"] == "backup.create")
        .collect();
    assert_eq!(created.len(), 2, "{records:?}");
    assert_eq!(created[0]["target"], repo.to_str().unwrap());
    assert_eq!(created[0]["outcome"], "success");
    assert_eq!(created[0]["detail"]["snapshot_id"], serde_json::json!(id));
    assert!(created[0]["actor"].as_str().unwrap().starts_with("cli:"));
    let restored: Vec<_> = records
        .iter()
        .filter(|r| r["action"] == "backup.restore")
        .collect();
    assert_eq!(restored.len(), 1, "{records:?}");
    assert_eq!(restored[0]["detail"]["snapshot_id"], serde_json::json!(id));
    ok(
        "audit verify",
        run(common::bulwark(&data).args(["audit", "verify"])),
    );
}

#[test]
fn command_output_is_backed_up_and_a_failing_command_leaves_no_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let repo = init(tmp.path());

    // Exact bytes through a command, restored by restic.
    let dump = tmp.path().join("source.bin");
    let bytes = noise(3 << 20, 7);
    std::fs::write(&dump, &bytes).unwrap();
    ok(
        "backup --stdin-from-command cat",
        run(backup(&data, &repo)
            .args([
                "--stdin-from-command",
                "--stdin-filename",
                "app.dump",
                "--",
                "cat",
            ])
            .arg(&dump)),
    );
    let theirs = tmp.path().join("theirs");
    ok(
        "restic restore",
        restic(
            &repo,
            &["restore", "latest", "--target", theirs.to_str().unwrap()],
        ),
    );
    assert!(
        std::fs::read(theirs.join("app.dump")).unwrap() == bytes,
        "restic restore differs"
    );

    // The default name, a command through sh.
    let out = ok(
        "backup --stdin-from-command sh",
        run(backup(&data, &repo).args([
            "--json",
            "--stdin-from-command",
            "--",
            "sh",
            "-c",
            "head -c 3000000 /dev/urandom; exit 0",
        ])),
    );
    assert_eq!(summary(&out)["total_bytes_processed"], 3_000_000);
    let listed = snapshots(&data, &repo);
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1]["paths"], serde_json::json!(["/stdin"]));

    // Exit status 3: exit 1, one message with the command, its status and
    // its stderr, and no snapshot.
    let failed = run(backup(&data, &repo).args([
        "--stdin-from-command",
        "--stdin-filename",
        "app.dump",
        "--",
        "sh",
        "-c",
        "echo partial; echo boom >&2; exit 3",
    ]));
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed));
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(
        err.contains("\"sh\"") && err.contains("status 3") && err.contains("boom"),
        "{err}"
    );
    assert!(err.contains("no snapshot"), "{err}");
    // Output already read is no snapshot either: a dump that dies midway.
    let midway = run(backup(&data, &repo).args([
        "--stdin-from-command",
        "--",
        "sh",
        "-c",
        "head -c 2000000 /dev/urandom; kill -9 $$",
    ]));
    assert_eq!(midway.status.code(), Some(1), "{}", text(&midway));
    assert!(
        String::from_utf8_lossy(&midway.stderr).contains("signal 9"),
        "{}",
        text(&midway)
    );
    assert_eq!(snapshots(&data, &repo).len(), 2);
    ok("restic check", restic(&repo, &["check", "--read-data"]));

    let failures: Vec<_> = audit_records(&data)
        .into_iter()
        .filter(|r| r["action"] == "backup.create" && r["outcome"] == "failure")
        .collect();
    assert_eq!(failures.len(), 2, "{failures:?}");
    // The program is named, never its arguments.
    assert_eq!(failures[0]["detail"]["command"], "sh");
    assert!(!failures[0].to_string().contains("boom"), "{}", failures[0]);

    // A command that cannot start: exit 2, named.
    let missing = run(backup(&data, &repo).args([
        "--stdin-from-command",
        "--",
        "bulwark-no-such-dump-command",
    ]));
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    assert!(
        text(&missing).contains("bulwark-no-such-dump-command"),
        "{}",
        text(&missing)
    );
    assert_eq!(snapshots(&data, &repo).len(), 2);
}

#[test]
fn stdin_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let repo = init(tmp.path());
    let check = |args: &[&str], needle: &str| {
        let o = run_with_stdin(backup(&data, &repo).args(args), b"x".to_vec());
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(needle), "{args:?}: {}", text(&o));
    };
    check(&["--stdin-filename", "x", "/etc"], "--stdin");
    check(&["--stdin", "/etc"], "cannot be used with");
    check(
        &["--stdin-from-command", "/etc", "--", "true"],
        "cannot be used with",
    );
    check(&["--stdin-from-command"], "COMMAND");
    check(
        &["--stdin", "--stdin-from-command", "--", "true"],
        "cannot be used with",
    );
    check(&["/etc", "--", "true"], "--stdin-from-command");
    check(
        &["--stdin", "--stdin-filename", "a/b"],
        "one plain path component",
    );
    // Nothing on stdin at all is a forgotten pipe, not a backup.
    let empty = run_with_stdin(backup(&data, &repo).arg("--stdin"), Vec::new());
    assert_eq!(empty.status.code(), Some(2), "{}", text(&empty));
    assert!(
        text(&empty).contains("no data read from stdin"),
        "{}",
        text(&empty)
    );
    assert!(snapshots(&data, &repo).is_empty());
    // No data directory here: nothing was created for the audit trail.
    assert!(!data.exists());
}

#[test]
fn sigterm_stops_the_backup_and_kills_the_command() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let repo = init(tmp.path());
    let pid_file = tmp.path().join("dump.pid");
    let script = format!(
        "head -c 1000000 /dev/urandom; echo $$ > {}; exec sleep 600",
        pid_file.display()
    );
    let child = backup(&data, &repo)
        .args(["--stdin-from-command", "--", "sh", "-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the command runs (a generous bound, not a measurement).
    let deadline = Instant::now() + Duration::from_secs(60);
    let dump_pid = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "the command never started");
        std::thread::sleep(Duration::from_millis(50));
    };
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cancelled"),
        "{}",
        text(&out)
    );
    // The dump command is gone (killed, then reaped by us or by init).
    let deadline = Instant::now() + Duration::from_secs(30);
    while Path::new(&format!("/proc/{dump_pid}")).exists() {
        let state = std::fs::read_to_string(format!("/proc/{dump_pid}/stat")).unwrap_or_default();
        if state.contains(") Z") {
            break;
        }
        assert!(Instant::now() < deadline, "the dump command still runs");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(snapshots(&data, &repo).is_empty());
    // Its lock was released.
    assert_eq!(std::fs::read_dir(repo.join("locks")).unwrap().count(), 0);
    ok("restic check", restic(&repo, &["check"]));
}
