//! The `--json` messages of the repository commands and the `detail` of
//! their audit records keep their names: scripts written for restic's
//! output parse them. Every command runs on a small local repository and
//! each message's exact key set is compared with the table below, so a
//! renamed, added or dropped field fails here first.

use std::path::Path;

mod common;

use common::{audit_records, bulwark_repo, key_paths, run, run_with_stdin, small_tree, text};

const INIT: &[&str] = &["bucket", "id", "message_type", "repository", "version"];
const BACKUP: &[&str] = &[
    "data_added",
    "data_added_packed",
    "data_blobs",
    "dirs",
    "errors",
    "files_changed",
    "files_new",
    "files_unmodified",
    "message_type",
    "packs_written",
    "parent",
    "snapshot_id",
    "total_bytes_processed",
    "tree_blobs",
];
const SNAPSHOTS: &[&str] = &[
    "[].hostname",
    "[].id",
    "[].parent",
    "[].paths",
    "[].short_id",
    "[].summary",
    "[].summary.backup_end",
    "[].summary.backup_start",
    "[].summary.data_added",
    "[].summary.data_added_packed",
    "[].summary.files_changed",
    "[].summary.files_new",
    "[].summary.files_unmodified",
    "[].summary.total_bytes_processed",
    "[].summary.total_files_processed",
    "[].tags",
    "[].time",
    "[].tree",
    "[].username",
];
const RESTORE: &[&str] = &[
    "bytes",
    "dirs",
    "errors",
    "files",
    "message_type",
    "skipped",
    "snapshot_id",
    "symlinks",
    "verified",
];
const CHECK: &[&str] = &[
    "blobs_read",
    "errors",
    "message_type",
    "ok",
    "packs",
    "packs_read",
    "snapshots",
    "trees",
    "warnings",
];
const CHECK_FAILED: &[&str] = &[
    "blobs_read",
    "errors",
    "errors[].message",
    "errors[].pack",
    "errors[].snapshots",
    "message_type",
    "ok",
    "packs",
    "packs_read",
    "snapshots",
    "trees",
    "warnings",
];
const FORGET: &[&str] = &[
    "dry_run",
    "message_type",
    "snapshots",
    "snapshots[].id",
    "snapshots[].keep",
    "snapshots[].reasons",
];
const PRUNE: &[&str] = &[
    "blobs_unused",
    "bytes_added",
    "bytes_removed",
    "dry_run",
    "message_type",
    "packs_deleted",
    "packs_kept",
    "packs_repacked",
    "packs_unindexed",
    "temp_bytes_removed",
    "temp_files_removed",
];
const EXPORT: &[&str] = &["bytes", "entries", "message_type", "output", "snapshot_id"];
const COPY: &[&str] = &[
    "blobs",
    "copied",
    "copied[].copy",
    "copied[].source",
    "message_type",
    "skipped",
];
const UNLOCK: &[&str] = &["message_type", "removed"];

/// The progress lines, which appear after a second of work: whichever
/// turns up must have one of these shapes.
const STATUS: &[&[&str]] = &[
    &["bytes_done", "files_done", "message_type"],
    &["bytes_restored", "files_restored", "message_type"],
    &["message_type", "packs_done", "packs_total"],
];

/// One command: its arguments (`{repo}`, `{repo2}`, `{src}` and `{tmp}`
/// replaced), what it reads on stdin, its exit status, and the messages it
/// prints in order: `message_type` (`None` for a document without one) and
/// key set.
struct Step {
    args: &'static [&'static str],
    stdin: Option<&'static [u8]>,
    status: i32,
    messages: &'static [(Option<&'static str>, &'static [&'static str])],
}

