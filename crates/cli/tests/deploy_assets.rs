//! The deployment assets, checked by the tools their users' platforms use
//! and run where they can run here: the GitHub workflows against GitHub's
//! schema (check-jsonschema), every shell script through shellcheck, the
//! systemd unit's hardening (read, then `systemd-analyze verify` and
//! `security`), the Dockerfile's final stage and its health check against
//! a real `bulwark serve`, the backup workflow's steps
//! (`scripts/ci-backup.sh`) against a real repository and a loopback Slack
//! receiver, and `scripts/setup-gh-secrets.sh` with recording stand-ins for
//! terraform and gh.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{ok, require_tool, source_root, text};

fn read(rel: &str) -> String {
    std::fs::read_to_string(source_root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

// --- GitHub workflows ---------------------------------------------------------

#[test]
fn workflows_match_githubs_schema() {
    require_tool("check-jsonschema");
    let dir = source_root().join(".github/workflows");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.iter().any(|f| f.ends_with("backup.yml")),
        "no backup.yml in {files:?}"
    );
    let out = Command::new("check-jsonschema")
        .args(["--builtin-schema", "vendor.github-workflows"])
        .args(&files)
        .output()
        .unwrap();
    ok(
        "check-jsonschema --builtin-schema vendor.github-workflows",
        out,
    );
}

/// What the schema cannot say: the inputs our users' commands pass, least
/// privilege, no overlapping runs, time limits, pinned actions, and inputs
/// that reach shell commands only through the environment.
#[test]
fn backup_workflow_keeps_its_promises() {
    let wf = read(".github/workflows/backup.yml");
    for needle in [
        "workflow_dispatch:",
        "schedule:",
        "backup_source:",
        "operation:",
        "filename:",
        "options: [backup, restore, verify, drill, init]",
        "contents: read",
        "concurrency:",
        "cancel-in-progress: false",
        "timeout-minutes:",
        "actions/cache/restore@",
        "actions/cache/save@",
        "actions/upload-artifact@",
        "scripts/ci-backup.sh notify",
        "SLACK_WEBHOOK_URL: ${{ secrets.SLACK_WEBHOOK_URL }}",
        "GOOGLE_APPLICATION_CREDENTIALS_JSON",
        // With a role, its OIDC keys win over stored ones: stored keys
        // beside the role's AWS_SESSION_TOKEN make a pair S3 refuses.
        "AWS_ACCESS_KEY_ID: ${{ env.AWS_OIDC_ROLE_ARN != '' && env.AWS_ACCESS_KEY_ID || secrets.AWS_ACCESS_KEY_ID }}",
        "AWS_SECRET_ACCESS_KEY: ${{ env.AWS_OIDC_ROLE_ARN != '' && env.AWS_SECRET_ACCESS_KEY || secrets.AWS_SECRET_ACCESS_KEY }}",
    ] {
        assert!(wf.contains(needle), "backup.yml lacks {needle:?}");
    }
    for (i, line) in wf.lines().enumerate() {
        let line = line.trim();
        if let Some(action) = line
            .strip_prefix("uses:")
            .or_else(|| line.strip_prefix("- uses:"))
        {
            let version = action.trim().rsplit_once('@').map(|(_, v)| v);
            assert!(
                version.is_some_and(|v| v.len() > 1
                    && v.starts_with('v')
                    && v[1..].bytes().all(|b| b.is_ascii_digit())),
                "backup.yml:{}: {line:?} is not pinned to a major version",
                i + 1
            );
        }
        // `run:` lines see inputs only as environment variables: an input
        // spliced into the script text would be a command injection.
        if line.starts_with("run:") {
            assert!(
                !line.contains("${{"),
                "backup.yml:{}: expression in a run line: {line}",
                i + 1
            );
        }
    }
    // Every job has a time limit.
    let jobs = wf.split("\njobs:\n").nth(1).expect("jobs");
    let job_names: Vec<&str> = jobs
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   ") && l.ends_with(':'))
        .collect();
    assert!(!job_names.is_empty());
    assert_eq!(
        jobs.matches("\n    timeout-minutes:").count(),
        job_names.len(),
        "a job without timeout-minutes in {job_names:?}"
    );
}

// --- shell scripts ------------------------------------------------------------

/// Every shell script the repository tracks: `*.sh`, and files whose first
/// line runs sh or bash (`.ci/run`).
fn shell_scripts() -> Vec<PathBuf> {
    let root = source_root();
    let out = ok(
        "git ls-files",
        Command::new("git")
            .arg("-C")
            .arg(&root)
            .args([
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ])
            .output()
            .expect("git"),
    );
    let mut scripts: Vec<PathBuf> = out
        .split('\0')
        .filter(|p| !p.is_empty())
        .map(|p| root.join(p))
        .filter(|p| p.is_file())
        .filter(|p| {
            if p.extension().is_some_and(|x| x == "sh") {
                return true;
            }
            let mut first = String::new();
            let Ok(f) = std::fs::File::open(p) else {
                return false;
            };
            let _ = BufReader::new(f.take(128)).read_line(&mut first);
            first.starts_with("#!")
                && ["sh", "bash"].iter().any(|sh| {
                    first
                        .split(|c: char| c.is_whitespace() || c == '/')
                        .any(|w| w == *sh)
                })
        })
        .collect();
    scripts.sort();
    scripts.dedup();
    scripts
}

#[test]
fn shell_scripts_pass_shellcheck() {
    require_tool("shellcheck");
    let scripts = shell_scripts();
    let root = source_root();
    for expected in [
        ".ci/run",
        "scripts/test.sh",
        "scripts/ci-backup.sh",
        "scripts/setup-gh-secrets.sh",
    ] {
        assert!(
            scripts.contains(&root.join(expected)),
            "{expected} not among the scripts found: {scripts:?}"
        );
    }
    let out = Command::new("shellcheck")
        .arg("--external-sources")
        .args(&scripts)
        .output()
        .unwrap();
    ok(&format!("shellcheck over {} scripts", scripts.len()), out);
}

// --- systemd ----------------------------------------------------------------------

/// `[Section]` → key → every value given (a key may repeat).
fn unit_file(text: &str) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let (key, value) = line.split_once('=').expect("key=value");
        out.entry(section.clone())
            .or_default()
            .entry(key.trim().to_string())
            .or_default()
            .push(value.trim().to_string());
    }
    out
}

