//! Repository commands on S3 (moto, started by scripts/test.sh), end to end
//! through the binary: restic's `-o` options land on the stored objects as
//! boto3 sees them, `init` reports what the bucket does against deletion,
//! and bad input gives one clear line and exit code 2 (Azurite and
//! fake-gcs-server too, for a missing container or bucket).

mod common;

use std::path::Path;
use std::process::Output;

use common::*;

const PASSWORD: &str = "cloud test password";

fn repo_cmd<S: AsRef<std::ffi::OsStr>>(s3: &S3Test, data: &Path, args: &[S]) -> Output {
    let mut cmd = bulwark(data);
    s3.env(&mut cmd)
        .env("BULWARK_PASSWORD", PASSWORD)
        .env("XDG_CACHE_HOME", data.with_file_name("cache"))
        .args(args);
    run(&mut cmd)
}

fn ok(what: &str, o: Output) -> String {
    assert!(o.status.success(), "{what} failed: {}", text(&o));
    stdout(&o)
}

/// One line on stderr, exit code 2, naming `needle`.
fn one_clear_error(o: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{}", text(o));
    assert_eq!(err.trim().lines().count(), 1, "not one line:\n{err}");
    assert!(err.contains(needle), "{needle:?} not in {err}");
    assert!(
        !err.contains("bulwark-test-secret"),
        "credentials leaked: {err}"
    );
}

#[test]
fn an_s3_repository_keeps_packs_in_their_storage_class_and_everything_under_kms() {
    let s3 = S3Test::new();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let src = tmp.path().join("src");
    small_tree(&src);
    let bucket = s3.bucket();
    let key = s3.boto3("print(kms.create_key()['KeyMetadata']['KeyId'])");
    let repo = format!("s3:{}/{bucket}/app", s3.endpoint);
    let kms = format!("s3.kms-key-id={key}");
    let opts = ["-o", "s3.storage-class=STANDARD_IA", "-o", &kms];
    // `[global flags..] COMMAND -r REPO -o .. -o .. [args..]`
    let with = |args: &[&str]| -> Vec<String> {
        let at = args.iter().position(|a| !a.starts_with("--")).unwrap();
        let mut v: Vec<&str> = args[..=at].to_vec();
        v.extend(["-r", repo.as_str()]);
        v.extend(opts);
        v.extend(&args[at + 1..]);
        v.into_iter().map(str::to_string).collect()
    };

    ok("init", repo_cmd(&s3, &data, &with(&["init"])));
    ok(
        "backup",
        repo_cmd(&s3, &data, &with(&["backup", src.to_str().unwrap()])),
    );
    std::fs::write(src.join("empty"), b"no longer empty").unwrap();
    ok(
        "backup",
        repo_cmd(&s3, &data, &with(&["backup", src.to_str().unwrap()])),
    );
    let snaps = ok(
        "snapshots",
        repo_cmd(&s3, &data, &with(&["--json", "snapshots"])),
    );
    let snaps: serde_json::Value = serde_json::from_str(&snaps).unwrap();
    assert_eq!(snaps.as_array().unwrap().len(), 2, "{snaps}");
    // The snapshots were cached under $XDG_CACHE_HOME/bulwark/<repository id>.
    let cached = |dir: &str| -> usize {
        let root = tmp.path().join("cache/bulwark");
        std::fs::read_dir(&root)
            .map(|ids| {
                ids.flatten()
                    .filter_map(|id| std::fs::read_dir(id.path().join(dir)).ok())
                    .map(|files| files.count())
                    .sum()
            })
            .unwrap_or(0)
    };
    assert_eq!(cached("snapshots"), 2);
    std::fs::remove_dir_all(tmp.path().join("cache")).unwrap();
    ok(
        "snapshots --no-cache",
        repo_cmd(&s3, &data, &with(&["snapshots", "--no-cache"])),
    );
    assert_eq!(cached("snapshots"), 0, "--no-cache wrote the cache");
    ok(
        "forget",
        repo_cmd(
            &s3,
            &data,
            &with(&["forget", "--keep-last", "1", "--prune"]),
        ),
    );
    ok(
        "check",
        repo_cmd(&s3, &data, &with(&["check", "--read-data"])),
    );
    let target = tmp.path().join("restored");
    ok(
        "restore",
        repo_cmd(
            &s3,
            &data,
            &with(&["restore", "latest", "--target", target.to_str().unwrap()]),
        ),
    );
    let restored = target.join(src.strip_prefix("/").unwrap());
    assert_eq!(tree_listing(&src), tree_listing(&restored));

    // As AWS's SDK sees the objects: packs in STANDARD_IA, metadata in the
    // standard class, every object encrypted with the key.
    let objects = s3.boto3(&format!(
        "for o in s3.list_objects_v2(Bucket={bucket:?})['Contents']:\n    \
         h = s3.head_object(Bucket={bucket:?}, Key=o['Key'])\n    \
         print(o['Key'], h.get('StorageClass', 'STANDARD'), h.get('ServerSideEncryption'), \
         h.get('SSEKMSKeyId', '-'))"
    ));
    let mut packs = 0;
    for line in objects.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let (path, class, sse, kms_key) = (f[0], f[1], f[2], f[3]);
        let expected = if path.starts_with("app/data/") {
            packs += 1;
            "STANDARD_IA"
        } else {
            "STANDARD"
        };
        assert_eq!(class, expected, "{line}");
        assert_eq!(sse, "aws:kms", "{line}");
        assert!(kms_key.ends_with(&key), "{line}");
    }
    assert!(packs >= 2, "{objects}");
}

