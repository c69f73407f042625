//! Failed jobs raise alerts through the alert router: a `JobFailed` alert
//! per job (its name in the `monitor` label, so routes can match
//! `backup:*`-style names), resolved by the job's next successful run.

use std::sync::Arc;

use crate::config::{AlertSeverity, Config};
use crate::scheduler::{BoxFuture, FailureSink, JobRun};
use crate::store::Store;

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
            run.started_at.timestamp_millis(),
        );
        a.tags = vec!["job".to_string()];
        a
    }
}

impl FailureSink for JobFailureAlerts {
    fn job_failed<'a>(&'a self, run: &'a JobRun) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let alert = JobFailureAlerts::alert(run);
            let now = chrono::Utc::now().timestamp_millis();
            if let Err(e) = super::notify(&self.store, &self.config, &alert, now).await {
                tracing::error!(job = %run.job, error = %e, "cannot raise the job-failure alert");
            }
        })
    }

    fn job_succeeded<'a>(&'a self, run: &'a JobRun) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let mut alert = JobFailureAlerts::alert(run);
            let now = chrono::Utc::now().timestamp_millis();
            alert.status = AlertStatus::Resolved;
            alert.ended_at_ms = Some(now);
            if let Err(e) = super::notify(&self.store, &self.config, &alert, now).await {
                tracing::error!(job = %run.job, error = %e, "cannot resolve the job-failure alert");
            }
        })
    }
}