#[test]
fn systemd_unit_is_hardened() {
    let unit = unit_file(&read("deploy/systemd/bulwark.service"));
    let service = &unit["Service"];
    let get = |key: &str| -> String {
        service
            .get(key)
            .unwrap_or_else(|| panic!("bulwark.service has no {key}="))
            .join(" ")
    };
    // (directive, what its value must be)
    let table: &[(&str, &str)] = &[
        ("StateDirectory", "bulwark"),
        ("ConfigurationDirectory", "bulwark"),
        ("ProtectSystem", "strict"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("MemoryDenyWriteExecute", "yes"),
        ("UMask", "0077"),
        ("Restart", "on-failure"),
    ];
    for (key, want) in table {
        assert_eq!(get(key), *want, "bulwark.service {key}=");
    }
    assert!(
        ["yes", "read-only", "tmpfs"].contains(&get("ProtectHome").as_str()),
        "ProtectHome={}",
        get("ProtectHome")
    );
    let dynamic = service
        .get("DynamicUser")
        .is_some_and(|v| v.iter().any(|v| v == "yes"));
    let user = service.get("User").map(|v| v.join(""));
    assert!(
        dynamic
            || user
                .as_deref()
                .is_some_and(|u| !u.is_empty() && u != "root" && u != "0"),
        "neither DynamicUser=yes nor a dedicated User= (User={user:?})"
    );
    let families = get("RestrictAddressFamilies");
    for family in families.split_whitespace() {
        assert!(
            ["AF_UNIX", "AF_INET", "AF_INET6"].contains(&family),
            "RestrictAddressFamilies allows {family}"
        );
    }
    assert!(
        get("SystemCallFilter")
            .split_whitespace()
            .any(|f| f == "@system-service"),
        "SystemCallFilter={}",
        get("SystemCallFilter")
    );
    assert!(
        get("EnvironmentFile").starts_with('-'),
        "EnvironmentFile= must be optional (a leading -)"
    );
    let exec = get("ExecStart");
    assert!(
        exec.contains("--data-dir /var/lib/bulwark") && exec.ends_with(" serve"),
        "ExecStart={exec}"
    );
}

/// systemd's own reading of the unit: no unknown or misspelt directive, and
/// the exposure `systemd-analyze security` scores stays low.
#[test]
fn systemd_accepts_the_unit() {
    require_tool("systemd-analyze");
    let tmp = tempfile::tempdir().unwrap();
    // verify checks that ExecStart's binary exists: point it at ours.
    let unit = read("deploy/systemd/bulwark.service")
        .replace("/usr/local/bin/bulwark", env!("CARGO_BIN_EXE_bulwark"));
    let path = tmp.path().join("bulwark.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let said = text(&out);
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify ({}):\n{said}",
        out.status
    );
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&path)
        .output()
        .unwrap();
    let said = text(&out);
    let exposure: f64 = said
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for bulwark.service: "))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{said}"));
    assert!(
        exposure <= 2.0,
        "exposure {exposure} (at most 2.0):\n{said}"
    );
}

