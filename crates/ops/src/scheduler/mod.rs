//! The scheduler: runs jobs on cron schedules or intervals, records every
//! run, never runs one job twice at once, and catches up on runs missed
//! while Bulwark was down. It knows no domain: each component provides its
//! jobs next to its code (`backups::jobs`, `drill::jobs`, `secrets::jobs`,
//! `slo::job`, `report::job`) and [`crate::instance`] registers them.
//!
//! When is pure ([`schedule`]); who may run is the store's claim ([`runs`]);
//! this module ties them to real time. A failed run is logged and handed to
//! the [`FailureSink`] (the alert router's `JobFailed` alerts in `serve` and
//! every CLI command that runs a job). Shutdown cancels the runs in flight
//! through their [`JobContext::cancel`]; they are recorded as `cancelled`.

pub mod runs;
pub mod schedule;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bulwark_repo::Cancel;
use chrono::{DateTime, Utc};

use crate::audit::{self, Entry, Outcome};
use crate::identity::Actor;
use crate::store::{Store, StoreError};

pub use runs::{ClaimError, JobRun, RunOutcome, Trigger};
pub use schedule::{freshness, Freshness, MissedRuns, Schedule};

pub use crate::BoxFuture;

/// Why a run did not succeed. Its text is stored and shown, so it never
/// holds a secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The job did its work and what it found is a failure (a drill that
    /// did not pass, a verification that found mismatches).
    #[error("{0}")]
    Failed(String),
    /// The job could not do its work.
    #[error(transparent)]
    Error(Box<dyn std::error::Error + Send + Sync>),
    /// Shutdown (or the operator) asked it to stop.
    #[error("cancelled")]
    Cancelled,
}

impl RunError {
    /// Wraps the error that stopped a job.
    pub fn error(e: impl std::error::Error + Send + Sync + 'static) -> RunError {
        RunError::Error(Box::new(e))
    }
}

/// A job's work with a typed result: the scheduler records the run, and a
/// caller that runs it directly ([`Scheduler::run_task`], e.g. `bulwark
/// verify`) also gets the result to show.
pub trait Task: Send + Sync {
    type Output: Send;

    /// Does the work. `Err` when it could not be done at all.
    fn run<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, Result<Self::Output, RunError>>;

    /// The one-line summary stored with the run, as `Err` when the result
    /// is a failure.
    fn judge(&self, output: &Self::Output) -> Result<String, String>;
}

/// What a registered job does: any `Task`, its result reduced to the
/// stored summary.
pub trait JobAction: Send + Sync {
    fn run<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, Result<String, RunError>>;
}

impl<T: Task> JobAction for T {
    fn run<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, Result<String, RunError>> {
        Box::pin(async move {
            let output = Task::run(self, ctx).await?;
            self.judge(&output).map_err(RunError::Failed)
        })
    }
}

/// A registered job's action seen as a [`Task`] whose result is its summary.
struct Registered<'a>(&'a dyn JobAction);

impl Task for Registered<'_> {
    type Output = String;

    fn run<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, Result<String, RunError>> {
        self.0.run(ctx)
    }

    fn judge(&self, summary: &String) -> Result<String, String> {
        Ok(summary.clone())
    }
}

/// What a job action knows about its run.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub job: String,
    pub scheduled_at: DateTime<Utc>,
    pub trigger: Trigger,
    /// Who asked: `system:scheduler` or the operator of a manual run.
    pub actor: Actor,
    /// Set at shutdown: long work (backups, restores, checks) stops soon
    /// after and the run is recorded as cancelled.
    pub cancel: Cancel,
    /// Where long work reports how far it got, for `GET
    /// /api/v1/jobs/runs/{id}` while the run is going.
    pub progress: ProgressHandle,
}

/// How far a running job got: what it counts and how many so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// e.g. "restoring": what the run is doing now.
    pub phase: String,
    pub files: u64,
    pub bytes: u64,
}

/// A run's [`Progress`], shared between the run and its readers.
#[derive(Debug, Clone, Default)]
pub struct ProgressHandle(Arc<Mutex<Progress>>);

impl ProgressHandle {
    pub fn set(&self, progress: Progress) {
        if let Ok(mut p) = self.0.lock() {
            *p = progress;
        }
    }

