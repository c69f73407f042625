//! Our retention policy decides exactly as restic's `forget` does.

mod common;

use std::collections::BTreeSet;

use bulwark_repo::{apply_policy, forget, open_backend, Repository, RetentionPolicy};
use common::*;

#[test]
fn forget_policy_matches_restic() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"x").unwrap();
    let repo_path = tmp.path().join("repo");
    restic_ok(&repo_path, &["init", "--repository-version", "2"]);
    let times = [
        ("2023-12-31 23:30:00", ""),
        ("2024-01-01 10:00:00", ""),
        ("2024-01-01 11:00:00", "release"),
        ("2024-01-01 11:30:00", ""),
        ("2024-01-02 09:00:00", ""),
        ("2024-01-08 09:00:00", "release"),
        ("2024-02-15 09:00:00", ""),
        ("2024-02-29 09:00:00", ""),
        ("2025-03-01 09:00:00", ""),
        ("2025-03-01 09:10:00", ""),
    ];
    for (t, tag) in times {
        let mut args = vec!["backup", "--time", t, "--host", "h", src.to_str().unwrap()];
        if !tag.is_empty() {
            args.extend(["--tag", tag]);
        }
        // restic reads --time in the local zone; pin it.
        let o = std::process::Command::new("restic")
            .arg("-r")
            .arg(&repo_path)
            .args(&args)
            .env("RESTIC_PASSWORD", PASSWORD)
            .env("TZ", "UTC")
            .output()
            .expect("restic not found: scripts/test.sh installs it (apt-get install -y restic)");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let repo = Repository::open(
        open_backend(repo_path.to_str().unwrap()).unwrap(),
        PASSWORD.as_bytes(),
    )
    .unwrap();
    let snapshots = repo.snapshots().unwrap();
    let p = RetentionPolicy::default;
    let cases: Vec<(Vec<&str>, RetentionPolicy)> = vec![
        (vec!["--keep-last", "3"], RetentionPolicy { last: 3, ..p() }),
        (
            vec!["--keep-hourly", "4"],
            RetentionPolicy { hourly: 4, ..p() },
        ),
        (
            vec!["--keep-daily", "5"],
            RetentionPolicy { daily: 5, ..p() },
        ),
        (
            vec!["--keep-weekly", "4"],
            RetentionPolicy { weekly: 4, ..p() },
        ),
        (
            vec!["--keep-monthly", "3"],
            RetentionPolicy { monthly: 3, ..p() },
        ),
        (
            vec!["--keep-yearly", "2"],
            RetentionPolicy { yearly: 2, ..p() },
        ),
        (
            vec!["--keep-within", "1y1m"],
            RetentionPolicy {
                within: Some("1y1m".parse().unwrap()),
                ..p()
            },
        ),
        (
            vec!["--keep-tag", "release"],
            RetentionPolicy {
                tags: vec!["release".into()],
                ..p()
            },
        ),
        (
            vec![
                "--keep-last",
                "1",
                "--keep-daily",
                "2",
                "--keep-monthly",
                "4",
                "--keep-yearly",
                "3",
            ],
            RetentionPolicy {
                last: 1,
                daily: 2,
                monthly: 4,
                yearly: 3,
                ..p()
            },
        ),
    ];
    for (args, policy) in cases {
        let mut a = vec!["forget", "--dry-run", "--json"];
        a.extend(&args);
        let out = restic_ok(&repo_path, &a);
        let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
        let theirs: BTreeSet<String> = v[0]["keep"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect();
        let ours: BTreeSet<String> = apply_policy(&snapshots, &policy)
            .into_iter()
            .filter(|d| d.keep)
            .map(|d| d.id.to_hex())
            .collect();
        assert_eq!(ours, theirs, "policy {args:?}");
    }

    // And the real thing removes exactly the others.
    let policy = RetentionPolicy { last: 2, ..p() };
    let decisions = forget(&repo, &policy, false).unwrap();
    assert_eq!(
        decisions.iter().filter(|d| !d.keep).count(),
        times.len() - 2
    );
    assert_eq!(repo.snapshots().unwrap().len(), 2);
    restic_ok(&repo_path, &["check"]);
    // An empty policy removes nothing and says why.
    assert!(forget(&repo, &p(), false).is_err());
}
