//! The monthly reliability evidence report (`bulwark report --period
//! YYYY-MM`): per-monitor uptime against its SLA, SLO attainment and budget,
//! incidents with durations, backup runs, verifications, drills with RTO/RPO
//! against targets and secret rotations: what a SOC 2 style auditor asks for.
//!
//! [`Report`] is the data model; [`render`] turns it into the versioned
//! JSON document ([`ReportDocument`]), Markdown and self-contained HTML. Gathering
//! ([`gather`]) is the only part that reads the store; the arithmetic
//! ([`Period`], [`uptime_summary`], [`slo_summary`]) is pure and takes plain
//! numbers.

mod document;
mod job;
pub mod render;

pub use document::ReportDocument;

pub use job::job;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use sqlx::Row;

use crate::audit::{self, Filter};
use crate::config::Config;
use crate::store::{Store, StoreError};
use crate::time::Timestamp;

const DAY_SECS: u64 = 86_400;

/// A calendar month in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub year: i32,
    pub month: u32,
}

/// A `--period` that is not `YYYY-MM`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid period {0:?}: expected YYYY-MM with a month from 01 to 12, such as 2026-01")]
pub struct PeriodError(pub String);

impl Period {
    /// Parses `YYYY-MM` strictly (four-digit year, two-digit month).
    ///
    /// # Errors
    /// `PeriodError` naming the value.
    pub fn parse(s: &str) -> Result<Period, PeriodError> {
        let bad = || PeriodError(s.to_string());
        let (y, m) = s.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 || !y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let year: i32 = y.parse().map_err(|_| bad())?;
        let month: u32 = m.parse().map_err(|_| bad())?;
        if !(1..=12).contains(&month) || year < 1970 {
            return Err(bad());
        }
        Ok(Period { year, month })
    }

