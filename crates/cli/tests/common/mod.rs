//! What the CLI tests share: the binary with a clean environment, output
//! helpers and a served instance that is killed when dropped.
#![allow(dead_code)] // each test binary uses a different part

// The repository tests' misbehaving proxy, also a recorder of who signed.
#[path = "../../../repo/tests/common/fault_proxy.rs"]
pub mod fault_proxy;

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
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_LOGS",
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

/// Starts `cmd serve --listen 127.0.0.1:PORT` on a free port (`cmd` is a
/// [`bulwark`] command with its config and environment) and waits for
/// `/healthz`. Its stdout and stderr go to `log` when given, else nowhere.
pub fn serve(cmd: &mut Command, log: Option<&Path>) -> Server {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let addr = format!("127.0.0.1:{}", free_port());
    let (stdout, stderr) = match log {
        Some(path) => {
            let file = std::fs::File::create(path).expect("server log file");
            (Stdio::from(file.try_clone().unwrap()), Stdio::from(file))
        }
        None => (Stdio::null(), Stdio::null()),
    };
    let child = cmd
        .args(["serve", "--listen", &addr])
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("spawn bulwark serve");
    let mut server = Server { child, addr };
    let deadline = Instant::now() + Duration::from_secs(60);
    while reqwest::blocking::get(format!("http://{}/healthz", server.addr)).is_err() {
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("bulwark serve exited with {status} before answering /healthz");
        }
        assert!(Instant::now() < deadline, "bulwark serve did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
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
        let config = bulwark_ops::parse_settings(&text, Some(&file), &env)
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

impl Api {
    /// The body of an unauthenticated `GET PATH` as text (`/metrics`).
    pub async fn text(&self, path: &str) -> String {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let req = axum::http::Request::builder()
            .uri(path)
            .body(axum::body::Body::empty())
            .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// The value of the Prometheus sample of `metric` whose labels include
/// every one of `labels`.
pub fn metric_sample(text: &str, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
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

/// Every key of `value` as a path, sorted: `a`, `a.b` for a nested
/// object, `a[].b` for the objects of an array (all of its elements), `[].a`
/// for a top-level array. Two documents have the same shape when these are
/// equal, so a renamed, added or dropped field shows up.
pub fn key_paths(value: &serde_json::Value) -> Vec<String> {
    fn walk(v: &serde_json::Value, prefix: &str, out: &mut std::collections::BTreeSet<String>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, child) in map {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    out.insert(path.clone());
                    walk(child, &path, out);
                }
            }
            serde_json::Value::Array(items) => {
                for item in items {
                    walk(item, &format!("{prefix}[]"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = std::collections::BTreeSet::new();
    walk(value, "", &mut out);
    out.into_iter().collect()
}

/// The audit trail of the data directory `data` as `audit export` writes it.
pub fn audit_records(data: &Path) -> Vec<serde_json::Value> {
    let out = ok("audit export", run(bulwark(data).args(["audit", "export"])));
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The S3 test server (moto, started by scripts/test.sh) driven by boto3,
/// the reference S3 client: buckets, KMS keys and what is stored, so the
/// tests check objects as AWS's own SDK sees them.
pub struct S3Test {
    pub endpoint: String,
}

impl S3Test {
    pub fn new() -> S3Test {
        let endpoint = std::env::var("BULWARK_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
            panic!("BULWARK_TEST_S3_ENDPOINT is not set: scripts/test.sh starts moto and sets it")
        });
        S3Test { endpoint }
    }

    /// Run a boto3 snippet with `s3` and `kms` clients bound to the test
    /// server; its stdout, trimmed.
    pub fn boto3(&self, code: &str) -> String {
        let script = format!(
            "import boto3, json, sys\n\
             kw = dict(endpoint_url={:?}, region_name='us-east-1', \
             aws_access_key_id='bulwark-test', aws_secret_access_key='bulwark-test-secret')\n\
             s3 = boto3.client('s3', **kw)\nkms = boto3.client('kms', **kw)\n{code}\n",
            self.endpoint
        );
        let out = Command::new("python3")
            .args(["-c", &script])
            .output()
            .expect("python3 (boto3 comes with moto[server], which scripts/test.sh installs)");
        assert!(
            out.status.success(),
            "boto3 script failed:\n{script}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A new empty bucket; its name.
    pub fn bucket(&self) -> String {
        self.bucket_with("")
    }

    /// A new empty bucket made by a boto3 snippet in which `b` is its
    /// name (`s3.create_bucket(Bucket=b, ...)`, then settings); with an
    /// empty snippet, a plain bucket. Its name.
    pub fn bucket_with(&self, setup: &str) -> String {
        let name = format!("bulwark-cli-{:016x}", rand_u64());
        let setup = if setup.is_empty() {
            "s3.create_bucket(Bucket=b)"
        } else {
            setup
        };
        self.boto3(&format!("b = {name:?}\n{setup}"));
        name
    }

    /// Add the credentials the backend reads (moto accepts any).
    pub fn env<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        cmd.env("AWS_ACCESS_KEY_ID", "bulwark-test")
            .env("AWS_SECRET_ACCESS_KEY", "bulwark-test-secret")
            .env("AWS_REGION", "us-east-1")
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish()
}

/// Every entry under `root` as `(relative path, kind and mode, content or
/// link target)`, sorted: two trees are the same when these are equal.
pub fn tree_listing(root: &Path) -> Vec<(String, String, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt;
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let mode = meta.permissions().mode() & 0o7777;
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.push((
                    rel,
                    "link".into(),
                    target.to_string_lossy().into_owned().into_bytes(),
                ));
            } else if meta.is_dir() {
                out.push((rel, format!("dir {mode:o}"), Vec::new()));
                walk(root, &path, out);
            } else {
                out.push((rel, format!("file {mode:o}"), std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// A small tree with what restores get wrong: modes, a symlink, an empty
/// file, a nested directory and a file bigger than one chunk.
pub fn small_tree(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(root.join("nested/deeper")).unwrap();
    std::fs::write(root.join("empty"), b"").unwrap();
    std::fs::write(root.join("nested/secret.txt"), b"only the owner").unwrap();
    std::fs::set_permissions(
        root.join("nested/secret.txt"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(root.join("run.sh"), b"#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(root.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("nested/secret.txt", root.join("link")).unwrap();
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(root.join("nested/deeper/big.bin"), big).unwrap();
}

/// The repository password the repository tests use.
pub const REPO_PASSWORD: &str = "correct horse battery staple";

/// `bulwark --data-dir DATA_DIR` with [`REPO_PASSWORD`] in `BULWARK_PASSWORD`.
pub fn bulwark_repo(data_dir: &Path) -> Command {
    let mut cmd = bulwark(data_dir);
    cmd.env("BULWARK_PASSWORD", REPO_PASSWORD);
    cmd
}

/// `restic -r REPO ARGS...` with [`REPO_PASSWORD`] and a cache beside the
/// repository: restic is the format oracle.
pub fn restic(repo: &Path, args: &[&str]) -> Output {
    Command::new("restic")
        .arg("-r")
        .arg(repo)
        .args(args)
        .env("RESTIC_PASSWORD", REPO_PASSWORD)
        .env("RESTIC_CACHE_DIR", repo.with_extension("cache"))
        .output()
        .expect("restic is the format oracle of these tests (apt-get install -y restic)")
}

/// Assert that `o` succeeded (showing both streams if not); its stdout.
pub fn ok(what: &str, o: Output) -> String {
    assert!(
        o.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Run `cmd` with `input` on its stdin (written from another thread, so a
/// large input cannot deadlock against its output).
pub fn run_with_stdin(cmd: &mut Command, input: Vec<u8>) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run bulwark");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        // The command may refuse and close its end early: not our failure.
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("wait for bulwark");
    writer.join().unwrap();
    out
}

/// `len` pseudo-random bytes (xorshift from `seed`): no chunk repeats.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The snapshots of `repo` as `bulwark snapshots --json` lists them.
pub fn snapshots(data_dir: &Path, repo: &Path) -> Vec<serde_json::Value> {
    let out = ok(
        "snapshots",
        run(bulwark_repo(data_dir)
            .args(["--json", "snapshots", "-r"])
            .arg(repo)),
    );
    serde_json::from_str(&out).expect("snapshots --json")
}

/// The root of the source tree (where deploy/, scripts/ and tests/ are).
pub fn source_root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("source root")
}

/// A tool scripts/test.sh installs: the path in the variable it exports,
/// else `program` on PATH.
pub fn tool(var: &str, program: &str) -> std::ffi::OsString {
    std::env::var_os(var).unwrap_or_else(|| program.into())
}

/// `program args` in `dir` with `env` added. A missing program panics
/// saying who provides it.
pub fn run_tool(
    program: &std::ffi::OsStr,
    args: &[&str],
    dir: &Path,
    env: &[(&str, &str)],
) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): scripts/test.sh installs it",
                program.to_string_lossy()
            )
        })
}

/// A copy of the directory tree `from` at `to` (files and directories only).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Panics, saying scripts/test.sh installs it, when `tool` is not on PATH.
pub fn require_tool(tool: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()));
    assert!(
        found,
        "{tool} is not on PATH: scripts/test.sh installs it (run the tests through it)"
    );
}

/// A time from Unix milliseconds: tests keep their fixed instants as plain
/// numbers and turn them into the domain's time type where it is taken.
pub fn ts(ms: i64) -> bulwark_ops::Timestamp {
    bulwark_ops::Timestamp::from_millis(ms)
}
