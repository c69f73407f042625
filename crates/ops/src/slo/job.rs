//! `slo`: the recorded evaluation of every SLO at the 15-minute cadence of
//! the users' slo_guard. The engine evaluates every few seconds for its
//! live state (metrics, `/healthz/strict`); this job is what `jobs list`
//! shows and `jobs run slo` runs. Alerts are deduplicated by fingerprint,
//! so the two never notify twice.

use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::scheduler::{BoxFuture, Job, JobContext, MissedRuns, RunError, Schedule, Task};
use crate::store::Store;

use super::SloStatus;

const SLO_JOB_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// The `slo` job, when any SLO is configured.
pub fn job(config: &Arc<Config>, store: &Store) -> Option<Job> {
    if config.slos.is_empty() {
        return None;
    }
    let schedule = Schedule::every(SLO_JOB_INTERVAL)
        .map_err(|e| tracing::error!(error = %e, "cannot schedule SLO evaluation"))
        .ok()?;
    Some(Job {
        name: "slo".to_string(),
        schedule: Some(schedule),
        missed: MissedRuns::Skip,
        action: Arc::new(SloJob {
            config: config.clone(),
            store: store.clone(),
        }),
    })
}

/// Fails when any SLO has spent its whole budget.
struct SloJob {
    config: Arc<Config>,
    store: Store,
}

impl Task for SloJob {
    type Output = Vec<SloStatus>;

    fn run<'a>(&'a self, _ctx: &'a JobContext) -> BoxFuture<'a, Result<Vec<SloStatus>, RunError>> {
        Box::pin(async move {
            super::evaluate_all(&self.store, &self.config, crate::time::Timestamp::now())
                .await
                .map_err(RunError::error)
        })
    }

    fn judge(&self, statuses: &Vec<SloStatus>) -> Result<String, String> {
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
    }
}
