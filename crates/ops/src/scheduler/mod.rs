//! The scheduler: runs configured jobs on cron schedules or intervals,
//! records every run, never runs one job twice at once, and catches up on
//! runs missed while Bulwark was down.
//!
//! Jobs are named as the product spec says: `backup:NAME`, `verify:NAME`
//! (per `[[backup]]`), `drill:NAME`, `rotate:NAME` (per `[[secret]]`),
//! `slo` and `report`. [`Scheduler::from_config`] registers the ones this
//! build can run; other components add theirs with [`Scheduler::add`].
//!
//! When is pure ([`schedule`]); who may run is the store's claim ([`runs`]);
//! this module ties them to real time. A failed run is logged and handed to
//! the [`FailureSink`]; `bulwark serve` installs [`alerting::AlertSink`],
//! which raises a `JobFailed` alert through the alert router and resolves it
//! on the job's next success.

pub mod alerting;
pub mod runs;
pub mod schedule;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::audit::{self, Entry, Outcome};
use crate::auth::Actor;
use crate::config::Config;
use crate::store::{Store, StoreError};

pub use runs::{ClaimError, JobRun, RunOutcome, Trigger};
pub use schedule::{MissedRuns, Schedule};

/// A boxed future, so job actions can be trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a job does. `Ok` carries a one-line summary; `Err` says why it
/// failed. Neither may contain secret values: both are stored and shown.
pub trait JobAction: Send + Sync {
    fn run<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, Result<String, String>>;
}

/// What a job action knows about its run.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub job: String,
    pub scheduled_at: DateTime<Utc>,
    pub trigger: Trigger,
    /// Who asked: `system:scheduler` or the operator of a manual run.
    pub actor: Actor,
}

/// Told about every failed or abandoned run. The alert router implements
/// this to raise an alert; the default only logs.
pub trait FailureSink: Send + Sync {
    fn job_failed<'a>(&'a self, run: &'a JobRun) -> BoxFuture<'a, ()>;

    /// Told about successful runs, so an alert raised by an earlier failure
    /// can resolve. Does nothing by default.
    fn job_succeeded<'a>(&'a self, _run: &'a JobRun) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

/// One registered job.
#[derive(Clone)]
pub struct Job {
    pub name: String,
    /// None: runs only when asked (`jobs run NAME`).
    pub schedule: Option<Schedule>,
    pub missed: MissedRuns,
    pub action: Arc<dyn JobAction>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("name", &self.name)
            .field("schedule", &self.schedule)
            .field("missed", &self.missed)
            .finish_non_exhaustive()
    }
}

/// A job as `jobs list` shows it.
#[derive(Debug, Clone)]
pub struct JobStatus {
    pub name: String,
    pub schedule: Option<String>,
    pub next_run: Option<DateTime<Utc>>,
    pub last_run: Option<JobRun>,
}

/// Errors of manual runs and listings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    #[error("no job named {0:?} (see `bulwark jobs list`)")]
    Unknown(String),
    #[error(transparent)]
    Claim(#[from] ClaimError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How long a claim lasts without renewal; a crashed instance's job is
/// taken over after this long.
pub const LEASE: Duration = Duration::from_secs(120);

/// How often scheduled rotation checks run for secrets without a `schedule`.
pub const ROTATION_CHECK_INTERVAL: Duration = Duration::from_secs(3600);
/// When the `report` job writes last month's evidence report: early on the
/// 1st (UTC), after the month's last results have been rolled up.
pub const REPORT_SCHEDULE: &str = "0 4 1 * *";

/// Runs jobs. Cheap to share behind an `Arc`; the HTTP API and the loop
/// share one, so a manual run and a scheduled run of a job cannot overlap
/// even before the store is asked.
pub struct Scheduler {
    store: Store,
    jobs: BTreeMap<String, Job>,
    instance: String,
    running: Mutex<HashSet<String>>,
    sink: Option<Arc<dyn FailureSink>>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("jobs", &self.jobs.keys().collect::<Vec<_>>())
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

/// Releases a job's in-process slot however its run ends.
struct RunningGuard<'a> {
    set: &'a Mutex<HashSet<String>>,
    job: String,
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut set) = self.set.lock() {
            set.remove(&self.job);
        }
    }
}

