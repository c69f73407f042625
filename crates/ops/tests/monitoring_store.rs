//! Probe results, rollups, incidents, heartbeats, silences and the alert
//! outbox against real SQLite and PostgreSQL databases. Time is passed in
//! explicitly, so nothing here sleeps or depends on the wall clock.

mod common;

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bulwark_ops::{
    create_push_token, create_silence, deliver_due, downsample_results, expire_silence,
    has_push_token, hash_stored_push_tokens, hourly_rollups, last_ping, latest_results,
    list_incidents, list_silences, monitor_results, notify_alert, open_incident, open_incident_of,
    parse_settings, pending_deliveries, prune_uptime, query_audit, queue_alert_reminders,
    record_ping, record_result, record_results, resolve_incident, rollup_results, rollup_series,
    rollups, uptime_buckets, Actor, Alert, AlertError, AlertSeverity, AlertStatus, Config, Filter,
    NewSilence, ProbeResult, Resolution, SilenceEnd, Store,
};
use common::ts;
use common::TestDb;
use tokio::io::AsyncWriteExt;

const MIN: i64 = 60_000;
/// A fixed minute boundary: 2026-01-15T00:00:00Z.
const T0: i64 = 1_768_435_200_000;

fn result(monitor: &str, at_ms: i64, ok: bool, latency_ms: u64) -> ProbeResult {
    ProbeResult {
        monitor: monitor.to_string(),
        at: ts(at_ms),
        ok,
        latency: Duration::from_millis(latency_ms),
        status: ok.then_some(200),
        error: (!ok).then(|| "unexpected status 503".to_string()),
    }
}

on_both!(
    results_rollups_and_pruning,
    results_rollups_and_pruning_body
);
async fn results_rollups_and_pruning_body(store: Store, _db: TestDb) {
    // Minute 0: 10 probes, 2 failing, latencies 10..=100 ms. Minute 1: 1 probe.
    for i in 0..10 {
        let r = result("api", T0 + i * 5_000, i >= 2, (i as u64 + 1) * 10);
        record_result(&store, &r).await.unwrap();
    }
    record_result(&store, &result("api", T0 + MIN + 1, true, 7))
        .await
        .unwrap();
    record_result(&store, &result("other", T0, false, 1))
        .await
        .unwrap();

    let newest = monitor_results(&store, "api", ts(T0), ts(i64::MAX), 3)
        .await
        .unwrap();
    assert_eq!(newest.len(), 3);
    assert_eq!(newest[0].at.as_millis(), T0 + MIN + 1);
    assert_eq!(newest[0].status, Some(200));
    let failed = monitor_results(&store, "api", ts(T0), ts(i64::MAX), 100)
        .await
        .unwrap();
    assert_eq!(failed.iter().filter(|r| !r.ok).count(), 2);
    assert_eq!(
        failed.last().unwrap().error.as_deref(),
        Some("unexpected status 503")
    );
    let latest = latest_results(&store).await.unwrap();
    assert_eq!(latest["api"].at.as_millis(), T0 + MIN + 1);
    assert!(!latest["other"].ok);

    // Before any rollup, buckets come from raw results.
    let raw_buckets = uptime_buckets(&store, "api", ts(T0)).await.unwrap();
    assert_eq!(
        raw_buckets
            .iter()
            .map(|b| (b.start.as_millis(), b.total, b.bad))
            .collect::<Vec<_>>(),
        [(T0, 10, 2), (T0 + MIN, 1, 0)]
    );

    // Roll up minute 0 only (twice: it is idempotent).
    assert_eq!(
        rollup_results(&store, ts(T0), ts(T0 + MIN)).await.unwrap(),
        2
    );
    assert_eq!(
        rollup_results(&store, ts(T0), ts(T0 + MIN)).await.unwrap(),
        2
    );
    let rolled = rollups(&store, "api", ts(T0), ts(i64::MAX)).await.unwrap();
    assert_eq!(rolled.len(), 1);
    let r = &rolled[0];
    assert_eq!((r.minute, r.total, r.failures), (ts(T0), 10, 2));
    assert_eq!(
        (r.p50_ms, r.p95_ms, r.p99_ms, r.max_ms),
        (50, 100, 100, 100)
    );

    // Rollups plus the newer raw minute give the same buckets.
    assert_eq!(
        uptime_buckets(&store, "api", ts(T0)).await.unwrap(),
        raw_buckets
    );

    // Pruning raw results keeps the rolled-up history for SLOs.
    let (raw, rollups) = prune_uptime(&store, ts(T0 + MIN), ts(T0 - MIN))
        .await
        .unwrap();
    assert_eq!((raw, rollups), (11, 0));
    assert_eq!(
        uptime_buckets(&store, "api", ts(T0)).await.unwrap(),
        raw_buckets
    );
    let (_, rollups) = prune_uptime(&store, ts(T0), ts(T0 + MIN)).await.unwrap();
    assert_eq!(rollups, 2);
}

