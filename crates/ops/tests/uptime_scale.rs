//! What lets the uptime engine run thousands of monitors: per-minute
//! rollups folded into hourly ones past the minute retention (counts exact,
//! SLOs within the minute retention unchanged), against real SQLite and
//! PostgreSQL; and results written in batches by the engine, flushed before
//! an incident opens and on shutdown.

mod common;

use common::ts;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bulwark_ops::{
    downsample_results, evaluate_slo, hourly_rollups, monitor_results, open_incident_of,
    parse_settings, prune_hourly_rollups, record_results, rollups, uptime_buckets, Bucket, Engine,
    EngineOptions, Store,
};
use common::TestDb;

const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;
/// "Now" for the store tests: 2026-03-20T00:00:00Z, an hour boundary
/// 19 days into a calendar month.
const NOW: i64 = 1_773_964_800_000;

/// Per-minute rollups of `monitor` for every minute in `[from, to)`: six
/// probes, one failing every seventh minute, latencies varying by minute.
async fn insert_minutes(db: &TestDb, monitor: &str, from: i64, to: i64) {
    let mut conn = db.raw().await;
    let minutes: Vec<i64> = (from..to).step_by(MIN as usize).collect();
    for chunk in minutes.chunks(400) {
        let values: Vec<String> = chunk
            .iter()
            .map(|m| {
                let k = m / MIN;
                format!(
                    "('{monitor}', {m}, 6, {}, {}, {}, {}, {})",
                    i64::from(k % 7 == 0),
                    10 + k % 5,
                    20 + k % 11,
                    30 + k % 13,
                    40 + k % 17
                )
            })
            .collect();
        sqlx::query(&format!(
            "INSERT INTO probe_rollups (monitor, minute, total, failures, latency_p50_ms, \
             latency_p95_ms, latency_p99_ms, latency_max_ms) VALUES {}",
            values.join(", ")
        ))
        .execute(&mut conn)
        .await
        .expect("insert minute rollups");
    }
}

fn totals(buckets: &[Bucket]) -> (u64, u64) {
    buckets
        .iter()
        .fold((0, 0), |(t, b), x| (t + x.total, b + x.bad))
}

