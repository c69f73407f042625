//! When jobs run: cron expressions (in UTC or an IANA zone) and fixed
//! intervals. Everything here is pure and takes the time as a parameter, so
//! cron edge cases, missed runs and catch-up are tested with plain values.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};

/// A job's timetable.
#[derive(Debug, Clone)]
pub enum Schedule {
    Cron {
        expr: String,
        timezone: Option<chrono_tz::Tz>,
        cron: Box<croner::Cron>,
    },
    /// Every `Duration`, on multiples of it since the Unix epoch, so that
    /// every instance computes the same slots (and the store's unique
    /// `(job, scheduled_at)` dedupes them).
    Every(Duration),
}

impl Schedule {
    /// A cron schedule: 5 fields, 6 with seconds first, or a macro such as
    /// `@daily`; evaluated in `timezone` (an IANA name), UTC when None.
    ///
    /// # Errors
    /// An unparsable expression or unknown zone, described.
    pub fn cron(expr: &str, timezone: Option<&str>) -> Result<Schedule, String> {
        let cron = croner::Cron::from_str(expr.trim())
            .map_err(|e| format!("invalid cron expression {expr:?}: {e}"))?;
        let timezone = match timezone {
            None => None,
            Some(name) => Some(
                chrono_tz::Tz::from_str(name).map_err(|_| format!("unknown time zone {name:?}"))?,
            ),
        };
        Ok(Schedule::Cron {
            expr: expr.trim().to_string(),
            timezone,
            cron: Box::new(cron),
        })
    }

    /// A fixed interval; at least one second.
    ///
    /// # Errors
    /// For intervals under a second.
    pub fn every(interval: Duration) -> Result<Schedule, String> {
        if interval < Duration::from_secs(1) {
            return Err("interval must be at least 1s".to_string());
        }
        Ok(Schedule::Every(interval))
    }

    /// How it reads in `jobs list`.
    pub fn describe(&self) -> String {
        match self {
            Schedule::Cron { expr, timezone, .. } => match timezone {
                Some(tz) => format!("{expr} ({tz})"),
                None => format!("{expr} (UTC)"),
            },
            Schedule::Every(d) => format!("every {}", crate::config::format_duration(*d)),
        }
    }

    /// The first occurrence strictly after `t`; None when there is none
    /// (a cron that can never match, such as `0 0 30 2 *`).
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(d) => {
                let step = i64::try_from(d.as_millis()).ok()?;
                let ms = t.timestamp_millis();
                let next = (ms.div_euclid(step) + 1).checked_mul(step)?;
                DateTime::from_timestamp_millis(next)
            }
            Schedule::Cron { cron, timezone, .. } => {
                // Croner works in whole seconds: start from the second that
                // contains `t`, exclusive, which is strictly after `t`.
                let start = t.trunc_subsecs(0);
                match timezone {
                    None => cron.find_next_occurrence(&start, false).ok(),
                    Some(tz) => cron
                        .find_next_occurrence(&start.with_timezone(tz), false)
                        .ok()
                        .map(|d| d.with_timezone(&Utc)),
                }
            }
        }
    }

    /// The latest occurrence at or before `t`.
    pub fn latest_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(d) => {
                let step = i64::try_from(d.as_millis()).ok()?;
                let ms = t.timestamp_millis();
                DateTime::from_timestamp_millis(ms.div_euclid(step).checked_mul(step)?)
            }
            Schedule::Cron { cron, timezone, .. } => {
                let start = t.trunc_subsecs(0);
                match timezone {
                    None => cron.find_previous_occurrence(&start, true).ok(),
                    Some(tz) => cron
                        .find_previous_occurrence(&start.with_timezone(tz), true)
                        .ok()
                        .map(|d| d.with_timezone(&Utc)),
                }
            }
        }
    }
}

/// What to do about occurrences that passed while Bulwark was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissedRuns {
    /// Wait for the next occurrence (frequent jobs: the next one is soon).
    Skip,
    /// Run once at start, however many were missed (backups, verifications,
    /// drills, rotations: skipping one leaves a gap in the evidence).
    RunOnce,
}

/// At start: the occurrence to run now because it was missed, if any.
///
/// `last_scheduled` is the slot of the job's latest recorded run. A job that
/// never ran has missed nothing (it was just configured); several missed
/// occurrences make one run, for the latest of them.
pub fn missed_slot(
    schedule: &Schedule,
    policy: MissedRuns,
    last_scheduled: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if policy == MissedRuns::Skip {
        return None;
    }
    let last = last_scheduled?;
    let latest = schedule.latest_at_or_before(now)?;
    (latest > last).then_some(latest)
}

/// One step of the scheduler's timeline for one job: when `next` has come,
/// the slot to run and the following `next`.
///
/// The following occurrence is taken after `now`, not after the slot, so a
/// scheduler that was delayed (suspend, overload) runs one late slot
/// instead of a burst of every slot it slept through.
pub fn tick(
    schedule: &Schedule,
    next: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    match next {
        Some(slot) if slot <= now => (Some(slot), schedule.next_after(now)),
        other => (None, other),
    }
}
/// Whether the last success of a scheduled thing is recent enough.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    /// It succeeded at or after the latest slot that is at least `slack` old.
    Fresh,
    /// The slot at `due` (at least `slack` ago) has no success after it.
    Stale { due: DateTime<Utc> },
    /// No schedule: nothing is ever late.
    Unscheduled,
}

/// Judges `last_success` against `schedule`: the run due for the latest slot
/// at least `slack` before `now` must have succeeded. Comparing against that
/// slot, not a "period", works for irregular crons (`0 3 * * 1-5`) too.
pub fn freshness(
    schedule: Option<&Schedule>,
    last_success: Option<DateTime<Utc>>,
    slack: Duration,
    now: DateTime<Utc>,
) -> Freshness {
    let Some(schedule) = schedule else {
        return Freshness::Unscheduled;
    };
    let slack = chrono::Duration::from_std(slack).unwrap_or(chrono::Duration::zero());
    let Some(due) = schedule.latest_at_or_before(now - slack) else {
        return Freshness::Unscheduled;
    };
    match last_success {
        Some(t) if t >= due => Freshness::Fresh,
        _ => Freshness::Stale { due },
    }
}
