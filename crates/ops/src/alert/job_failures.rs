//! Failed jobs raise alerts through the alert router: a `JobFailed` alert
//! per job (its name in the `monitor` label, so routes can match
//! `backup:*`-style names), resolved by the job's next successful run.

use std::sync::Arc;

use crate::config::{AlertSeverity, Config, Notify};
use crate::scheduler::{BoxFuture, FailureSink, JobRun};
use crate::store::Store;
use crate::time::Timestamp;

use super::{Alert, AlertStatus};

/// The [`FailureSink`] every [`crate::Instance`] installs.
pub struct JobFailureAlerts {
    store: Store,
    config: Arc<Config>,
}

impl JobFailureAlerts {
    pub fn new(store: Store, config: Arc<Config>) -> JobFailureAlerts {
        JobFailureAlerts { store, config }
    }

    fn alert(run: &JobRun) -> Alert {
        // Losing backups, their verification or a drill endangers recovery;
        // a missed rotation or report does not, yet.
        let severity = if ["backup:", "verify:", "drill:"]
            .iter()
            .any(|p| run.job.starts_with(p))
        {
            AlertSeverity::Critical
        } else {
            AlertSeverity::Warning
        };
        let mut a = Alert::new(
            "JobFailed",
            &run.job,
            "job",
            severity,
            format!("job {} {}: {}", run.job, run.outcome.as_str(), run.summary),
            Timestamp::from(run.started_at),
        );
        a.tags = vec!["job".to_string()];
        a
    }
}

/// The `notify` setting of job `job`: `backup:NAME` and `drill:NAME` their
/// own, `verify:NAME` its verify table's (the backup's unless set).
pub(crate) fn notify_setting(config: &Config, job: &str) -> Notify {
    let Some((kind, name)) = job.split_once(':') else {
        return Notify::Failure;
    };
    match kind {
        "backup" => config.backup(name).map(|b| b.notify),
        "verify" => config
            .backup(name)
            .and_then(|b| b.verify.as_ref())
            .map(|v| v.notify),
        "drill" => config
            .drills
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.notify),
        _ => None,
    }
    .unwrap_or_default()
}

/// The snapshot a run's summary names (`snapshot 1a2b3c4d: ...`), as the
/// backup, verify and drill jobs write it.
fn snapshot_in(summary: &str) -> Option<&str> {
    let rest = &summary[summary.find("snapshot ")? + "snapshot ".len()..];
    let id = rest.split(|c: char| !c.is_ascii_hexdigit()).next()?;
    (id.len() >= 8).then_some(id)
}

/// A successful run's `JobSucceeded` message: status, duration, run id,
/// snapshot, and the run's dashboard page (`/jobs/runs/{id}`,
/// relative: Bulwark has no setting for its own public address). Resolved,
/// so Slack colours it green; keyed by the run, so every run is sent.
pub(crate) fn success_message(run: &JobRun) -> Alert {
    let took = run
        .finished_at
        .map(|f| (f - run.started_at).to_std().unwrap_or_default())
        .unwrap_or_default();
    let mut said = vec![format!("run {}", run.id)];
    if let Some(s) = snapshot_in(&run.summary) {
        said.push(format!("snapshot {s}"));
    }
    said.push(format!("/jobs/runs/{}", run.id));
    let mut a = Alert::new(
        "JobSucceeded",
        &run.job,
        &run.id,
        AlertSeverity::Info,
        format!(
            "job {} succeeded in {:.1}s: {} ({})",
            run.job,
            took.as_secs_f64(),
            run.summary,
            said.join(", ")
        ),
        Timestamp::from(run.started_at),
    );
    a.status = AlertStatus::Resolved;
    a.ended_at = run.finished_at.map(Timestamp::from);
    a.tags = vec!["job".to_string()];
    a
}

impl FailureSink for JobFailureAlerts {
    fn job_failed<'a>(&'a self, run: &'a JobRun) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let alert = JobFailureAlerts::alert(run);
            let now = Timestamp::now();
            if let Err(e) = super::notify(&self.store, &self.config, &alert, now).await {
                tracing::error!(job = %run.job, error = %e, "cannot raise the job-failure alert");
            }
        })
    }

    fn job_succeeded<'a>(&'a self, run: &'a JobRun) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let mut alert = JobFailureAlerts::alert(run);
            let now = Timestamp::now();
            alert.status = AlertStatus::Resolved;
            alert.ended_at = Some(now);
            if let Err(e) = super::notify(&self.store, &self.config, &alert, now).await {
                tracing::error!(job = %run.job, error = %e, "cannot resolve the job-failure alert");
            }
            if notify_setting(&self.config, &run.job) == Notify::Always {
                let message = success_message(run);
                if let Err(e) = super::notify_once(&self.store, &self.config, &message, now).await {
                    tracing::error!(job = %run.job, error = %e, "cannot send the job's success notification");
                }
            }
        })
    }
}