impl Scheduler {
    /// A scheduler with no jobs.
    pub fn new(store: Store) -> Scheduler {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".to_string());
        Scheduler {
            store,
            jobs: BTreeMap::new(),
            instance: format!(
                "{host}:{}:{}",
                std::process::id(),
                hex::encode(rand::random::<[u8; 3]>())
            ),
            running: Mutex::new(HashSet::new()),
            sink: None,
        }
    }

    /// The jobs the config asks for that this build can run: `backup:NAME`
    /// and `verify:NAME` for every `[[backup]]` (on their schedules, or
    /// manual-only without one), `rotate:NAME` for every `[[secret]]` (its
    /// `schedule`, or an hourly check), `drill:NAME` for every `[[drill]]`,
    /// and `report` (last month's evidence report, on the 1st).
    pub fn from_config(config: Arc<Config>, store: Store, data_dir: PathBuf) -> Scheduler {
        let mut scheduler = Scheduler::new(store.clone());
        for backup in &config.backups {
            let cron = |expr: &Option<String>| match expr {
                None => None,
                Some(expr) => match Schedule::cron(expr, backup.timezone.as_deref()) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        tracing::error!(backup = %backup.name, error = %e, "cannot schedule backup job");
                        None
                    }
                },
            };
            scheduler.add(Job {
                name: format!("backup:{}", backup.name),
                schedule: cron(&backup.schedule),
                missed: MissedRuns::RunOnce,
                action: Arc::new(BackupJob {
                    config: config.clone(),
                    name: backup.name.clone(),
                    data_dir: data_dir.clone(),
                    verify_only: false,
                }),
            });
            scheduler.add(Job {
                name: format!("verify:{}", backup.name),
                schedule: cron(&backup.verify.as_ref().and_then(|v| v.schedule.clone())),
                missed: MissedRuns::RunOnce,
                action: Arc::new(BackupJob {
                    config: config.clone(),
                    name: backup.name.clone(),
                    data_dir: data_dir.clone(),
                    verify_only: true,
                }),
            });
        }
        for drill in &config.drills {
            let schedule = drill.schedule.as_ref().and_then(|expr| {
                let tz = config.backup(&drill.backup).and_then(|b| b.timezone.as_deref());
                Schedule::cron(expr, tz)
                    .map_err(|e| tracing::error!(drill = %drill.name, error = %e, "cannot schedule drill"))
                    .ok()
            });
            // A drill that silently stops running is as bad as one that
            // fails: `drill-overdue:NAME` checks every hour that the run due
            // a day ago (its period plus a day) passed, and its failure goes
            // through the same alerting as any failed job.
            if let Some(schedule) = &schedule {
                match Schedule::every(DRILL_WATCH_INTERVAL) {
                    Ok(every) => scheduler.add(Job {
                        name: format!("drill-overdue:{}", drill.name),
                        schedule: Some(every),
                        missed: MissedRuns::Skip,
                        action: Arc::new(DrillOverdue {
                            name: drill.name.clone(),
                            store: store.clone(),
                            schedule: schedule.clone(),
                        }),
                    }),
                    Err(e) => {
                        tracing::error!(drill = %drill.name, error = %e, "cannot watch drill")
                    }
                }
            }
            scheduler.add(Job {
                name: format!("drill:{}", drill.name),
                schedule,
                missed: MissedRuns::RunOnce,
                action: Arc::new(DrillJob {
                    config: config.clone(),
                    name: drill.name.clone(),
                    store: store.clone(),
                    data_dir: data_dir.clone(),
                }),
            });
        }
        for secret in &config.secrets {
            let schedule = match &secret.schedule {
                Some(expr) => Schedule::cron(expr, None),
                None => Schedule::every(ROTATION_CHECK_INTERVAL),
            };
            match schedule {
                Ok(schedule) => scheduler.add(Job {
                    name: format!("rotate:{}", secret.name),
                    schedule: Some(schedule),
                    missed: MissedRuns::RunOnce,
                    action: Arc::new(RotateSecret {
                        config: config.clone(),
                        name: secret.name.clone(),
                        store: store.clone(),
                        data_dir: data_dir.clone(),
                    }),
                }),
                // Config validation accepted it, so croner disagreeing is a
                // bug worth a loud log, not a refusal to start.
                Err(e) => {
                    tracing::error!(secret = %secret.name, error = %e, "cannot schedule rotation")
                }
            }
        }
        if !config.slos.is_empty() {
            // The engine evaluates SLOs every few seconds for its live state
            // (metrics, /healthz/strict); this job is the recorded evaluation
            // at the seed's slo_guard cadence, visible in `jobs list` and
            // runnable with `jobs run slo`. Alerts are deduplicated by
            // fingerprint, so the two paths never notify twice.
            match Schedule::every(SLO_JOB_INTERVAL) {
                Ok(schedule) => scheduler.add(Job {
                    name: "slo".to_string(),
                    schedule: Some(schedule),
                    missed: MissedRuns::Skip,
                    action: Arc::new(SloJob {
                        config: config.clone(),
                        store: store.clone(),
                    }),
                }),
                Err(e) => tracing::error!(error = %e, "cannot schedule SLO evaluation"),
            }
        }
        match Schedule::cron(REPORT_SCHEDULE, None) {
            Ok(schedule) => scheduler.add(Job {
                name: "report".to_string(),
                schedule: Some(schedule),
                missed: MissedRuns::RunOnce,
                action: Arc::new(ReportJob {
                    config: config.clone(),
                    store: store.clone(),
                    data_dir: data_dir.clone(),
                }),
            }),
            Err(e) => tracing::error!(error = %e, "cannot schedule the monthly report"),
        }
        scheduler
    }

    /// Registers (or replaces) a job.
    pub fn add(&mut self, job: Job) {
        self.jobs.insert(job.name.clone(), job);
    }

    /// Hands failed runs to `sink` (the alert router).
    pub fn with_failure_sink(mut self, sink: Arc<dyn FailureSink>) -> Scheduler {
        self.sink = Some(sink);
        self
    }

    pub fn job(&self, name: &str) -> Option<&Job> {
        self.jobs.get(name)
    }

    /// Every job with its next run after `now` and its latest run.
    ///
    /// # Errors
    /// On a database error.
    pub async fn list(&self, now: DateTime<Utc>) -> Result<Vec<JobStatus>, StoreError> {
        let mut latest = runs::latest(&self.store).await?;
        Ok(self
            .jobs
            .values()
            .map(|job| JobStatus {
                name: job.name.clone(),
                schedule: job.schedule.as_ref().map(Schedule::describe),
                next_run: job.schedule.as_ref().and_then(|s| s.next_after(now)),
                last_run: latest.remove(&job.name),
            })
            .collect())
    }

    /// Runs `name` now, on behalf of `actor`, and waits for it to finish.
    /// Audited as `job.run`.
    ///
    /// # Errors
    /// For an unknown job, a job already running, or a database error. A run
    /// that fails is not an error: see the returned run's outcome.
    pub async fn run_now(&self, name: &str, actor: &Actor) -> Result<JobRun, JobError> {
        let job = self
            .jobs
            .get(name)
            .cloned()
            .ok_or_else(|| JobError::Unknown(name.to_string()))?;
        let result = self.execute(&job, Utc::now(), Trigger::Manual, actor).await;
        let (outcome, detail) = match &result {
            Ok(run) => (
                if run.outcome == RunOutcome::Success {
                    Outcome::Success
                } else {
                    Outcome::Failure
                },
                serde_json::json!({ "run": run.id, "outcome": run.outcome.as_str() }),
            ),
            Err(e) => (
                Outcome::Failure,
                serde_json::json!({ "error": e.to_string() }),
            ),
        };
        let entry = Entry::new(actor, "job.run", name, outcome).detail(detail);
        if let Err(e) = audit::append(&self.store, entry).await {
            tracing::error!(job = name, error = %e, "cannot record the job run in the audit trail");
        }
        result
    }

    /// Claims, runs and records one run of `job` for `slot`.
    async fn execute(
        &self,
        job: &Job,
        slot: DateTime<Utc>,
        trigger: Trigger,
        actor: &Actor,
    ) -> Result<JobRun, JobError> {
        {
            let mut running = self.running.lock().map_err(|_| {
                StoreError::Invalid("scheduler state poisoned by an earlier panic".into())
            })?;
            if !running.insert(job.name.clone()) {
                return Err(ClaimError::AlreadyRunning(job.name.clone()).into());
            }
        }
        let _guard = RunningGuard {
            set: &self.running,
            job: job.name.clone(),
        };
        let mut run = runs::claim(
            &self.store,
            &job.name,
            slot,
            trigger,
            &self.instance,
            actor,
            Utc::now(),
            LEASE,
        )
        .await?;
        tracing::info!(job = %job.name, run = %run.id, trigger = trigger.as_str(), "job started");
        let ctx = JobContext {
            job: job.name.clone(),
            scheduled_at: slot,
            trigger,
            actor: actor.clone(),
        };
        // Renew the lease while the action runs, so other instances see the
        // job as busy for as long as it really is.
        let result = {
            let renew = async {
                let mut every = tokio::time::interval(LEASE / 3);
                every.tick().await;
                loop {
                    every.tick().await;
                    let until = Utc::now() + chrono::Duration::from_std(LEASE).unwrap_or_default();
                    match runs::renew(&self.store, &run, until).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::error!(job = %run.job, run = %run.id, "lost the job's lease; another instance took it over");
                            return;
                        }
                        Err(e) => {
                            tracing::warn!(job = %run.job, error = %e, "cannot renew the job's lease")
                        }
                    }
                }
            };
            tokio::select! {
                r = job.action.run(&ctx) => r,
                () = renew => Err("stopped: the job's lease was lost to another instance".to_string()),
            }
        };
        let (outcome, summary) = match result {
            Ok(s) => (RunOutcome::Success, s),
            Err(s) => (RunOutcome::Failure, s),
        };
        runs::finish(&self.store, &mut run, outcome, &summary, Utc::now()).await?;
        if outcome == RunOutcome::Success {
            tracing::info!(job = %run.job, run = %run.id, summary = %run.summary, "job succeeded");
            if let Some(sink) = &self.sink {
                sink.job_succeeded(&run).await;
            }
        } else {
            tracing::error!(job = %run.job, run = %run.id, summary = %run.summary, "job failed");
            if let Some(sink) = &self.sink {
                sink.job_failed(&run).await;
            }
        }
        Ok(run)
    }

    /// Runs scheduled jobs until `shutdown` completes: first the runs missed
    /// while Bulwark was down (per job policy), then each job at its times.
    /// On shutdown it starts nothing new and waits up to `drain` for running
    /// jobs; runs still going after that are cut off and their leases expire.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()> + Send, drain: Duration) {
        let actor = Actor::system("scheduler");
        let mut tasks = tokio::task::JoinSet::new();
        let mut next: BTreeMap<String, Option<DateTime<Utc>>> = BTreeMap::new();
        let now = Utc::now();
        for job in self.jobs.values() {
            let Some(schedule) = &job.schedule else {
                continue;
            };
            let last = match runs::last_scheduled(&self.store, &job.name).await {
                Ok(last) => last,
                Err(e) => {
                    tracing::error!(job = %job.name, error = %e, "cannot read the job's history; not catching up");
                    None
                }
            };
            if let Some(slot) = schedule::missed_slot(schedule, job.missed, last, now) {
                tracing::info!(job = %job.name, slot = %slot, "catching up a run missed while down");
                self.spawn(
                    &mut tasks,
                    job.clone(),
                    slot,
                    Trigger::CatchUp,
                    actor.clone(),
                );
            }
            next.insert(job.name.clone(), schedule.next_after(now));
        }
        tokio::pin!(shutdown);
        loop {
            let now = Utc::now();
            for (name, at) in next.iter_mut() {
                let Some(job) = self.jobs.get(name) else {
                    continue;
                };
                let Some(schedule) = &job.schedule else {
                    continue;
                };
                let (slot, following) = schedule::tick(schedule, *at, now);
                *at = following;
                if let Some(slot) = slot {
                    self.spawn(
                        &mut tasks,
                        job.clone(),
                        slot,
                        Trigger::Schedule,
                        actor.clone(),
                    );
                }
            }
            // Sleep until the earliest next run, but at most a minute, so a
            // wall-clock jump (NTP, suspend) is noticed soon.
            let wait = next
                .values()
                .flatten()
                .min()
                .map(|t| (*t - Utc::now()).to_std().unwrap_or(Duration::ZERO))
                .unwrap_or(Duration::from_secs(60))
                .min(Duration::from_secs(60));
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(wait.max(Duration::from_millis(10))) => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        tracing::info!(running = tasks.len(), "scheduler stopping");
        let drained =
            tokio::time::timeout(drain, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!(
                running = tasks.len(),
                "jobs still running at shutdown were stopped; their runs show as abandoned once the lease expires"
            );
            tasks.abort_all();
        }
    }

    fn spawn(
        self: &Arc<Self>,
        tasks: &mut tokio::task::JoinSet<()>,
        job: Job,
        slot: DateTime<Utc>,
        trigger: Trigger,
        actor: Actor,
    ) {
        let this = self.clone();
        tasks.spawn(async move {
            match this.execute(&job, slot, trigger, &actor).await {
                Ok(_) => {}
                // A slot another instance (or a manual run) already has is
                // the design working, not a fault.
                Err(JobError::Claim(
                    e @ (ClaimError::AlreadyRunning(_) | ClaimError::SlotTaken { .. }),
                )) => {
                    tracing::info!(job = %job.name, slot = %slot, reason = %e, "skipped a run");
                }
                Err(e) => tracing::error!(job = %job.name, error = %e, "cannot run job"),
            }
        });
    }
}