on_both!(
    rollup_series_cover_downsampled_and_recent_hours,
    rollup_series_body
);
async fn rollup_series_body(store: Store, _db: TestDb) {
    use Resolution::{Hour, Minute};
    const HOUR: i64 = 3_600_000;
    // Hour h (0..4) has h + 2 minutes of two results each, one failing per
    // hour, so every hour has its own total: 4, 6, 8, 10.
    let mut results = Vec::new();
    for h in 0..4_i64 {
        for k in 0..h + 2 {
            for i in 0..2_i64 {
                let at = T0 + h * HOUR + k * MIN + i * 1000;
                let latency = (100 * h + 10 * (k + 1) + i) as u64;
                results.push(result("api", at, k + i > 0, latency));
            }
        }
    }
    results.push(result("other", T0 + 2 * HOUR, false, 1));
    record_results(&store, &results).await.unwrap();
    rollup_results(&store, ts(T0), ts(T0 + 4 * HOUR))
        .await
        .unwrap();
    // Hours 0 and 1 are older than the minute retention: only hourly rows.
    assert_eq!(
        downsample_results(&store, ts(T0 + 2 * HOUR)).await.unwrap(),
        5
    );

    // (minutes after T0, total, failures) of each bucket.
    let store_ref = &store;
    let series = move |res: Resolution, (from, to): (i64, i64), limit: u32| async move {
        rollup_series(store_ref, "api", res, ts(from), ts(to), limit)
            .await
            .unwrap()
            .into_iter()
            .map(|r| ((r.minute.as_millis() - T0) / MIN, r.total, r.failures))
            .collect::<Vec<_>>()
    };
    let all = (T0, T0 + 4 * HOUR);
    type Case = (Resolution, (i64, i64), u32, Vec<(i64, i64, i64)>);
    let cases: Vec<Case> = vec![
        // Downsampled hours from the hourly table, recent ones folded from
        // their minutes: one series, exact counts per hour.
        (
            Hour,
            all,
            100,
            vec![(0, 4, 1), (60, 6, 1), (120, 8, 1), (180, 10, 1)],
        ),
        // The limit keeps the newest buckets, still oldest first.
        (Hour, all, 2, vec![(120, 8, 1), (180, 10, 1)]),
        // Buckets start in [from, to); a bucket is its whole hour.
        (
            Hour,
            (T0 + HOUR / 2, T0 + 2 * HOUR + HOUR / 2),
            100,
            vec![(60, 6, 1), (120, 8, 1)],
        ),
        (Hour, (T0 + HOUR, T0 + 2 * HOUR), 100, vec![(60, 6, 1)]),
        (Hour, (T0 + HOUR, T0 + HOUR), 100, vec![]),
        (Hour, all, 0, vec![]),
        // Minutes exist only for the hours not downsampled.
        (Minute, all, 3, vec![(182, 2, 0), (183, 2, 0), (184, 2, 0)]),
        (
            Minute,
            (T0, T0 + 2 * HOUR + 2 * MIN),
            100,
            vec![(120, 2, 1), (121, 2, 0)],
        ),
    ];
    for (res, (from, to), limit, expected) in cases {
        assert_eq!(
            series(res, (from, to), limit).await,
            expected,
            "{res:?} [{from}, {to}) limit {limit}"
        );
    }
    assert_eq!(series(Minute, all, 100).await.len(), 4 + 5);

    // Hour 1 re-rolled from its raw results after it was downsampled is in
    // both tables; it still counts once.
    rollup_results(&store, ts(T0 + HOUR), ts(T0 + 2 * HOUR))
        .await
        .unwrap();
    assert_eq!(
        series(Hour, all, 100).await,
        [(0, 4, 1), (60, 6, 1), (120, 8, 1), (180, 10, 1)]
    );
    // Folding on the fly is what the downsampler stores, latencies included:
    // the series reads the same after every hour is downsampled.
    let before = rollup_series(&store, "api", Hour, ts(all.0), ts(all.1), 100)
        .await
        .unwrap();
    downsample_results(&store, ts(T0 + 4 * HOUR)).await.unwrap();
    assert!(series(Minute, all, 100).await.is_empty());
    let after = rollup_series(&store, "api", Hour, ts(all.0), ts(all.1), 100)
        .await
        .unwrap();
    assert_eq!(after, before);
    assert_eq!(
        hourly_rollups(&store, "api", ts(all.0), ts(all.1))
            .await
            .unwrap(),
        before
    );
    // Hour 2's latencies: 210, 211, 220, ..., 241; p95/p99 are the worst
    // minute's, p50 the probe-weighted mean of the minutes' p50.
    let h2 = &before[2];
    assert_eq!((h2.p95_ms, h2.p99_ms, h2.max_ms), (241, 241, 241));
    assert_eq!(h2.p50_ms, (210 + 220 + 230 + 240) * 2 / 8);

    // Raw results honour the same [from, to).
    let raw = monitor_results(&store, "api", ts(T0 + HOUR), ts(T0 + HOUR + MIN), 100)
        .await
        .unwrap();
    assert_eq!(raw.len(), 2);
    assert_eq!(raw[0].at.as_millis(), T0 + HOUR + 1000);
}

