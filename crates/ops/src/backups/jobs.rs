//! The jobs of each `[[backup]]`: `backup:NAME` (snapshot, then retention)
//! and `verify:NAME` (check, read-data subset, sample restore).

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{BackupConfig, Config};
use crate::scheduler::{BoxFuture, Job, JobContext, MissedRuns, RunError, Schedule, Task};

use super::{BackupError, BackupRun, VerifyReport};

/// `backup:NAME` and `verify:NAME` for every `[[backup]]`, on their
/// schedules (manual-only without one).
pub fn jobs(config: &Arc<Config>, data_dir: &std::path::Path) -> Vec<Job> {
    let mut out = Vec::new();
    for backup in &config.backups {
        let cron = |expr: Option<&String>| {
            let expr = expr?;
            Schedule::cron(expr, backup.timezone.as_deref())
                .map_err(|e| tracing::error!(backup = %backup.name, error = %e, "cannot schedule backup job"))
                .ok()
        };
        out.push(Job {
            name: format!("backup:{}", backup.name),
            schedule: cron(backup.schedule.as_ref()),
            missed: MissedRuns::RunOnce,
            action: Arc::new(BackupJob {
                config: config.clone(),
                name: backup.name.clone(),
            }),
        });
        out.push(Job {
            name: format!("verify:{}", backup.name),
            schedule: cron(backup.verify.as_ref().and_then(|v| v.schedule.as_ref())),
            missed: MissedRuns::RunOnce,
            action: Arc::new(VerifyJob {
                config: config.clone(),
                name: backup.name.clone(),
                data_dir: data_dir.to_path_buf(),
            }),
        });
    }
    out
}

fn configured<'c>(config: &'c Config, name: &str) -> Result<&'c BackupConfig, RunError> {
    config
        .backup(name)
        .ok_or_else(|| RunError::Failed(format!("backup {name:?} is no longer configured")))
}

fn stopped(e: BackupError) -> RunError {
    match e {
        BackupError::Repo {
            source: bulwark_repo::Error::Cancelled,
            ..
        } => RunError::Cancelled,
        e => RunError::error(e),
    }
}

/// `backup:NAME`: a snapshot of the configured paths, then retention.
pub struct BackupJob {
    pub config: Arc<Config>,
    pub name: String,
}

impl Task for BackupJob {
    type Output = BackupRun;

    fn run<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, Result<BackupRun, RunError>> {
        Box::pin(async move {
            let cfg = configured(&self.config, &self.name)?;
            super::run_backup(cfg, &ctx.cancel).await.map_err(stopped)
        })
    }

    fn judge(&self, run: &BackupRun) -> Result<String, String> {
        Ok(format!(
            "snapshot {}: {} files, {} bytes; retention removed {} snapshots",
            &run.snapshot[..run.snapshot.len().min(8)],
            run.files,
            run.bytes,
            run.forgotten
        ))
    }
}

/// `verify:NAME` (`bulwark verify NAME`): fails on any check error or
/// mismatch.
pub struct VerifyJob {
    pub config: Arc<Config>,
    pub name: String,
    pub data_dir: PathBuf,
}

impl Task for VerifyJob {
    type Output = VerifyReport;

    fn run<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, Result<VerifyReport, RunError>> {
        Box::pin(async move {
            let cfg = configured(&self.config, &self.name)?;
            super::verify(cfg, &self.data_dir, &ctx.cancel)
                .await
                .map_err(stopped)
        })
    }

    fn judge(&self, report: &VerifyReport) -> Result<String, String> {
        let summary =
            format!(
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
    }
}