#[test]
fn bad_s3_input_is_one_clear_line_and_exit_code_2() {
    let s3 = S3Test::new();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let bucket = s3.bucket();
    let repo = format!("s3:{}/{bucket}/app", s3.endpoint);
    ok("init", repo_cmd(&s3, &data, &["init", "-r", &repo]));

    let mut wrong = bulwark(&data);
    s3.env(&mut wrong)
        .env("BULWARK_PASSWORD", "not the password")
        .args(["snapshots", "-r", &repo]);
    one_clear_error(&run(&mut wrong), "password");

    let missing = format!("s3:{}/bulwark-no-such-bucket/app", s3.endpoint);
    one_clear_error(
        &repo_cmd(&s3, &data, &["snapshots", "-r", &missing]),
        "bulwark-no-such-bucket",
    );
    one_clear_error(
        &repo_cmd(
            &s3,
            &data,
            &["snapshots", "-r", &repo, "-o", "s3.storage_class=STANDARD"],
        ),
        "unknown option",
    );
    one_clear_error(
        &repo_cmd(
            &s3,
            &data,
            &["snapshots", "-r", &repo, "-o", "s3.storage-class=GLACIER"],
        ),
        "GLACIER",
    );
    // A second init on the same prefix refuses to overwrite.
    let again = repo_cmd(&s3, &data, &["init", "-r", &repo]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
}

#[test]
fn init_reports_versioning_and_object_lock_of_the_bucket() {
    let s3 = S3Test::new();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let plain = s3.bucket();
    let versioned = s3.bucket_with(
        "s3.create_bucket(Bucket=b)\n\
         s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={'Status': 'Enabled'})",
    );
    let suspended = s3.bucket_with(
        "s3.create_bucket(Bucket=b)\n\
         s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={'Status': 'Enabled'})\n\
         s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={'Status': 'Suspended'})",
    );
    // Object Lock turns versioning on; a default retention makes S3 refuse
    // uploads without Content-MD5.
    let locked = s3.bucket_with(
        "s3.create_bucket(Bucket=b, ObjectLockEnabledForBucket=True)\n\
         s3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration={\
         'ObjectLockEnabled': 'Enabled', 'Rule': {'DefaultRetention': \
         {'Mode': 'GOVERNANCE', 'Days': 1}}})",
    );
    let init_json = |bucket: &str| -> serde_json::Value {
        let repo = format!("s3:{}/{bucket}/app", s3.endpoint);
        let out = ok(
            "init",
            repo_cmd(&s3, &data, &["--json", "init", "-r", &repo]),
        );
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["message_type"], "initialized", "{v}");
        v["bucket"].clone()
    };
    let check = |bucket: &str, versioning: &str, lock: &str, retention: serde_json::Value| {
        let b = init_json(bucket);
        assert_eq!(b["versioning"], versioning, "{bucket}: {b}");
        assert_eq!(b["object_lock"], lock, "{bucket}: {b}");
        assert_eq!(
            b["object_lock_default_retention"], retention,
            "{bucket}: {b}"
        );
        assert_eq!(
            b["versioning_unknown_reason"],
            serde_json::Value::Null,
            "{b}"
        );
        assert_eq!(
            b["object_lock_unknown_reason"],
            serde_json::Value::Null,
            "{b}"
        );
    };
    check(&plain, "disabled", "disabled", serde_json::Value::Null);
    check(&versioned, "enabled", "disabled", serde_json::Value::Null);
    check(&suspended, "suspended", "disabled", serde_json::Value::Null);
    check(&locked, "enabled", "enabled", "GOVERNANCE 1 days".into());

    // The text form, on a new prefix of each.
    let text_of = |bucket: &str| {
        let repo = format!("s3:{}/{bucket}/text", s3.endpoint);
        ok("init", repo_cmd(&s3, &data, &["init", "-r", &repo]))
    };
    let text = text_of(&locked);
    assert!(text.contains("bucket versioning: enabled\n"), "{text}");
    assert!(
        text.contains("bucket object lock: enabled (default retention GOVERNANCE 1 days)\n"),
        "{text}"
    );
    assert!(!text.contains("note:"), "{text}");
    let text = text_of(&plain);
    assert!(text.contains("bucket versioning: disabled\n"), "{text}");
    assert!(text.contains("bucket object lock: disabled\n"), "{text}");
    assert!(
        text.contains("note: without versioning or Object Lock"),
        "{text}"
    );

    // A repository in the locked bucket takes backups and checks clean:
    // uploads carry the Content-MD5 the retention demands.
    let src = tmp.path().join("src");
    small_tree(&src);
    let repo = format!("s3:{}/{locked}/app", s3.endpoint);
    ok(
        "backup",
        repo_cmd(&s3, &data, &["backup", "-r", &repo, src.to_str().unwrap()]),
    );
    ok(
        "check",
        repo_cmd(&s3, &data, &["check", "-r", &repo, "--read-data"]),
    );
    let retained = s3.boto3(&format!(
        "for o in s3.list_objects_v2(Bucket={locked:?}, Prefix='app/data/')['Contents']:\n    \
         print(s3.head_object(Bucket={locked:?}, Key=o['Key']).get('ObjectLockMode'))"
    ));
    assert!(
        !retained.is_empty() && retained.lines().all(|l| l == "GOVERNANCE"),
        "{retained}"
    );

    // A local repository has no bucket to report.
    let local = tmp.path().join("local-repo");
    let out = ok(
        "init",
        repo_cmd(
            &s3,
            &data,
            &["--json", "init", "-r", local.to_str().unwrap()],
        ),
    );
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["bucket"], serde_json::Value::Null, "{v}");
}

