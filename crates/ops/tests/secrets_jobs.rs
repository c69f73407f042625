//! Secret rotation and the scheduler's job runs against real SQLite and
//! PostgreSQL databases and a real data directory: every test runs on both.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bulwark_ops::{
    claim_run, expire_previous_secret, finish_run, last_scheduled_run, latest_runs, list_secrets,
    parse_settings, query_audit, renew_run, rotate_secret, run_history, secret_current_path,
    secret_previous_path, secret_rotation_check, Actor, Authenticator, BoxFuture, ClaimError,
    Config, FailureSink, Filter, Instance, Job, JobAction, JobContext, JobError, JobRun,
    MissedRuns, Role, RotateOptions, RunError, RunOutcome, Schedule, Scheduler, Store, Trigger,
    DASHBOARD_KEY, ROTATION_LOG,
};
use chrono::{DateTime, Utc};
use common::TestDb;

fn config_with_hook(data: &Path) -> Config {
    // The hook records its environment and arguments, so the test can see
    // what it was told, and what it was not.
    let script = data.join("hook.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n{{ env; echo \"ARGS:$*\"; }} >> {}\n",
            data.join("hook.out").display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let text = format!(
        r#"
[[secret]]
name = "DASHBOARD_KEY"
length = 56
max_age = "30d"
grace = "1d"
hook = {{ command = ["{}", "reload"], env = {{ APP_MODE = "reload" }}, pass_env = ["HOOK_PASSED"] }}
"#,
        script.display()
    );
    parse_settings(&text, None, &|_| None)
        .expect("config")
        .config
}

const FORCE: RotateOptions = RotateOptions {
    force: true,
    no_grace: false,
};

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

async fn admin(auth: &Authenticator, key: &str) -> bool {
    auth.authenticate(key)
        .await
        .unwrap()
        .is_some_and(|p| p.role == Role::Admin)
}

on_both!(rotation_end_to_end, rotation_end_to_end_body);
async fn rotation_end_to_end_body(store: Store, _db: TestDb) {
    // The server's credentials, which a hook must never see (each test is
    // its own process under nextest, so this environment is the test's).
    let server_env = [
        ("ROLES_JSON", r#"{"admin-key-in-env":"admin"}"#),
        ("BULWARK_PASSWORD", "repo-password-in-env"),
        ("TELEGRAM_BOT_TOKEN", "telegram-token-in-env"),
        (
            "SLACK_WEBHOOK_URL",
            "https://hooks.slack.test/slack-token-in-env",
        ),
        ("HOOK_PASSED", "listed-in-pass-env"),
    ];
    for (name, value) in server_env {
        std::env::set_var(name, value);
    }
    let data = tempfile::tempdir().unwrap();
    let config = config_with_hook(data.path());
    let cfg = &config.secrets[0];
    let actor = Actor::system("test");
    let auth = Instance::new(Arc::new(config.clone()), store.clone(), data.path()).auth;
    let current = secret_current_path(data.path(), DASHBOARD_KEY);
    let previous = secret_previous_path(data.path(), DASHBOARD_KEY);

    // First value: created even though nothing is "old", no previous value.
    let now = Utc::now();
    let r1 = rotate_secret(
        &store,
        data.path(),
        cfg,
        &actor,
        RotateOptions::default(),
        now,
    )
    .await
    .unwrap()
    .expect("a missing secret is due");
    assert_eq!(r1.version, 1);
    assert_eq!(r1.hook, Some(Ok(())));
    let v1 = read(&current);
    assert_eq!(v1.len(), 56);
    assert!(!previous.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&current).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert!(admin(&auth, &v1).await);
    assert!(auth.has_admin().await.unwrap());

    // Not due yet: nothing happens without --force.
    assert!(rotate_secret(
        &store,
        data.path(),
        cfg,
        &actor,
        RotateOptions::default(),
        now
    )
    .await
    .unwrap()
    .is_none());

    // Forced rotation: the file changes, the old value is kept and still
    // works during the grace period.
    let r2 = rotate_secret(&store, data.path(), cfg, &actor, FORCE, Utc::now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r2.version, 2);
    let v2 = read(&current);
    assert_ne!(v1, v2);
    assert_eq!(read(&previous), v1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&previous).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert!(admin(&auth, &v2).await);
    assert!(admin(&auth, &v1).await, "previous key refused during grace");
    assert!(!admin(&auth, "not-the-key").await);

    // A rotation whose grace period has already ended (it happened more
    // than a day ago): the previous value (v2) is refused from then on,
    // even though its file is still there.
    let long_ago = Utc::now() - chrono::Duration::days(2);
    let r3 = rotate_secret(&store, data.path(), cfg, &actor, FORCE, long_ago)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r3.version, 3);
    let v3 = read(&current);
    assert_eq!(read(&previous), v2);
    assert!(admin(&auth, &v3).await);
    assert!(
        !admin(&auth, &v2).await,
        "previous key accepted after grace"
    );
    assert!(!admin(&auth, &v1).await);
    // And the expiry check removes the stale file.
    assert!(
        expire_previous_secret(&store, data.path(), DASHBOARD_KEY, Utc::now())
            .await
            .unwrap()
    );
    assert!(!previous.exists());

    // The hook ran once per rotation, knew the name and version, and never
    // saw a value (not in its environment, not on its command line).
    let hook_out = read(&data.path().join("hook.out"));
    assert_eq!(
        hook_out
            .matches("BULWARK_SECRET_NAME=DASHBOARD_KEY")
            .count(),
        3
    );
    assert!(hook_out.contains("BULWARK_SECRET_VERSION=3"));
    assert!(hook_out.contains("ARGS:reload"));
    // Only PATH, HOME, LANG, Bulwark's own variables and what the config
    // lists: none of the server's credentials.
    assert!(hook_out.contains("APP_MODE=reload"), "{hook_out}");
    assert!(
        hook_out.contains("HOOK_PASSED=listed-in-pass-env"),
        "{hook_out}"
    );
    assert!(hook_out.contains("PATH="), "{hook_out}");
    for leaked in [
        "admin-key-in-env",
        "repo-password-in-env",
        "telegram-token-in-env",
        "slack-token-in-env",
        "ROLES_JSON",
        "BULWARK_PASSWORD",
    ] {
        assert!(!hook_out.contains(leaked), "hook saw {leaked}: {hook_out}");
    }
    for v in [&v1, &v2, &v3] {
        assert!(!hook_out.contains(v.as_str()), "hook saw a secret value");
    }

    // Audited, and appended to the event log, without the value.
    let records = query_audit(
        &store,
        &Filter {
            action: Some("secret.rotate".into()),
            ..Filter::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(records.len(), 3);
    assert!(records
        .iter()
        .all(|r| r.target == DASHBOARD_KEY && r.actor == "system:test"));
    let log = read(&data.path().join("logs").join(ROTATION_LOG));
    assert_eq!(log.lines().count(), 3);
    let last: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(last["name"], DASHBOARD_KEY);
    assert_eq!(last["version"], 3);
    assert_eq!(last["actor"], "system:test");
    assert_eq!(last["hook"], "ok");
    let trail = format!("{records:?}");
    for v in [&v1, &v2, &v3] {
        assert!(!trail.contains(v.as_str()), "audit trail holds a value");
        assert!(!log.contains(v.as_str()), "rotation log holds a value");
    }

    // Metadata only, as `secrets list` shows it.
    let list = list_secrets(&store, data.path(), &config.secrets, Utc::now())
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].meta.as_ref().unwrap().version, 3);
    assert!(list[0].present);
    assert!(list[0].rotate);
}

on_both!(
    rotation_disabled_by_env_still_creates_then_holds,
    rotation_disabled_body
);
async fn rotation_disabled_body(store: Store, _db: TestDb) {
    let data = tempfile::tempdir().unwrap();
    let text = "[[secret]]\nname = \"DASHBOARD_KEY\"\nmax_age = \"1h\"\ngrace = \"1m\"\n";
    let env = |k: &str| (k == "ROTATE_DASHBOARD_KEY").then(|| "0".to_string());
    let config = parse_settings(text, None, &env).unwrap().config;
    let cfg = &config.secrets[0];
    assert!(!cfg.rotate);
    let actor = Actor::system("test");
    let created = rotate_secret(
        &store,
        data.path(),
        cfg,
        &actor,
        RotateOptions::default(),
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(created.map(|r| r.version), Some(1));
    // Long past max_age, still no rotation: it is switched off.
    let later = Utc::now() + chrono::Duration::days(400);
    let again = secret_rotation_check(&store, data.path(), cfg, &actor, later)
        .await
        .unwrap();
    assert!(again.is_none());
}

on_both!(a_leaked_value_is_revoked_at_once, no_grace_body);
async fn no_grace_body(store: Store, _db: TestDb) {
    let data = tempfile::tempdir().unwrap();
    let text = "[[secret]]\nname = \"DASHBOARD_KEY\"\nmax_age = \"30d\"\ngrace = \"1d\"\n";
    let config = parse_settings(text, None, &|_| None).unwrap().config;
    let cfg = &config.secrets[0];
    let actor = Actor::cli();
    let auth = Instance::new(Arc::new(config.clone()), store.clone(), data.path()).auth;
    let current = secret_current_path(data.path(), DASHBOARD_KEY);
    let now = Utc::now();
    rotate_secret(&store, data.path(), cfg, &actor, FORCE, now)
        .await
        .unwrap();
    let leaked = read(&current);
    assert!(admin(&auth, &leaked).await);

    // Not due, but `no_grace` rotates anyway and the leaked value stops
    // working at once, not a day later.
    let how = RotateOptions {
        force: false,
        no_grace: true,
    };
    let r = rotate_secret(&store, data.path(), cfg, &actor, how, now)
        .await
        .unwrap()
        .expect("no_grace rotates whether due or not");
    assert_eq!(r.previous_valid_until, None);
    let fresh = read(&current);
    assert!(admin(&auth, &fresh).await);
    assert!(!admin(&auth, &leaked).await, "the leaked value still works");
    assert!(!secret_previous_path(data.path(), DASHBOARD_KEY).exists());
    let records = query_audit(
        &store,
        &Filter {
            action: Some("secret.rotate".into()),
            ..Filter::default()
        },
    )
    .await
    .unwrap();
    let detail = &records[0].detail;
    assert_eq!(detail["no_grace"], true, "{detail}");
}

/// Counts runs and can be told to fail or to wait.
struct Probe {
    runs: AtomicUsize,
    fail: bool,
    gate: tokio::sync::Semaphore,
}

impl Probe {
    /// A job that fails or succeeds, `permits` runs let through at once.
    fn new(fail: bool, permits: usize) -> Probe {
        Probe {
            runs: AtomicUsize::new(0),
            fail,
            gate: tokio::sync::Semaphore::new(permits),
        }
    }
}

impl JobAction for Probe {
    fn run<'a>(&'a self, _ctx: &'a JobContext) -> BoxFuture<'a, Result<String, RunError>> {
        Box::pin(async move {
            let _permit = self.gate.acquire().await.map_err(RunError::error)?;
            let n = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
            if self.fail {
                Err(RunError::Failed(format!("failed on run {n}")))
            } else {
                Ok(format!("run {n}"))
            }
        })
    }
}

#[derive(Default)]
struct Sink(std::sync::Mutex<Vec<String>>);

impl FailureSink for Sink {
    fn job_failed<'a>(&'a self, run: &'a JobRun) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.0
                .lock()
                .unwrap()
                .push(format!("{} {}", run.job, run.summary));
        })
    }
}

