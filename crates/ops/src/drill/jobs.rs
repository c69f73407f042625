//! The jobs of each `[[drill]]`: `drill:NAME` (a drill; one that does not
//! pass is a failed run, and so alerts) and, for scheduled drills,
//! `drill-overdue:NAME`, because a drill that silently stops running is as
//! bad as one that fails.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use crate::config::Config;
use crate::scheduler::{
    freshness, BoxFuture, Freshness, Job, JobContext, MissedRuns, RunError, Schedule, Task,
};
use crate::store::Store;

use super::{DrillError, DrillReport};

/// How late a drill may be: the product spec's "schedule period plus a day".
pub const DRILL_SLACK: Duration = Duration::from_secs(86_400);

/// How often `drill-overdue:NAME` looks at the drill's last pass.
const DRILL_WATCH_INTERVAL: Duration = Duration::from_secs(3600);

/// `drill:NAME` for every `[[drill]]` and `drill-overdue:NAME` for the
/// scheduled ones.
pub fn jobs(config: &Arc<Config>, store: &Store, data_dir: &std::path::Path) -> Vec<Job> {
    let mut out = Vec::new();
    for drill in &config.drills {
        let schedule = drill.schedule.as_ref().and_then(|expr| {
            let tz = config
                .backup(&drill.backup)
                .and_then(|b| b.timezone.as_deref());
            Schedule::cron(expr, tz)
                .map_err(
                    |e| tracing::error!(drill = %drill.name, error = %e, "cannot schedule drill"),
                )
                .ok()
        });
        // Every hour: the run due a day ago (its period plus a day) must
        // have passed.
        if let Some(schedule) = &schedule {
            match Schedule::every(DRILL_WATCH_INTERVAL) {
                Ok(every) => out.push(Job {
                    name: format!("drill-overdue:{}", drill.name),
                    schedule: Some(every),
                    missed: MissedRuns::Skip,
                    action: Arc::new(OverdueJob {
                        name: drill.name.clone(),
                        store: store.clone(),
                        schedule: schedule.clone(),
                    }),
                }),
                Err(e) => tracing::error!(drill = %drill.name, error = %e, "cannot watch drill"),
            }
        }
        out.push(Job {
            name: format!("drill:{}", drill.name),
            schedule,
            missed: MissedRuns::RunOnce,
            action: Arc::new(DrillJob {
                config: config.clone(),
                name: drill.name.clone(),
                store: store.clone(),
                data_dir: data_dir.to_path_buf(),
            }),
        });
    }
    out
}

/// `drill:NAME` (`bulwark drill run NAME`).
pub struct DrillJob {
    pub config: Arc<Config>,
    pub name: String,
    pub store: Store,
    pub data_dir: PathBuf,
}

impl Task for DrillJob {
    type Output = DrillReport;

    fn run<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, Result<DrillReport, RunError>> {
        Box::pin(async move {
            let report = super::run_named(
                &self.store,
                &self.config,
                &self.name,
                &self.data_dir,
                &ctx.actor,
                &ctx.cancel,
            )
            .await
            .map_err(|e| match e {
                DrillError::Unknown(_) => RunError::Failed(e.to_string()),
                e => RunError::error(e),
            })?;
            // A drill cut short by shutdown is stored as failed, but the
            // run was cancelled, not a failed recovery.
            if ctx.cancel.is_cancelled() {
                return Err(RunError::Cancelled);
            }
            Ok(report)
        })
    }

    fn judge(&self, report: &DrillReport) -> Result<String, String> {
        let rto = report
            .rto_seconds
            .map_or_else(|| "-".to_string(), |s| format!("{s:.1}s"));
        let snapshot = report.snapshot.as_deref().map_or_else(String::new, |s| {
            format!(", snapshot {}", &s[..s.len().min(8)])
        });
        if report.passed {
            Ok(format!("report {}: passed{snapshot}, RTO {rto}", report.id))
        } else {
            Err(format!(
                "report {}: failed at {}, RTO {rto}",
                report.id,
                report.failed_step.as_deref().unwrap_or("targets")
            ))
        }
    }
}

/// `drill-overdue:NAME`: fails while the drill's latest due run (at least a
/// day old) has no passing report after it.
struct OverdueJob {
    name: String,
    store: Store,
    schedule: Schedule,
}

impl Task for OverdueJob {
    type Output = (Freshness, String);

    fn run<'a>(&'a self, _ctx: &'a JobContext) -> BoxFuture<'a, Result<Self::Output, RunError>> {
        Box::pin(async move {
            let (_, last_pass) = super::latest_and_last_pass(&self.store, &self.name)
                .await
                .map_err(RunError::error)?;
            let since = last_pass.map_or_else(
                || "no drill has passed yet".to_string(),
                |t| format!("last pass {}", t.format("%Y-%m-%d %H:%M:%SZ")),
            );
            let fresh = freshness(Some(&self.schedule), last_pass, DRILL_SLACK, Utc::now());
            Ok((fresh, since))
        })
    }

    fn judge(&self, (fresh, since): &Self::Output) -> Result<String, String> {
        match fresh {
            Freshness::Stale { due } => Err(format!(
                "drill {} is overdue: the run due {} has not passed ({since})",
                self.name,
                due.format("%Y-%m-%d %H:%M:%SZ")
            )),
            _ => Ok(format!("drill {} is on time ({since})", self.name)),
        }
    }
}
