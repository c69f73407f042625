//! Storage cost on `/metrics`: a local repository of known size, the
//! `cost` job run through the scheduler, the gauges it leads to, and
//! `StorageCostHigh` raised above the threshold and resolved below it.

mod common;

use bulwark_ops::{firing_alerts, Actor};
use bulwark_repo::{open_backend, FileType};
use common::Harness;

/// The value of the sample of `metric` whose labels include every one of
/// `labels`.
fn sample(text: &str, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
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

async fn storage_gauges_and_alert(postgres: bool) {
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = repo_dir.path().join("repo");
    let repo_s = repo.to_str().unwrap();
    let b = open_backend(repo_s).unwrap();
    b.create().unwrap();
    b.write(FileType::Config, "config", &[1; 100]).unwrap();
    let pack = "ab".repeat(32);
    b.write(FileType::Pack, &pack, &vec![2; 2_000_000]).unwrap();
    b.write(FileType::Index, &"cd".repeat(32), &[3; 500])
        .unwrap();

    let config = format!(
        r#"
[cost]
prices = {{ local = 10.0 }}
monthly_threshold = 0.01
currency = "EUR"

[[backup]]
name = "app"
repo = "{repo_s}"
paths = ["/srv/app"]
"#
    );
    let h = if postgres {
        Harness::postgres(&config).await
    } else {
        Harness::new(&config).await
    };
    let (_, text) = h.text("GET", "/metrics", None, None).await;
    assert!(
        sample(&text, "bulwark_storage_bytes", &[]).is_none(),
        "nothing before the first listing:\n{text}"
    );
    assert_eq!(
        sample(
            &text,
            "bulwark_storage_cost_threshold",
            &[("backup", "app")]
        ),
        Some(0.01)
    );

    let scheduler = &h.state.instance.scheduler;
    let run = scheduler
        .run_now("cost", &Actor::system("test"))
        .await
        .unwrap();
    assert_eq!(run.outcome.as_str(), "success", "{}", run.summary);
    assert!(
        run.summary.contains("app: 0.02 EUR/month (over threshold)"),
        "{}",
        run.summary
    );

    let (_, text) = h.text("GET", "/metrics", None, None).await;
    let labels = [
        ("backup", "app"),
        ("repository", repo_s),
        ("class", "local"),
    ];
    // 100 + 2,000,000 + 500 bytes in three files.
    assert_eq!(
        sample(&text, "bulwark_storage_bytes", &labels),
        Some(2_000_600.0),
        "{text}"
    );
    assert_eq!(sample(&text, "bulwark_storage_objects", &labels), Some(3.0));
    // 2,000,600 bytes × 10 EUR per 10^9 bytes.
    assert_eq!(
        sample(&text, "bulwark_storage_monthly_cost", &labels[..2]),
        Some(0.020006)
    );
    assert!(sample(
        &text,
        "bulwark_storage_last_listed_timestamp_seconds",
        &labels[..2]
    )
    .is_some());

    let firing = firing_alerts(&h.state.instance.store).await.unwrap();
    let high: Vec<_> = firing
        .iter()
        .filter(|a| a.alertname == "StorageCostHigh")
        .collect();
    assert_eq!(high.len(), 1, "{firing:?}");
    assert_eq!(high[0].monitor, "cost:app");
    assert!(high[0].summary.contains("0.02 EUR"), "{}", high[0].summary);

    // Under the threshold again: resolved, and the gauges follow.
    b.remove(FileType::Pack, &pack).unwrap();
    let run = scheduler
        .run_now("cost", &Actor::system("test"))
        .await
        .unwrap();
    assert_eq!(run.outcome.as_str(), "success", "{}", run.summary);
    let firing = firing_alerts(&h.state.instance.store).await.unwrap();
    assert!(
        firing.iter().all(|a| a.alertname != "StorageCostHigh"),
        "{firing:?}"
    );
    let (_, text) = h.text("GET", "/metrics", None, None).await;
    assert_eq!(sample(&text, "bulwark_storage_bytes", &labels), Some(600.0));
    assert_eq!(
        sample(&text, "bulwark_storage_monthly_cost", &labels[..2]),
        Some(0.000006)
    );
}

#[tokio::test]
async fn storage_gauges_and_the_cost_alert_on_sqlite() {
    storage_gauges_and_alert(false).await;
}

#[tokio::test]
async fn storage_gauges_and_the_cost_alert_on_postgres() {
    storage_gauges_and_alert(true).await;
}

#[tokio::test]
async fn a_listing_that_fails_fails_the_run_and_names_the_repository() {
    // A file where the repository's directory should be: unreadable, not
    // merely empty (a repository not created yet holds 0 bytes).
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("not-a-dir");
    std::fs::write(&broken, "x").unwrap();
    let config = format!(
        "[cost]\nprices = {{ local = 1.0 }}\n[[backup]]\nname = \"app\"\nrepo = \"{}\"\npaths = [\"/srv\"]\n",
        broken.display()
    );
    let h = Harness::new(&config).await;
    let run = h
        .state
        .instance
        .scheduler
        .run_now("cost", &Actor::system("test"))
        .await
        .unwrap();
    assert_eq!(run.outcome.as_str(), "failure", "{}", run.summary);
    assert!(
        run.summary.contains("cannot list: app ") && run.summary.contains("app: not measured"),
        "{}",
        run.summary
    );
    let (_, text) = h.text("GET", "/metrics", None, None).await;
    assert!(
        sample(&text, "bulwark_storage_bytes", &[]).is_none(),
        "{text}"
    );
}
