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

pub(super) fn stopped(e: BackupError) -> RunError {
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

    /// A failed copy fails the run (and alerts): the snapshot is safe in
    /// `repo`, but the backup is not where the config says it should be.
    fn judge(&self, run: &BackupRun) -> Result<String, String> {
        let mut summary = format!(
            "snapshot {}: {} files, {} bytes; retention removed {} snapshots",
            &run.snapshot[..run.snapshot.len().min(8)],
            run.files,
            run.bytes,
            run.forgotten
        );
        for copy in &run.copies {
            match &copy.result {
                Ok(done) => summary.push_str(&format!("; {}: {done}", copy.repo)),
                Err(e) => summary.push_str(&format!("; copy to {} FAILED: {e}", copy.repo)),
            }
        }
        if run.copies.iter().all(|c| c.result.is_ok()) {
            Ok(summary)
        } else {
            Err(summary)
        }
    }
}

/// `verify:NAME` (`bulwark verify NAME`): verifies the backup's repository
/// and every copy; fails on any check error or mismatch in any of them.
pub struct VerifyJob {
    pub config: Arc<Config>,
    pub name: String,
    pub data_dir: PathBuf,
}

impl Task for VerifyJob {
    type Output = Vec<VerifyReport>;

    fn run<'a>(
        &'a self,
        ctx: &'a JobContext,
    ) -> BoxFuture<'a, Result<Vec<VerifyReport>, RunError>> {
        Box::pin(async move {
            let cfg = configured(&self.config, &self.name)?;
            super::verify_all(cfg, &self.data_dir, &ctx.cancel)
                .await
                .map_err(stopped)
        })
    }

    fn judge(&self, reports: &Vec<VerifyReport>) -> Result<String, String> {
        let lines: Vec<Result<String, String>> = reports.iter().map(judge_one).collect();
        // With copies, each line names its repository.
        let named = |i: usize, line: &String| {
            if reports.len() > 1 {
                format!("{}: {line}", reports[i].repo)
            } else {
                line.clone()
            }
        };
        let summary = lines
            .iter()
            .enumerate()
            .map(|(i, l)| match l {
                Ok(l) | Err(l) => named(i, l),
            })
            .collect::<Vec<_>>()
            .join("; ");
        if lines.iter().all(Result::is_ok) {
            Ok(summary)
        } else {
            Err(summary)
        }
    }
}

/// One repository's verification in a line.
fn judge_one(report: &VerifyReport) -> Result<String, String> {
    let summary = format!(
        "snapshot {}: {} of {} packs read, {} files compared, {} check errors, {} mismatches",
        report
            .snapshot
            .as_deref()
            .map_or("-", |s| &s[..s.len().min(8)]),
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
