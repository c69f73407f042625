//! `bulwark ops check`: one pass/fail table over everything an on-call
//! engineer wants to know before trusting the system (`make ops-check`):
//! config, a probe pass, SLO budgets, backup freshness and
//! verification (and each copy's, `repos = [...]`), drills, secret ages
//! and the audit chain.
//!
//! Gathering is I/O ([`run`]); judging is pure ([`freshness`] and the row
//! builders take `now` as a parameter), so the rules are tested with plain
//! values.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::{format_duration, Config};
use crate::drill::DrillReport;
use crate::scheduler::runs::{self, JobRun, RunOutcome};
use crate::scheduler::{freshness, Freshness, Schedule};
use crate::store::{Store, StoreError};
use crate::time::Timestamp;

/// How late a scheduled backup (or its verification) may be before the
/// check fails: backups of large trees take hours, and a check run while
/// one is in flight must not flap.
pub const BACKUP_SLACK: Duration = Duration::from_secs(2 * 3600);
pub use crate::drill::DRILL_SLACK;

/// One line of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRow {
    /// `config`, `monitor`, `slo`, `backup`, `verify`, `copy`, `cost`, `drill`, `secret`, `audit`.
    pub area: &'static str,
    /// What in that area: a monitor, SLO, backup, drill or secret name.
    pub name: String,
    pub ok: bool,
    /// Why, in a few words; never a secret value.
    pub detail: String,
}

impl CheckRow {
    pub fn new(area: &'static str, name: &str, ok: bool, detail: impl Into<String>) -> CheckRow {
        CheckRow {
            area,
            name: name.to_string(),
            ok,
            detail: detail.into(),
        }
    }
}

/// Whether every row passed.
pub fn all_ok(rows: &[CheckRow]) -> bool {
    rows.iter().all(|r| r.ok)
}

fn age(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let secs = (now - t).num_seconds().max(0) as u64;
    format!("{} ago", format_duration(Duration::from_secs(secs)))
}

/// The row for a job's runs (`backup:NAME`, `verify:NAME`).
///
/// A configured job that never ran fails: a backup nobody ever took protects
/// nothing, and an SRE running this check wants that on the table rather
/// than a green row. `never_ran_ok` exists for verification of a backup with
/// no `verify` section, where no run is the configured state.
pub fn job_row(
    area: &'static str,
    name: &str,
    history: &[JobRun],
    schedule: Option<&Schedule>,
    slack: Duration,
    never_ran_ok: bool,
    now: DateTime<Utc>,
) -> CheckRow {
    let finished: Vec<&JobRun> = history
        .iter()
        .filter(|r| r.outcome != RunOutcome::Running)
        .collect();
    let Some(last) = finished.first() else {
        let what = if area == "verify" {
            "no verification recorded"
        } else {
            "no backup run recorded"
        };
        return if never_ran_ok {
            CheckRow::new(area, name, true, format!("{what} (none configured)"))
        } else {
            CheckRow::new(area, name, false, what)
        };
    };
    if last.outcome != RunOutcome::Success {
        return CheckRow::new(
            area,
            name,
            false,
            format!(
                "last run {} {}: {}",
                last.outcome.as_str(),
                age(now, last.started_at),
                last.summary
            ),
        );
    }
    let last_success = finished
        .iter()
        .find(|r| r.outcome == RunOutcome::Success)
        .map(|r| r.started_at);
    match freshness(schedule, last_success, slack, now) {
        Freshness::Stale { due } => CheckRow::new(
            area,
            name,
            false,
            format!(
                "last success {}; the run due {} has not succeeded",
                age(now, last.started_at),
                due.format("%Y-%m-%d %H:%M:%SZ")
            ),
        ),
        _ => CheckRow::new(
            area,
            name,
            true,
            format!("last success {}", age(now, last.started_at)),
        ),
    }
}