/// `rotate:NAME`: drop an expired previous value, rotate when due.
struct RotateSecret {
    config: Arc<Config>,
    name: String,
    store: Store,
    data_dir: PathBuf,
}

impl JobAction for RotateSecret {
    fn run<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let cfg = self
                .config
                .secrets
                .iter()
                .find(|s| s.name == self.name)
                .ok_or_else(|| format!("secret {:?} is no longer configured", self.name))?;
            let rotation = crate::secrets::rotation_check(
                &self.store,
                &self.data_dir,
                cfg,
                &ctx.actor,
                Utc::now(),
            )
            .await
            .map_err(|e| e.to_string())?;
            match rotation {
                None => Ok("not due".to_string()),
                Some(r) => match r.hook {
                    Some(Err(why)) => Err(format!(
                        "rotated to version {} but the hook failed: {why}",
                        r.version
                    )),
                    _ => Ok(format!("rotated to version {}", r.version)),
                },
            }
        })
    }
}

/// `backup:NAME` (snapshot and retention) and `verify:NAME`.
struct BackupJob {
    config: Arc<Config>,
    name: String,
    data_dir: PathBuf,
    verify_only: bool,
}

impl JobAction for BackupJob {
    fn run<'a>(&'a self, _ctx: &'a JobContext) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let cfg = self
                .config
                .backup(&self.name)
                .ok_or_else(|| format!("backup {:?} is no longer configured", self.name))?;
            if self.verify_only {
                let report = crate::backups::verify(cfg, &self.data_dir)
                    .await
                    .map_err(|e| e.to_string())?;
                let summary = format!(
                    "snapshot {}: {} of {} packs read, {} files compared, {} check errors, {} mismatches",
                    report.snapshot.as_deref().map_or("-", |s| &s[..s.len().min(8)]),
                    report.packs_read,
                    report.packs,
                    report.files_sampled,
                    report.check_errors.len(),
                    report.mismatches.len()
                );
                if report.is_ok() {
                    Ok(summary)
                } else {
                    Err(summary)
                }
            } else {
                let run = crate::backups::run_backup(cfg)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(format!(
                    "snapshot {}: {} files, {} bytes; retention removed {} snapshots",
                    &run.snapshot[..run.snapshot.len().min(8)],
                    run.files,
                    run.bytes,
                    run.forgotten
                ))
            }
        })
    }
}

