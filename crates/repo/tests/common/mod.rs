//! Helpers shared by the integration tests: a generated source tree, a
//! byte-for-byte tree comparison, and the restic oracle.
#![allow(dead_code)]

mod fault_proxy;
#[allow(unused_imports)] // used by some of the test binaries that include this module
pub use fault_proxy::{Busy, FaultProxy};

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use bulwark_repo::{open_backend, Backend, FileType, KdfParams, MemoryBackend, Repository};
use filetime::FileTime;
use rand::{Rng, SeedableRng};

pub const PASSWORD: &str = "correct horse battery staple";

/// A new local repository at `path` with the test password and a cheap KDF.
pub fn init_repo(path: &Path) -> Repository {
    let backend = open_backend(path.to_str().expect("UTF-8 test path")).expect("backend");
    Repository::init(backend, PASSWORD.as_bytes(), KdfParams::INSECURE_FAST).expect("init")
}

/// The local repository at `path`, opened with the test password, its
/// index loaded.
pub fn open_repo(path: &Path) -> Repository {
    let backend = open_backend(path.to_str().expect("UTF-8 test path")).expect("backend");
    let mut repo = Repository::open(backend, PASSWORD.as_bytes()).expect("open");
    repo.load_index().expect("index");
    repo
}

/// A new repository in memory with the test password and a cheap KDF.
pub fn memory_repo() -> Repository {
    let backend = Box::new(MemoryBackend::new());
    Repository::init(backend, PASSWORD.as_bytes(), KdfParams::INSECURE_FAST).expect("init")
}

/// A copy of the directory tree at `from` (a local repository) at `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every file of `from` (but locks) copied into a new memory backend.
pub fn copy_to_memory(from: &dyn Backend) -> MemoryBackend {
    let mem = MemoryBackend::new();
    for t in [
        FileType::Config,
        FileType::Key,
        FileType::Pack,
        FileType::Index,
        FileType::Snapshot,
    ] {
        let names = match t {
            FileType::Config => vec![("config".to_string(), 0)],
            _ => from.list(t).expect("list"),
        };
        for (name, _) in names {
            mem.write(t, &name, &from.read(t, &name).expect("read"))
                .expect("write");
        }
    }
    mem
}

/// A backend whose listing promises more bytes of some packs than it
/// holds: a stale listing, or a pack truncated after it was listed. Reads
/// go to the real (shorter) file, so the shortfall shows only as the
/// bytes stream. Everything else is passed through.
pub struct ListedLonger {
    pub inner: Box<dyn Backend>,
    /// Pack name → bytes the listing adds.
    pub extra: std::collections::HashMap<String, u64>,
}

impl Backend for ListedLonger {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn create(&self) -> bulwark_repo::Result<()> {
        self.inner.create()
    }
    fn list(&self, t: FileType) -> bulwark_repo::Result<Vec<(String, u64)>> {
        let mut listed = self.inner.list(t)?;
        if t == FileType::Pack {
            for (name, size) in &mut listed {
                *size += self.extra.get(name).copied().unwrap_or(0);
            }
        }
        Ok(listed)
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
        self.inner.write(t, name, data)
    }
    fn remove(&self, t: FileType, name: &str) -> bulwark_repo::Result<()> {
        self.inner.remove(t, name)
    }
    fn stat(&self, t: FileType, name: &str) -> bulwark_repo::Result<u64> {
        self.inner.stat(t, name)
    }
}

