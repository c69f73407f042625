//! The monitoring engine running for real against SQLite: a push monitor
//! goes down when its heartbeat is late and recovers when pinged; a monitor
//! inside a maintenance window opens an incident but alerts nobody. Waits
//! poll with generous deadlines; nothing asserts on durations.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bulwark_ops::{
    create_push_token, open_incident_of, parse_settings, record_ping, Engine, EngineOptions, Store,
};
use common::{webhook_receiver, Received};

/// (status, monitor) of each webhook received, whatever its path.
fn events(got: &Received) -> Vec<(String, String)> {
    got.lock()
        .unwrap()
        .values()
        .flatten()
        .map(|body| {
            (
                body["status"].as_str().unwrap_or("").to_string(),
                body["alerts"][0]["labels"]["monitor"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect()
}

async fn wait_for(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_heartbeat_opens_an_incident_and_maintenance_silences_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let (base, got) = webhook_receiver().await;
    let hook = format!("{base}/hook");
    let now = chrono::Utc::now();
    let text = format!(
        r#"
[[monitor]]
name = "cron"
type = "push"
period = "1s"
grace = "500ms"
strikes = 1
recover_after = 1

[[monitor]]
name = "maint"
url = "tcp://127.0.0.1:9"
interval = "1s"
timeout = "500ms"
strikes = 1

[[maintenance]]
name = "upgrade"
monitors = ["maint"]
start = "{start}"
end = "{end}"

[[channel]]
name = "ops"
type = "webhook"
url = "{hook}"
"#,
        start = (now - chrono::Duration::hours(1)).to_rfc3339(),
        end = (now + chrono::Duration::hours(1)).to_rfc3339(),
    );
    let config = Arc::new(
        parse_settings(&text, None, &|_| None)
            .expect("config")
            .config,
    );
    let store = Store::open(None, dir.path()).await.unwrap();
    let mut opts = EngineOptions::new(dir.path());
    opts.outbox_interval = Duration::from_millis(100);
    opts.slo_interval = Duration::from_secs(1);
    let engine = Engine::start(config.clone(), store.clone(), opts)
        .await
        .unwrap();

    // Never pinged: once a period has passed, it is down.
    wait_for("the cron incident", async || {
        open_incident_of(&store, "cron").await.unwrap().is_some()
    })
    .await;
    wait_for("the firing notification", async || {
        events(&got).contains(&("firing".into(), "cron".into()))
    })
    .await;
    assert!(engine.live().monitors()["cron"].incident_open);

    // The job pings: it recovers.
    let token = create_push_token(&store, &bulwark_ops::Actor::cli(), "cron")
        .await
        .unwrap();
    let pinged = record_ping(&store, token.expose(), bulwark_ops::Timestamp::now())
        .await
        .unwrap();
    assert_eq!(pinged.as_deref(), Some("cron"));
    wait_for("the resolved notification", async || {
        events(&got).contains(&("resolved".into(), "cron".into()))
    })
    .await;

    // "maint" is down the whole time, in maintenance: an incident, no alert.
    wait_for("the maint incident", async || {
        open_incident_of(&store, "maint").await.unwrap().is_some()
    })
    .await;
    engine.stop().await;
    let events = events(&got);
    assert!(
        !events.iter().any(|(_, m)| m == "maint"),
        "maintenance alerts nobody: {events:?}"
    );
    let log = std::fs::read_to_string(dir.path().join("logs/uptime.ndjson")).unwrap();
    assert!(log.lines().any(|l| l.contains("\"monitor\":\"cron\"")));
}
