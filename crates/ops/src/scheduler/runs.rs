//! Job runs in the store, and the claim that keeps them from overlapping.
//!
//! A run starts by claiming its job's row in `jobs`: a run may start only
//! when no other run holds an unexpired lease. On PostgreSQL the row is read
//! `FOR UPDATE SKIP LOCKED`, so when two instances race, the loser finds the
//! row locked and backs off instead of waiting; on SQLite the first write of
//! the transaction takes the database's write lock, which serialises claims
//! the same way. The unique `(job, scheduled_at)` of `job_runs` makes each
//! scheduled slot run once across instances. A holder renews its lease while
//! it runs, so a crashed instance's run is taken over (and marked abandoned)
//! once its lease has expired.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::identity::Actor;
use crate::store::{Dialect, Store, StoreError};
use crate::time::Timestamp;

/// Why a run started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    /// A slot missed while Bulwark was down, run at start.
    CatchUp,
    /// `jobs run NAME` or `POST /api/v1/jobs/{name}/run`.
    Manual,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::CatchUp => "catch_up",
            Trigger::Manual => "manual",
        }
    }

    fn parse(s: &str) -> Result<Trigger, StoreError> {
        match s {
            "schedule" => Ok(Trigger::Schedule),
            "catch_up" => Ok(Trigger::CatchUp),
            "manual" => Ok(Trigger::Manual),
            other => Err(StoreError::Invalid(format!(
                "job_runs: unknown trigger {other:?}"
            ))),
        }
    }
}

/// How a run ended (or that it has not yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    Running,
    Success,
    Failure,
    /// Its instance stopped while it ran; found when its lease expired.
    Abandoned,
    /// Stopped on request (shutdown) before it finished.
    Cancelled,
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Running => "running",
            RunOutcome::Success => "success",
            RunOutcome::Failure => "failure",
            RunOutcome::Abandoned => "abandoned",
            RunOutcome::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> Result<RunOutcome, StoreError> {
        match s {
            "running" => Ok(RunOutcome::Running),
            "success" => Ok(RunOutcome::Success),
            "failure" => Ok(RunOutcome::Failure),
            "abandoned" => Ok(RunOutcome::Abandoned),
            "cancelled" => Ok(RunOutcome::Cancelled),
            other => Err(StoreError::Invalid(format!(
                "job_runs: unknown outcome {other:?}"
            ))),
        }
    }
}