#[test]
fn init_on_a_missing_bucket_or_container_is_one_clear_line_and_exit_code_2() {
    let s3 = S3Test::new();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let missing = format!("s3:{}/bulwark-no-such-bucket/app", s3.endpoint);
    let o = repo_cmd(&s3, &data, &["init", "-r", &missing]);
    one_clear_error(&o, "s3 bucket bulwark-no-such-bucket at http://");

    let azure = std::env::var("BULWARK_TEST_AZURE_CONNECTION_STRING").unwrap_or_else(|_| {
        panic!("BULWARK_TEST_AZURE_CONNECTION_STRING is not set: scripts/test.sh starts Azurite")
    });
    let mut cmd = bulwark(&data);
    cmd.env("AZURE_STORAGE_CONNECTION_STRING", &azure)
        .env("BULWARK_PASSWORD", PASSWORD)
        .args(["init", "-r", "azure:bulwark-no-such-container:/app"]);
    let o = run(&mut cmd);
    one_clear_error(&o, "azure container bulwark-no-such-container");
    assert!(!text(&o).contains("AccountKey"), "{}", text(&o));

    let gcs = std::env::var("BULWARK_TEST_GCS_EMULATOR_HOST").unwrap_or_else(|_| {
        panic!("BULWARK_TEST_GCS_EMULATOR_HOST is not set: scripts/test.sh starts fake-gcs-server")
    });
    let mut cmd = bulwark(&data);
    cmd.env("STORAGE_EMULATOR_HOST", &gcs)
        .env("BULWARK_PASSWORD", PASSWORD)
        .args(["init", "-r", "gs:bulwark-no-such-bucket:/app"]);
    one_clear_error(&run(&mut cmd), "gcs bucket bulwark-no-such-bucket");
}

#[test]
fn wrong_s3_credentials_are_one_clear_line_and_exit_code_2() {
    // A moto that checks every request's key against its IAM, where no
    // key exists: any credentials are wrong there.
    let endpoint = std::env::var("BULWARK_TEST_S3_AUTH_ENDPOINT").unwrap_or_else(|_| {
        panic!("BULWARK_TEST_S3_AUTH_ENDPOINT is not set: scripts/test.sh starts moto with authentication")
    });
    let tmp = tempfile::tempdir().unwrap();
    let repo = format!("s3:{endpoint}/bulwark-auth/app");
    for command in ["init", "snapshots"] {
        let mut cmd = bulwark(&tmp.path().join("data"));
        cmd.env("AWS_ACCESS_KEY_ID", "bulwark-wrong-key")
            .env("AWS_SECRET_ACCESS_KEY", "bulwark-test-secret")
            .env("AWS_REGION", "us-east-1")
            .env("BULWARK_PASSWORD", PASSWORD)
            .args([command, "-r", &repo]);
        let o = run(&mut cmd);
        one_clear_error(&o, "InvalidAccessKeyId");
        assert!(text(&o).contains("bulwark-auth"), "{command}: {}", text(&o));
    }
}

