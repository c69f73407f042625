//! `opscheck::run` and `report::gather` against real SQLite and PostgreSQL:
//! the queries they add (incidents overlapping a month, job runs, drill
//! reports, rotations from the audit trail) must work on both engines.

mod common;

use std::time::Duration;

use bulwark_ops::config::Config;
use bulwark_ops::opscheck;
use bulwark_ops::probe::ProbeResult;
use bulwark_ops::report::{self, Period};
use bulwark_ops::scheduler::runs::{self, RunOutcome, Trigger};
use bulwark_ops::settings;
use bulwark_ops::{uptime, Actor, Store};
use chrono::{TimeZone, Utc};
use common::TestDb;

fn config() -> Config {
    let text = r#"
[[monitor]]
name = "api"
url = "tcp://127.0.0.1:1"
timeout = "1s"

[[slo]]
name = "api-availability"
monitor = "api"
target = 0.99
window = "30d"

[[backup]]
name = "app"
repo = "/nonexistent/repo"
paths = ["/nonexistent"]
"#;
    settings::parse(text, None, &|_| None).unwrap().config
}

on_both!(report_gathers_a_month, report_body);
async fn report_body(store: Store, _db: TestDb) {
    let period = Period::parse("2026-01").unwrap();
    let t0 = period.start().timestamp_millis();
    for i in 0..10_i64 {
        let r = ProbeResult {
            monitor: "api".into(),
            at_ms: t0 + i * 60_000,
            ok: i != 0,
            latency: Duration::from_millis(3),
            status: None,
            error: None,
        };
        uptime::record(&store, &r).await.unwrap();
    }
    // One incident inside the month, one that started the month before.
    uptime::open_incident(&store, "api", t0 + 60_000, "refused")
        .await
        .unwrap();
    uptime::resolve_incident(&store, "api", t0 + 180_000)
        .await
        .unwrap();
    uptime::open_incident(&store, "api", t0 - 3_600_000, "old")
        .await
        .unwrap();
    uptime::resolve_incident(&store, "api", t0 + 600_000)
        .await
        .unwrap();
    let at = period.start() + chrono::Duration::hours(2);
    let mut run = runs::claim(
        &store,
        "backup:app",
        at,
        Trigger::Manual,
        "t",
        &Actor::cli(),
        at,
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    runs::finish(&store, &mut run, RunOutcome::Failure, "boom", at)
        .await
        .unwrap();

    let now = Utc.with_ymd_and_hms(2026, 2, 2, 0, 0, 0).unwrap();
    let r = report::gather(&store, &config(), period, now)
        .await
        .unwrap();
    assert_eq!((r.monitors[0].total, r.monitors[0].failures), (10, 1));
    assert_eq!(r.monitors[0].incidents, 2);
    // 120 s inside plus 600 s of the one carried over from December.
    assert_eq!(r.monitors[0].downtime_seconds, 720);
    assert_eq!(r.incidents.len(), 2);
    assert_eq!(r.slos[0].attainment, 0.9);
    assert_eq!((r.backups[0].runs, r.backups[0].failures), (1, 1));
    assert_eq!(r.verifications[0].runs, 0);
    // Nothing of February leaks in.
    let feb = report::gather(&store, &config(), Period::parse("2026-02").unwrap(), now)
        .await
        .unwrap();
    assert_eq!(feb.monitors[0].total, 0);
    assert!(feb.incidents.is_empty());
}

on_both!(ops_check_rows_on_both_stores, opscheck_body);
async fn opscheck_body(store: Store, _db: TestDb) {
    let data = tempfile::tempdir().unwrap();
    let rows = opscheck::run(&store, &config(), data.path(), Utc::now())
        .await
        .unwrap();
    let find = |area: &str| rows.iter().find(|r| r.area == area).unwrap();
    assert!(!find("monitor").ok);
    assert!(find("slo").ok);
    assert_eq!(find("backup").detail, "no backup run recorded");
    assert!(find("verify").ok, "no verify section: {:?}", find("verify"));
    assert!(find("audit").ok);
    assert!(!opscheck::all_ok(&rows));
}