/// `drill:NAME`: a DR drill; a failed drill is a failed run (and so alerts).
/// `report`: last month's evidence report into `<data-dir>/reports/`.
struct ReportJob {
    config: Arc<Config>,
    store: Store,
    data_dir: PathBuf,
}

impl JobAction for ReportJob {
    fn run<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let path = crate::report::write_monthly(
                &self.store,
                &self.config,
                &self.data_dir,
                ctx.scheduled_at,
            )
            .await?;
            Ok(format!("wrote {}", path.display()))
        })
    }
}

/// The seed's slo_guard ran every 15 minutes.
const SLO_JOB_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// `slo`: evaluates every SLO (rollups, budgets, burn-rate alerts) and
/// summarises them; fails when any SLO has spent its whole budget.
struct SloJob {
    config: Arc<Config>,
    store: Store,
}

impl JobAction for SloJob {
    fn run<'a>(&'a self, _ctx: &'a JobContext) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let statuses =
                crate::engine::evaluate_slos(&self.store, &self.config, crate::time::now_ms())
                    .await
                    .map_err(|e| e.to_string())?;
            let summary = statuses
                .iter()
                .map(|s| {
                    format!(
                        "{}: {:.3}% ({:.1}% of budget used)",
                        s.name,
                        s.attainment * 100.0,
                        s.budget_consumed * 100.0
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            if statuses.iter().any(|s| s.budget_consumed >= 1.0) {
                Err(format!("error budget exhausted: {summary}"))
            } else {
                Ok(summary)
            }
        })
    }
}

