//! Crash safety: a backup killed at any point leaves a repository that both
//! our check and `restic check --read-data` pass, and the next backup
//! completes and restores byte for byte.
//!
//! The backup runs in a real child process (this test binary, re-executed
//! with `CHILD_ENV` set), so a crash is a real crash: no destructors, the
//! lock left behind, worker threads gone mid-flight. Deterministic kill
//! points come from [`CrashingBackend`], a fault-injection wrapper around
//! the local backend (the house shape: fault injection wraps any backend);
//! one more round sends SIGKILL at a random-ish moment instead.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bulwark_repo::{
    backup, check, open_backend, restore, Backend, BackupOptions, Cancel, FileType, ReadData,
    Repository, RestoreOptions,
};
use common::*;
use rand::{Rng, SeedableRng};

/// Set in the child: `<repo>|<source>|<kill point>`.
const CHILD_ENV: &str = "BULWARK_REPO_CRASH_CHILD";
/// Exit code of a child whose kill point was never reached.
const NOT_REACHED: i32 = 3;

/// Where the child dies.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// Before the pack write that would follow `n` successful ones.
    Pack(u32),
    /// Half-way through writing pack `n + 1`: a torn temporary file is left
    /// behind, as when the machine dies inside `write`.
    TornPack(u32),
    /// Before the first index file (all packs of the backup written).
    Index,
    /// Before the snapshot (packs and index written).
    Snapshot,
    /// Nowhere: the parent kills the child with SIGKILL.
    Never,
}

impl KillAt {
    fn encode(self) -> String {
        match self {
            KillAt::Pack(n) => format!("pack:{n}"),
            KillAt::TornPack(n) => format!("torn-pack:{n}"),
            KillAt::Index => "index".into(),
            KillAt::Snapshot => "snapshot".into(),
            KillAt::Never => "never".into(),
        }
    }

    fn decode(s: &str) -> KillAt {
        match s.split_once(':') {
            Some(("pack", n)) => KillAt::Pack(n.parse().unwrap()),
            Some(("torn-pack", n)) => KillAt::TornPack(n.parse().unwrap()),
            _ if s == "index" => KillAt::Index,
            _ if s == "snapshot" => KillAt::Snapshot,
            _ => KillAt::Never,
        }
    }
}

/// Fault injection around any backend: aborts the process at a write.
struct CrashingBackend {
    inner: Box<dyn Backend>,
    /// The repository root, to leave a torn temporary file in the local layout.
    root: PathBuf,
    at: KillAt,
    packs: AtomicU32,
}

impl CrashingBackend {
    fn die(&self, why: &str) -> ! {
        eprintln!("crash child: aborting {why}");
        std::process::abort()
    }
}

impl Backend for CrashingBackend {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn create(&self) -> bulwark_repo::Result<()> {
        self.inner.create()
    }
    fn list(&self, t: FileType) -> bulwark_repo::Result<Vec<(String, u64)>> {
        self.inner.list(t)
    }
    fn read(&self, t: FileType, name: &str) -> bulwark_repo::Result<Vec<u8>> {
        self.inner.read(t, name)
    }
    fn read_range(
        &self,
        t: FileType,
        name: &str,
        offset: u64,
        length: u32,
    ) -> bulwark_repo::Result<Vec<u8>> {
        self.inner.read_range(t, name, offset, length)
    }
    fn read_with(
        &self,
        t: FileType,
        name: &str,
        length: Option<u64>,
        consumer: &mut dyn FnMut(&mut dyn std::io::Read) -> bulwark_repo::Result<()>,
    ) -> bulwark_repo::Result<()> {
        self.inner.read_with(t, name, length, consumer)
    }
    fn write(&self, t: FileType, name: &str, data: &[u8]) -> bulwark_repo::Result<()> {
        // How many packs were written before this one.
        let before = (t == FileType::Pack).then(|| self.packs.fetch_add(1, Ordering::SeqCst));
        match (t, self.at) {
            (FileType::Pack, KillAt::Pack(n)) if before == Some(n) => {
                self.die(&format!("after {n} packs"))
            }
            (FileType::Pack, KillAt::TornPack(n)) if before == Some(n) => {
                let dir = self.root.join("data").join(&name[..2]);
                let tmp = dir.join(format!(".{name}-tmp-crashed"));
                fs::write(&tmp, &data[..data.len() / 2]).unwrap();
                self.die(&format!("half-way through pack {}", n + 1));
            }
            (FileType::Index, KillAt::Index) => self.die("before the index"),
            (FileType::Snapshot, KillAt::Snapshot) => self.die("before the snapshot"),
            _ => {}
        }
        self.inner.write(t, name, data)
    }
    fn remove(&self, t: FileType, name: &str) -> bulwark_repo::Result<()> {
        self.inner.remove(t, name)
    }
    fn stat(&self, t: FileType, name: &str) -> bulwark_repo::Result<u64> {
        self.inner.stat(t, name)
    }
}