/// Run restic with the test password on `repo` (a path or an `s3:`
/// location); fail loudly when restic is missing.
pub fn restic(repo: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> std::process::Output {
    let out = Command::new("restic")
        .arg("-r")
        .arg(repo)
        .arg("--no-cache")
        .args(args)
        .env("RESTIC_PASSWORD", PASSWORD)
        .output();
    match out {
        Ok(o) => o,
        Err(e) => panic!(
            "cannot run `restic` ({e}): these tests use restic as the format oracle; \
             scripts/test.sh installs it (apt-get install -y restic)"
        ),
    }
}

/// Run restic and require success.
pub fn restic_ok(repo: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> String {
    let o = restic(repo, args);
    assert!(
        o.status.success(),
        "restic {args:?} failed:\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn random_bytes(rng: &mut impl Rng, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rng.fill(&mut v[..]);
    v
}

fn set_mtime(p: &Path, secs: i64, nanos: u32) {
    filetime::set_symlink_file_times(
        p,
        FileTime::from_unix_time(secs, nanos),
        FileTime::from_unix_time(secs, nanos),
    )
    .unwrap();
}

/// Files of several sizes (empty, tiny, just under and over the minimum
/// chunk size, over the maximum chunk size, compressible and not), nested
/// and empty directories, a symlink, varied modes and mtimes.
pub fn make_tree(root: &Path, seed: u64) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let files: Vec<(&str, Vec<u8>, u32)> = vec![
        ("empty", vec![], 0o644),
        ("tiny.txt", b"hello bulwark\n".to_vec(), 0o600),
        // chown clears set-user-ID: a restore must chmod after it.
        ("a/setuid_tool", b"#!/bin/sh\n".to_vec(), 0o4755),
        ("a/small.bin", random_bytes(&mut rng, 1000), 0o640),
        ("a/b/c/deep.txt", b"deep\n".repeat(1000), 0o444),
        (
            "a/under_min.bin",
            random_bytes(&mut rng, 512 * 1024 - 1),
            0o644,
        ),
        (
            "a/b/three_mib.bin",
            random_bytes(&mut rng, 3 * 1024 * 1024 + 17),
            0o755,
        ),
        (
            "big/nine_mib.bin",
            random_bytes(&mut rng, 9 * 1024 * 1024 + 5),
            0o644,
        ),
        ("big/zeros.bin", vec![0u8; 9 * 1024 * 1024], 0o644),
        (
            "big/text.log",
            b"2026-01-01 line of a very compressible log file\n".repeat(40000),
            0o664,
        ),
    ];
    for (i, (name, data, mode)) in files.iter().enumerate() {
        let p = root.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, data).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(*mode)).unwrap();
        set_mtime(
            &p,
            1_600_000_000 + i as i64 * 86_400,
            123_456_789 * (i as u32 % 3),
        );
    }
    fs::create_dir_all(root.join("empty_dir")).unwrap();
    fs::hard_link(root.join("tiny.txt"), root.join("a/hardlink_to_tiny")).unwrap();
    fs::create_dir_all(root.join("a/b/empty_nested")).unwrap();
    std::os::unix::fs::symlink("a/small.bin", root.join("link_to_small")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/target", root.join("a/dangling")).unwrap();
    set_mtime(&root.join("link_to_small"), 1_500_000_000, 5);
    fs::set_permissions(root.join("a/b/c"), fs::Permissions::from_mode(0o700)).unwrap();
    // Extended attributes, binary values included, on a file (with a hard
    // link) and a directory; skipped where the filesystem has none.
    for (p, name, value) in [
        ("tiny.txt", "user.bulwark", &b"binary\0\xff value"[..]),
        ("tiny.txt", "user.empty", b""),
        ("a", "user.dir", b"d"),
    ] {
        if let Err(e) = xattr::set(root.join(p), name, value) {
            assert_eq!(e.raw_os_error(), Some(95), "set {name} on {p}: {e}");
        }
    }
    // Directory times last, deepest first: creating entries changes them.
    for (i, d) in [
        "a/b/c",
        "a/b/empty_nested",
        "a/b",
        "a",
        "big",
        "empty_dir",
        "",
    ]
    .iter()
    .enumerate()
    {
        set_mtime(&root.join(d), 1_400_000_000 + i as i64 * 1000, 999_999_999);
    }
}

/// Compare two trees: entry names, types, content, permission bits,
/// mtimes (to the nanosecond), extended attributes and symlink targets.
pub fn assert_same_tree(expected: &Path, actual: &Path) {
    let mut problems = Vec::new();
    compare(expected, actual, &mut problems);
    assert!(
        problems.is_empty(),
        "trees differ:\n{}",
        problems.join("\n")
    );
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn compare(e: &Path, a: &Path, problems: &mut Vec<String>) {
    let me = fs::symlink_metadata(e).unwrap();
    let ma = match fs::symlink_metadata(a) {
        Ok(m) => m,
        Err(err) => {
            problems.push(format!("{}: missing ({err})", a.display()));
            return;
        }
    };
    if me.file_type() != ma.file_type() {
        problems.push(format!("{}: type differs", a.display()));
        return;
    }
    if me.file_type().is_symlink() {
        if fs::read_link(e).unwrap() != fs::read_link(a).unwrap() {
            problems.push(format!("{}: symlink target differs", a.display()));
        }
        return;
    }
    if me.mode() & 0o7777 != ma.mode() & 0o7777 {
        problems.push(format!(
            "{}: mode {:o} != {:o}",
            a.display(),
            ma.mode() & 0o7777,
            me.mode() & 0o7777
        ));
    }
    if (me.mtime(), me.mtime_nsec()) != (ma.mtime(), ma.mtime_nsec()) {
        problems.push(format!(
            "{}: mtime {}.{} != {}.{}",
            a.display(),
            ma.mtime(),
            ma.mtime_nsec(),
            me.mtime(),
            me.mtime_nsec()
        ));
    }
    if xattrs(e) != xattrs(a) {
        problems.push(format!(
            "{}: extended attributes {:?} != {:?}",
            a.display(),
            xattrs(a),
            xattrs(e)
        ));
    }
    if me.is_file() {
        if fs::read(e).unwrap() != fs::read(a).unwrap() {
            problems.push(format!("{}: content differs", a.display()));
        }
    } else if me.is_dir() {
        let (ne, na) = (names(e), names(a));
        if ne != na {
            problems.push(format!("{}: entries {na:?} != {ne:?}", a.display()));
        }
        for n in ne.iter().filter(|n| na.contains(n)) {
            compare(&e.join(n), &a.join(n), problems);
        }
    }
}

/// The extended attributes of `p` (not following symlinks), sorted.
fn xattrs(p: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = xattr::list(p)
        .into_iter()
        .flatten()
        .map(|n| {
            let value = xattr::get(p, &n).unwrap().unwrap_or_default();
            (n.to_string_lossy().into_owned(), value)
        })
        .collect();
    v.sort();
    v
}

/// Restore the latest snapshot of `repo` with restic into `target` and
/// return where the backed-up path `src` landed.
pub fn restic_restore_latest(
    repo: impl AsRef<std::ffi::OsStr>,
    target: &Path,
    src: &Path,
) -> PathBuf {
    restic_ok(
        repo,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    );
    restored_path(target, src)
}

/// Where a restore into `target` puts the backed-up absolute path `src`.
pub fn restored_path(target: &Path, src: &Path) -> PathBuf {
    target.join(src.strip_prefix("/").unwrap())
}

/// Whether two paths are the same file (hard links).
pub fn same_inode(a: &Path, b: &Path) -> bool {
    fs::metadata(a).unwrap().ino() == fs::metadata(b).unwrap().ino()
}

/// Number of regular files `make_tree` creates (a hard link counts).
pub const TREE_FILES: u64 = 11;

/// A repository location in a new, empty bucket of the S3 test server
/// (moto, started by scripts/test.sh): `s3:http://HOST:PORT/BUCKET/PREFIX`.
pub fn s3_location(prefix: &str) -> String {
    use std::io::{Read, Write};
    let endpoint = std::env::var("BULWARK_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "BULWARK_TEST_S3_ENDPOINT is not set: scripts/test.sh starts moto's S3 server \
             and sets it (with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION)"
        )
    });
    for (k, v) in [
        ("AWS_ACCESS_KEY_ID", "bulwark-test"),
        ("AWS_SECRET_ACCESS_KEY", "bulwark-test-secret"),
        ("AWS_REGION", "us-east-1"),
    ] {
        if std::env::var_os(k).is_none() {
            std::env::set_var(k, v);
        }
    }
    let bucket = format!("bulwark-{:016x}", rand::random::<u64>());
    // moto does not check signatures: a plain PUT makes the bucket.
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut conn = std::net::TcpStream::connect(host).expect("connect to the S3 test server");
    write!(
        conn,
        "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "creating bucket {bucket}: {answer}"
    );
    format!("s3:{endpoint}/{bucket}/{prefix}")
}