/// Holds every failure notification until the test lets it go, counting
/// those begun and recording those let through, in order.
struct HeldSink {
    gate: tokio::sync::Semaphore,
    begun: AtomicUsize,
    sent: std::sync::Mutex<Vec<String>>,
}

impl FailureSink for HeldSink {
    fn job_failed<'a>(&'a self, run: &'a JobRun) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.begun.fetch_add(1, Ordering::SeqCst);
            let _ = self.gate.acquire().await;
            self.sent.lock().unwrap().push(run.summary.clone());
        })
    }
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

on_both!(
    a_run_that_ended_frees_its_job_while_its_notifications_go_out,
    ended_run_frees_body
);
async fn ended_run_frees_body(store: Store, _db: TestDb) {
    let bad = Arc::new(Probe::new(true, 100));
    let sink = Arc::new(HeldSink {
        gate: tokio::sync::Semaphore::new(0),
        begun: AtomicUsize::new(0),
        sent: Default::default(),
    });
    let mut s = Scheduler::new(store.clone());
    s.add(Job {
        name: "report".into(),
        schedule: None,
        missed: MissedRuns::Skip,
        action: bad.clone(),
    });
    let s = Arc::new(s.with_failure_sink(sink.clone()));
    let run = |s: Arc<Scheduler>| {
        tokio::spawn(async move { s.run_now("report", &Actor::system("operator")).await })
    };
    let first = run(s.clone());
    // The run is recorded as ended; its failure notification is held.
    for _ in 0..500 {
        let latest = latest_runs(&store).await.unwrap();
        if latest
            .get("report")
            .is_some_and(|r| r.outcome != RunOutcome::Running)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Whoever saw it end may start the job again at once.
    let second = run(s.clone());
    while bad.runs.load(Ordering::SeqCst) < 2 && !second.is_finished() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The second run ended too, but its notification waits its turn
    // behind the first's: the alert sees the runs in order.
    for _ in 0..20 {
        assert_eq!(sink.begun.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sink.gate.add_permits(2);
    let (first, second) = (first.await.unwrap(), second.await.unwrap());
    assert_eq!(first.unwrap().outcome, RunOutcome::Failure);
    assert_eq!(second.unwrap().outcome, RunOutcome::Failure);
    assert_eq!(bad.runs.load(Ordering::SeqCst), 2);
    assert_eq!(
        *sink.sent.lock().unwrap(),
        ["failed on run 1", "failed on run 2"]
    );
}

on_both!(claims_never_overlap_and_slots_run_once, claims_body);
async fn claims_body(store: Store, _db: TestDb) {
    let actor = Actor::system("scheduler");
    let lease = Duration::from_secs(120);
    let slot = t("2026-03-08T03:00:00Z");
    let now = t("2026-03-08T03:00:01Z");
    let mut first = claim_run(
        &store,
        "backup:app",
        slot,
        Trigger::Schedule,
        "a",
        &actor,
        now,
        lease,
    )
    .await
    .unwrap();
    // Another instance, same job, while the lease holds: refused.
    let busy = claim_run(
        &store,
        "backup:app",
        t("2026-03-08T03:01:00Z"),
        Trigger::Manual,
        "b",
        &actor,
        now + chrono::Duration::seconds(30),
        lease,
    )
    .await;
    assert!(
        matches!(busy, Err(ClaimError::AlreadyRunning(_))),
        "{busy:?}"
    );
    // Another job is independent.
    let mut other = claim_run(
        &store,
        "verify:app",
        slot,
        Trigger::Schedule,
        "b",
        &actor,
        now,
        lease,
    )
    .await
    .unwrap();
    finish_run(&store, &mut other, RunOutcome::Success, "ok", now)
        .await
        .unwrap();

    finish_run(
        &store,
        &mut first,
        RunOutcome::Success,
        "snapshot 1a2b",
        now + chrono::Duration::seconds(60),
    )
    .await
    .unwrap();
    // The same slot never runs twice, even once the job is free.
    let again = claim_run(
        &store,
        "backup:app",
        slot,
        Trigger::Schedule,
        "b",
        &actor,
        now,
        lease,
    )
    .await;
    assert!(
        matches!(again, Err(ClaimError::SlotTaken { .. })),
        "{again:?}"
    );

    // An instance that dies mid-run: once its lease expires the job is
    // taken over and the dead run is marked abandoned.
    let slot2 = t("2026-03-15T03:00:00Z");
    let crashed = claim_run(
        &store,
        "backup:app",
        slot2,
        Trigger::Schedule,
        "a",
        &actor,
        slot2,
        lease,
    )
    .await
    .unwrap();
    let early = claim_run(
        &store,
        "backup:app",
        t("2026-03-15T03:01:00Z"),
        Trigger::Manual,
        "b",
        &actor,
        slot2 + chrono::Duration::seconds(119),
        lease,
    )
    .await;
    assert!(matches!(early, Err(ClaimError::AlreadyRunning(_))));
    let mut taken = claim_run(
        &store,
        "backup:app",
        t("2026-03-15T03:05:00Z"),
        Trigger::Manual,
        "b",
        &actor,
        slot2 + chrono::Duration::seconds(121),
        lease,
    )
    .await
    .unwrap();
    // The old holder cannot renew a lease it lost.
    assert!(
        !renew_run(&store, &crashed, slot2 + chrono::Duration::seconds(300))
            .await
            .unwrap()
    );
    assert!(
        renew_run(&store, &taken, slot2 + chrono::Duration::seconds(300))
            .await
            .unwrap()
    );
    finish_run(
        &store,
        &mut taken,
        RunOutcome::Failure,
        "repository locked",
        slot2 + chrono::Duration::seconds(130),
    )
    .await
    .unwrap();

    let history = run_history(&store, "backup:app", 10).await.unwrap();
    let outcomes: Vec<_> = history
        .iter()
        .map(|r| (r.outcome, r.instance.as_str()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (RunOutcome::Failure, "b"),
            (RunOutcome::Abandoned, "a"),
            (RunOutcome::Success, "a"),
        ]
    );
    assert_eq!(history[2].summary, "snapshot 1a2b");
    // Manual runs do not count as the scheduled slot that ran.
    assert_eq!(
        last_scheduled_run(&store, "backup:app").await.unwrap(),
        Some(slot2)
    );
    let latest = latest_runs(&store).await.unwrap();
    assert_eq!(latest["backup:app"].outcome, RunOutcome::Failure);
    assert_eq!(latest["verify:app"].outcome, RunOutcome::Success);
}

on_both!(
    manual_runs_are_recorded_audited_and_failures_reported,
    manual_runs_body
);
async fn manual_runs_body(store: Store, _db: TestDb) {
    let ok = Arc::new(Probe::new(false, 0));
    let bad = Arc::new(Probe::new(true, 100));
    let sink = Arc::new(Sink::default());
    let mut s = Scheduler::new(store.clone());
    s.add(Job {
        name: "slo".into(),
        schedule: Some(Schedule::every(Duration::from_secs(60)).unwrap()),
        missed: MissedRuns::Skip,
        action: ok.clone(),
    });
    s.add(Job {
        name: "report".into(),
        schedule: None,
        missed: MissedRuns::Skip,
        action: bad.clone(),
    });
    let s = Arc::new(s.with_failure_sink(sink.clone()));
    let operator = Actor::system("operator");

    // While a run of `slo` is held open, a second one is refused: no overlap.
    let first = {
        let s = s.clone();
        let operator = operator.clone();
        tokio::spawn(async move { s.run_now("slo", &operator).await })
    };
    // Wait until the first run has claimed its slot (it blocks on the gate).
    for _ in 0..200 {
        if latest_runs(&store).await.unwrap().contains_key("slo") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let second = s.run_now("slo", &operator).await;
    assert!(
        matches!(second, Err(JobError::Claim(ClaimError::AlreadyRunning(_)))),
        "{second:?}"
    );
    ok.gate.add_permits(1);
    let run = first.await.unwrap().unwrap();
    assert_eq!(run.outcome, RunOutcome::Success);
    assert_eq!(run.summary, "run 1");
    assert_eq!(run.trigger, Trigger::Manual);
    assert_eq!(ok.runs.load(Ordering::SeqCst), 1);

    // A failing job is recorded as failed and handed to the failure sink.
    let failed = s.run_now("report", &operator).await.unwrap();
    assert_eq!(failed.outcome, RunOutcome::Failure);
    assert_eq!(
        sink.0.lock().unwrap().as_slice(),
        ["report failed on run 1"]
    );

    assert!(matches!(
        s.run_now("nope", &operator).await,
        Err(JobError::Unknown(_))
    ));

    let list = s.list(Utc::now()).await.unwrap();
    let names: Vec<_> = list.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(names, ["report", "slo"]);
    assert!(list[0].next_run.is_none());
    assert!(list[1].next_run.is_some());
    assert_eq!(
        list[1].last_run.as_ref().unwrap().outcome,
        RunOutcome::Success
    );

    let audited: Vec<_> = query_audit(
        &store,
        &Filter {
            action: Some("job.run".into()),
            ..Filter::default()
        },
    )
    .await
    .unwrap()
    .into_iter()
    .map(|r| format!("{} {} {}", r.target, r.outcome, r.actor))
    .collect();
    assert_eq!(
        audited,
        [
            "report failure system:operator",
            "slo success system:operator",
            "slo failure system:operator",
        ]
    );
}

on_both!(rotate_job_from_config_rotates_the_secret, rotate_job_body);
async fn rotate_job_body(store: Store, _db: TestDb) {
    let data = tempfile::tempdir().unwrap();
    let config = Arc::new(config_with_hook(data.path()));
    let s = Instance::new(config, store.clone(), data.path()).scheduler;
    let job = s.job("rotate:DASHBOARD_KEY").expect("rotation job");
    assert_eq!(job.missed, MissedRuns::RunOnce);
    let run = s
        .run_now("rotate:DASHBOARD_KEY", &Actor::cli())
        .await
        .unwrap();
    assert_eq!(run.outcome, RunOutcome::Success, "{}", run.summary);
    assert_eq!(run.summary, "rotated to version 1");
    assert!(secret_current_path(data.path(), DASHBOARD_KEY).is_file());
    let run = s
        .run_now("rotate:DASHBOARD_KEY", &Actor::cli())
        .await
        .unwrap();
    assert_eq!(run.summary, "not due");
}

/// Fails while `fail` is set.
struct Flaky(std::sync::atomic::AtomicBool);

impl JobAction for Flaky {
    fn run<'a>(&'a self, _ctx: &'a JobContext) -> BoxFuture<'a, Result<String, RunError>> {
        Box::pin(async move {
            if self.0.load(Ordering::SeqCst) {
                Err(RunError::Failed("repository locked".to_string()))
            } else {
                Ok("snapshot 1a2b".to_string())
            }
        })
    }
}

on_both!(
    failed_job_fires_an_alert_and_success_resolves_it,
    job_alert_body
);
async fn job_alert_body(store: Store, _db: TestDb) {
    let config = Arc::new(parse_settings("", None, &|_| None).unwrap().config);
    let flaky = Arc::new(Flaky(std::sync::atomic::AtomicBool::new(true)));
    let mut s = Scheduler::new(store.clone());
    s.add(Job {
        name: "backup:app".into(),
        schedule: None,
        missed: MissedRuns::RunOnce,
        action: flaky.clone(),
    });
    let s = s.with_failure_sink(Arc::new(bulwark_ops::JobFailureAlerts::new(
        store.clone(),
        config,
    )));
    let run = s.run_now("backup:app", &Actor::cli()).await.unwrap();
    assert_eq!(run.outcome, RunOutcome::Failure);
    let firing = bulwark_ops::firing_alerts(&store).await.unwrap();
    assert_eq!(firing.len(), 1);
    assert_eq!(firing[0].alertname, "JobFailed");
    assert_eq!(firing[0].monitor, "backup:app");
    assert!(firing[0].summary.contains("repository locked"));

    flaky.0.store(false, Ordering::SeqCst);
    let run = s.run_now("backup:app", &Actor::cli()).await.unwrap();
    assert_eq!(run.outcome, RunOutcome::Success);
    assert!(bulwark_ops::firing_alerts(&store).await.unwrap().is_empty());
}

on_both!(
    webhook_hook_gets_name_and_version_never_the_value,
    webhook_hook_body
);
async fn webhook_hook_body(store: Store, _db: TestDb) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A one-request HTTP server that hands back what it received.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0_u8; 4096];
        loop {
            let n = sock.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        sock.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
        String::from_utf8_lossy(&buf).into_owned()
    });
    let text = format!(
        "[[secret]]\nname = \"STRIPE_WEBHOOK_SECRET\"\nhook = {{ url = \"http://127.0.0.1:{port}/hook\" }}\n"
    );
    let config = parse_settings(&text, None, &|_| None).unwrap().config;
    let data = tempfile::tempdir().unwrap();
    let r = rotate_secret(
        &store,
        data.path(),
        &config.secrets[0],
        &Actor::system("test"),
        RotateOptions::default(),
        Utc::now(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(r.hook, Some(Ok(())));
    let request = received.await.unwrap();
    let value = read(&secret_current_path(data.path(), "STRIPE_WEBHOOK_SECRET"));
    assert!(request.starts_with("POST /hook"), "{request}");
    assert!(
        request.contains("\"name\":\"STRIPE_WEBHOOK_SECRET\""),
        "{request}"
    );
    assert!(request.contains("\"version\":1"), "{request}");
    assert!(!request.contains(&value));
}

/// Waits for the cancel a shutdown sends, telling the test when it started.
struct UntilCancelled(tokio::sync::Notify);

impl JobAction for UntilCancelled {
    fn run<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, Result<String, RunError>> {
        Box::pin(async move {
            self.0.notify_one();
            while !ctx.cancel.is_cancelled() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(RunError::Cancelled)
        })
    }
}

on_both!(
    shutdown_cancels_running_jobs_and_records_them_cancelled,
    shutdown_cancel_body
);
async fn shutdown_cancel_body(store: Store, _db: TestDb) {
    let job = Arc::new(UntilCancelled(tokio::sync::Notify::new()));
    let sink = Arc::new(Sink::default());
    let mut s = Scheduler::new(store.clone());
    s.add(Job {
        name: "backup:app".into(),
        schedule: Some(Schedule::every(Duration::from_secs(1)).unwrap()),
        missed: MissedRuns::Skip,
        action: job.clone(),
    });
    let s = Arc::new(s.with_failure_sink(sink.clone()));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let looping = tokio::spawn(s.clone().run(
        async move {
            let _ = stop_rx.await;
        },
        Duration::from_secs(60),
    ));
    tokio::time::timeout(Duration::from_secs(30), job.0.notified())
        .await
        .expect("the job started");
    stop_tx.send(()).unwrap();
    // Without the cancel the job would run until the 60 s drain ends.
    tokio::time::timeout(Duration::from_secs(30), looping)
        .await
        .expect("the scheduler stopped once its job was cancelled")
        .unwrap();
    let runs = latest_runs(&store).await.unwrap();
    assert_eq!(runs["backup:app"].outcome, RunOutcome::Cancelled);
    assert!(
        sink.0.lock().unwrap().is_empty(),
        "a cancel is not a failure to alert on"
    );
}

on_both!(
    a_cancelled_backup_job_saves_no_snapshot,
    cancelled_backup_body
);
async fn cancelled_backup_body(store: Store, _db: TestDb) {
    let data = tempfile::tempdir().unwrap();
    let src = data.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..50 {
        std::fs::write(src.join(format!("f{i}")), format!("file {i}")).unwrap();
    }
    let repo = data.path().join("repo");
    std::fs::write(data.path().join("pw"), "pw").unwrap();
    bulwark_repo::Repository::init(
        bulwark_repo::open_backend(repo.to_str().unwrap()).unwrap(),
        b"pw",
        bulwark_repo::KdfParams::INSECURE_FAST,
    )
    .unwrap();
    let text = format!(
        "[[backup]]\nname = \"app\"\nrepo = \"{}\"\npassword_file = \"{}\"\npaths = [\"{}\"]\n",
        repo.display(),
        data.path().join("pw").display(),
        src.display()
    );
    let config = Arc::new(parse_settings(&text, None, &|_| None).unwrap().config);
    let instance = Instance::new(config, store.clone(), data.path());
    // Shutdown came first: the run starts, stops at its first checkpoint,
    // and is recorded as cancelled, not as a success or a failure.
    instance.scheduler.cancel();
    let run = instance
        .scheduler
        .run_now("backup:app", &Actor::cli())
        .await
        .unwrap();
    assert_eq!(run.outcome, RunOutcome::Cancelled, "{}", run.summary);
    let opened = bulwark_ops::open_backup_repository(&instance.config.backups[0]).unwrap();
    assert!(opened.snapshots().unwrap().is_empty());
    assert!(bulwark_ops::firing_alerts(&store).await.unwrap().is_empty());
}
