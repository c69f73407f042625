//! Storage cost end to end: an S3 copy on moto whose objects sit in three
//! storage classes (put by boto3, more than one listing page) and a local
//! repository; `jobs run cost`, then the gauges, `ops check`'s cost row,
//! the monthly report's section and the `StorageCostHigh` alert.

mod common;

use common::*;

/// One `ops check --json` row.
fn row<'a>(rows: &'a [serde_json::Value], area: &str, name: &str) -> &'a serde_json::Value {
    rows.iter()
        .find(|r| r["area"] == area && r["name"] == name)
        .unwrap_or_else(|| panic!("no {area}/{name} row in {rows:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_cost_by_class_from_s3_listings_and_a_local_repository() {
    let s3 = S3Test::new();
    // 1,005 lock objects make the listing span two pages of 1,000.
    let bucket = s3.bucket_with(
        r#"s3.create_bucket(Bucket=b)
def put(key, size, cls=None):
    kw = dict(StorageClass=cls) if cls else {}
    s3.put_object(Bucket=b, Key=key, Body=b'x' * size, **kw)
put('app/config', 200)
put('app/keys/' + 'a' * 64, 500)
put('app/index/' + 'b' * 64, 800)
put('app/data/ab/' + 'ab' * 32, 3_000_000, 'STANDARD_IA')
put('app/data/cd/' + 'cd' * 32, 1_000_000, 'GLACIER_IR')
for i in range(1005):
    put('app/locks/%064x' % i, 10)
put('app/notes.txt', 123)
put('other/config', 999)
"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("local-repo");
    let b = bulwark_repo::open_backend(local.to_str().unwrap()).unwrap();
    b.create().unwrap();
    b.write(bulwark_repo::FileType::Config, "config", &[0; 1000])
        .unwrap();
    let copy = format!("s3:{}/{bucket}/app", s3.endpoint);
    std::fs::write(
        dir.path().join("bulwark.toml"),
        format!(
            r#"
[cost]
# Prices far above the clouds' so that small objects cost something.
prices = {{ STANDARD = 100.0, STANDARD_IA = 1000.0, GLACIER_IR = 10.0 }}
monthly_threshold = 3.0

[[backup]]
name = "app"
repo = "{}"
repos = ["{copy}"]
paths = ["/srv/app"]
"#,
            local.display()
        ),
    )
    .unwrap();

    let out = run(s3
        .env(&mut bulwark_in(dir.path()))
        .args(["jobs", "run", "cost"]));
    assert!(out.status.success(), "{}", text(&out));

    // STANDARD: config, key, index and 1,005 locks of 10 bytes.
    let standard_bytes = 200 + 500 + 800 + 1005 * 10;
    let api = Api::over(dir.path()).await;
    let metrics = api.text("/metrics").await;
    for (repository, class, bytes, objects) in [
        (copy.as_str(), "STANDARD", standard_bytes, 1008),
        (copy.as_str(), "STANDARD_IA", 3_000_000, 1),
        (copy.as_str(), "GLACIER_IR", 1_000_000, 1),
        (local.to_str().unwrap(), "local", 1000, 1),
    ] {
        let labels = [
            ("backup", "app"),
            ("repository", repository),
            ("class", class),
        ];
        assert_eq!(
            metric_sample(&metrics, "bulwark_storage_bytes", &labels),
            Some(bytes as f64),
            "{class}:\n{metrics}"
        );
        assert_eq!(
            metric_sample(&metrics, "bulwark_storage_objects", &labels),
            Some(objects as f64),
            "{class}"
        );
    }
    // Objects outside the prefix or restic's layout are not the repository's.
    assert_eq!(
        metrics.matches("bulwark_storage_bytes{").count(),
        4,
        "{metrics}"
    );
    // 11,550 B × 100 + 3 MB × 1000 + 1 MB × 10, per 10^9 bytes.
    let s3_cost = metric_sample(
        &metrics,
        "bulwark_storage_monthly_cost",
        &[("backup", "app"), ("repository", copy.as_str())],
    )
    .unwrap();
    assert_eq!(s3_cost, 3.011155);
    assert_eq!(
        metric_sample(
            &metrics,
            "bulwark_storage_cost_threshold",
            &[("backup", "app")]
        ),
        Some(3.0)
    );

    let out = run(bulwark_in(dir.path()).args(["--json", "ops", "check"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = doc["rows"].as_array().unwrap();
    let cost = row(rows, "cost", "app");
    assert_eq!(cost["ok"], false, "{cost}");
    let detail = cost["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("3.01 USD/month for 4.01 MB, above the threshold of 3.00 USD")
            && detail.ends_with("; no price for local (counted as 0)"),
        "{detail}"
    );

    let period = chrono::Utc::now().format("%Y-%m").to_string();
    let out = run(bulwark_in(dir.path()).args(["report", "--period", &period, "--format", "md"]));
    assert!(out.status.success(), "{}", text(&out));
    let md = stdout(&out);
    assert!(md.contains("## Storage cost (as last listed)"), "{md}");
    assert!(
        md.contains(&format!(
            "| app | {copy} | GLACIER_IR 1.00 MB (10/GB-month), STANDARD 11.55 kB (100/GB-month), STANDARD_IA 3.00 MB (1000/GB-month) | 3.01 USD | 3.00 USD (exceeded) |"
        )),
        "{md}"
    );
    let out = run(bulwark_in(dir.path()).args(["--json", "report", "--period", &period]));
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let storage = report["storage"].as_array().unwrap();
    assert_eq!(storage.len(), 2, "{storage:?}");
    assert_eq!(storage[1]["repository"], copy.as_str());
    assert_eq!(storage[1]["bytes"], standard_bytes + 4_000_000);
    assert_eq!(storage[0]["unpriced"], serde_json::json!(["local"]));

    let out = run(bulwark_in(dir.path()).args(["--json", "jobs", "list"]));
    assert!(stdout(&out).contains("\"cost\""), "{}", text(&out));
    drop(api);
    let store = bulwark_ops_store(dir.path()).await;
    let firing = bulwark_ops::firing_alerts(&store).await.unwrap();
    assert!(
        firing
            .iter()
            .any(|a| a.alertname == "StorageCostHigh" && a.monitor == "cost:app"),
        "{firing:?}"
    );
}

async fn bulwark_ops_store(dir: &std::path::Path) -> bulwark_ops::Store {
    bulwark_ops::Store::open(None, &dir.join("data"))
        .await
        .unwrap()
}