on_both!(incidents_open_and_resolve_once, incidents_body);
async fn incidents_body(store: Store, _db: TestDb) {
    let a = open_incident(&store, "api", ts(T0), "cannot connect")
        .await
        .unwrap();
    // Opening again returns the same open incident rather than a second one.
    let b = open_incident(&store, "api", ts(T0 + 5), "x").await.unwrap();
    assert_eq!(a, b);
    assert_eq!(
        list_incidents(&store, None, true, 10).await.unwrap().len(),
        1
    );
    let resolved = resolve_incident(&store, "api", ts(T0 + MIN))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        resolved.resolved_at.map(bulwark_ops::Timestamp::as_millis),
        Some(T0 + MIN)
    );
    assert!(resolve_incident(&store, "api", ts(T0 + MIN))
        .await
        .unwrap()
        .is_none());
    assert!(open_incident_of(&store, "api").await.unwrap().is_none());
    open_incident(&store, "api", ts(T0 + 2 * MIN), "timed out")
        .await
        .unwrap();
    let all = list_incidents(&store, Some("api"), false, 10)
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].cause, "timed out");
    assert!(list_incidents(&store, Some("nope"), false, 10)
        .await
        .unwrap()
        .is_empty());
}

on_both!(push_tokens_are_stored_as_digests_and_pings_land, push_body);
async fn push_body(store: Store, db: TestDb) {
    let actor = Actor::cli();
    assert!(!has_push_token(&store, "cron").await.unwrap());
    let first = create_push_token(&store, &actor, "cron").await.unwrap();
    let token = create_push_token(&store, &actor, "cron")
        .await
        .unwrap()
        .into_inner();
    assert_eq!(token.len(), 40);
    assert!(has_push_token(&store, "cron").await.unwrap());
    // The database holds a digest only, so a copy of it cannot ping.
    let stored: Vec<String> = {
        use sqlx::Row;
        let mut conn = db.raw().await;
        sqlx::query("SELECT token FROM push_monitors")
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>("token"))
            .collect()
    };
    assert!(
        stored
            .iter()
            .all(|t| t.starts_with("sha256:") && !t.contains(&token)),
        "{stored:?}"
    );
    // A new token replaces the old one at once.
    assert_eq!(
        record_ping(&store, first.expose(), ts(T0)).await.unwrap(),
        None
    );
    let made = query_audit(
        &store,
        &Filter {
            action: Some("monitor.push_token".into()),
            ..Filter::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(made.len(), 2);
    assert!(!format!("{made:?}").contains(&token));
    assert_eq!(last_ping(&store, "cron").await.unwrap(), None);
    assert_eq!(
        record_ping(&store, &token, ts(T0))
            .await
            .unwrap()
            .as_deref(),
        Some("cron")
    );
    assert_eq!(last_ping(&store, "cron").await.unwrap(), Some(ts(T0)));
    assert_eq!(
        record_ping(&store, "not-a-token", ts(T0)).await.unwrap(),
        None
    );

    // A token an earlier version stored in clear keeps working, as a digest.
    {
        let mut conn = db.raw().await;
        sqlx::query("INSERT INTO push_monitors (monitor, token, last_ping_at) VALUES ('old', 'legacy-token', NULL)")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    assert_eq!(hash_stored_push_tokens(&store).await.unwrap(), 1);
    assert_eq!(hash_stored_push_tokens(&store).await.unwrap(), 0);
    assert_eq!(
        record_ping(&store, "legacy-token", ts(T0))
            .await
            .unwrap()
            .as_deref(),
        Some("old")
    );
}

on_both!(silences_are_audited_and_expire, silences_body);
async fn silences_body(store: Store, _db: TestDb) {
    let actor = Actor::cli();
    let config = bulwark_ops::parse_settings(
        "[server]\nmax_silence = \"30d\"\n[[monitor]]\nname = \"api\"\nurl = \"http://127.0.0.1:9/\"\n",
        None,
        &|_| None,
    )
    .unwrap()
    .config;
    let now = chrono::Utc::now().timestamp_millis();
    let new = |monitor, tag, comment, ends| NewSilence {
        monitor,
        tag,
        comment,
        ends,
    };
    let s = create_silence(
        &store,
        &config,
        &actor,
        new(
            Some("api"),
            None,
            "deploy",
            SilenceEnd::At(ts(now + 3_600_000)),
        ),
    )
    .await
    .unwrap();
    let day = Duration::from_secs(86_400);
    // Each refused with a message naming what is wrong, and nothing stored.
    for (bad, why) in [
        (
            new(None, None, "", SilenceEnd::At(ts(now + 1000))),
            "name a monitor",
        ),
        (
            new(Some("api"), None, "", SilenceEnd::At(ts(now - 1))),
            "in the future",
        ),
        (
            new(
                Some("api"),
                None,
                "",
                SilenceEnd::After(Duration::from_secs(i64::MAX as u64)),
            ),
            "server.max_silence",
        ),
        (
            new(Some("api"), None, "", SilenceEnd::After(day * 31)),
            "server.max_silence",
        ),
        (
            new(Some("api"), None, "", SilenceEnd::At(ts(i64::MAX))),
            "server.max_silence",
        ),
        (
            new(Some("nope"), None, "", SilenceEnd::After(day)),
            "no monitor named \"nope\"",
        ),
        (
            new(None, Some("team\0a"), "", SilenceEnd::After(day)),
            "tag contains control",
        ),
        (
            new(Some("api"), None, "x\u{1b}[2J", SilenceEnd::After(day)),
            "comment contains control",
        ),
    ] {
        let err = create_silence(&store, &config, &actor, bad)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(why), "{bad:?}: {err}");
    }
    assert_eq!(
        list_silences(&store, false, ts(now)).await.unwrap(),
        vec![s.clone()]
    );
    // After its end it is no longer active.
    assert!(list_silences(&store, false, ts(now + 3_600_000))
        .await
        .unwrap()
        .is_empty());
    let expired = expire_silence(&store, &actor, &s.id).await.unwrap();
    assert!(expired
        .expired_at
        .map(bulwark_ops::Timestamp::as_millis)
        .is_some());
    assert!(list_silences(&store, false, ts(now))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(list_silences(&store, true, ts(now)).await.unwrap().len(), 1);
    assert!(matches!(
        expire_silence(&store, &actor, &s.id).await,
        Err(AlertError::AlreadyExpired(_))
    ));
    let records = query_audit(
        &store,
        &Filter {
            action: Some("silence.*".into()),
            ..Filter::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        records
            .iter()
            .map(|r| r.action.as_str())
            .collect::<Vec<_>>(),
        ["silence.expire", "silence.create"]
    );
}

/// A loopback HTTP receiver that answers every request with the current
/// `status` and keeps the bodies of the requests it accepted with 2xx.
struct Receiver {
    url: String,
    status: Arc<AtomicU16>,
    accepted: Arc<Mutex<Vec<serde_json::Value>>>,
    attempts: Arc<Mutex<u32>>,
}

async fn receiver() -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let status = Arc::new(AtomicU16::new(200));
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let attempts = Arc::new(Mutex::new(0));
    let (s, a, n) = (status.clone(), accepted.clone(), attempts.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (s, a, n) = (s.clone(), a.clone(), n.clone());
            tokio::spawn(async move {
                let Some((_, body)) = common::read_request(&mut sock).await else {
                    return;
                };
                *n.lock().unwrap() += 1;
                let code = s.load(Ordering::SeqCst);
                if (200..300).contains(&code) {
                    a.lock()
                        .unwrap()
                        .push(serde_json::from_slice(&body).unwrap_or_default());
                }
                let reply =
                    format!("HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = sock.write_all(reply.as_bytes()).await;
            });
        }
    });
    Receiver {
        url,
        status,
        accepted,
        attempts,
    }
}

fn config_with_webhook(url: &str) -> Config {
    let text = format!(
        r#"
[[monitor]]
name = "api"
url = "http://127.0.0.1:9/health"
tags = ["team-a"]

[[channel]]
name = "ops"
type = "webhook"
url = "{url}"
"#
    );
    parse_settings(&text, None, &|_| None)
        .expect("config")
        .config
}

on_both!(a_slow_channel_holds_up_no_other, slow_channel_body);
async fn slow_channel_body(store: Store, _db: TestDb) {
    // "slow" reads the request and answers only when the test says so.
    let slow = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow_url = format!("http://{}/hook", slow.local_addr().unwrap());
    let (got_tx, got_rx) = tokio::sync::oneshot::channel::<()>();
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (mut sock, _) = slow.accept().await.unwrap();
        common::read_request(&mut sock).await;
        let _ = got_tx.send(());
        let _ = release_rx.await;
        let _ = sock
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await;
    });
    let fast = receiver().await;
    let text = format!(
        r#"
[[monitor]]
name = "api"
url = "http://127.0.0.1:9/"
[[monitor]]
name = "web"
url = "http://127.0.0.1:9/"

[[channel]]
name = "slow"
type = "webhook"
url = "{slow_url}"
[[channel]]
name = "fast"
type = "webhook"
url = "{fast}"

[[route]]
channel = "slow"
monitors = ["api"]
[[route]]
channel = "fast"
monitors = ["web"]
"#,
        fast = fast.url
    );
    let config = Arc::new(parse_settings(&text, None, &|_| None).unwrap().config);
    let now = chrono::Utc::now().timestamp_millis();
    // The slow channel's message is older, so it comes first in the outbox.
    for (monitor, at) in [("api", now), ("web", now + 1)] {
        let a = Alert::new(
            "MonitorDown",
            monitor,
            "",
            AlertSeverity::Critical,
            "down".into(),
            ts(at),
        );
        notify_alert(&store, &config, &a, ts(at)).await.unwrap();
    }
    let deliver = tokio::spawn({
        let (store, config) = (store.clone(), config.clone());
        async move {
            let client = reqwest::Client::new();
            deliver_due(&store, &config, &client, ts(now + 10)).await
        }
    });
    tokio::time::timeout(Duration::from_secs(30), got_rx)
        .await
        .expect("the slow channel was called")
        .unwrap();
    // While the slow channel still holds its request, the fast one is served.
    let served = async {
        while fast.accepted.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), served)
        .await
        .expect("the fast channel waited for the slow one");
    release_tx.send(()).unwrap();
    assert_eq!(deliver.await.unwrap().unwrap(), 2);
}

