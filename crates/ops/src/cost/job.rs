//! `cost`: lists every repository of every `[[backup]]` (its `repo` and
//! each copy), caches the result, and raises or resolves
//! `StorageCostHigh` per backup. Registered when cost is configured.

use std::collections::BTreeMap;
use std::sync::Arc;

use bulwark_repo::Cancel;

use crate::alert::{Alert, AlertStatus};
use crate::config::{AlertSeverity, Config};
use crate::scheduler::{BoxFuture, Job, JobContext, MissedRuns, RunError, Schedule, Task};
use crate::store::{Store, StoreError};
use crate::time::Timestamp;

use super::store::{record_failure, record_usage, ClassBytes};
use super::{format_amount, BackupCost};

/// The `cost` job, when `[cost]` or a backup's `cost` is configured.
pub fn job(config: &Arc<Config>, store: &Store) -> Option<Job> {
    if !config.cost.enabled || config.backups.is_empty() {
        return None;
    }
    let schedule = Schedule::every(config.cost.interval)
        .map_err(|e| tracing::error!(error = %e, "cannot schedule the cost job"))
        .ok()?;
    Some(Job {
        name: "cost".to_string(),
        schedule: Some(schedule),
        missed: MissedRuns::Skip,
        action: Arc::new(CostJob {
            config: config.clone(),
            store: store.clone(),
        }),
    })
}

struct CostJob {
    config: Arc<Config>,
    store: Store,
}

/// What one pass found.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Every backup's cost after this pass (failed listings keep their
    /// last good figures).
    pub costs: Vec<BackupCost>,
    /// (backup, repository label, error) of listings that failed now.
    pub failures: Vec<(String, String, String)>,
}

/// Lists every repository once, records each listing, then raises
/// `StorageCostHigh` for each backup above its threshold and resolves it
/// for the others. A listing that fails is recorded and named; the
/// others still count.
///
/// # Errors
/// On a database error.
pub async fn measure(
    store: &Store,
    config: &Config,
    cancel: &Cancel,
    now: Timestamp,
) -> Result<Measured, StoreError> {
    let mut failures = Vec::new();
    for b in &config.backups {
        for repo in super::repositories(b) {
            if cancel.is_cancelled() {
                return Ok(Measured {
                    costs: super::status(store, config).await?,
                    failures,
                });
            }
            // The backup's own `credentials`, as its backups and checks
            // use them; read at each pass (a file source may rotate).
            let (r, b2) = (repo.to_string(), b.clone());
            let listed = tokio::task::spawn_blocking(move || {
                let options = b2.backend_options()?;
                bulwark_repo::usage(&r, &options).map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| format!("listing task failed: {e}"))
            .and_then(|r| r);
            match listed {
                Ok(usage) => {
                    let by_class: BTreeMap<String, ClassBytes> = usage
                        .by_class
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                ClassBytes {
                                    objects: v.objects,
                                    bytes: v.bytes,
                                },
                            )
                        })
                        .collect();
                    record_usage(store, &b.name, repo, &by_class, usage.assumed, now).await?;
                }
                Err(e) => {
                    // Errors of the repository engine name no credential;
                    // URLs in them are cut to their origin all the same.
                    let e = crate::redact::urls_in(&e);
                    tracing::warn!(backup = %b.name, repository = %super::repository_label(repo), error = %e, "cannot list repository for its storage cost");
                    record_failure(store, &b.name, repo, &e, now).await?;
                    failures.push((b.name.clone(), super::repository_label(repo), e));
                }
            }
        }
    }
    let costs = super::status(store, config).await?;
    for c in &costs {
        let alert = alert(c, now);
        if let Err(e) = crate::alert::notify(store, config, &alert, now).await {
            tracing::error!(backup = %c.backup, error = %e, "cannot raise or resolve the storage cost alert");
        }
    }
    Ok(Measured { costs, failures })
}

/// `StorageCostHigh` for `c`: firing above the threshold, else resolved.
/// Its `monitor` label is `cost:BACKUP`, as job alerts name their job.
pub fn alert(c: &BackupCost, now: Timestamp) -> Alert {
    let threshold = c
        .monthly_threshold
        .map(|t| format_amount(t, &c.currency))
        .unwrap_or_else(|| "none".to_string());
    let mut a = Alert::new(
        super::ALERT_NAME,
        &format!("cost:{}", c.backup),
        "storage",
        AlertSeverity::Warning,
        format!(
            "storage of backup {} costs {} a month, above its threshold of {threshold}",
            c.backup,
            format_amount(c.monthly, &c.currency)
        ),
        now,
    );
    a.tags = vec!["cost".to_string()];
    if !c.over {
        a.status = AlertStatus::Resolved;
        a.ended_at = Some(now);
    }
    a
}

impl Task for CostJob {
    type Output = Measured;

    fn run<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, Result<Measured, RunError>> {
        Box::pin(async move {
            let m = measure(&self.store, &self.config, &ctx.cancel, Timestamp::now())
                .await
                .map_err(RunError::error)?;
            if ctx.cancel.is_cancelled() {
                return Err(RunError::Cancelled);
            }
            Ok(m)
        })
    }

    /// Above a threshold is the alert's business, not a failed run (a
    /// failed run would alert a second time); a listing that failed is.
    fn judge(&self, m: &Measured) -> Result<String, String> {
        let summary = m
            .costs
            .iter()
            .map(|c| {
                if c.never_measured() {
                    return format!("{}: not measured", c.backup);
                }
                let mut s = format!(
                    "{}: {}/month",
                    c.backup,
                    format_amount(c.monthly, &c.currency)
                );
                if c.over {
                    s.push_str(" (over threshold)");
                }
                s
            })
            .collect::<Vec<_>>()
            .join("; ");
        if m.failures.is_empty() {
            Ok(summary)
        } else {
            let failed = m
                .failures
                .iter()
                .map(|(b, r, e)| format!("{b} {r}: {e}"))
                .collect::<Vec<_>>()
                .join("; ");
            Err(format!("cannot list: {failed}; {summary}"))
        }
    }
}