/// The child: one backup of `source` into `repo`, dying at `at`.
fn run_child(spec: &str) -> ! {
    let mut parts = spec.split('|');
    let (repo, source, at) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        KillAt::decode(parts.next().unwrap()),
    );
    let backend = CrashingBackend {
        inner: open_backend(repo).unwrap(),
        root: PathBuf::from(repo),
        at,
        packs: AtomicU32::new(0),
    };
    let mut r = Repository::open(Box::new(backend), PASSWORD.as_bytes()).unwrap();
    r.load_index().unwrap();
    let opts = BackupOptions {
        paths: vec![PathBuf::from(source)],
        ..Default::default()
    };
    let s = backup(&mut r, &opts, |_| {}).unwrap();
    eprintln!("crash child: backup {} completed", s.snapshot_id);
    std::process::exit(match at {
        KillAt::Never => 0,
        _ => NOT_REACHED,
    })
}

fn child(repo: &Path, src: &Path, at: KillAt) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "killed_backups_leave_a_repository_both_tools_check_clean",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            CHILD_ENV,
            format!("{}|{}|{}", repo.display(), src.display(), at.encode()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn count(repo: &Path, t: FileType) -> usize {
    open_backend(repo.to_str().unwrap())
        .unwrap()
        .list(t)
        .unwrap()
        .len()
}

fn write_random(path: &Path, rng: &mut impl Rng, len: usize) {
    let mut v = vec![0u8; len];
    rng.fill(&mut v[..]);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, v).unwrap();
}