    pub fn get(&self) -> Progress {
        self.0.lock().map(|p| p.clone()).unwrap_or_default()
    }
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

/// Runs jobs. Cheap to share behind an `Arc`; the HTTP API and the loop
/// share one, so a manual run and a scheduled run of a job cannot overlap
/// even before the store is asked.
pub struct Scheduler {
    store: Store,
    jobs: BTreeMap<String, Job>,
    instance: String,
    running: Mutex<HashSet<String>>,
    /// Per job, the turn to send a finished run's notifications: runs of
    /// one job notify in the order they ended, so a later failure's alert
    /// is never resolved by an earlier success arriving late.
    notifying: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The progress of the runs in flight on this instance, by run id.
    progress: Mutex<HashMap<String, ProgressHandle>>,
    sink: Option<Arc<dyn FailureSink>>,
    /// Handed to every run; cancelled at shutdown.
    cancel: Cancel,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("jobs", &self.jobs.keys().collect::<Vec<_>>())
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

/// The audit record of a manual run (`job.run`) and how it ended.
fn manual_run_entry<O>(name: &str, actor: &Actor, result: &Result<(JobRun, O), JobError>) -> Entry {
    let (outcome, detail) = match result {
        Ok((run, _)) => (
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
    Entry::new(actor, "job.run", name, outcome).detail(detail)
}

/// Where [`Scheduler::start_task`] learns the claimed run.
type Started = tokio::sync::oneshot::Sender<Result<JobRun, JobError>>;

/// A run's entry in the progress map, removed however the run ends.
struct ProgressEntry<'a> {
    map: &'a Mutex<HashMap<String, ProgressHandle>>,
    run: String,
}

impl<'a> ProgressEntry<'a> {
    fn register(
        map: &'a Mutex<HashMap<String, ProgressHandle>>,
        run: &str,
        handle: &ProgressHandle,
    ) -> ProgressEntry<'a> {
        if let Ok(mut m) = map.lock() {
            m.insert(run.to_string(), handle.clone());
        }
        ProgressEntry {
            map,
            run: run.to_string(),
        }
    }
}

impl Drop for ProgressEntry<'_> {
    fn drop(&mut self) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(&self.run);
        }
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
            notifying: Mutex::new(HashMap::new()),
            progress: Mutex::new(HashMap::new()),
            sink: None,
            cancel: Cancel::new(),
        }
    }

    /// Asks every run in flight to stop (shutdown, a signal to a CLI
    /// command); they are recorded as `cancelled`.
    pub fn cancel(&self) {
        self.cancel.cancel();
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
        let task = Registered(job.action.as_ref());
        self.run_task(name, &task, actor).await.map(|(run, _)| run)
    }

    /// Runs `task` now as a manual run of job `name` (which need not be
    /// registered: a CLI command runs the task it built), and returns its
    /// result with the recorded run. Recorded, alerted and audited exactly
    /// like a scheduled run (`job.run`).
    ///
    /// # Errors
    /// A job already running, or a database error. A run that fails is not
    /// an error: see the returned run's outcome (the output, when the task
    /// produced one, is returned either way).
    pub async fn run_task<T: Task>(
        &self,
        name: &str,
        task: &T,
        actor: &Actor,
    ) -> Result<(JobRun, Option<T::Output>), JobError> {
        let result = self
            .execute(name, task, Utc::now(), Trigger::Manual, actor, &mut None)
            .await;
        self.audit(manual_run_entry(name, actor, &result)).await;
        result
    }

    /// Starts `task` as a manual run of job `name` in the background and
    /// returns the run as soon as it is claimed (its outcome is then
    /// `running`); [`Scheduler::run_progress`] and the store tell the rest.
    /// Recorded, alerted and audited like [`Scheduler::run_task`].
    ///
    /// # Errors
    /// A job already running, or a database error.
    pub async fn start_task<T: Task + 'static>(
        self: &Arc<Self>,
        name: &str,
        task: T,
        actor: &Actor,
    ) -> Result<JobRun, JobError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (me, name, actor) = (self.clone(), name.to_string(), actor.clone());
        tokio::spawn(async move {
            let mut started = Some(tx);
            let result = me
                .execute(
                    &name,
                    &task,
                    Utc::now(),
                    Trigger::Manual,
                    &actor,
                    &mut started,
                )
                .await;
            let entry = manual_run_entry(&name, &actor, &result);
            me.audit(entry).await;
            if let (Err(e), Some(tx)) = (result, started.take()) {
                let _ = tx.send(Err(e));
            }
        });
        rx.await.map_err(|_| {
            JobError::Store(StoreError::Invalid(
                "the job's task ended before it was claimed".into(),
            ))
        })?
    }

    /// How far run `id` got, while it runs on this instance.
    pub fn run_progress(&self, id: &str) -> Option<Progress> {
        self.progress.lock().ok()?.get(id).map(ProgressHandle::get)
    }

    async fn audit(&self, entry: Entry) {
        if let Err(e) = audit::append(&self.store, entry).await {
            tracing::error!(error = %e, "cannot record the job run in the audit trail");
        }
    }

    /// Claims, runs and records one run of job `name` for `slot`. The
    /// claimed run goes to `started` (when given) before the work begins.
    async fn execute<T: Task>(
        &self,
        name: &str,
        task: &T,
        slot: DateTime<Utc>,
        trigger: Trigger,
        actor: &Actor,
        started: &mut Option<Started>,
    ) -> Result<(JobRun, Option<T::Output>), JobError> {
        {
            let mut running = self.running.lock().map_err(|_| {
                StoreError::Invalid("scheduler state poisoned by an earlier panic".into())
            })?;
            if !running.insert(name.to_string()) {
                return Err(ClaimError::AlreadyRunning(name.to_string()).into());
            }
        }
        let guard = RunningGuard {
            set: &self.running,
            job: name.to_string(),
        };
        let mut run = runs::claim(
            &self.store,
            name,
            slot,
            trigger,
            &self.instance,
            actor,
            Utc::now(),
            LEASE,
        )
        .await?;
        tracing::info!(job = %name, run = %run.id, trigger = trigger.as_str(), "job started");
        let progress = ProgressHandle::default();
        let _progress_entry = ProgressEntry::register(&self.progress, &run.id, &progress);
        if let Some(tx) = started.take() {
            let _ = tx.send(Ok(run.clone()));
        }
        let ctx = JobContext {
            job: name.to_string(),
            scheduled_at: slot,
            trigger,
            actor: actor.clone(),
            cancel: self.cancel.clone(),
            progress,
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
                r = task.run(&ctx) => r,
                () = renew => Err(RunError::Failed("stopped: the job's lease was lost to another instance".to_string())),
            }
        };
        let (outcome, summary, output) = match result {
            Ok(output) => match task.judge(&output) {
                Ok(s) => (RunOutcome::Success, s, Some(output)),
                Err(s) => (RunOutcome::Failure, s, Some(output)),
            },
            // Whatever a job says when it stops on a cancel, it was cut short.
            Err(e) if matches!(e, RunError::Cancelled) || ctx.cancel.is_cancelled() => {
                (RunOutcome::Cancelled, format!("cancelled: {e}"), None)
            }
            Err(e) => (RunOutcome::Failure, e.to_string(), None),
        };
        runs::finish(&self.store, &mut run, outcome, &summary, Utc::now()).await?;
        // The run is over and its lease released: the job is free again in
        // this process as it already is for other instances. Held through
        // the notifications below, a client that saw the run end and
        // started the job again would be told it is still running. The
        // notification turn is taken first, so the next run's wait behind
        // this one's.
        let turn = self
            .notifying
            .lock()
            .map(|mut m| m.entry(name.to_string()).or_default().clone())
            .unwrap_or_default();
        let _turn = turn.lock_owned().await;
        drop(guard);
        match outcome {
            RunOutcome::Success => {
                tracing::info!(job = %run.job, run = %run.id, summary = %run.summary, "job succeeded");
                if let Some(sink) = &self.sink {
                    sink.job_succeeded(&run).await;
                }
            }
            // Stopping for a shutdown is not the job failing: no alert, and
            // the next run decides whether an earlier alert resolves.
            RunOutcome::Cancelled => {
                tracing::warn!(job = %run.job, run = %run.id, "job cancelled")
            }
            _ => {
                tracing::error!(job = %run.job, run = %run.id, summary = %run.summary, "job failed");
                if let Some(sink) = &self.sink {
                    sink.job_failed(&run).await;
                }
            }
        }
        Ok((run, output))
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
        // Long work stops at its next checkpoint and records itself as
        // cancelled; no backup saves a snapshot after this point.
        self.cancel();
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
            let task = Registered(job.action.as_ref());
            match this
                .execute(&job.name, &task, slot, trigger, &actor, &mut None)
                .await
            {
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