on_both!(
    downsampling_keeps_counts_and_slos,
    downsampling_keeps_counts_and_slos_body
);
async fn downsampling_keeps_counts_and_slos_body(store: Store, db: TestDb) {
    // 40 days of minutes for "api"; 2 days of old minutes for "old", a
    // monitor no longer configured.
    insert_minutes(&db, "api", NOW - 40 * DAY, NOW).await;
    insert_minutes(&db, "old", NOW - 39 * DAY, NOW - 37 * DAY).await;
    let text = r#"
[[monitor]]
name = "api"
url = "http://127.0.0.1:1/"

[[slo]]
name = "thirty"
monitor = "api"
target = 0.9
window = "30d"

[[slo]]
name = "month"
monitor = "api"
target = 0.9
calendar = "month"
"#;
    let config = parse_settings(text, None, &|_| None)
        .expect("config")
        .config;
    let from = NOW - 41 * DAY;
    let before = uptime_buckets(&store, "api", ts(from)).await.unwrap();
    let slos_before: Vec<_> = config
        .slos
        .iter()
        .map(|s| evaluate_slo(s, &before, &[], ts(NOW)))
        .collect();

    // Fold everything older than 35 days (plus half an hour: only whole hours go).
    let cutoff = NOW - 35 * DAY + HOUR / 2;
    let folded = downsample_results(&store, ts(cutoff)).await.unwrap();
    assert_eq!(folded as i64, (5 * DAY + 2 * DAY) / MIN);
    assert_eq!(
        downsample_results(&store, ts(cutoff)).await.unwrap(),
        0,
        "idempotent"
    );

    let hourly = hourly_rollups(&store, "api", ts(0), ts(i64::MAX))
        .await
        .unwrap();
    assert_eq!(hourly.len() as i64, 5 * 24);
    assert_eq!(hourly[0].minute, ts(NOW - 40 * DAY));
    assert_eq!(hourly.last().unwrap().minute, ts(NOW - 35 * DAY - HOUR));
    // The first hour, computed by hand from the inserted minutes.
    let mins: Vec<i64> = (0..60).map(|i| (NOW - 40 * DAY) / MIN + i).collect();
    let h = &hourly[0];
    assert_eq!(h.total, 360);
    assert_eq!(
        h.failures,
        mins.iter().filter(|k| *k % 7 == 0).count() as i64
    );
    assert_eq!(
        h.p50_ms,
        mins.iter().map(|k| (10 + k % 5) * 6).sum::<i64>() / 360
    );
    assert_eq!(h.p95_ms, mins.iter().map(|k| 20 + k % 11).max().unwrap());
    assert_eq!(h.p99_ms, mins.iter().map(|k| 30 + k % 13).max().unwrap());
    assert_eq!(h.max_ms, mins.iter().map(|k| 40 + k % 17).max().unwrap());
    // Minutes remain from the cutoff's hour on.
    let minutes = rollups(&store, "api", ts(0), ts(i64::MAX)).await.unwrap();
    assert_eq!(minutes[0].minute, ts(NOW - 35 * DAY));
    assert_eq!(minutes.len() as i64, 35 * DAY / MIN);
    assert_eq!(
        hourly_rollups(&store, "old", ts(0), ts(i64::MAX))
            .await
            .unwrap()
            .len(),
        48
    );

    // Counts over the whole history are exact; SLOs inside the minute
    // retention are exactly what they were.
    let after = uptime_buckets(&store, "api", ts(from)).await.unwrap();
    assert_eq!(totals(&after), totals(&before));
    assert_eq!(after.len() as i64, 5 * 24 + 35 * DAY / MIN);
    for (s, was) in config.slos.iter().zip(&slos_before) {
        assert_eq!(&evaluate_slo(s, &after, &[], ts(NOW)), was, "{}", s.name);
    }

    // A stray minute row in an hour already folded (a late re-roll): that
    // hour is read from its minutes alone, and every other hour, older or
    // newer, still counts.
    let stray_hour = NOW - 38 * DAY;
    let stray = stray_hour + 5 * MIN;
    insert_minutes(&db, "api", stray, stray + MIN).await;
    let folded = hourly.iter().find(|h| h.minute == ts(stray_hour)).unwrap();
    let with_stray = uptime_buckets(&store, "api", ts(from)).await.unwrap();
    let (total, bad) = totals(&after);
    assert_eq!(
        totals(&with_stray),
        (
            total - folded.total as u64 + 6,
            bad - folded.failures as u64 + u64::from((stray / MIN) % 7 == 0)
        )
    );
    assert_eq!(with_stray.len(), after.len());

    // Hourly rollups age out by their hour.
    let pruned = prune_hourly_rollups(&store, ts(NOW - 38 * DAY))
        .await
        .unwrap();
    assert_eq!(pruned as i64, 2 * 24 + 24);
    let rest = hourly_rollups(&store, "api", ts(0), ts(i64::MAX))
        .await
        .unwrap();
    assert_eq!(rest[0].minute, ts(NOW - 38 * DAY));
}

on_both!(batched_results_are_stored, batched_results_are_stored_body);
async fn batched_results_are_stored_body(store: Store, _db: TestDb) {
    // More rows than one multi-row INSERT holds, with every column kind.
    let results: Vec<_> = (0..1234_i64)
        .map(|i| bulwark_ops::ProbeResult {
            monitor: format!("m{}", i % 3),
            at: ts(NOW + i),
            ok: i % 10 != 0,
            latency: Duration::from_millis(i as u64),
            status: (i % 10 != 0).then_some(200),
            error: (i % 10 == 0).then(|| format!("failure {i}")),
        })
        .collect();
    record_results(&store, &results).await.unwrap();
    let mut stored = Vec::new();
    for m in ["m0", "m1", "m2"] {
        stored.extend(
            monitor_results(&store, m, ts(0), ts(i64::MAX), 10_000)
                .await
                .unwrap(),
        );
    }
    stored.sort_by_key(|r| r.at.as_millis());
    assert_eq!(stored, results);
}

async fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// With a flush interval far longer than the test, results reach the store
/// only when an incident opens (the result that opened it first) and when
/// the engine stops; every result is then in both the store and the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_are_flushed_before_an_incident_and_on_stop() {
    let dir = tempfile::tempdir().unwrap();
    let up = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = up.local_addr().unwrap();
    tokio::spawn(async move { while up.accept().await.is_ok() {} });
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down_addr = closed.local_addr().unwrap();
    drop(closed);
    let text = format!(
        r#"
[[monitor]]
name = "up"
url = "tcp://{up_addr}"
interval = "1s"
timeout = "500ms"

[[monitor]]
name = "down"
url = "tcp://{down_addr}"
interval = "1s"
timeout = "500ms"
strikes = 2
"#
    );
    let config = Arc::new(
        parse_settings(&text, None, &|_| None)
            .expect("config")
            .config,
    );
    let store = Store::open(None, dir.path()).await.unwrap();
    let mut opts = EngineOptions::new(dir.path());
    opts.flush_interval = Duration::from_secs(3600);
    opts.slo_interval = Duration::from_secs(3600);
    let engine = Engine::start(config, store.clone(), opts).await.unwrap();
    let live = engine.live();

    // The incident opens on the second failure, which is already stored.
    let deadline = Instant::now() + Duration::from_secs(60);
    let opened = loop {
        if let Some(i) = open_incident_of(&store, "down").await.unwrap() {
            break i;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for the incident"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let down = monitor_results(&store, "down", ts(0), ts(i64::MAX), 100)
        .await
        .unwrap();
    let failures = down
        .iter()
        .filter(|r| !r.ok && r.at.as_millis() <= opened.opened_at.as_millis())
        .count();
    assert_eq!(
        failures,
        2,
        "{down:?} opened {}",
        opened.opened_at.as_millis()
    );

    // A result of "up" seen after that flush is not in the store yet...
    let after_flush = chrono::Utc::now().timestamp_millis();
    let pending = wait_for("a newer result of up", || {
        live.monitors()
            .get("up")
            .and_then(|m| m.last.clone())
            .filter(|r| r.at.as_millis() > after_flush)
    })
    .await;
    let stored = monitor_results(&store, "up", ts(pending.at.as_millis()), ts(i64::MAX), 10)
        .await
        .unwrap();
    assert!(
        !stored
            .iter()
            .any(|r| r.at.as_millis() == pending.at.as_millis()),
        "batched, not written one by one: {stored:?}"
    );

    // ...and is after stop, in the store and in the log, like every other.
    engine.stop().await;
    let mut all = Vec::new();
    for m in ["up", "down"] {
        all.extend(
            monitor_results(&store, m, ts(0), ts(i64::MAX), 10_000)
                .await
                .unwrap(),
        );
    }
    assert!(
        all.iter().any(|r| (&r.monitor, r.at.as_millis(), r.ok)
            == (&pending.monitor, pending.at.as_millis(), pending.ok)),
        "{pending:?} stored on stop"
    );
    let log = std::fs::read_to_string(dir.path().join("logs/uptime.ndjson")).unwrap();
    let mut logged: Vec<(String, String)> = log
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["monitor"].as_str().unwrap().to_string(),
                v["ts"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut in_store: Vec<(String, String)> = all
        .iter()
        .map(|r| {
            (
                r.monitor.clone(),
                chrono::DateTime::from_timestamp_millis(r.at.as_millis())
                    .unwrap()
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            )
        })
        .collect();
    logged.sort();
    in_store.sort();
    assert_eq!(
        logged, in_store,
        "every result is in both the log and the store"
    );
}