async fn reopen(db: &TestDb) -> Store {
    match db {
        TestDb::Postgres { url } => Store::open_postgres(url).await.unwrap(),
        TestDb::Sqlite { url, .. } => {
            Store::open_sqlite(std::path::Path::new(url.trim_start_matches("sqlite://")))
                .await
                .unwrap()
        }
    }
}

on_both!(
    outbox_delivers_everything_once_across_outage_and_restart,
    outbox_body
);
async fn outbox_body(store: Store, db: TestDb) {
    let rx = receiver().await;
    let config = config_with_webhook(&rx.url);
    let client = reqwest::Client::new();
    let now = chrono::Utc::now().timestamp_millis();
    let firing = Alert::new(
        "MonitorDown",
        "api",
        "",
        AlertSeverity::Critical,
        "api is down".into(),
        ts(now),
    );

    // The channel is down: the notification waits in the outbox.
    rx.status.store(503, Ordering::SeqCst);
    let n = notify_alert(&store, &config, &firing, ts(now))
        .await
        .unwrap();
    assert_eq!(n.queued, ["ops"]);
    assert_eq!(
        deliver_due(&store, &config, &client, ts(now))
            .await
            .unwrap(),
        0
    );
    let pending = pending_deliveries(&store).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].attempts, 1);
    assert_eq!(
        pending[0].last_error.as_deref(),
        Some("receiver answered 503")
    );
    assert!(!pending[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("127.0.0.1"));
    // Not due again before its backoff.
    assert_eq!(
        deliver_due(&store, &config, &client, ts(now + 10))
            .await
            .unwrap(),
        0
    );
    assert_eq!(*rx.attempts.lock().unwrap(), 1);

    // The same state raised again (a restarted engine re-detecting it) adds nothing.
    let again = notify_alert(&store, &config, &firing, ts(now + 50))
        .await
        .unwrap();
    assert!(again.duplicate);

    // Restart: a new process opens the same database; the channel is back.
    store.close().await;
    let store = reopen(&db).await;
    rx.status.store(200, Ordering::SeqCst);
    assert_eq!(
        deliver_due(&store, &config, &client, ts(now + 5_000))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        deliver_due(&store, &config, &client, ts(now + 60_000))
            .await
            .unwrap(),
        0
    );
    assert!(pending_deliveries(&store).await.unwrap().is_empty());

    // Resolve: one more notification, to the channel that heard it firing.
    let mut resolved = firing.clone();
    resolved.status = AlertStatus::Resolved;
    let n = notify_alert(&store, &config, &resolved, ts(now + 70_000))
        .await
        .unwrap();
    assert_eq!(n.queued, ["ops"]);
    assert!(
        notify_alert(&store, &config, &resolved, ts(now + 71_000))
            .await
            .unwrap()
            .duplicate
    );
    assert_eq!(
        deliver_due(&store, &config, &client, ts(now + 70_000))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        deliver_due(&store, &config, &client, ts(now + 200_000))
            .await
            .unwrap(),
        0
    );

    let got = rx.accepted.lock().unwrap().clone();
    let statuses: Vec<_> = got
        .iter()
        .map(|b| b["status"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(statuses, ["firing", "resolved"]);
    assert_eq!(got[0]["version"], "4");
    assert_eq!(
        got[0]["alerts"][0]["fingerprint"],
        got[1]["alerts"][0]["fingerprint"]
    );
    assert_eq!(
        got[1]["alerts"][0]["startsAt"],
        got[0]["alerts"][0]["startsAt"]
    );
}

on_both!(
    silenced_alerts_send_nothing_and_reminders_repeat,
    silence_and_repeat_body
);
async fn silence_and_repeat_body(store: Store, _db: TestDb) {
    let rx = receiver().await;
    let config = config_with_webhook(&rx.url);
    let client = reqwest::Client::new();
    let now = chrono::Utc::now().timestamp_millis();
    create_silence(
        &store,
        &config,
        &Actor::cli(),
        NewSilence {
            monitor: None,
            tag: Some("team-a"),
            comment: "maint",
            ends: SilenceEnd::At(ts(now + 3_600_000)),
        },
    )
    .await
    .unwrap();
    let mut a = Alert::new(
        "MonitorDown",
        "api",
        "",
        AlertSeverity::Critical,
        "down".into(),
        ts(now),
    );
    a.tags = vec!["team-a".into()];
    let n = notify_alert(&store, &config, &a, ts(now)).await.unwrap();
    assert_eq!(
        (n.queued.len(), n.silenced.as_slice()),
        (0, ["ops".to_string()].as_slice())
    );
    let mut r = a.clone();
    r.status = AlertStatus::Resolved;
    let n = notify_alert(&store, &config, &r, ts(now + 1))
        .await
        .unwrap();
    // Nobody heard it fire, so nobody hears it resolve.
    assert!(n.queued.is_empty());
    assert_eq!(
        deliver_due(&store, &config, &client, ts(now + 10))
            .await
            .unwrap(),
        0
    );
    assert_eq!(*rx.attempts.lock().unwrap(), 0);

    // Unsilenced: a reminder follows each repeat_interval (4h by default), once.
    let mut b = Alert::new(
        "MonitorDown",
        "db",
        "",
        AlertSeverity::Critical,
        "down".into(),
        ts(now),
    );
    b.tags = vec![];
    notify_alert(&store, &config, &b, ts(now)).await.unwrap();
    assert_eq!(
        queue_alert_reminders(&store, &config, ts(now + 1000))
            .await
            .unwrap(),
        0
    );
    let later = now + 4 * 3_600_000;
    assert_eq!(
        queue_alert_reminders(&store, &config, ts(later))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        queue_alert_reminders(&store, &config, ts(later + 1000))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        deliver_due(&store, &config, &client, ts(later + 1000))
            .await
            .unwrap(),
        2
    );
}