const STEPS: &[Step] = &[
    Step {
        args: &["init", "-r", "{repo}"],
        stdin: None,
        status: 0,
        messages: &[(Some("initialized"), INIT)],
    },
    Step {
        args: &["init", "-r", "{repo2}"],
        stdin: None,
        status: 0,
        messages: &[(Some("initialized"), INIT)],
    },
    Step {
        args: &["backup", "-r", "{repo}", "{src}", "--tag", "a"],
        stdin: None,
        status: 0,
        messages: &[(Some("summary"), BACKUP)],
    },
    // Again: the first is its parent, and `forget --keep-last 1` has
    // something to remove.
    Step {
        args: &["backup", "-r", "{repo}", "{src}"],
        stdin: None,
        status: 0,
        messages: &[(Some("summary"), BACKUP)],
    },
    Step {
        args: &[
            "backup",
            "-r",
            "{repo}",
            "--stdin",
            "--stdin-filename",
            "db.dump",
        ],
        stdin: Some(b"a database dump"),
        status: 0,
        messages: &[(Some("summary"), BACKUP)],
    },
    // A failing command: no snapshot, exit 1, nothing on stdout; audited.
    Step {
        args: &[
            "backup",
            "-r",
            "{repo}",
            "--stdin-from-command",
            "--",
            "false",
        ],
        stdin: None,
        status: 1,
        messages: &[],
    },
    Step {
        args: &["snapshots", "-r", "{repo}"],
        stdin: None,
        status: 0,
        messages: &[(None, SNAPSHOTS)],
    },
    Step {
        args: &[
            "restore",
            "-r",
            "{repo}",
            "latest",
            "--target",
            "{tmp}/restored",
            "--verify",
        ],
        stdin: None,
        status: 0,
        messages: &[(Some("summary"), RESTORE)],
    },
    // An unknown snapshot: a runtime error, audited.
    Step {
        args: &[
            "restore",
            "-r",
            "{repo}",
            "nosuch",
            "--target",
            "{tmp}/nothing",
        ],
        stdin: None,
        status: 2,
        messages: &[],
    },
    Step {
        args: &["check", "-r", "{repo}", "--read-data"],
        stdin: None,
        status: 0,
        messages: &[(Some("summary"), CHECK)],
    },
    Step {
        args: &["forget", "-r", "{repo}", "--keep-last", "1", "--dry-run"],
        stdin: None,
        status: 0,
        messages: &[(Some("forget"), FORGET)],
    },
    Step {
        args: &[
            "export",
            "-r",
            "{repo}",
            "latest",
            "--output",
            "{tmp}/x.tar.gz",
        ],
        stdin: None,
        status: 0,
        messages: &[(Some("export"), EXPORT)],
    },
    Step {
        args: &["copy", "-r", "{repo}", "--to", "{repo2}"],
        stdin: None,
        status: 0,
        messages: &[(Some("copy"), COPY)],
    },
    Step {
        args: &["forget", "-r", "{repo}", "--keep-last", "1", "--prune"],
        stdin: None,
        status: 0,
        messages: &[(Some("forget"), FORGET), (Some("prune"), PRUNE)],
    },
    Step {
        args: &["prune", "-r", "{repo}", "--dry-run"],
        stdin: None,
        status: 0,
        messages: &[(Some("prune"), PRUNE)],
    },
    Step {
        args: &["unlock", "-r", "{repo}"],
        stdin: None,
        status: 0,
        messages: &[(Some("unlock"), UNLOCK)],
    },
];

/// The audit records the steps leave: action, outcome and detail keys.
const AUDITED: &[(&str, &str, &[&str])] = &[
    ("backup.create", "success", &["git", "paths", "snapshot_id"]),
    ("backup.create", "success", &["git", "paths", "snapshot_id"]),
    ("backup.create", "success", &["snapshot_id", "stdin"]),
    ("backup.create", "failure", &["command", "error"]),
    (
        "backup.restore",
        "success",
        &["bytes", "errors", "files", "snapshot_id", "target"],
    ),
    (
        "backup.restore",
        "failure",
        &["error", "snapshot", "target"],
    ),
];

