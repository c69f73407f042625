//! SLO math: attainment, error budget, burn rates, exhaustion forecast and
//! the multi-window, multi-burn-rate alert rules. Pure: it takes per-minute
//! counts, maintenance windows and "now" as values, so every number here is
//! tested with plain inputs and nothing sleeps.

pub(crate) mod config;
mod evaluate;
mod job;
mod status;

#[cfg(test)]
mod tests;

use std::time::Duration;

use chrono::{Datelike, TimeZone, Utc};

use crate::config::{AlertSeverity, BurnRateRule, Calendar, SloConfig};
use crate::time::Timestamp;

pub use evaluate::evaluate_all;
pub(crate) use evaluate::{evaluate_rolled, slo_json};
pub use job::job;
pub use status::{all as status_all, maintenance_windows, strict_failures};

/// SLO math counts the uptime store's per-minute buckets.
pub use crate::uptime::Bucket;

pub const BUCKET: Duration = Duration::from_secs(60);

/// The windows burn rates are reported over.
pub const BURN_WINDOWS: [(&str, Duration); 6] = [
    ("5m", Duration::from_secs(300)),
    ("30m", Duration::from_secs(1800)),
    ("1h", Duration::from_secs(3600)),
    ("6h", Duration::from_secs(6 * 3600)),
    ("1d", Duration::from_secs(86_400)),
    ("3d", Duration::from_secs(3 * 86_400)),
];

/// The users' original rule: alert when more than this share of the budget is gone.
pub const BUDGET_ALERT_THRESHOLD: f64 = 0.8;

/// An SLO evaluated at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct SloStatus {
    pub name: String,
    pub monitor: String,
    pub target: f64,
    pub window_start: Timestamp,
    pub now: Timestamp,
    /// Probes counted in the window (maintenance excluded).
    pub total: u64,
    pub bad: u64,
    /// Share of good probes; 1 when nothing was measured.
    pub attainment: f64,
    /// Failures the window may hold: (1 - target) x total.
    pub budget_total: f64,
    /// Share of the budget used: error rate / (1 - target). May exceed 1.
    pub budget_consumed: f64,
    /// 1 - consumed, floored at 0.
    pub budget_remaining: f64,
    /// (label, burn rate) over each of `BURN_WINDOWS`.
    pub burn_rates: Vec<(&'static str, f64)>,
    /// When the remaining budget runs out at the last hour's burn rate.
    pub exhaustion_at: Option<Timestamp>,
    /// The alert rules firing now.
    pub firing: Vec<FiringRule>,
}

/// A burn-rate rule (or the budget rule) that fires.
#[derive(Debug, Clone, PartialEq)]
pub struct FiringRule {
    /// Stable id, part of the alert fingerprint: `burn:1h:5m:14.4` or `budget:0.8`.
    pub id: String,
    pub severity: AlertSeverity,
    pub summary: String,
}

fn overlaps(b: &Bucket, windows: &[(Timestamp, Timestamp)]) -> bool {
    windows
        .iter()
        .any(|&(s, e)| b.start < e && s < b.start + BUCKET)
}

/// (total, bad) over buckets starting in `[from, to)`, maintenance excluded.
fn count(
    buckets: &[Bucket],
    maintenance: &[(Timestamp, Timestamp)],
    from: Timestamp,
    to: Timestamp,
) -> (u64, u64) {
    buckets
        .iter()
        .filter(|b| b.start >= from && b.start < to && !overlaps(b, maintenance))
        .fold((0, 0), |(t, f), b| (t + b.total, f + b.bad))
}

/// Error rate over the last `window` divided by the allowed error rate.
pub fn burn_rate(
    buckets: &[Bucket],
    maintenance: &[(Timestamp, Timestamp)],
    target: f64,
    window: Duration,
    now: Timestamp,
) -> f64 {
    let (total, bad) = count(buckets, maintenance, now - window, now + MS);
    if total == 0 {
        return 0.0;
    }
    (bad as f64 / total as f64) / (1.0 - target)
}