/// How often `drill-overdue:NAME` looks at the drill's last pass.
const DRILL_WATCH_INTERVAL: Duration = Duration::from_secs(3600);

/// `drill-overdue:NAME`: fails while the drill's latest due run (at least a
/// day old) has no passing report after it.
struct DrillOverdue {
    name: String,
    store: Store,
    schedule: Schedule,
}

impl JobAction for DrillOverdue {
    fn run<'a>(&'a self, _ctx: &'a JobContext) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let (_, last_pass) = crate::opscheck::drill_reports(&self.store, &self.name)
                .await
                .map_err(|e| e.to_string())?;
            let now = Utc::now();
            let since = last_pass.map_or_else(
                || "no drill has passed yet".to_string(),
                |t| format!("last pass {}", t.format("%Y-%m-%d %H:%M:%SZ")),
            );
            match crate::opscheck::freshness(
                Some(&self.schedule),
                last_pass,
                crate::opscheck::DRILL_SLACK,
                now,
            ) {
                crate::opscheck::Freshness::Stale { due } => Err(format!(
                    "drill {} is overdue: the run due {} has not passed ({since})",
                    self.name,
                    due.format("%Y-%m-%d %H:%M:%SZ")
                )),
                _ => Ok(format!("drill {} is on time ({since})", self.name)),
            }
        })
    }
}

struct DrillJob {
    config: Arc<Config>,
    name: String,
    store: Store,
    data_dir: PathBuf,
}

impl JobAction for DrillJob {
    fn run<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let report = crate::drill::run_named(
                &self.store,
                &self.config,
                &self.name,
                &self.data_dir,
                &ctx.actor,
            )
            .await
            .map_err(|e| e.to_string())?;
            let rto = report
                .rto_seconds
                .map_or_else(|| "-".to_string(), |s| format!("{s:.1}s"));
            if report.passed {
                Ok(format!("report {}: passed, RTO {rto}", report.id))
            } else {
                Err(format!(
                    "report {}: failed at {}, RTO {rto}",
                    report.id,
                    report.failed_step.unwrap_or("targets")
                ))
            }
        })
    }
}
