//! `rotate:NAME` for every `[[secret]]`: drop an expired previous value,
//! rotate when due.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use crate::config::Config;
use crate::scheduler::{BoxFuture, Job, JobContext, MissedRuns, RunError, Schedule, Task};
use crate::store::Store;

use super::Rotation;

/// How often scheduled rotation checks run for secrets without a `schedule`.
pub const ROTATION_CHECK_INTERVAL: Duration = Duration::from_secs(3600);

/// `rotate:NAME` for every `[[secret]]`: on its `schedule`, or an hourly
/// check.
pub fn jobs(config: &Arc<Config>, store: &Store, data_dir: &std::path::Path) -> Vec<Job> {
    let mut out = Vec::new();
    for secret in &config.secrets {
        let schedule = match &secret.schedule {
            Some(expr) => Schedule::cron(expr, None),
            None => Schedule::every(ROTATION_CHECK_INTERVAL),
        };
        match schedule {
            Ok(schedule) => out.push(Job {
                name: format!("rotate:{}", secret.name),
                schedule: Some(schedule),
                missed: MissedRuns::RunOnce,
                action: Arc::new(RotateJob {
                    config: config.clone(),
                    name: secret.name.clone(),
                    store: store.clone(),
                    data_dir: data_dir.to_path_buf(),
                }),
            }),
            // Config validation accepted it, so croner disagreeing is a bug
            // worth a loud log, not a refusal to start.
            Err(e) => {
                tracing::error!(secret = %secret.name, error = %e, "cannot schedule rotation")
            }
        }
    }
    out
}

/// `rotate:NAME`.
pub struct RotateJob {
    config: Arc<Config>,
    name: String,
    store: Store,
    data_dir: PathBuf,
}

impl Task for RotateJob {
    /// None when nothing was due.
    type Output = Option<Rotation>;

    fn run<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, Result<Option<Rotation>, RunError>> {
        Box::pin(async move {
            let cfg = self
                .config
                .secrets
                .iter()
                .find(|s| s.name == self.name)
                .ok_or_else(|| {
                    RunError::Failed(format!("secret {:?} is no longer configured", self.name))
                })?;
            super::rotation_check(&self.store, &self.data_dir, cfg, &ctx.actor, Utc::now())
                .await
                .map_err(RunError::error)
        })
    }

    fn judge(&self, rotation: &Option<Rotation>) -> Result<String, String> {
        match rotation {
            None => Ok("not due".to_string()),
            Some(r) => match &r.hook {
                Some(Err(why)) => Err(format!(
                    "rotated to version {} but the hook failed: {why}",
                    r.version
                )),
                _ => Ok(format!("rotated to version {}", r.version)),
            },
        }
    }
}