// --- Dockerfile ---------------------------------------------------------------

/// The instructions of the Dockerfile's last stage, continuation lines
/// joined: `(INSTRUCTION, arguments)`.
fn final_stage(dockerfile: &str) -> Vec<(String, String)> {
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let line = line.trim();
        if current.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        if line.starts_with('#') {
            continue; // a comment between continuation lines
        }
        match line.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                joined.push(std::mem::take(&mut current));
            }
        }
    }
    let mut stage = Vec::new();
    for instruction in joined {
        let (name, args) = instruction
            .split_once(char::is_whitespace)
            .unwrap_or((&instruction, ""));
        let name = name.to_ascii_uppercase();
        if name == "FROM" {
            stage.clear();
        }
        stage.push((name, args.trim().to_string()));
    }
    stage
}

#[test]
fn dockerfile_final_stage_runs_as_non_root() {
    let stage = final_stage(&read("Dockerfile"));
    let last = |name: &str| {
        stage
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a.clone())
            .unwrap_or_else(|| panic!("the final stage has no {name}"))
    };
    assert!(
        last("FROM").starts_with("debian:bookworm-slim"),
        "FROM {}",
        last("FROM")
    );
    let user = last("USER");
    let uid = user.split(':').next().unwrap();
    assert!(
        uid.parse::<u32>().is_ok_and(|u| u >= 1000),
        "USER {user}: a fixed non-root uid"
    );
    assert_eq!(last("ENTRYPOINT"), r#"["bulwark"]"#);
    assert_eq!(last("CMD"), r#"["serve"]"#);
    assert_eq!(last("EXPOSE"), "8080");
    assert_eq!(last("VOLUME"), "/var/lib/bulwark");
    let env = last("ENV");
    assert!(env.contains("BULWARK_LISTEN=0.0.0.0:8080"), "ENV {env}");
    assert!(
        env.contains("BULWARK_DATA_DIR=/var/lib/bulwark"),
        "ENV {env}"
    );
    // Nothing after USER switches back to root.
    let user_at = stage.iter().rposition(|(n, _)| n == "USER").unwrap();
    assert!(
        !stage[user_at..].iter().any(|(n, _)| n == "RUN"),
        "RUN after USER runs as the service user; put it before"
    );
}

/// The HEALTHCHECK's command as Docker would run it (exec form).
fn healthcheck_argv() -> Vec<String> {
    let stage = final_stage(&read("Dockerfile"));
    let args = stage
        .iter()
        .find(|(n, _)| n == "HEALTHCHECK")
        .map(|(_, a)| a.clone())
        .expect("HEALTHCHECK");
    let json = &args[args.find("CMD ").expect("HEALTHCHECK ... CMD [...]") + 4..];
    serde_json::from_str(json.trim()).expect("HEALTHCHECK CMD in exec (JSON) form")
}

#[test]
fn docker_healthcheck_passes_only_while_bulwark_serves() {
    let argv = healthcheck_argv();
    require_tool(&argv[0]);
    let tmp = tempfile::tempdir().unwrap();
    let server = common::serve(&mut common::bulwark(&tmp.path().join("data")), None);
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    let check = |listen: &str| {
        Command::new(&argv[0])
            .args(&argv[1..])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("BULWARK_LISTEN", listen)
            .output()
            .unwrap()
    };
    let up = check(&format!("0.0.0.0:{port}"));
    assert!(
        up.status.success(),
        "healthcheck against a serving bulwark: {}",
        text(&up)
    );
    drop(server);
    let down = check(&format!("0.0.0.0:{port}"));
    assert!(
        !down.status.success(),
        "healthcheck passed with nothing serving"
    );
}

// --- the backup workflow's steps ----------------------------------------------

/// `scripts/ci-backup.sh ARGS` with only the environment a workflow step
/// gives it: PATH, HOME and `vars`.
fn ci_backup(cwd: &Path, vars: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(source_root().join("scripts/ci-backup.sh"))
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", cwd)
        .env("TMPDIR", cwd)
        .env("BULWARK", env!("CARGO_BIN_EXE_bulwark"))
        .envs(vars.iter().copied())
        .output()
        .unwrap()
}

fn ndjson_summary(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(text.lines().last().expect("a summary line")).unwrap()
}

#[test]
fn workflow_steps_back_up_restore_by_archive_name_verify_and_drill() {
    require_tool("jq");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let source = dir.join("app");
    common::small_tree(&source);
    let repo = dir.join("repo");
    let out_dir = dir.join("out");
    let (repo_s, out_s) = (repo.to_str().unwrap(), out_dir.to_str().unwrap());
    let vars = [
        ("BULWARK_REPOSITORY", repo_s),
        ("BULWARK_PASSWORD", common::REPO_PASSWORD),
        ("OUTPUT_DIR", out_s),
        ("BACKUP_SOURCE", "app"),
        ("GITHUB_RUN_ID", "4242"),
        // The empty secrets of the clouds not in use.
        ("AWS_ACCESS_KEY_ID", ""),
        ("AZURE_ACCOUNT_SAS", ""),
    ];
    ok("ci-backup.sh init", ci_backup(dir, &vars, &["init"]));
    ok("ci-backup.sh backup", ci_backup(dir, &vars, &["backup"]));
    let backup = ndjson_summary(&out_dir.join("backup.ndjson"));
    let id = backup["snapshot_id"].as_str().unwrap().to_string();
    let summary = std::fs::read_to_string(out_dir.join("summary.txt")).unwrap();
    assert!(
        summary.starts_with(&format!("snapshot {}", &id[..8])),
        "{summary}"
    );

    let snaps = common::snapshots(&dir.join("data"), &repo);
    assert_eq!(snaps.len(), 1);
    let tags: Vec<&str> = snaps[0]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(tags, ["ci", "github-run-4242"]);
    assert_eq!(snaps[0]["hostname"], "github-actions");

    // Restore by the name our users' scripts gave the archive of that second.
    let time = snaps[0]["time"].as_str().unwrap();
    let archive = format!(
        "app-backup-{}_{}.tar.gz",
        time[..10].replace('-', ""),
        time[11..19].replace(':', "")
    );
    let work = dir.join("work");
    let work_s = work.to_str().unwrap();
    let restore_vars = [
        vars.as_slice(),
        &[("FILENAME", archive.as_str()), ("WORK_DIR", work_s)],
    ]
    .concat();
    ok(
        "ci-backup.sh restore",
        ci_backup(dir, &restore_vars, &["restore"]),
    );
    let restored = ndjson_summary(&out_dir.join("restore.ndjson"));
    assert_eq!(restored["snapshot_id"], id.as_str());
    assert!(restored["verified"].as_u64().unwrap() > 0, "{restored}");
    assert_eq!(
        common::tree_listing(&work.join("restore").join(source.strip_prefix("/").unwrap())),
        common::tree_listing(&source)
    );

    // A name that matches no snapshot fails, naming it.
    let wrong = [
        vars.as_slice(),
        &[("FILENAME", "app-backup-20000101_000000.tar.gz")],
    ]
    .concat();
    let out = ci_backup(dir, &wrong, &["restore"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("app-backup-20000101_000000.tar.gz"),
        "{}",
        text(&out)
    );

    ok("ci-backup.sh verify", ci_backup(dir, &vars, &["verify"]));
    let check = ndjson_summary(&out_dir.join("check.ndjson"));
    assert_eq!(check["ok"], true);
    assert_eq!(check["snapshots"], 1);

    ok("ci-backup.sh drill", ci_backup(dir, &vars, &["drill"]));
    let drill = ndjson_summary(&out_dir.join("drill.ndjson"));
    assert_eq!(drill["passed"], true, "{drill}");
    assert_eq!(drill["snapshot"], id.as_str());
    assert_eq!(drill["rpo_target_seconds"], 8 * 86_400);
    let reports: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("dr_report_") && n.ends_with(".json"))
        .collect();
    assert_eq!(reports.len(), 1, "the drill's report among the outputs");
    // No restored file is left behind in the scratch space.
    assert!(std::fs::read_dir(dir).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with("bulwark-ci.")));

    // The seed's backup_source values name the cloud: a mismatch is refused.
    let aws = [vars.as_slice(), &[("BACKUP_SOURCE", "aws")]].concat();
    let out = ci_backup(dir, &aws, &["backup"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("backup_source aws needs a s3: repository"),
        "{}",
        text(&out)
    );

    // Without the password secret: a clear error, nothing run.
    let no_password: Vec<_> = vars
        .iter()
        .filter(|(k, _)| *k != "BULWARK_PASSWORD")
        .copied()
        .collect();
    let out = ci_backup(dir, &no_password, &["backup"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("BULWARK_PASSWORD is empty"),
        "{}",
        text(&out)
    );
}

#[test]
fn workflow_backup_of_git_snapshots_head_and_tags_the_commit() {
    require_tool("git");
    require_tool("jq");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let checkout = dir.join("checkout");
    std::fs::create_dir_all(&checkout).unwrap();
    let git = |args: &[&str]| {
        ok(
            &format!("git {args:?}"),
            Command::new("git")
                .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
                .args(args)
                .current_dir(&checkout)
                .output()
                .unwrap(),
        )
    };
    git(&["init", "-q"]);
    std::fs::write(checkout.join("committed.txt"), "in HEAD").unwrap();
    git(&["add", "committed.txt"]);
    git(&["commit", "-qm", "one"]);
    let head = git(&["rev-parse", "HEAD"]).trim().to_string();
    std::fs::write(checkout.join("untracked.txt"), "not in HEAD").unwrap();
    let repo = dir.join("repo");
    let out_dir = dir.join("out");
    let vars = [
        ("BULWARK_REPOSITORY", repo.to_str().unwrap()),
        ("BULWARK_PASSWORD", common::REPO_PASSWORD),
        ("OUTPUT_DIR", out_dir.to_str().unwrap()),
    ];
    ok("init", ci_backup(&checkout, &vars, &["init"]));
    // BACKUP_SOURCE unset: the scheduled run's default, `git`.
    ok("backup", ci_backup(&checkout, &vars, &["backup"]));
    let snaps = common::snapshots(&dir.join("data"), &repo);
    assert_eq!(snaps.len(), 1);
    assert!(
        snaps[0]["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == head.as_str()),
        "{} not tagged {head}",
        snaps[0]
    );
    let target = dir.join("restored");
    ok(
        "restore",
        common::run(
            common::bulwark_repo(&dir.join("data"))
                .args(["restore", "-r"])
                .arg(&repo)
                .args(["latest", "--target"])
                .arg(&target),
        ),
    );
    let restored: Vec<String> = common::tree_listing(&target)
        .into_iter()
        .filter(|(_, kind, _)| kind.starts_with("file"))
        .map(|(p, _, _)| p)
        .collect();
    assert_eq!(restored.len(), 1, "{restored:?}");
    assert!(restored[0].ends_with("committed.txt"), "{restored:?}");
}

/// A loopback stand-in for Slack's incoming webhook: answers one request
/// with `status` and hands back its request line and body.
fn webhook_receiver(status: u16) -> (String, std::thread::JoinHandle<(String, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/services/T0/B0/secret-token",
        listener.local_addr().unwrap()
    );
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut request_line = String::new();
        reader.read_line(&mut request_line).unwrap();
        let mut length = 0;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            if header.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = header.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let mut stream = stream;
        write!(
            stream,
            "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
        )
        .unwrap();
        (request_line, String::from_utf8(body).unwrap())
    });
    (url, handle)
}

#[test]
fn workflow_notifies_slack_with_the_run_and_skips_without_a_webhook() {
    require_tool("curl");
    require_tool("jq");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out_dir = dir.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::write(out_dir.join("summary.txt"), "drill FAILED at restore\n").unwrap();
    let run_url = "https://github.com/acme/app/actions/runs/4242";
    let (url, receiver) = webhook_receiver(200);
    let vars = [
        ("SLACK_WEBHOOK_URL", url.as_str()),
        ("RUN_URL", run_url),
        ("GITHUB_REPOSITORY", "acme/app"),
        ("OUTPUT_DIR", out_dir.to_str().unwrap()),
    ];
    let out = ci_backup(dir, &vars, &["notify", "failure", "drill"]);
    let said = text(&out);
    ok("notify", out);
    let (request_line, body) = receiver.join().unwrap();
    assert!(
        request_line.starts_with("POST /services/T0/B0/secret-token "),
        "{request_line}"
    );
    let message: serde_json::Value = serde_json::from_str(&body).unwrap();
    let text_field = message["text"].as_str().unwrap();
    assert!(
        text_field.contains(":x: Bulwark drill failure in acme/app"),
        "{text_field}"
    );
    assert!(
        text_field.contains(&format!("<{run_url}|run>")),
        "{text_field}"
    );
    assert!(
        text_field.contains("drill FAILED at restore"),
        "{text_field}"
    );
    assert!(
        !said.contains("secret-token"),
        "the webhook URL was printed: {said}"
    );

    // A webhook that refuses: a warning on the run, not a second failure.
    let (url, receiver) = webhook_receiver(404);
    let vars404 = [
        ("SLACK_WEBHOOK_URL", url.as_str()),
        ("OUTPUT_DIR", out_dir.to_str().unwrap()),
    ];
    let out = ci_backup(dir, &vars404, &["notify", "success", "backup"]);
    receiver.join().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("::warning::the Slack notification failed"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("secret-token"), "{}", text(&out));

    // No webhook secret: skipped, successfully.
    let vars_empty = [
        ("SLACK_WEBHOOK_URL", ""),
        ("OUTPUT_DIR", out_dir.to_str().unwrap()),
    ];
    let out = ci_backup(dir, &vars_empty, &["notify", "success", "backup"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("no Slack message"), "{}", text(&out));

    let out = ci_backup(dir, &vars_empty, &["notify", "maybe", "backup"]);
    assert_eq!(out.status.code(), Some(0), "no webhook: nothing to judge");
    let out = ci_backup(dir, &vars, &["notify", "maybe", "backup"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("status must be success, failure or cancelled"),
        "{}",
        text(&out)
    );
}

// --- setup-gh-secrets ------------------------------------------------------------

/// A directory of stand-ins: `terraform` prints `outputs` (what `terraform
/// output -json` prints), `gh` records its arguments and standard input.
struct Fakes {
    dir: tempfile::TempDir,
}

impl Fakes {
    fn new(outputs: &serde_json::Value, with_gh: bool) -> Fakes {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(dir.path().join("module")).unwrap();
        std::fs::write(dir.path().join("outputs.json"), outputs.to_string()).unwrap();
        let mut tools = vec![(
            "terraform",
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{0}/terraform.args'\ncat '{0}/outputs.json'\n",
                dir.path().display()
            ),
        )];
        if with_gh {
            tools.push((
                "gh",
                format!(
                    "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{0}/gh.args'\nprintf '%s\\0' \"$3\" >> '{0}/gh.values'\ncat >> '{0}/gh.values'\nprintf '\\0' >> '{0}/gh.values'\n",
                    dir.path().display()
                ),
            ));
        }
        for (name, script) in tools {
            std::fs::write(bin.join(name), script).unwrap();
            std::fs::set_permissions(bin.join(name), std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }
        Fakes { dir }
    }

    /// `setup-gh-secrets.sh --dir MODULE ARGS` with the stand-ins first on
    /// PATH and the system's tools (jq, base64) after them, but no other
    /// terraform or gh.
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new(source_root().join("scripts/setup-gh-secrets.sh"))
            .arg("--dir")
            .arg(self.dir.path().join("module"))
            .args(args)
            .env_clear()
            .env(
                "PATH",
                format!("{}:/usr/bin:/bin", self.dir.path().join("bin").display()),
            )
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    }

    fn password_file(&self, password: &str) -> String {
        let path = self.dir.path().join("password");
        std::fs::write(&path, format!("{password}\n")).unwrap();
        path.to_str().unwrap().to_string()
    }

    /// What gh was given: secret name → value, in order.
    fn secrets(&self) -> Vec<(String, String)> {
        let raw = std::fs::read(self.dir.path().join("gh.values")).unwrap_or_default();
        let parts: Vec<String> = raw
            .split(|b| *b == 0)
            .map(|p| String::from_utf8(p.to_vec()).unwrap())
            .collect();
        parts
            .chunks(2)
            .filter(|c| c.len() == 2)
            .map(|c| (c[0].clone(), c[1].clone()))
            .collect()
    }

    fn gh_args(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gh.args")).unwrap_or_default()
    }
}

fn outputs(pairs: &[(&str, serde_json::Value)]) -> serde_json::Value {
    serde_json::Value::Object(
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    serde_json::json!({"sensitive": false, "type": "string", "value": v}),
                )
            })
            .collect(),
    )
}