/// The row for a drill from its latest report and the
/// latest passing one. A configured drill that never ran fails: the drill is
/// the evidence that recovery works, and there is none.
pub fn drill_row(
    name: &str,
    latest: Option<&DrillReport>,
    last_pass: Option<DateTime<Utc>>,
    schedule: Option<&Schedule>,
    now: DateTime<Utc>,
) -> CheckRow {
    let Some(latest) = latest else {
        return CheckRow::new("drill", name, false, "no drill run recorded");
    };
    let when = age(now, latest.started_at);
    if !latest.passed {
        let step = latest.failed_step.as_deref().unwrap_or("targets");
        return CheckRow::new(
            "drill",
            name,
            false,
            format!("last drill failed at {step} {when}"),
        );
    }
    match freshness(schedule, last_pass, DRILL_SLACK, now) {
        Freshness::Stale { due } => CheckRow::new(
            "drill",
            name,
            false,
            format!(
                "last pass {when}; the drill due {} has not passed",
                due.format("%Y-%m-%d %H:%M:%SZ")
            ),
        ),
        _ => CheckRow::new("drill", name, true, format!("passed {when}")),
    }
}

/// The row of one copy of a backup (`repos = [...]`): its newest
/// snapshot (read from the copy itself, so a copy someone emptied shows)
/// must be fresh against the backup's schedule, and its latest
/// verification, when verification is configured, must have passed.
pub fn copy_row(
    name: &str,
    latest: Result<Option<DateTime<Utc>>, String>,
    verified: Option<(DateTime<Utc>, bool)>,
    verify_configured: bool,
    schedule: Option<&Schedule>,
    now: DateTime<Utc>,
) -> CheckRow {
    let latest = match latest {
        Err(e) => return CheckRow::new("copy", name, false, format!("cannot read: {e}")),
        Ok(None) => return CheckRow::new("copy", name, false, "no snapshot in this copy"),
        Ok(Some(t)) => t,
    };
    let mut ok = true;
    let mut detail = format!("latest snapshot {}", age(now, latest));
    if let Freshness::Stale { due } = freshness(schedule, Some(latest), BACKUP_SLACK, now) {
        ok = false;
        detail.push_str(&format!(
            "; the backup due {} is not in this copy",
            due.format("%Y-%m-%d %H:%M:%SZ")
        ));
    }
    match verified {
        Some((at, true)) => detail.push_str(&format!("; verified {}", age(now, at))),
        Some((at, false)) => {
            ok = false;
            detail.push_str(&format!("; verification failed {}", age(now, at)));
        }
        None if verify_configured => {
            ok = false;
            detail.push_str("; no verification recorded");
        }
        None => {}
    }
    CheckRow::new("copy", name, ok, detail)
}

/// The storage cost row of a backup, from the `cost` job's cache: fails
/// above the monthly threshold or when a repository's latest listing
/// failed. Never measured passes with a note (a fresh install, before the
/// first `cost` run); classes without a price are named.
pub fn cost_row(c: &crate::cost::BackupCost, now: DateTime<Utc>) -> CheckRow {
    use crate::cost::format_amount;
    let failed: Vec<String> = c
        .repositories
        .iter()
        .filter_map(|r| r.error.as_ref().map(|e| format!("{}: {e}", r.repository)))
        .collect();
    if !failed.is_empty() {
        return CheckRow::new(
            "cost",
            &c.backup,
            false,
            format!("cannot list {}", failed.join("; ")),
        );
    }
    if c.never_measured() {
        return CheckRow::new(
            "cost",
            &c.backup,
            true,
            "never measured (see the `cost` job)",
        );
    }
    let threshold = match c.monthly_threshold {
        Some(t) if c.over => format!(", above the threshold of {}", format_amount(t, &c.currency)),
        Some(t) => format!(" (threshold {})", format_amount(t, &c.currency)),
        None => " (no threshold)".to_string(),
    };
    let oldest = c
        .repositories
        .iter()
        .filter_map(|r| r.measured_at)
        .min()
        .map(Timestamp::to_datetime);
    let mut detail = format!(
        "{}/month for {}{threshold}",
        format_amount(c.monthly, &c.currency),
        crate::cost::format_bytes(c.bytes)
    );
    if let Some(t) = oldest {
        detail.push_str(&format!(", listed {}", age(now, t)));
    }
    let unpriced = c.unpriced();
    if !unpriced.is_empty() {
        detail.push_str(&format!(
            "; no price for {} (counted as 0)",
            unpriced.join(", ")
        ));
    }
    CheckRow::new("cost", &c.backup, !c.over, detail)
}

fn cron(expr: Option<&str>, tz: Option<&str>) -> Option<Schedule> {
    expr.and_then(|e| Schedule::cron(e, tz).ok())
}