/// One run of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRun {
    pub id: String,
    pub job: String,
    /// The slot it ran for (for manual runs, when it was asked for).
    pub scheduled_at: DateTime<Utc>,
    pub trigger: Trigger,
    /// Which Bulwark process ran it.
    pub instance: String,
    pub actor: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub outcome: RunOutcome,
    /// A line or two about what it did, or why it failed.
    pub summary: String,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimError {
    #[error("job {0:?} is already running")]
    AlreadyRunning(String),
    #[error("job {job:?} already ran for its slot at {scheduled_at}")]
    SlotTaken {
        job: String,
        scheduled_at: DateTime<Utc>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Longest summary kept; longer ones are cut (job output can be large).
const MAX_SUMMARY: usize = 2000;

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Starts a run of `job` for `scheduled_at` at `now`, holding the job's
/// lease until `now + lease`.
///
/// # Errors
/// [`ClaimError::AlreadyRunning`] while another run holds the lease,
/// [`ClaimError::SlotTaken`] when the slot already ran, or a database error.
#[allow(clippy::too_many_arguments)]
pub async fn claim(
    store: &Store,
    job: &str,
    scheduled_at: DateTime<Utc>,
    trigger: Trigger,
    instance: &str,
    actor: &Actor,
    now: DateTime<Utc>,
    lease: Duration,
) -> Result<JobRun, ClaimError> {
    let mut tx = store.pool().begin().await.map_err(StoreError::from)?;
    let claimed = claim_in(
        &mut tx,
        store.dialect(),
        job,
        scheduled_at,
        trigger,
        instance,
        actor,
        now,
        lease,
    )
    .await;
    // Roll back at once on refusal: a dropped transaction is only rolled
    // back when its connection is next used, and until then PostgreSQL
    // keeps the row locked, making the next claimer skip it.
    match claimed {
        Ok(run) => {
            tx.commit().await.map_err(StoreError::from)?;
            Ok(run)
        }
        Err(e) => {
            if let Err(rollback) = tx.rollback().await {
                tracing::warn!(job, error = %rollback, "cannot roll back a refused claim");
            }
            Err(e)
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn claim_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    dialect: Dialect,
    job: &str,
    scheduled_at: DateTime<Utc>,
    trigger: Trigger,
    instance: &str,
    actor: &Actor,
    now: DateTime<Utc>,
    lease: Duration,
) -> Result<JobRun, ClaimError> {
    let now_ms = now.timestamp_millis();
    // A write first: on SQLite it takes the write lock before anything is
    // read, so two claimers cannot both read the row as free.
    sqlx::query("INSERT INTO jobs (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
        .bind(job)
        .execute(&mut **tx)
        .await
        .map_err(StoreError::from)?;
    let select = match dialect {
        Dialect::Postgres => {
            "SELECT running_run, lease_until FROM jobs WHERE name = $1 FOR UPDATE SKIP LOCKED"
        }
        Dialect::Sqlite => "SELECT running_run, lease_until FROM jobs WHERE name = $1",
    };
    let row = sqlx::query(select)
        .bind(job)
        .fetch_optional(&mut **tx)
        .await
        .map_err(StoreError::from)?;
    // No row: another instance holds it locked, i.e. is claiming right now.
    let Some(row) = row else {
        return Err(ClaimError::AlreadyRunning(job.to_string()));
    };
    let running: Option<String> = row.try_get("running_run").map_err(StoreError::from)?;
    let lease_until: Option<i64> = row.try_get("lease_until").map_err(StoreError::from)?;
    if let Some(old) = running {
        if lease_until.is_some_and(|until| until > now_ms) {
            return Err(ClaimError::AlreadyRunning(job.to_string()));
        }
        let marked = sqlx::query(
            "UPDATE job_runs SET outcome = 'abandoned', finished_at = $1,
                 summary = 'abandoned: its instance stopped renewing the lease'
             WHERE id = $2 AND outcome = 'running'",
        )
        .bind(now_ms)
        .bind(&old)
        .execute(&mut **tx)
        .await
        .map_err(StoreError::from)?;
        if marked.rows_affected() == 1 {
            let body = serde_json::json!({
                "job": job,
                "run": old,
                "status": "abandoned",
                "summary": "abandoned: its instance stopped renewing the lease",
            });
            crate::events::append_on(tx, dialect, crate::events::Kind::Job, &body).await?;
        }
        tracing::warn!(job, run = %old, "took over a job whose run was abandoned");
    }
    let id = format!("r_{}", hex::encode(rand::random::<[u8; 8]>()));
    let inserted = sqlx::query(
        "INSERT INTO job_runs (id, job, scheduled_at, trigger_kind, instance, actor, started_at, outcome, summary)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'running', '')",
    )
    .bind(&id)
    .bind(job)
    .bind(scheduled_at.timestamp_millis())
    .bind(trigger.as_str())
    .bind(instance)
    .bind(actor.as_str())
    .bind(now_ms)
    .execute(&mut **tx)
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            return Err(ClaimError::SlotTaken {
                job: job.to_string(),
                scheduled_at,
            })
        }
        Err(e) => return Err(StoreError::from(e).into()),
    }
    sqlx::query(
        "UPDATE jobs SET running_run = $1, lease_owner = $2, lease_until = $3 WHERE name = $4",
    )
    .bind(&id)
    .bind(instance)
    .bind(now_ms.saturating_add(ms(lease)))
    .bind(job)
    .execute(&mut **tx)
    .await
    .map_err(StoreError::from)?;
    Ok(JobRun {
        id,
        job: job.to_string(),
        scheduled_at: Timestamp::from(scheduled_at).to_datetime(),
        trigger,
        instance: instance.to_string(),
        actor: actor.as_str().to_string(),
        started_at: Timestamp::from_millis(now_ms).to_datetime(),
        finished_at: None,
        outcome: RunOutcome::Running,
        summary: String::new(),
    })
}

/// Extends the lease of `run` to `until`; false when it was lost (taken
/// over after expiry), in which case the holder should stop.
///
/// # Errors
/// On a database error.
pub async fn renew(store: &Store, run: &JobRun, until: DateTime<Utc>) -> Result<bool, StoreError> {
    let r = sqlx::query("UPDATE jobs SET lease_until = $1 WHERE name = $2 AND running_run = $3")
        .bind(until.timestamp_millis())
        .bind(&run.job)
        .bind(&run.id)
        .execute(store.pool())
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Records how `run` ended and releases the job's lease.
///
/// # Errors
/// On a database error.
pub async fn finish(
    store: &Store,
    run: &mut JobRun,
    outcome: RunOutcome,
    summary: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut summary = summary.to_string();
    if summary.len() > MAX_SUMMARY {
        let mut cut = MAX_SUMMARY;
        while !summary.is_char_boundary(cut) {
            cut -= 1;
        }
        summary.truncate(cut);
        summary.push('…');
    }
    let now_ms = now.timestamp_millis();
    let mut tx = store.pool().begin().await?;
    sqlx::query(
        "UPDATE job_runs SET outcome = $1, finished_at = $2, summary = $3 WHERE id = $4 AND outcome = 'running'",
    )
    .bind(outcome.as_str())
    .bind(now_ms)
    .bind(&summary)
    .bind(&run.id)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE jobs SET running_run = NULL, lease_owner = NULL, lease_until = NULL
         WHERE name = $1 AND running_run = $2",
    )
    .bind(&run.job)
    .bind(&run.id)
    .execute(&mut *tx)
    .await?;
    let body = serde_json::json!({
        "job": run.job,
        "run": run.id,
        "trigger": run.trigger.as_str(),
        "status": outcome.as_str(),
        // Summaries quote what failed, URLs included: origins only.
        "summary": crate::redact::urls_in(&summary),
        "duration_seconds": (now_ms - run.started_at.timestamp_millis()).max(0) as f64 / 1000.0,
    });
    crate::events::append_on(&mut tx, store.dialect(), crate::events::Kind::Job, &body).await?;
    tx.commit().await?;
    run.outcome = outcome;
    run.finished_at = Some(Timestamp::from_millis(now_ms).to_datetime());
    run.summary = summary;
    Ok(())
}

const COLUMNS: &str =
    "id, job, scheduled_at, trigger_kind, instance, actor, started_at, finished_at, outcome, summary";

fn decode(row: &sqlx::any::AnyRow) -> Result<JobRun, StoreError> {
    let finished: Option<i64> = row.try_get("finished_at")?;
    let trigger: String = row.try_get("trigger_kind")?;
    let outcome: String = row.try_get("outcome")?;
    Ok(JobRun {
        id: row.try_get("id")?,
        job: row.try_get("job")?,
        scheduled_at: Timestamp::from_millis(row.try_get("scheduled_at")?).to_datetime(),
        trigger: Trigger::parse(&trigger)?,
        instance: row.try_get("instance")?,
        actor: row.try_get("actor")?,
        started_at: Timestamp::from_millis(row.try_get("started_at")?).to_datetime(),
        finished_at: finished.map(|t| Timestamp::from_millis(t).to_datetime()),
        outcome: RunOutcome::parse(&outcome)?,
        summary: row.try_get("summary")?,
    })
}

/// The runs of `job`, newest first, at most `limit`.
///
/// # Errors
/// On a database error.
pub async fn history(store: &Store, job: &str, limit: u32) -> Result<Vec<JobRun>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM job_runs WHERE job = $1 ORDER BY started_at DESC, id DESC LIMIT {}",
        limit.clamp(1, 1000)
    );
    let rows = sqlx::query(&sql).bind(job).fetch_all(store.pool()).await?;
    rows.iter().map(decode).collect()
}

/// The latest run of every job that ever ran.
///
/// # Errors
/// On a database error.
pub async fn latest(store: &Store) -> Result<HashMap<String, JobRun>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM job_runs r WHERE started_at = (
             SELECT MAX(started_at) FROM job_runs WHERE job = r.job)"
    );
    let rows = sqlx::query(&sql).fetch_all(store.pool()).await?;
    let mut out = HashMap::new();
    for row in &rows {
        let run = decode(row)?;
        out.insert(run.job.clone(), run);
    }
    Ok(out)
}

/// The slot of the latest non-manual run of `job`: what missed-run
/// detection compares against.
///
/// # Errors
/// On a database error.
pub async fn last_scheduled(store: &Store, job: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    let v: Option<i64> = sqlx::query_scalar(
        "SELECT MAX(scheduled_at) FROM job_runs WHERE job = $1 AND trigger_kind <> 'manual'",
    )
    .bind(job)
    .fetch_one(store.pool())
    .await?;
    Ok(v.map(|t| Timestamp::from_millis(t).to_datetime()))
}

/// Run `id`, or None when no run has that id.
///
/// # Errors
/// On a database error.
pub async fn get(store: &Store, id: &str) -> Result<Option<JobRun>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM job_runs WHERE id = $1");
    let row = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(store.pool())
        .await?;
    row.as_ref().map(decode).transpose()
}