#[test]
fn setup_gh_secrets_copies_terraform_outputs_through_stdin() {
    require_tool("jq");
    let password = "a long repository passphrase";
    let webhook = "https://hooks.slack.com/services/T1/B1/webhook-secret";
    let aws = outputs(&[
        (
            "repository",
            "s3:https://s3.eu-west-1.amazonaws.com/acme-backups/bulwark".into(),
        ),
        ("region", "eu-west-1".into()),
        ("bucket_name", "acme-backups".into()),
        ("role_arn", "arn:aws:iam::123456789012:role/bulwark".into()),
        ("access_key_id", "AKIAEXAMPLEKEY".into()),
        ("secret_access_key", "aws-secret-value".into()),
    ]);
    let fakes = Fakes::new(&aws, true);
    let pw = fakes.password_file(password);
    let out = fakes.run(
        &["--repo", "acme/app", "--password-file", &pw, "aws"],
        &[("SLACK_WEBHOOK_URL", webhook)],
    );
    let said = text(&out);
    ok("setup-gh-secrets aws", out);
    let expected = [
        (
            "BULWARK_REPOSITORY",
            "s3:https://s3.eu-west-1.amazonaws.com/acme-backups/bulwark",
        ),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEY"),
        ("AWS_SECRET_ACCESS_KEY", "aws-secret-value"),
        ("BULWARK_PASSWORD", password),
        ("SLACK_WEBHOOK_URL", webhook),
    ];
    let want: Vec<(String, String)> = expected
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(fakes.secrets(), want);
    // Values reach gh on stdin only: never in its arguments or the output.
    let args = fakes.gh_args();
    for (name, value) in expected {
        assert!(
            args.contains(&format!("secret set {name} --repo acme/app")),
            "{args}"
        );
        assert!(!args.contains(value), "{name}'s value in gh's arguments");
        assert!(!said.contains(value), "{name}'s value printed: {said}");
    }
    assert!(
        std::fs::read_to_string(fakes.dir.path().join("terraform.args"))
            .unwrap()
            .contains("output -json")
    );

    // No stored key: the role, for GitHub OIDC.
    let role_only = outputs(&[
        (
            "repository",
            "s3:https://s3.eu-west-1.amazonaws.com/acme-backups/bulwark".into(),
        ),
        ("region", "eu-west-1".into()),
        ("role_arn", "arn:aws:iam::123456789012:role/bulwark".into()),
        ("access_key_id", serde_json::Value::Null),
        ("secret_access_key", serde_json::Value::Null),
    ]);
    let fakes = Fakes::new(&role_only, true);
    let pw = fakes.password_file(password);
    ok(
        "aws with a role",
        fakes.run(&["--password-file", &pw, "aws"], &[]),
    );
    let names: Vec<String> = fakes.secrets().into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        names,
        [
            "BULWARK_REPOSITORY",
            "AWS_REGION",
            "AWS_ROLE_ARN",
            "BULWARK_PASSWORD"
        ]
    );

    let azure = outputs(&[
        ("repository", "azure:bulwark:/".into()),
        ("storage_account_name", "acmebackups".into()),
        ("container_name", "bulwark".into()),
        ("sas_token", "sv=2022-11-02&sig=sas-secret".into()),
    ]);
    let fakes = Fakes::new(&azure, true);
    let pw = fakes.password_file(password);
    ok("azure", fakes.run(&["--password-file", &pw, "azure"], &[]));
    assert_eq!(
        fakes.secrets()[..3],
        [
            (
                "BULWARK_REPOSITORY".to_string(),
                "azure:bulwark:/".to_string()
            ),
            ("AZURE_ACCOUNT_NAME".to_string(), "acmebackups".to_string()),
            (
                "AZURE_ACCOUNT_SAS".to_string(),
                "sv=2022-11-02&sig=sas-secret".to_string()
            ),
        ]
    );

    // GCP's key comes base64-encoded and goes in as the JSON itself.
    let key = r#"{"type":"service_account","client_email":"bulwark@p.iam.gserviceaccount.com","private_key":"-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n"}"#;
    let encoded = Command::new("base64")
        .arg("-w0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let encoded = {
        let mut child = encoded;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(key.as_bytes())
            .unwrap();
        String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
    };
    let gcp = outputs(&[
        ("repository", "gs:acme-backups:/bulwark".into()),
        ("bucket_name", "acme-backups".into()),
        (
            "service_account_email",
            "bulwark@p.iam.gserviceaccount.com".into(),
        ),
        ("service_account_key", encoded.trim().into()),
    ]);
    let fakes = Fakes::new(&gcp, true);
    let pw = fakes.password_file(password);
    ok("gcp", fakes.run(&["--password-file", &pw, "gcp"], &[]));
    assert_eq!(
        fakes.secrets()[1],
        (
            "GOOGLE_APPLICATION_CREDENTIALS_JSON".to_string(),
            key.to_string()
        )
    );
}

