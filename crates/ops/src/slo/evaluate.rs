//! Evaluating every SLO against the store: the rollups it reads, the
//! `logs/slo_guard.ndjson` line and the burn-rate and budget alerts. What
//! the engine runs every few seconds and the `slo` job every 15 minutes.

use crate::alert::{self, Alert, AlertStatus};
use crate::config::{AlertSeverity, Config};
use crate::store::{Store, StoreError};
use crate::time::Timestamp;
use crate::uptime;

use super::SloStatus;

/// Evaluates every SLO once: rollups first, then the math, the log line,
/// the alerts.
///
/// # Errors
/// On a database error.
pub async fn evaluate_all(
    store: &Store,
    config: &Config,
    now: Timestamp,
) -> Result<Vec<SloStatus>, StoreError> {
    // Re-roll the last few complete minutes: results arrive up to a timeout
    // after the minute they started in.
    const MINUTE: std::time::Duration = std::time::Duration::from_secs(60);
    uptime::rollup(store, now - 5 * MINUTE, now - MINUTE).await?;
    evaluate_rolled(store, config, now).await
}

/// [`evaluate_all`] without the rollup, for a caller that keeps rollups
/// current itself.
pub(crate) async fn evaluate_rolled(
    store: &Store,
    config: &Config,
    now: Timestamp,
) -> Result<Vec<SloStatus>, StoreError> {
    let statuses = super::status_all(store, config, now).await?;
    for s in &statuses {
        let Some(slo) = config.slos.iter().find(|c| c.name == s.name) else {
            continue;
        };
        let tags = config
            .monitor(&slo.monitor)
            .map(|m| m.tags.clone())
            .unwrap_or_default();
        // Every rule this SLO can fire, so the ones that stopped resolve.
        let mut rules: Vec<(String, AlertSeverity)> = slo
            .alerts
            .iter()
            .map(|r| {
                (
                    format!(
                        "burn:{}:{}:{}",
                        crate::config::format_duration(r.long_window),
                        crate::config::format_duration(r.short_window),
                        r.burn_rate
                    ),
                    r.severity,
                )
            })
            .collect();
        rules.push((
            format!("budget:{}", super::BUDGET_ALERT_THRESHOLD),
            AlertSeverity::Warning,
        ));
        for (id, severity) in rules {
            let firing = s.firing.iter().find(|f| f.id == id);
            let name = if id.starts_with("budget:") {
                "SloBudgetLow"
            } else {
                "SloBurnRate"
            };
            let mut a = Alert::new(
                name,
                &slo.monitor,
                &format!("{}/{id}", slo.name),
                severity,
                firing.map_or_else(
                    || format!("{} is within its budget", slo.name),
                    |f| f.summary.clone(),
                ),
                now,
            );
            a.slo = Some(slo.name.clone());
            a.tags = tags.clone();
            a.status = if firing.is_some() {
                AlertStatus::Firing
            } else {
                AlertStatus::Resolved
            };
            alert::notify(store, config, &a, now).await?;
        }
    }
    Ok(statuses)
}

pub(crate) fn slo_json(s: &SloStatus) -> serde_json::Value {
    serde_json::json!({
        "ts": crate::alert::rfc3339(s.now),
        "slo": s.name,
        "monitor": s.monitor,
        "target": s.target,
        "attainment": s.attainment,
        "total": s.total,
        "bad": s.bad,
        "budget_consumed": s.budget_consumed,
        "budget_remaining": s.budget_remaining,
        "burn_rates": s.burn_rates.iter().map(|(l, r)| (l.to_string(), serde_json::json!(r))).collect::<serde_json::Map<_, _>>(),
        "exhaustion_at": s.exhaustion_at.map(crate::alert::rfc3339),
        "firing": s.firing.iter().map(|f| f.id.clone()).collect::<Vec<_>>(),
    })
}
