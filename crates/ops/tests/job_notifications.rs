//! `notify = "always"`: a successful backup, verify or drill run is sent
//! to the alert channels (a loopback webhook here); with the default
//! `notify = "failure"` a success sends nothing.

mod common;

use std::sync::Arc;

use bulwark_ops::{
    deliver_due, parse_settings, pending_deliveries, Actor, BoxFuture, Config, Job, JobAction,
    JobContext, JobFailureAlerts, MissedRuns, RunError, RunOutcome, Scheduler, Store,
};
use common::{webhook_receiver, TestDb};

/// Succeeds, saying what a backup says.
struct Succeeds;

impl JobAction for Succeeds {
    fn run<'a>(&'a self, _ctx: &'a JobContext) -> BoxFuture<'a, Result<String, RunError>> {
        Box::pin(async { Ok("snapshot 1a2b3c4d: 3 files, 120 bytes".to_string()) })
    }
}

fn scheduler(store: &Store, config: &Arc<Config>, jobs: &[&str]) -> Scheduler {
    let mut s = Scheduler::new(store.clone());
    for name in jobs {
        s.add(Job {
            name: (*name).to_string(),
            schedule: None,
            missed: MissedRuns::RunOnce,
            action: Arc::new(Succeeds),
        });
    }
    s.with_failure_sink(Arc::new(JobFailureAlerts::new(
        store.clone(),
        config.clone(),
    )))
}

const BACKUPS: &str = r#"
[[backup]]
name = "loud"
repo = "/r"
paths = ["/a"]
notify = "always"
[backup.verify]
notify = "failure"

[[backup]]
name = "quiet"
repo = "/r"
paths = ["/a"]
[backup.verify]
notify = "always"

[[drill]]
name = "quarterly"
backup = "quiet"
notify = "always"
"#;

on_both!(a_success_is_sent_only_where_notify_is_always, always_body);
async fn always_body(store: Store, _db: TestDb) {
    let (base, got) = webhook_receiver().await;
    let text = format!(
        "{BACKUPS}\n[[channel]]\nname = \"ops\"\ntype = \"webhook\"\nurl = \"{base}/ops\"\n"
    );
    let config = Arc::new(parse_settings(&text, None, &|_| None).unwrap().config);
    let jobs = [
        "backup:loud",
        "verify:loud",
        "backup:quiet",
        "verify:quiet",
        "drill:quarterly",
    ];
    let s = scheduler(&store, &config, &jobs);
    let mut runs = Vec::new();
    for job in jobs {
        let run = s.run_now(job, &Actor::cli()).await.unwrap();
        assert_eq!(run.outcome, RunOutcome::Success);
        runs.push(run);
    }
    let client = reqwest::Client::new();
    let now = bulwark_ops::Timestamp::now();
    assert_eq!(deliver_due(&store, &config, &client, now).await.unwrap(), 3);

    let got = got.lock().unwrap().clone();
    let bodies = &got["/ops"];
    assert_eq!(bodies.len(), 3, "{bodies:#?}");
    // backup:loud, verify:quiet (its own setting), drill:quarterly; in
    // the order they ran.
    for (body, run) in bodies.iter().zip([&runs[0], &runs[3], &runs[4]]) {
        let text = body.to_string();
        assert_eq!(body["status"], "resolved", "{text}");
        let summary = body["alerts"][0]["annotations"]["summary"]
            .as_str()
            .unwrap_or_default();
        assert!(
            summary.starts_with(&format!("job {} succeeded in ", run.job)),
            "{text}"
        );
        assert!(summary.contains(&format!("run {}", run.id)), "{text}");
        assert!(summary.contains("snapshot 1a2b3c4d"), "{text}");
        assert!(
            summary.contains(&format!("/jobs/runs/{}", run.id)),
            "{text}"
        );
        assert_eq!(
            body["alerts"][0]["labels"]["alertname"], "JobSucceeded",
            "{text}"
        );
    }

    // Every run is its own message: a second success is sent too.
    s.run_now("backup:loud", &Actor::cli()).await.unwrap();
    let later = now + std::time::Duration::from_secs(1);
    assert_eq!(
        deliver_due(&store, &config, &client, later).await.unwrap(),
        1
    );
}

on_both!(
    without_a_channel_a_success_is_skipped_cleanly,
    no_channel_body
);
async fn no_channel_body(store: Store, _db: TestDb) {
    let config = Arc::new(parse_settings(BACKUPS, None, &|_| None).unwrap().config);
    let s = scheduler(&store, &config, &["backup:loud", "drill:quarterly"]);
    for job in ["backup:loud", "drill:quarterly"] {
        let run = s.run_now(job, &Actor::cli()).await.unwrap();
        assert_eq!(run.outcome, RunOutcome::Success, "{}", run.summary);
    }
    assert!(pending_deliveries(&store).await.unwrap().is_empty());
}