#[test]
fn setup_gh_secrets_dry_run_and_errors() {
    require_tool("jq");
    let aws = outputs(&[
        (
            "repository",
            "s3:https://s3.eu-west-1.amazonaws.com/acme-backups/bulwark".into(),
        ),
        ("region", "eu-west-1".into()),
        ("role_arn", "arn:aws:iam::123456789012:role/bulwark".into()),
        ("access_key_id", "AKIAEXAMPLEKEY".into()),
        ("secret_access_key", "aws-secret-value".into()),
    ]);
    // --dry-run: names only, and no gh needed.
    let fakes = Fakes::new(&aws, false);
    let out = fakes.run(&["--dry-run", "aws"], &[]);
    let said = ok("dry run", out);
    assert_eq!(
        said.lines().collect::<Vec<_>>(),
        [
            "would set BULWARK_REPOSITORY",
            "would set AWS_REGION",
            "would set AWS_ACCESS_KEY_ID",
            "would set AWS_SECRET_ACCESS_KEY",
            "would set BULWARK_PASSWORD",
        ]
    );

    let check = |fakes: &Fakes, args: &[&str], needle: &str| {
        let out = fakes.run(args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(needle), "{args:?}: {}", text(&out));
        assert!(!text(&out).contains("aws-secret-value"), "{}", text(&out));
        assert!(
            fakes.secrets().is_empty(),
            "a secret was set after an error"
        );
    };
    // Without gh, naming it.
    let pw = fakes.password_file("pw");
    check(
        &fakes,
        &["--password-file", &pw, "aws"],
        "gh is not installed",
    );
    // A missing output, named.
    let mut partial = aws.clone();
    partial.as_object_mut().unwrap().remove("region");
    let fakes = Fakes::new(&partial, true);
    let pw = fakes.password_file("pw");
    check(
        &fakes,
        &["--password-file", &pw, "aws"],
        "terraform output \"region\" is absent",
    );
    // A null required output (a key pair half made).
    let mut half = aws.clone();
    half["secret_access_key"]["value"] = serde_json::Value::Null;
    let fakes = Fakes::new(&half, true);
    let pw = fakes.password_file("pw");
    check(
        &fakes,
        &["--password-file", &pw, "aws"],
        "terraform output \"secret_access_key\" is null",
    );
    // No terminal to ask for the password, and no file.
    let fakes = Fakes::new(&aws, true);
    check(&fakes, &["aws"], "give --password-file FILE");
    check(
        &fakes,
        &["--password-file", "/nonexistent/pw", "aws"],
        "cannot read the password file",
    );
    check(&fakes, &["mars"], "unknown argument \"mars\"");
    // GCP without a key: the module's variable that makes one, named.
    let gcp_no_key = outputs(&[
        ("repository", "gs:acme-backups:/bulwark".into()),
        ("service_account_key", serde_json::Value::Null),
    ]);
    let gcp = Fakes::new(&gcp_no_key, true);
    let gcp_pw = gcp.password_file("pw");
    check(
        &gcp,
        &["--password-file", &gcp_pw, "gcp"],
        "create_key = true",
    );
    // No terraform on PATH.
    std::fs::remove_file(fakes.dir.path().join("bin/terraform")).unwrap();
    if !Path::new("/usr/bin/terraform").exists() && !Path::new("/bin/terraform").exists() {
        check(&fakes, &["--dry-run", "aws"], "terraform is not installed");
    }
}