/// Every row: the config (loaded, so valid), then probes each monitor once,
/// evaluates SLOs, reads job runs, drill reports and secret metadata, and
/// verifies the audit chain.
///
/// # Errors
/// On a database error.
pub async fn run(
    store: &Store,
    config: &Config,
    data_dir: &Path,
    now: DateTime<Utc>,
) -> Result<Vec<CheckRow>, StoreError> {
    let source = config.source.as_ref().map_or_else(
        || "embedded default".to_string(),
        |p| p.display().to_string(),
    );
    let mut rows = vec![CheckRow::new("config", &source, true, "valid")];
    for r in crate::engine::check_all(store, config).await {
        let detail = match (&r.error, r.ok) {
            (_, true) => format!("up in {} ms", r.latency.as_millis()),
            (Some(e), false) => format!("down: {e}"),
            (None, false) => "down".to_string(),
        };
        rows.push(CheckRow::new("monitor", &r.monitor, r.ok, detail));
    }
    let threshold = config.server.strict_budget_threshold;
    for s in crate::slo::status_all(store, config, now.into()).await? {
        // No measurements yet is a fresh install, not a breach.
        let row = if s.total == 0 {
            CheckRow::new("slo", &s.name, true, "no measurements yet")
        } else {
            CheckRow::new(
                "slo",
                &s.name,
                s.budget_consumed < threshold,
                format!(
                    "{:.1}% of error budget used (limit {:.0}%), attainment {:.3}%",
                    s.budget_consumed * 100.0,
                    threshold * 100.0,
                    s.attainment * 100.0
                ),
            )
        };
        rows.push(row);
    }
    for b in &config.backups {
        let tz = b.timezone.as_deref();
        let history = runs::history(store, &format!("backup:{}", b.name), 50).await?;
        rows.push(job_row(
            "backup",
            &b.name,
            &history,
            cron(b.schedule.as_deref(), tz).as_ref(),
            BACKUP_SLACK,
            false,
            now,
        ));
        let history = runs::history(store, &format!("verify:{}", b.name), 50).await?;
        let verify_schedule = b
            .verify
            .as_ref()
            .and_then(|v| cron(v.schedule.as_deref(), tz));
        rows.push(job_row(
            "verify",
            &b.name,
            &history,
            verify_schedule.as_ref(),
            BACKUP_SLACK,
            b.verify.is_none(),
            now,
        ));
        for copy in &b.copies {
            let (cfg, repo) = (b.clone(), copy.clone());
            let latest = tokio::task::spawn_blocking(move || {
                crate::backups::snapshots_at(&cfg, &repo)
                    .map(|snaps| snaps.iter().map(|(_, s)| s.time.with_timezone(&Utc)).max())
                    .map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|e| Err(format!("task failed: {e}")));
            rows.push(copy_row(
                &format!("{} -> {copy}", b.name),
                latest,
                crate::backups::last_verification(data_dir, &b.name, copy),
                b.verify.is_some(),
                cron(b.schedule.as_deref(), tz).as_ref(),
                now,
            ));
        }
    }
    for c in crate::cost::status(store, config).await? {
        rows.push(cost_row(&c, now));
    }
    for d in &config.drills {
        let tz = config.backup(&d.backup).and_then(|b| b.timezone.as_deref());
        let (latest, last_pass) = crate::drill::latest_and_last_pass(store, &d.name).await?;
        rows.push(drill_row(
            &d.name,
            latest.as_ref(),
            last_pass,
            cron(d.schedule.as_deref(), tz).as_ref(),
            now,
        ));
    }
    for s in crate::secrets::list(store, data_dir, &config.secrets, now).await? {
        let max = format_duration(s.max_age);
        let row = match s.age {
            _ if !s.present => CheckRow::new("secret", &s.name, false, "not generated yet"),
            None => CheckRow::new("secret", &s.name, false, "no rotation recorded"),
            Some(a) if a > s.max_age => CheckRow::new(
                "secret",
                &s.name,
                false,
                format!(
                    "{} old, over max_age {max}",
                    format_duration(Duration::from_secs(a.as_secs()))
                ),
            ),
            Some(a) => CheckRow::new(
                "secret",
                &s.name,
                true,
                format!(
                    "{} old (max_age {max})",
                    format_duration(Duration::from_secs(a.as_secs()))
                ),
            ),
        };
        rows.push(row);
    }
    let v = crate::audit::verify(store).await?;
    rows.push(match &v.first_break {
        None => CheckRow::new(
            "audit",
            "chain",
            true,
            format!("intact, {} records", v.records),
        ),
        Some(b) => CheckRow::new(
            "audit",
            "chain",
            false,
            format!("broken at record {}: {}", b.seq, b.reason),
        ),
    });
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn freshness_table() {
        let daily = Schedule::cron("0 3 * * *", None).unwrap();
        let slack = Duration::from_secs(2 * 3600);
        let check = |last: Option<&str>, now: &str, expected: Freshness| {
            assert_eq!(
                freshness(Some(&daily), last.map(t), slack, t(now)),
                expected,
                "last {last:?} now {now}"
            );
        };
        // The 03:00 run is still within its slack at 04:00: yesterday's counts.
        check(
            Some("2026-01-01T03:00:05Z"),
            "2026-01-02T04:00:00Z",
            Freshness::Fresh,
        );
        // At 05:30 today's run is due and missing.
        check(
            Some("2026-01-01T03:00:05Z"),
            "2026-01-02T05:30:00Z",
            Freshness::Stale {
                due: t("2026-01-02T03:00:00Z"),
            },
        );
        check(
            None,
            "2026-01-02T05:30:00Z",
            Freshness::Stale {
                due: t("2026-01-02T03:00:00Z"),
            },
        );
        check(
            Some("2026-01-02T03:10:00Z"),
            "2026-01-02T05:30:00Z",
            Freshness::Fresh,
        );
        assert_eq!(
            freshness(None, None, slack, t("2026-01-02T05:30:00Z")),
            Freshness::Unscheduled
        );
    }

    #[test]
    fn a_configured_backup_never_run_fails_but_an_unconfigured_verify_passes() {
        let now = t("2026-01-02T05:30:00Z");
        let row = job_row("backup", "app", &[], None, BACKUP_SLACK, false, now);
        assert!(!row.ok);
        assert_eq!(row.detail, "no backup run recorded");
        let row = job_row("verify", "app", &[], None, BACKUP_SLACK, true, now);
        assert!(row.ok, "{row:?}");
        assert!(drill_row("weekly", None, None, None, now)
            .detail
            .contains("no drill run"));
    }

    #[test]
    fn cost_rows() {
        use crate::cost::{BackupCost, RepositoryCost};
        let now = t("2026-01-02T05:30:00Z");
        let repo =
            |measured: Option<&str>, error: Option<&str>, unpriced: &[&str]| RepositoryCost {
                repository: "/srv/repo".into(),
                measured_at: measured.map(|s| t(s).into()),
                error: error.map(str::to_string),
                assumed: false,
                classes: Vec::new(),
                bytes: 2_500_000_000,
                monthly: 0.0,
                unpriced: unpriced.iter().map(|s| s.to_string()).collect(),
            };
        let cost = |monthly: f64, threshold: Option<f64>, repos: Vec<RepositoryCost>| BackupCost {
            backup: "app".into(),
            currency: "USD".into(),
            monthly_threshold: threshold,
            bytes: repos.iter().map(|r| r.bytes).sum(),
            over: crate::cost::over_threshold(monthly, threshold),
            monthly,
            repositories: repos,
        };
        let listed = Some("2026-01-02T05:00:00Z");
        let check = |c: BackupCost, ok: bool, detail: &str| {
            let row = cost_row(&c, now);
            assert_eq!((row.area, row.name.as_str()), ("cost", "app"));
            assert_eq!(row.ok, ok, "{row:?}");
            assert_eq!(row.detail, detail);
        };
        check(
            cost(12.5, Some(10.0), vec![repo(listed, None, &[])]),
            false,
            "12.50 USD/month for 2.50 GB, above the threshold of 10.00 USD, listed 30m ago",
        );
        check(
            cost(10.0, Some(10.0), vec![repo(listed, None, &["local"])]),
            true,
            "10.00 USD/month for 2.50 GB (threshold 10.00 USD), listed 30m ago; no price for local (counted as 0)",
        );
        check(
            cost(1.0, None, vec![repo(listed, None, &[])]),
            true,
            "1.00 USD/month for 2.50 GB (no threshold), listed 30m ago",
        );
        check(
            cost(0.0, Some(1.0), vec![repo(None, None, &[])]),
            true,
            "never measured (see the `cost` job)",
        );
        check(
            cost(
                0.0,
                Some(1.0),
                vec![repo(listed, Some("NotFound: no bucket"), &[])],
            ),
            false,
            "cannot list /srv/repo: NotFound: no bucket",
        );
    }
}