/// One request over a fresh connection to a plain-HTTP test server:
/// (status, body).
pub fn http_request(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("{url}: test servers speak plain http"));
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut conn = std::net::TcpStream::connect(host).expect("connect to the test server");
    let mut req = format!("{method} /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        if !k.eq_ignore_ascii_case("host") && !k.eq_ignore_ascii_case("content-length") {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    conn.write_all(req.as_bytes()).unwrap();
    conn.write_all(body).unwrap();
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).unwrap();
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(answer.len(), |p| p + 4);
    let head = String::from_utf8_lossy(&answer[..end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer[end..].to_vec())
}

/// The Azurite test account: (blob endpoint, account, key) from
/// `BULWARK_TEST_AZURE_CONNECTION_STRING`, which scripts/test.sh sets.
pub fn azurite_account() -> (String, String, String) {
    let conn = std::env::var("BULWARK_TEST_AZURE_CONNECTION_STRING").unwrap_or_else(|_| {
        panic!(
            "BULWARK_TEST_AZURE_CONNECTION_STRING is not set: scripts/test.sh starts Azurite \
             and sets it"
        )
    });
    let field = |name: &str| {
        conn.split(';')
            .find_map(|kv| kv.trim().strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("the test connection string has no {name}"))
            .trim_end_matches('/')
            .to_string()
    };
    (
        field("BlobEndpoint"),
        field("AccountName"),
        field("AccountKey"),
    )
}