/// One millisecond: `[from, now + MS)` is the window up to and including now.
const MS: Duration = Duration::from_millis(1);

/// Where the SLO's window starts at `now`.
pub fn window_start(slo: &SloConfig, now: Timestamp) -> Timestamp {
    match slo.calendar {
        Some(Calendar::Month) => {
            let t = now.to_datetime();
            Utc.with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0)
                .single()
                .map_or(now, Timestamp::from)
        }
        None => now - slo.window,
    }
}

fn rule_id(r: &BurnRateRule) -> String {
    format!(
        "burn:{}:{}:{}",
        crate::config::format_duration(r.long_window),
        crate::config::format_duration(r.short_window),
        r.burn_rate
    )
}

/// Evaluates `slo` over `buckets` at `now`, leaving out every bucket that
/// overlaps one of the `maintenance` windows (`[start, end)`).
pub fn evaluate(
    slo: &SloConfig,
    buckets: &[Bucket],
    maintenance: &[(Timestamp, Timestamp)],
    now: Timestamp,
) -> SloStatus {
    let start = window_start(slo, now);
    let (total, bad) = count(buckets, maintenance, start, now + MS);
    let allowed = 1.0 - slo.target;
    let error_rate = if total == 0 {
        0.0
    } else {
        bad as f64 / total as f64
    };
    let consumed = error_rate / allowed;
    let remaining = (1.0 - consumed).max(0.0);
    let burn_rates: Vec<(&'static str, f64)> = BURN_WINDOWS
        .iter()
        .map(|(label, w)| (*label, burn_rate(buckets, maintenance, slo.target, *w, now)))
        .collect();
    let hourly = burn_rate(
        buckets,
        maintenance,
        slo.target,
        Duration::from_secs(3600),
        now,
    );
    let window_ms = match slo.calendar {
        // A calendar month's budget spans the whole month, not the part so far.
        Some(Calendar::Month) => 30 * 86_400_000,
        None => i64::try_from(slo.window.as_millis()).unwrap_or(i64::MAX),
    };
    // At burn rate 1 a full budget lasts exactly one window, so what is left
    // lasts remaining x window / burn rate.
    let exhaustion_at = (hourly > 0.0 && remaining > 0.0)
        .then(|| now + Duration::from_millis((remaining * window_ms as f64 / hourly) as u64))
        .or_else(|| (remaining <= 0.0 && total > 0).then_some(now));

    let mut firing = Vec::new();
    for rule in &slo.alerts {
        let long = burn_rate(buckets, maintenance, slo.target, rule.long_window, now);
        let short = burn_rate(buckets, maintenance, slo.target, rule.short_window, now);
        if long >= rule.burn_rate && short >= rule.burn_rate {
            firing.push(FiringRule {
                id: rule_id(rule),
                severity: rule.severity,
                summary: format!(
                    "{} is burning its error budget at {:.1}x over {} and {:.1}x over {} (threshold {}x)",
                    slo.name,
                    long,
                    crate::config::format_duration(rule.long_window),
                    short,
                    crate::config::format_duration(rule.short_window),
                    rule.burn_rate
                ),
            });
        }
    }
    if consumed > BUDGET_ALERT_THRESHOLD {
        firing.push(FiringRule {
            id: format!("budget:{BUDGET_ALERT_THRESHOLD}"),
            severity: AlertSeverity::Warning,
            summary: format!(
                "{} has consumed {:.0}% of its error budget",
                slo.name,
                consumed * 100.0
            ),
        });
    }

    SloStatus {
        name: slo.name.clone(),
        monitor: slo.monitor.clone(),
        target: slo.target,
        window_start: start,
        now,
        total,
        bad,
        attainment: 1.0 - error_rate,
        budget_total: allowed * total as f64,
        budget_consumed: consumed,
        budget_remaining: remaining,
        burn_rates,
        exhaustion_at,
        firing,
    }
}
