//! Backup, restore and check throughput of Bulwark against restic, in the
//! same run on the same data. Run with `cargo bench -p bulwark-repo`
//! (needs `restic` on PATH). `BULWARK_BENCH_MIB` sets the data size
//! (default 256 MiB: half random, half compressible text).
//!
//! This is a plain `harness = false` program: it prints one line per
//! operation with seconds and MiB/s for each tool. Both sides pay for
//! opening the repository (scrypt, index) in every operation, as restic's
//! separate processes do; restic also pays process start-up.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use bulwark_repo::{
    backup, check, open_backend, restore, BackupOptions, Cancel, KdfParams, ReadData, Repository,
    RestoreOptions,
};
use rand::{Rng, SeedableRng};

const PASSWORD: &str = "bench";

fn restic(repo: &Path, args: &[&str]) {
    let o = Command::new("restic")
        .arg("-r")
        .arg(repo)
        .args(args)
        .env("RESTIC_PASSWORD", PASSWORD)
        .env("RESTIC_CACHE_DIR", repo.with_extension("cache"))
        .output()
        .expect("restic not found on PATH (apt-get install -y restic)");
    assert!(
        o.status.success(),
        "restic {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Open the repository as a fresh process would (key derivation and
/// index loading included), so that the comparison with restic, which
/// pays both on every run, is fair.
fn open(path: &Path) -> Repository {
    let mut r = Repository::open(
        open_backend(path.to_str().unwrap()).unwrap(),
        PASSWORD.as_bytes(),
    )
    .unwrap();
    r.load_index().unwrap();
    r
}

fn time(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` too: only run
    // the measurement when asked to bench.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let mib: usize = std::env::var("BULWARK_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("text")).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut random = vec![0u8; mib / 2 * 1024 * 1024];
    rng.fill(&mut random[..]);
    std::fs::write(src.join("random.bin"), &random).unwrap();
    drop(random);
    let line = b"2026-01-01T00:00:00Z INFO request served path=/api/v1/items status=200 ms=12\n";
    for i in 0..64 {
        let n = (mib / 2 * 1024 * 1024) / 64 / line.len();
        std::fs::write(src.join(format!("text/log{i}.txt")), line.repeat(n)).unwrap();
    }

    let ours = tmp.path().join("ours");
    let theirs = tmp.path().join("theirs");
    Repository::init(
        open_backend(ours.to_str().unwrap()).unwrap(),
        PASSWORD.as_bytes(),
        KdfParams::DEFAULT,
    )
    .unwrap();
    restic(&theirs, &["init", "--repository-version", "2"]);

    let mut rows = Vec::new();
    let opts = BackupOptions {
        paths: vec![src.clone()],
        ..Default::default()
    };
    let a = time(|| {
        backup(&mut open(&ours), &opts, |_| {}).unwrap();
    });
    let b = time(|| restic(&theirs, &["backup", src.to_str().unwrap()]));
    rows.push(("backup (initial)", a, b));
    let a = time(|| {
        backup(&mut open(&ours), &opts, |_| {}).unwrap();
    });
    let b = time(|| restic(&theirs, &["backup", src.to_str().unwrap()]));
    rows.push(("backup (unchanged)", a, b));
    let (t1, t2) = (tmp.path().join("r1"), tmp.path().join("r2"));
    let a = time(|| {
        restore(
            &open(&ours),
            "latest",
            &RestoreOptions {
                target: t1.clone(),
                ..Default::default()
            },
        )
        .unwrap();
    });
    let b = time(|| {
        restic(
            &theirs,
            &["restore", "latest", "--target", t2.to_str().unwrap()],
        )
    });
    rows.push(("restore", a, b));
    let a = time(|| {
        assert!(check(
            &mut open(&ours),
            ReadData::All,
            &Cancel::default(),
            |_, _| {}
        )
        .unwrap()
        .is_ok());
    });
    let b = time(|| restic(&theirs, &["check", "--read-data"]));
    rows.push(("check --read-data", a, b));

    println!(
        "{mib} MiB, {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!(
        "{:<20} {:>12} {:>12} {:>12} {:>12}",
        "operation", "bulwark s", "restic s", "bulwark MiB/s", "restic MiB/s"
    );
    for (name, a, b) in rows {
        println!(
            "{name:<20} {a:>12.2} {b:>12.2} {:>12.0} {:>12.0}",
            mib as f64 / a,
            mib as f64 / b
        );
    }
}
