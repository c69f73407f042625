//! `report`: last month's evidence report into `<data-dir>/reports/`, on the
//! 1st.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::Config;
use crate::scheduler::{BoxFuture, Job, JobContext, MissedRuns, RunError, Schedule, Task};
use crate::store::Store;

/// When the `report` job writes last month's evidence report: early on the
/// 1st (UTC), after the month's last results have been rolled up.
pub const REPORT_SCHEDULE: &str = "0 4 1 * *";

/// The `report` job.
pub fn job(config: &Arc<Config>, store: &Store, data_dir: &std::path::Path) -> Option<Job> {
    let schedule = Schedule::cron(REPORT_SCHEDULE, None)
        .map_err(|e| tracing::error!(error = %e, "cannot schedule the monthly report"))
        .ok()?;
    Some(Job {
        name: "report".to_string(),
        schedule: Some(schedule),
        missed: MissedRuns::RunOnce,
        action: Arc::new(ReportJob {
            config: config.clone(),
            store: store.clone(),
            data_dir: data_dir.to_path_buf(),
        }),
    })
}

struct ReportJob {
    config: Arc<Config>,
    store: Store,
    data_dir: PathBuf,
}

impl Task for ReportJob {
    /// Where the HTML report was written.
    type Output = PathBuf;

    fn run<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, Result<PathBuf, RunError>> {
        Box::pin(async move {
            super::write_monthly(&self.store, &self.config, &self.data_dir, ctx.scheduled_at)
                .await
                .map_err(RunError::Failed)
        })
    }

    fn judge(&self, path: &PathBuf) -> Result<String, String> {
        Ok(format!("wrote {}", path.display()))
    }
}