/// Run `bulwark --json ARGS` with the repository password; check its exit
/// status and its messages against `want`. Returns nothing: it asserts.
fn check(
    data: &Path,
    args: &[String],
    stdin: Option<&[u8]>,
    status: i32,
    want: &[(Option<&str>, &[&str])],
) {
    let mut cmd = bulwark_repo(data);
    cmd.arg("--json").args(args);
    let out = match stdin {
        Some(input) => run_with_stdin(&mut cmd, input.to_vec()),
        None => run(&mut cmd),
    };
    let what = args.join(" ");
    assert_eq!(out.status.code(), Some(status), "{what}: {}", text(&out));
    let stdout = String::from_utf8(out.stdout.clone()).expect("utf-8 output");
    let mut messages = Vec::new();
    for line in stdout.lines() {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{what}: not a JSON line ({e}): {line}"));
        let keys = key_paths(&value);
        if value["message_type"] == "status" {
            assert!(
                STATUS.iter().any(|s| keys == *s),
                "{what}: status line {line}"
            );
            continue;
        }
        if value.is_object() {
            // The messages have always printed their keys in sorted order
            // (at every depth) and compactly: the bytes are part of the
            // promise to line-oriented tools.
            assert_eq!(value.to_string(), line, "{what}: key order changed");
        }
        messages.push((value, keys));
    }
    assert_eq!(messages.len(), want.len(), "{what}: {stdout}");
    for ((value, keys), (message_type, expected)) in messages.iter().zip(want) {
        match message_type {
            Some(t) => assert_eq!(value["message_type"], *t, "{what}: {value}"),
            None => assert!(value.get("message_type").is_none(), "{what}: {value}"),
        }
        assert_eq!(keys, *expected, "{what}: {value}");
    }
}

#[test]
fn repository_json_messages_and_audit_details_keep_their_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // A data directory: the repository commands write audit records.
    std::fs::create_dir_all(&data).unwrap();
    let src = tmp.path().join("src");
    small_tree(&src);
    let path = |p: &Path| p.to_str().unwrap().to_string();
    let (repo, repo2) = (tmp.path().join("repo"), tmp.path().join("repo2"));
    let substitute = |arg: &str| {
        arg.replace("{repo2}", &path(&repo2))
            .replace("{repo}", &path(&repo))
            .replace("{src}", &path(&src))
            .replace("{tmp}", &path(tmp.path()))
    };
    for step in STEPS {
        let args: Vec<String> = step.args.iter().map(|a| substitute(a)).collect();
        check(&data, &args, step.stdin, step.status, step.messages);
    }

    // Damage every pack: the check fails, and its errors name pack and
    // snapshots.
    for pack in files(&repo.join("data")) {
        let mut perm = std::fs::metadata(&pack).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perm.set_readonly(false);
        std::fs::set_permissions(&pack, perm).unwrap();
        let mut bytes = std::fs::read(&pack).unwrap();
        let last = bytes.len() / 2;
        bytes[last] ^= 1;
        std::fs::write(&pack, bytes).unwrap();
    }
    let args = ["check", "-r", &path(&repo), "--read-data"].map(String::from);
    check(&data, &args, None, 1, &[(Some("summary"), CHECK_FAILED)]);

    let audited: Vec<(String, String, Vec<String>)> = audit_records(&data)
        .iter()
        .filter(|r| {
            r["action"]
                .as_str()
                .is_some_and(|a| a.starts_with("backup."))
        })
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_string(),
                r["outcome"].as_str().unwrap().to_string(),
                key_paths(&r["detail"]),
            )
        })
        .collect();
    let expected: Vec<(String, String, Vec<String>)> = AUDITED
        .iter()
        .map(|(action, outcome, keys)| {
            (
                action.to_string(),
                outcome.to_string(),
                keys.iter().map(|k| k.to_string()).collect(),
            )
        })
        .collect();
    assert_eq!(audited, expected);
}

/// Every file under `dir`.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}