/// Both tools pass a full check; restic may only note unreferenced packs.
/// Ours runs first, with any lock a crashed process left behind still in
/// place (it must see that the lock is stale). restic 0.14's check wants
/// an exclusive lock and, like after its own crashes, refuses while a stale
/// one exists: `restic unlock` must judge ours stale (same host, process
/// gone) and remove it.
fn both_tools_check_clean(repo_path: &Path, label: &str) {
    let mut repo = open(repo_path);
    let report = check(&mut repo, ReadData::All, &Cancel::default(), |_, _| {}).unwrap();
    assert!(
        report.is_ok(),
        "{label}: bulwark check failed: {:?}",
        report.errors
    );
    drop(repo);
    if count(repo_path, FileType::Lock) > 0 {
        restic_ok(repo_path, &["unlock"]);
        assert_eq!(
            count(repo_path, FileType::Lock),
            0,
            "{label}: restic unlock did not see the crashed backup's lock as stale"
        );
    }
    let out = restic(repo_path, &["check", "--read-data"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success() && stdout.contains("no errors were found"),
        "{label}: restic check failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    eprintln!(
        "{label}: both checks clean ({} snapshots, {} packs read, {} warnings; restic: {})",
        report.snapshots,
        report.packs_read,
        report.warnings.len(),
        stdout
            .lines()
            .chain(stderr.lines())
            .filter(|l| l.contains("additional files") || l.contains("not referenced"))
            .count()
    );
}

fn open(repo_path: &Path) -> Repository {
    let mut r = Repository::open(
        open_backend(repo_path.to_str().unwrap()).unwrap(),
        PASSWORD.as_bytes(),
    )
    .unwrap();
    r.load_index().unwrap();
    r
}

/// The next backup completes, restores byte for byte with our restore and
/// restic's, and both tools still check clean.
fn next_backup_completes_and_restores(tmp: &Path, repo_path: &Path, src: &Path, label: &str) {
    let mut repo = open(repo_path);
    let s = backup(
        &mut repo,
        &BackupOptions {
            paths: vec![src.to_path_buf()],
            ..Default::default()
        },
        |_| {},
    )
    .unwrap();
    assert!(s.errors.is_empty(), "{label}: {:?}", s.errors);
    let ours = tmp.join(format!("restore-ours-{label}"));
    let r = restore(
        &repo,
        &s.snapshot_id.to_hex(),
        &RestoreOptions {
            target: ours.clone(),
            verify: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(r.errors.is_empty(), "{label}: {:?}", r.errors);
    assert_same_tree(src, &restored_path(&ours, src));
    fs::remove_dir_all(&ours).unwrap();
    drop(repo);

    let theirs = tmp.join(format!("restore-restic-{label}"));
    restic_ok(
        repo_path,
        &[
            "restore",
            &s.snapshot_id.to_hex(),
            "--target",
            theirs.to_str().unwrap(),
        ],
    );
    assert_same_tree(src, &restored_path(&theirs, src));
    fs::remove_dir_all(&theirs).unwrap();
    both_tools_check_clean(repo_path, &format!("{label}, after the next backup"));
}

#[test]
fn killed_backups_leave_a_repository_both_tools_check_clean() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        run_child(&spec);
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    make_tree(&src, 7);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let repo_path = tmp.path().join("repo");
    init_repo(&repo_path);

    let rounds = [
        ("after one data pack", KillAt::Pack(1)),
        ("inside the second pack write", KillAt::TornPack(1)),
        ("after all packs before the index", KillAt::Index),
        ("after the index before the snapshot", KillAt::Snapshot),
    ];
    for (round, (label, at)) in rounds.iter().enumerate() {
        // New incompressible content each round, more than one 16 MiB
        // pack's worth, so every backup writes several packs.
        write_random(
            &src.join(format!("round{round}/new.bin")),
            &mut rng,
            18 << 20,
        );
        let snapshots_before = count(&repo_path, FileType::Snapshot);
        let out = child(&repo_path, &src, *at).wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && out.status.code() != Some(NOT_REACHED),
            "{label}: the child did not crash ({}):\n{stderr}",
            out.status
        );
        assert!(
            stderr.contains("crash child: aborting"),
            "{label}:\n{stderr}"
        );
        assert_eq!(
            count(&repo_path, FileType::Snapshot),
            snapshots_before,
            "{label}: a crashed backup must not leave a snapshot"
        );
        assert!(
            count(&repo_path, FileType::Lock) >= 1,
            "{label}: the crashed process's lock should be left behind"
        );
        both_tools_check_clean(&repo_path, label);
        next_backup_completes_and_restores(tmp.path(), &repo_path, &src, &format!("round{round}"));
    }

    // SIGKILL at a random-ish moment of a large backup: after its first
    // pack is stored, plus a random delay.
    write_random(&src.join("large/a.bin"), &mut rng, 48 << 20);
    let packs_before = count(&repo_path, FileType::Pack);
    let mut c = child(&repo_path, &src, KillAt::Never);
    let start = Instant::now();
    while count(&repo_path, FileType::Pack) == packs_before {
        assert!(
            c.try_wait().unwrap().is_none(),
            "the large backup ended before writing a pack"
        );
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no pack written"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(rng.gen_range(0..150)));
    c.kill().unwrap();
    let out = c.wait_with_output().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(9),
        "the large backup finished before SIGKILL: make it larger ({})",
        String::from_utf8_lossy(&out.stderr)
    );
    both_tools_check_clean(&repo_path, "SIGKILL during a large backup");
    next_backup_completes_and_restores(tmp.path(), &repo_path, &src, "sigkill");
}
