//! Repository commands as real processes: `backup --git` on a machine
//! without the git binary, and a killed backup whose lock restic's
//! `unlock` recognises as stale.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

const PASSWORD: &str = "correct horse battery staple";

fn bulwark(data_dir: &Path) -> Command {
    let mut cmd = common::bulwark(data_dir);
    cmd.env("BULWARK_PASSWORD", PASSWORD);
    cmd
}

fn ok(what: &str, o: Output) -> String {
    assert!(
        o.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn restic(repo: &Path, args: &[&str]) -> Output {
    Command::new("restic")
        .arg("-r")
        .arg(repo)
        .args(args)
        .env("RESTIC_PASSWORD", PASSWORD)
        .env("RESTIC_CACHE_DIR", repo.with_extension("cache"))
        .output()
        .expect("restic is the format oracle of these tests (apt-get install -y restic)")
}

fn git(dir: &Path, args: &[&str]) {
    let o = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .expect("git makes the test repository");
    ok(&format!("git {args:?}"), o);
}

#[test]
fn backup_git_needs_no_git_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("proj");
    std::fs::create_dir_all(work.join("src")).unwrap();
    std::fs::write(work.join("src/lib.rs"), b"pub fn f() {}\n").unwrap();
    git(&work, &["init", "-q"]);
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "one"]);
    let head = String::from_utf8(
        Command::new("git")
            .arg("-C")
            .arg(&work)
            .args(["rev-parse", "HEAD"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();

    let repo = tmp.path().join("repo");
    let data = tmp.path().join("data");
    ok(
        "init",
        bulwark(&data)
            .args(["init", "-r"])
            .arg(&repo)
            .output()
            .unwrap(),
    );
    // PATH holds only an empty directory: no git to fall back on.
    let empty = tmp.path().join("nobin");
    std::fs::create_dir_all(&empty).unwrap();
    let out = ok(
        "backup --git without git on PATH",
        bulwark(&data)
            .env("PATH", &empty)
            .args(["--json", "backup", "-r"])
            .arg(&repo)
            .arg(&work)
            .arg("--git")
            .output()
            .unwrap(),
    );
    assert!(out.contains("\"summary\""), "{out}");
    let snaps = restic(&repo, &["snapshots", "--json"]);
    let snaps = ok("restic snapshots", snaps);
    assert!(snaps.contains(&head), "commit {head} not tagged: {snaps}");
    let ls = ok("restic ls", restic(&repo, &["ls", "latest"]));
    let want = format!("{}/src/lib.rs", work.display());
    assert!(ls.lines().any(|l| l == want), "{want} not in:\n{ls}");
    assert!(!ls.contains("/.git"), "{ls}");

    // Not a git repository, and one without commits: clear errors.
    let plain = tmp.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let unborn = tmp.path().join("unborn");
    std::fs::create_dir_all(&unborn).unwrap();
    git(&unborn, &["init", "-q"]);
    for (dir, want) in [(&plain, "not a git repository"), (&unborn, "no commits")] {
        let o = bulwark(&data)
            .env("PATH", &empty)
            .args(["backup", "-r"])
            .arg(&repo)
            .arg(dir)
            .arg("--git")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{}: {err}", dir.display());
        assert!(err.contains(want), "{}: {err}", dir.display());
    }
}

#[test]
fn restic_unlock_removes_the_lock_of_a_killed_backup() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    // Enough incompressible data that the backup is still running when it
    // is killed.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..4 {
        let mut buf = vec![0u8; 16 << 20];
        for c in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
        }
        std::fs::write(src.join(format!("f{i}")), &buf).unwrap();
    }
    let repo = tmp.path().join("repo");
    let data = tmp.path().join("data");
    ok(
        "init",
        bulwark(&data)
            .args(["init", "-r"])
            .arg(&repo)
            .output()
            .unwrap(),
    );
    let mut child = bulwark(&data)
        .args(["backup", "-r"])
        .arg(&repo)
        .arg(&src)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Lock files, not the temporary files they are written through.
    let locks = |p: &Path| {
        std::fs::read_dir(p.join("locks"))
            .unwrap()
            .filter(|e| {
                !e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with('.')
            })
            .count()
    };
    let start = Instant::now();
    while locks(&repo) == 0 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "backup ended before it could be killed"
        );
        assert!(start.elapsed() < Duration::from_secs(60), "no lock file");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL: no chance to remove the lock.
                           // Reaped, so the pid no longer exists (a zombie would still answer).
    child.wait().unwrap();
    assert_eq!(locks(&repo), 1);

    // restic's exclusive lock (check) refuses while the lock is there...
    let refused = restic(&repo, &["check"]);
    assert!(
        !refused.status.success(),
        "restic check ignored the lock: {}",
        String::from_utf8_lossy(&refused.stdout)
    );
    // ...and `unlock` (without --remove-all) sees it is stale: same host,
    // dead process.
    let out = ok("restic unlock", restic(&repo, &["unlock"]));
    assert_eq!(locks(&repo), 0, "restic unlock left the lock: {out}");
    // Torn writes the kill left behind are prune's to remove; it reports
    // them.
    let out = ok(
        "prune",
        bulwark(&data)
            .args(["--json", "prune", "-r"])
            .arg(&repo)
            .output()
            .unwrap(),
    );
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(summary["temp_files_removed"].is_u64(), "{out}");
    assert!(summary["temp_bytes_removed"].is_u64(), "{out}");
    ok("restic check", restic(&repo, &["check", "--read-data"]));
}