/// A request to Azurite signed with the test account's Shared Key, as the
/// backend signs its own: (status, body).
pub fn azurite_request(method: &str, url: &str, extra: &[(&str, &str)]) -> (u16, String) {
    use reqsign_azure_storage::{RequestSigner, StaticCredentialProvider};
    let (_, account, key) = azurite_account();
    let signer = reqsign_core::Signer::new(
        reqsign_core::Context::new(),
        StaticCredentialProvider::new_shared_key(&account, &key),
        RequestSigner::new(),
    );
    let mut req = http::Request::builder()
        .method(method)
        .uri(url)
        .header("x-ms-version", "2022-11-02");
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let (mut parts, ()) = req.body(()).unwrap().into_parts();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(signer.sign(&mut parts, None))
        .expect("sign the test request");
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    let (status, body) = http_request(method, url, &headers, b"");
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The access tier Azurite reports for blob `key` of container/prefix.
pub fn azurite_access_tier(container: &str, key: &str) -> Option<String> {
    // Get Blob Properties answers in headers only: List Blobs shows the
    // tier in its body.
    let (endpoint, _, _) = azurite_account();
    let url = format!("{endpoint}/{container}?restype=container&comp=list&prefix={key}");
    let (status, body) = azurite_request("GET", &url, &[]);
    assert_eq!(status, 200, "list {container}: {body}");
    let start = body.find("<AccessTier>")? + "<AccessTier>".len();
    let end = body[start..].find("</AccessTier>")? + start;
    Some(body[start..end].to_string())
}

/// A repository location in a new, empty container of Azurite (started by
/// scripts/test.sh): `azure:CONTAINER:/PREFIX`. Points the backend's
/// standard variable, `AZURE_STORAGE_CONNECTION_STRING`, at Azurite.
pub fn azure_location(prefix: &str) -> String {
    let (endpoint, _, _) = azurite_account();
    if std::env::var_os("AZURE_STORAGE_CONNECTION_STRING").is_none() {
        std::env::set_var(
            "AZURE_STORAGE_CONNECTION_STRING",
            std::env::var("BULWARK_TEST_AZURE_CONNECTION_STRING").unwrap(),
        );
    }
    let container = format!("bulwark-{:016x}", rand::random::<u64>());
    let (status, body) = azurite_request(
        "PUT",
        &format!("{endpoint}/{container}?restype=container"),
        &[],
    );
    assert_eq!(status, 201, "creating container {container}: {body}");
    format!("azure:{container}:/{prefix}")
}

/// A repository location in a new, empty bucket of fake-gcs-server
/// (started by scripts/test.sh): `gs:BUCKET:/PREFIX`. Points the
/// backend's standard variable, `STORAGE_EMULATOR_HOST`, at it.
pub fn gcs_location(prefix: &str) -> String {
    let host = std::env::var("BULWARK_TEST_GCS_EMULATOR_HOST").unwrap_or_else(|_| {
        panic!(
            "BULWARK_TEST_GCS_EMULATOR_HOST is not set: scripts/test.sh starts \
             fake-gcs-server and sets it"
        )
    });
    if std::env::var_os("STORAGE_EMULATOR_HOST").is_none() {
        std::env::set_var("STORAGE_EMULATOR_HOST", &host);
    }
    let bucket = format!("bulwark-{:016x}", rand::random::<u64>());
    let (status, body) = http_request(
        "POST",
        &format!(
            "{}/storage/v1/b?project=bulwark-test",
            host.trim_end_matches('/')
        ),
        &[("Content-Type".into(), "application/json".into())],
        format!("{{\"name\":\"{bucket}\"}}").as_bytes(),
    );
    assert_eq!(
        status,
        200,
        "creating bucket {bucket}: {}",
        String::from_utf8_lossy(&body)
    );
    format!("gs:{bucket}:/{prefix}")
}