    /// The first instant of the month.
    pub fn start(&self) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(self.year, self.month, 1, 0, 0, 0)
            .single()
            .unwrap_or(DateTime::UNIX_EPOCH)
    }

    /// The first instant of the next month (exclusive end).
    pub fn end(&self) -> DateTime<Utc> {
        let (y, m) = if self.month == 12 {
            (self.year + 1, 1)
        } else {
            (self.year, self.month + 1)
        };
        Period { year: y, month: m }.start()
    }

    /// The month before this one.
    pub fn previous(&self) -> Period {
        if self.month == 1 {
            Period {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Period {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    pub fn days(&self) -> u32 {
        ((self.end() - self.start()).num_days()).max(0) as u32
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// One day of one monitor.
#[derive(Debug, Clone, PartialEq)]
pub struct DayUptime {
    pub date: NaiveDate,
    pub total: u64,
    pub failures: u64,
    /// None when nothing was measured that day.
    pub uptime: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MonitorUptime {
    pub monitor: String,
    pub total: u64,
    pub failures: u64,
    /// Share of good probes in the month; None without measurements.
    pub uptime: Option<f64>,
    /// The strictest SLO target set on this monitor: its SLA.
    pub sla_target: Option<f64>,
    pub sla_met: Option<bool>,
    pub incidents: usize,
    /// Incident time inside the month.
    pub downtime_seconds: i64,
    pub daily: Vec<DayUptime>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SloSummary {
    pub slo: String,
    pub monitor: String,
    pub target: f64,
    pub total: u64,
    pub bad: u64,
    pub attainment: f64,
    pub budget_total: f64,
    pub budget_consumed: f64,
    pub budget_remaining: f64,
    pub met: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IncidentRow {
    pub id: String,
    pub monitor: String,
    pub opened_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// From opening to resolution (or to the report's end while open).
    pub duration_seconds: i64,
    pub cause: String,
}

/// The runs of one job (`backup:NAME` or `verify:NAME`) in the month.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSummary {
    pub backup: String,
    pub runs: u64,
    pub successes: u64,
    pub failures: u64,
    pub last_outcome: Option<String>,
    pub last_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DrillRow {
    pub drill: String,
    pub started_at: Option<DateTime<Utc>>,
    pub passed: bool,
    pub failed_step: Option<String>,
    pub rto_seconds: Option<f64>,
    pub rto_target_seconds: Option<u64>,
    pub rto_met: Option<bool>,
    pub rpo_seconds: Option<f64>,
    pub rpo_target_seconds: Option<u64>,
    pub rpo_met: Option<bool>,
}

/// A rotation from the audit trail: name, version, when and who; never the value.
#[derive(Debug, Clone, PartialEq)]
pub struct RotationRow {
    pub secret: String,
    pub version: Option<i64>,
    pub at: DateTime<Utc>,
    pub actor: String,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub period: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub generated_at: DateTime<Utc>,
    pub monitors: Vec<MonitorUptime>,
    pub slos: Vec<SloSummary>,
    pub incidents: Vec<IncidentRow>,
    pub backups: Vec<JobSummary>,
    pub verifications: Vec<JobSummary>,
    pub drills: Vec<DrillRow>,
    pub rotations: Vec<RotationRow>,
    /// Storage cost per repository as last listed (`listed_at`), when
    /// cost is configured.
    pub storage: Vec<StorageRow>,
}

/// One repository of a backup in the storage cost section: the `cost`
/// job's latest listing (which, for an old month, may be after it).
#[derive(Debug, Clone, PartialEq)]
pub struct StorageRow {
    pub backup: String,
    pub repository: String,
    pub listed_at: Option<DateTime<Utc>>,
    pub bytes: u64,
    pub classes: Vec<StorageClassRow>,
    pub monthly_cost: f64,
    pub currency: String,
    /// The backup's threshold (it covers all of its repositories).
    pub monthly_threshold: Option<f64>,
    /// The backup, all repositories together, is above it.
    pub over_threshold: bool,
    pub unpriced: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StorageClassRow {
    pub class: String,
    pub objects: u64,
    pub bytes: u64,
    /// Per GB-month; None when no price is configured (counted as 0).
    pub price: Option<f64>,
    pub monthly_cost: f64,
}

/// The report's storage rows from the cost view.
pub fn storage_rows(costs: &[crate::cost::BackupCost]) -> Vec<StorageRow> {
    costs
        .iter()
        .flat_map(|c| {
            c.repositories.iter().map(move |r| StorageRow {
                backup: c.backup.clone(),
                repository: r.repository.clone(),
                listed_at: r.measured_at.map(Timestamp::to_datetime),
                bytes: r.bytes,
                classes: r
                    .classes
                    .iter()
                    .map(|k| StorageClassRow {
                        class: k.class.clone(),
                        objects: k.objects,
                        bytes: k.bytes,
                        price: k.price,
                        monthly_cost: k.monthly,
                    })
                    .collect(),
                monthly_cost: r.monthly,
                currency: c.currency.clone(),
                monthly_threshold: c.monthly_threshold,
                over_threshold: c.over,
                unpriced: r.unpriced.clone(),
            })
        })
        .collect()
}

/// A minute of probes: (start, total, bad).
pub type Minute = (Timestamp, u64, u64);

/// Totals and per-day uptime of one monitor's minutes over `period`.
/// Minutes outside the period are ignored; days without data have no uptime.
pub fn uptime_summary(period: &Period, minutes: &[Minute]) -> (u64, u64, Vec<DayUptime>) {
    let from = Timestamp::from(period.start());
    let to = Timestamp::from(period.end());
    let mut days: Vec<(u64, u64)> = vec![(0, 0); period.days() as usize];
    for &(start, total, bad) in minutes {
        if start < from || start >= to {
            continue;
        }
        let d = &mut days[((start - from).as_secs() / DAY_SECS) as usize];
        d.0 += total;
        d.1 += bad.min(total);
    }
    let (total, failures) = days
        .iter()
        .fold((0, 0), |(t, f), &(dt, df)| (t + dt, f + df));
    let daily = days
        .iter()
        .enumerate()
        .map(|(i, &(t, f))| DayUptime {
            date: (period.start() + chrono::Duration::days(i as i64)).date_naive(),
            total: t,
            failures: f,
            uptime: share_good(t, f),
        })
        .collect();
    (total, failures, daily)
}

fn share_good(total: u64, bad: u64) -> Option<f64> {
    (total > 0).then(|| (total - bad.min(total)) as f64 / total as f64)
}

/// SLO figures for `total` probes of which `bad` failed, against `target`.
/// Nothing measured counts as attained with the whole budget left (the same
/// convention as `slo status`).
pub fn slo_summary(slo: &str, monitor: &str, target: f64, total: u64, bad: u64) -> SloSummary {
    let attainment = share_good(total, bad).unwrap_or(1.0);
    let budget_total = (1.0 - target) * total as f64;
    let budget_consumed = if budget_total > 0.0 {
        bad as f64 / budget_total
    } else if bad > 0 {
        f64::INFINITY
    } else {
        0.0
    };
    SloSummary {
        slo: slo.to_string(),
        monitor: monitor.to_string(),
        target,
        total,
        bad,
        attainment,
        budget_total,
        budget_consumed: if budget_consumed.is_finite() {
            budget_consumed
        } else {
            f64::MAX
        },
        budget_remaining: (1.0 - budget_consumed).max(0.0),
        met: attainment >= target,
    }
}

/// Counts runs per backup for jobs named `prefix` + NAME; `runs` are
/// (job, outcome, started_at) oldest first.
pub fn job_summaries(
    prefix: &str,
    backups: &[String],
    runs: &[(String, String, Timestamp)],
) -> Vec<JobSummary> {
    backups
        .iter()
        .map(|b| {
            let job = format!("{prefix}{b}");
            let mine: Vec<_> = runs.iter().filter(|r| r.0 == job).collect();
            JobSummary {
                backup: b.clone(),
                runs: mine.len() as u64,
                successes: mine.iter().filter(|r| r.1 == "success").count() as u64,
                failures: mine
                    .iter()
                    .filter(|r| r.1 == "failure" || r.1 == "abandoned")
                    .count() as u64,
                last_outcome: mine.last().map(|r| r.1.clone()),
                last_at: mine.last().map(|r| r.2.to_datetime()),
            }
        })
        .collect()
}

fn in_maintenance(windows: &[(Timestamp, Timestamp)], minute: Timestamp) -> bool {
    windows.iter().any(|&(s, e)| minute >= s && minute < e)
}

/// Reads everything the report needs for `period` from the store.
///
/// # Errors
/// On a database error.
pub async fn gather(
    store: &Store,
    config: &Config,
    period: Period,
    now: DateTime<Utc>,
) -> Result<Report, StoreError> {
    let (from_t, to_t) = (
        Timestamp::from(period.start()),
        Timestamp::from(period.end()),
    );
    // Incident rows are clipped in Unix ms, as stored.
    let (from, to) = (from_t.as_millis(), to_t.as_millis());
    // An incident still open is counted up to now, or to the month's end.
    let horizon = to.min(now.timestamp_millis()).max(from);

    let rows = sqlx::query(
        "SELECT id, monitor, opened_at, resolved_at, cause FROM incidents
         WHERE opened_at < $1 AND (resolved_at IS NULL OR resolved_at >= $2) ORDER BY opened_at",
    )
    .bind(to)
    .bind(from)
    .fetch_all(store.pool())
    .await?;
    let mut incidents = Vec::new();
    // Downtime per monitor, clipped to the month.
    let mut downtime: BTreeMap<String, (usize, i64)> = BTreeMap::new();
    for row in &rows {
        let opened: i64 = row.try_get("opened_at")?;
        let resolved: Option<i64> = row.try_get("resolved_at")?;
        let monitor: String = row.try_get("monitor")?;
        let end = resolved.unwrap_or(horizon.max(opened));
        let e = downtime.entry(monitor.clone()).or_default();
        e.0 += 1;
        e.1 += (end.min(to) - opened.max(from)).max(0) / 1000;
        incidents.push(IncidentRow {
            id: row.try_get("id")?,
            monitor,
            opened_at: Timestamp::from_millis(opened).to_datetime(),
            resolved_at: resolved.map(|r| Timestamp::from_millis(r).to_datetime()),
            duration_seconds: (end - opened).max(0) / 1000,
            cause: row.try_get("cause")?,
        });
    }

    let mut minutes_of: BTreeMap<String, Vec<Minute>> = BTreeMap::new();
    let mut monitors = Vec::new();
    for m in &config.monitors {
        let maintenance = crate::slo::maintenance_windows(store, config, &m.name).await?;
        let minutes: Vec<Minute> = crate::uptime::buckets(store, &m.name, from_t)
            .await?
            .into_iter()
            .filter(|b| b.start < to_t && !in_maintenance(&maintenance, b.start))
            .map(|b| (b.start, b.total, b.bad))
            .collect();
        let (total, failures, daily) = uptime_summary(&period, &minutes);
        let sla_target = config
            .slos
            .iter()
            .filter(|s| s.monitor == m.name)
            .map(|s| s.target)
            .fold(None, |acc: Option<f64>, t| {
                Some(acc.map_or(t, |a| a.max(t)))
            });
        let uptime = share_good(total, failures);
        let (n, down) = downtime.get(&m.name).copied().unwrap_or_default();
        monitors.push(MonitorUptime {
            monitor: m.name.clone(),
            total,
            failures,
            uptime,
            sla_target,
            sla_met: sla_target.zip(uptime).map(|(t, u)| u >= t),
            incidents: n,
            downtime_seconds: down,
            daily,
        });
        minutes_of.insert(m.name.clone(), minutes);
    }

    let slos = config
        .slos
        .iter()
        .map(|s| {
            let (total, bad) = minutes_of
                .get(&s.monitor)
                .map(|ms| {
                    ms.iter()
                        .fold((0, 0), |(t, b), m| (t + m.1, b + m.2.min(m.1)))
                })
                .unwrap_or((0, 0));
            slo_summary(&s.name, &s.monitor, s.target, total, bad)
        })
        .collect();

    let rows = sqlx::query(
        "SELECT job, outcome, started_at FROM job_runs
         WHERE started_at >= $1 AND started_at < $2 ORDER BY started_at, id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(store.pool())
    .await?;
    let mut runs = Vec::with_capacity(rows.len());
    for row in &rows {
        runs.push((
            row.try_get::<String, _>("job")?,
            row.try_get::<String, _>("outcome")?,
            Timestamp::from_millis(row.try_get("started_at")?),
        ));
    }
    let names: Vec<String> = config.backups.iter().map(|b| b.name.clone()).collect();

    let drills = crate::drill::between(store, from_t, to_t)
        .await?
        .into_iter()
        .map(|r| DrillRow {
            drill: r.drill,
            started_at: Some(r.started_at),
            passed: r.passed,
            failed_step: r.failed_step,
            rto_seconds: r.rto_seconds,
            rto_target_seconds: r.rto_target_seconds,
            rto_met: r.rto_met,
            rpo_seconds: r.rpo_seconds,
            rpo_target_seconds: r.rpo_target_seconds,
            rpo_met: r.rpo_met,
        })
        .collect();

    // The audit trail is the record of rotations an auditor trusts: it is
    // hash-chained, unlike the secrets table, which keeps only the latest.
    let mut rotations = Vec::new();
    let mut before_seq = None;
    loop {
        let page = audit::query(
            store,
            &Filter {
                action: Some("secret.rotate".to_string()),
                since: Some(period.start()),
                until: Some(period.end()),
                before_seq,
                limit: Some(1000),
                ..Filter::default()
            },
        )
        .await?;
        for rec in &page {
            // `until` may be inclusive; the month's end belongs to the next one.
            if rec.ts >= period.end() {
                continue;
            }
            rotations.push(RotationRow {
                secret: rec.target.clone(),
                version: rec.detail["version"].as_i64(),
                at: rec.ts,
                actor: rec.actor.clone(),
            });
        }
        match page.last() {
            Some(last) if page.len() == 1000 => before_seq = Some(last.seq),
            _ => break,
        }
    }
    rotations.reverse();

    Ok(Report {
        period: period.to_string(),
        from: period.start(),
        to: period.end(),
        generated_at: now,
        monitors,
        slos,
        incidents,
        backups: job_summaries("backup:", &names, &runs),
        verifications: job_summaries("verify:", &names, &runs),
        drills,
        rotations,
        storage: storage_rows(&crate::cost::status(store, config).await?),
    })
}

/// The scheduler's `report` job: the month before `at`, gathered and written
/// as `<data-dir>/reports/report_<YYYY-MM>.{json,html}`. Returns the HTML path.
///
/// # Errors
/// A database or file error, described.
pub async fn write_monthly(
    store: &Store,
    config: &Config,
    data_dir: &std::path::Path,
    at: DateTime<Utc>,
) -> Result<std::path::PathBuf, String> {
    let period = current_period(at).previous();
    let report = gather(store, config, period, Utc::now())
        .await
        .map_err(|e| e.to_string())?;
    let dir = data_dir.join("reports");
    let json = render::json(&report);
    let base = dir.join(format!("report_{period}"));
    let json_path = base.with_extension("json");
    crate::files::write_atomic(&json_path, json.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", json_path.display()))?;
    let html_path = base.with_extension("html");
    crate::files::write_atomic(&html_path, render::html(&report).as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", html_path.display()))?;
    Ok(html_path)
}

/// Today's month, for defaults and messages.
pub fn current_period(now: DateTime<Utc>) -> Period {
    Period {
        year: now.year(),
        month: now.month(),
    }
}
