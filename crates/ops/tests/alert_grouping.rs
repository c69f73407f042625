//! Alert grouping (`[[route]] group_by`) end to end, on SQLite and on
//! PostgreSQL, with a loopback webhook receiver: monitors failing together
//! arrive as one Alertmanager v4 webhook listing every alert; a resolve is
//! held until `group_interval`; the state survives a restart; a route
//! without `group_by` still sends one webhook per alert.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bulwark_ops::{
    create_silence, deliver_due, flush_alert_groups, notify_alert, parse_settings,
    pending_deliveries, Actor, Alert, AlertSeverity, AlertStatus, Config, Engine, EngineOptions,
    NewSilence, SilenceEnd, Store,
};
use common::{webhook_receiver, Received, TestDb};

fn bodies(got: &Received, path: &str) -> Vec<serde_json::Value> {
    got.lock().unwrap().get(path).cloned().unwrap_or_default()
}

/// (status, monitors with their statuses) of each webhook, to compare whole.
fn summary(bodies: &[serde_json::Value]) -> Vec<(String, Vec<(String, String)>)> {
    bodies
        .iter()
        .map(|b| {
            let alerts = b["alerts"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|x| {
                            (
                                x["labels"]["monitor"].as_str().unwrap_or("").to_string(),
                                x["status"].as_str().unwrap_or("").to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            (b["status"].as_str().unwrap_or("").to_string(), alerts)
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn parse(text: &str) -> Config {
    parse_settings(text, None, &|_| None)
        .unwrap_or_else(|e| panic!("test config does not compile: {e}"))
        .config
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

on_both!(monitors_failing_together_arrive_as_one_webhook, engine_body);
async fn engine_body(store: Store, _db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let (base, got) = webhook_receiver().await;
    // Port 9 (discard) is closed on loopback: both monitors fail at their
    // first probe, within a second of each other (start offsets spread
    // first probes over one interval).
    let config = Arc::new(parse(&format!(
        r#"
[[monitor]]
name = "db-primary"
url = "tcp://127.0.0.1:9"
interval = "1s"
timeout = "500ms"
strikes = 1
tags = ["db"]

[[monitor]]
name = "db-replica"
url = "tcp://127.0.0.1:9"
interval = "1s"
timeout = "500ms"
strikes = 1
tags = ["db"]

[[channel]]
name = "grouped"
type = "webhook"
url = "{base}/grouped"

[[channel]]
name = "single"
type = "webhook"
url = "{base}/single"

[[route]]
channel = "grouped"
group_by = ["tags"]
group_wait = "4s"

[[route]]
channel = "single"
"#
    )));
    let mut opts = EngineOptions::new(dir.path());
    opts.outbox_interval = Duration::from_millis(100);
    opts.slo_interval = Duration::from_secs(1);
    let engine = Engine::start(config, store.clone(), opts).await.unwrap();

    // Without group_by: one webhook per alert, as soon as each fires.
    wait_for("one webhook per alert on the ungrouped route", || {
        bodies(&got, "/single").len() >= 2
    })
    .await;
    wait_for("the grouped webhook", || {
        !bodies(&got, "/grouped").is_empty()
    })
    .await;
    // Longer than the outbox poll, so a second grouped webhook would show.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    engine.stop().await;

    let grouped = bodies(&got, "/grouped");
    // Either may have failed first: compare the alerts as a set.
    let mut grouped_summary = summary(&grouped);
    for (_, alerts) in &mut grouped_summary {
        alerts.sort();
    }
    assert_eq!(
        grouped_summary,
        [(
            "firing".to_string(),
            pairs(&[("db-primary", "firing"), ("db-replica", "firing")])
        )],
        "one webhook listing both alerts: {grouped:#?}"
    );
    let g = &grouped[0];
    assert_eq!(g["version"], "4");
    assert_eq!(g["receiver"], "grouped");
    assert_eq!(g["groupLabels"], serde_json::json!({ "tags": "db" }));
    assert_eq!(g["commonLabels"]["alertname"], "MonitorDown");
    assert_eq!(g["commonLabels"]["tags"], "db");
    assert!(g["commonLabels"].get("monitor").is_none(), "{g}");
    assert!(
        g["groupKey"].as_str().unwrap().ends_with(":{tags=\"db\"}"),
        "{g}"
    );
    let fps: Vec<&str> = g["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["fingerprint"].as_str().unwrap())
        .collect();
    assert_eq!(fps.len(), 2);
    assert_ne!(fps[0], fps[1]);

    let single = bodies(&got, "/single");
    let mut s = summary(&single);
    s.sort();
    assert_eq!(
        s,
        [
            ("firing".to_string(), pairs(&[("db-primary", "firing")])),
            ("firing".to_string(), pairs(&[("db-replica", "firing")])),
        ],
        "{single:#?}"
    );
    assert!(pending_deliveries(&store).await.unwrap().is_empty());
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

fn down(monitor: &str, at: bulwark_ops::Timestamp) -> Alert {
    let mut a = Alert::new(
        "MonitorDown",
        monitor,
        "",
        AlertSeverity::Critical,
        format!("{monitor} is down"),
        at,
    );
    a.tags = vec!["db".into()];
    a
}

on_both!(
    a_group_batches_holds_resolves_and_survives_a_restart,
    lifecycle_body
);
async fn lifecycle_body(store: Store, db: TestDb) {
    let (base, got) = webhook_receiver().await;
    // The monitors exist so that one of them can be silenced; nothing
    // probes them here (the alerts are made by hand).
    let config = parse(&format!(
        r#"
[[monitor]]
name = "a"
url = "http://127.0.0.1:9/"
[[monitor]]
name = "b"
url = "http://127.0.0.1:9/"
[[monitor]]
name = "c"
url = "http://127.0.0.1:9/"

[[channel]]
name = "ops"
type = "webhook"
url = "{base}/ops"

[[route]]
channel = "ops"
group_by = ["tags"]
group_wait = "30s"
group_interval = "5m"
repeat_interval = "4h"
"#
    ));
    let client = reqwest::Client::new();
    // Silences are validated against the wall clock: work near it.
    let now = bulwark_ops::Timestamp::now();
    let s = std::time::Duration::from_secs(1);
    let deliver = async |store: &Store, at: bulwark_ops::Timestamp| {
        flush_alert_groups(store, &config, at).await.unwrap();
        deliver_due(store, &config, &client, at).await.unwrap()
    };
    let silence = NewSilence {
        monitor: Some("c"),
        tag: None,
        comment: "",
        ends: SilenceEnd::At(now + 3600 * s),
    };
    create_silence(&store, &config, &Actor::cli(), silence)
        .await
        .unwrap();

    let a = down("a", now);
    let b = down("b", now + s);
    let c = down("c", now + s);
    assert_eq!(
        notify_alert(&store, &config, &a, now).await.unwrap().queued,
        ["ops"]
    );
    notify_alert(&store, &config, &b, now + s).await.unwrap();
    let n = notify_alert(&store, &config, &c, now + s).await.unwrap();
    assert_eq!(
        (n.queued.len(), n.silenced.as_slice()),
        (0, ["ops".to_string()].as_slice())
    );
    // The same state raised again changes nothing.
    assert!(
        notify_alert(&store, &config, &a, now + 2 * s)
            .await
            .unwrap()
            .duplicate
    );

    // Within group_wait nothing goes out.
    assert_eq!(deliver(&store, now + 10 * s).await, 0);
    // A restart in the middle of group_wait loses nothing.
    store.close().await;
    let store = reopen(&db).await;
    assert_eq!(deliver(&store, now + 30 * s).await, 1);
    assert_eq!(deliver(&store, now + 31 * s).await, 0);

    // `a` resolves: held until group_interval after the first notification.
    let mut ra = a.clone();
    ra.status = AlertStatus::Resolved;
    assert_eq!(
        notify_alert(&store, &config, &ra, now + 60 * s)
            .await
            .unwrap()
            .queued,
        ["ops"]
    );
    assert_eq!(deliver(&store, now + 60 * s).await, 0);
    assert_eq!(deliver(&store, now + 329 * s).await, 0);
    store.close().await;
    let store = reopen(&db).await;
    assert_eq!(deliver(&store, now + 330 * s).await, 1);
    assert_eq!(deliver(&store, now + 400 * s).await, 0);
    // Unchanged since: the next message is the repeat, 4h later.
    assert_eq!(deliver(&store, now + 330 * s + 4 * 3600 * s - s).await, 0);
    assert_eq!(deliver(&store, now + 330 * s + 4 * 3600 * s).await, 1);

    let sent = bodies(&got, "/ops");
    assert_eq!(
        summary(&sent),
        [
            (
                "firing".to_string(),
                pairs(&[("a", "firing"), ("b", "firing")])
            ),
            (
                "firing".to_string(),
                pairs(&[("b", "firing"), ("a", "resolved")])
            ),
            ("firing".to_string(), pairs(&[("b", "firing")])),
        ],
        "{sent:#?}"
    );
    // Every message names the same group.
    assert!(sent.iter().all(|b| b["groupKey"] == sent[0]["groupKey"]));
    assert_eq!(
        sent[1]["alerts"][1]["fingerprint"],
        sent[0]["alerts"][0]["fingerprint"]
    );
    assert_eq!(
        sent[1]["alerts"][1]["startsAt"],
        sent[0]["alerts"][0]["startsAt"]
    );
    assert!(pending_deliveries(&store).await.unwrap().is_empty());
}