#[test]
fn credentials_in_a_backup_are_used_instead_of_the_environment_and_never_printed() {
    // Through a proxy that records which access key signed each request.
    let s3 = S3Test::new();
    let proxy = fault_proxy::FaultProxy::start(&s3.endpoint, u64::MAX, u64::MAX);
    let bucket = s3.bucket();
    let dir = tempfile::tempdir().unwrap();
    let repo = format!("s3:{}/{bucket}/app", proxy.url);
    let src = dir.path().join("src");
    small_tree(&src);
    std::fs::write(dir.path().join("password"), PASSWORD).unwrap();
    let secret_file = dir.path().join("aws-secret");
    std::fs::write(&secret_file, "config-secret-value\n").unwrap();
    // The copy goes to fake-gcs-server, named by the config alone.
    let gcs = std::env::var("BULWARK_TEST_GCS_EMULATOR_HOST").unwrap_or_else(|_| {
        panic!("BULWARK_TEST_GCS_EMULATOR_HOST is not set: scripts/test.sh starts fake-gcs-server")
    });
    let gcs_bucket = format!("bulwark-creds-{}", std::process::id());
    let made = std::process::Command::new("python3")
        .args(["-c", &format!(
            "import json, urllib.request\n\
             urllib.request.urlopen(urllib.request.Request({:?}, data=json.dumps({{'name': {gcs_bucket:?}}}).encode(), \
             headers={{'Content-Type': 'application/json'}}, method='POST'))",
            format!("{gcs}/storage/v1/b")
        )])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "creating bucket {gcs_bucket}: {}",
        text(&made)
    );
    let copy = format!("gs:{gcs_bucket}:/app");
    std::fs::write(
        dir.path().join("bulwark.toml"),
        format!(
            "[[backup]]\nname = \"app\"\nrepo = {repo:?}\npaths = [{src:?}]\n\
             password_file = {pw:?}\nrepos = [{copy:?}]\n\
             credentials = {{ AWS_ACCESS_KEY_ID = {{ env = \"APP_S3_KEY_ID\" }}, \
             AWS_SECRET_ACCESS_KEY = {{ file = {secret_file:?} }}, \
             STORAGE_EMULATOR_HOST = {gcs:?} }}\n",
            pw = dir.path().join("password"),
        ),
    )
    .unwrap();
    let with_env = |cmd: &mut std::process::Command| {
        cmd.env("AWS_ACCESS_KEY_ID", "bulwark-env-key")
            .env("AWS_SECRET_ACCESS_KEY", "bulwark-env-secret")
            .env("AWS_REGION", "us-east-1")
            .env("XDG_CACHE_HOME", dir.path().join("cache"))
            .env_remove("STORAGE_EMULATOR_HOST")
            .env_remove("APP_S3_KEY_ID");
    };
    for repo in [&repo, &copy] {
        let mut init = bulwark(&dir.path().join("data"));
        with_env(&mut init);
        init.env("STORAGE_EMULATOR_HOST", &gcs)
            .env("BULWARK_PASSWORD", PASSWORD)
            .args(["init", "-r", repo]);
        ok("init", run(&mut init));
    }
    proxy.counts.key_ids.lock().unwrap().clear();

    // The backup job writes to S3 and copies to GCS with the configured
    // credentials and endpoint, though the environment has other keys and
    // no emulator.
    let mut job = bulwark_in(dir.path());
    with_env(&mut job);
    job.env("APP_S3_KEY_ID", "bulwark-config-key")
        .args(["jobs", "run", "backup:app"]);
    let o = run(&mut job);
    assert!(
        o.status.success(),
        "backup with the configured credentials: {}",
        text(&o)
    );
    assert!(!text(&o).contains("config-secret-value"), "{}", text(&o));
    let used: Vec<String> = proxy
        .counts
        .key_ids
        .lock()
        .unwrap()
        .iter()
        .cloned()
        .collect();
    assert_eq!(used, ["bulwark-config-key"]);
    let mut verify = bulwark_in(dir.path());
    with_env(&mut verify);
    verify
        .env("APP_S3_KEY_ID", "bulwark-config-key")
        .args(["verify", "app"]);
    let o = run(&mut verify);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains(&gcs_bucket),
        "the copy was verified too: {}",
        text(&o)
    );

    // The variable it names is missing: the error says which, nothing else.
    let mut job = bulwark_in(dir.path());
    with_env(&mut job);
    job.args(["jobs", "run", "backup:app"]);
    let o = run(&mut job);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(
            "credential AWS_ACCESS_KEY_ID: environment variable APP_S3_KEY_ID is not set"
        ),
        "{}",
        text(&o)
    );
}
