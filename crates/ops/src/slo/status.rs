//! SLO status from the store: the impure edge around [`super::evaluate`].

use crate::config::Config;
use crate::store::{Store, StoreError};
use crate::time::Timestamp;

use super::SloStatus;

/// Maintenance windows (config and API) that apply to `monitor`, as
/// `[start, end)`.
///
/// # Errors
/// On a database error.
pub async fn maintenance_windows(
    store: &Store,
    config: &Config,
    monitor: &str,
) -> Result<Vec<(Timestamp, Timestamp)>, StoreError> {
    let mut out: Vec<(Timestamp, Timestamp)> = config
        .maintenance
        .iter()
        .filter(|m| m.monitors.is_empty() || m.monitors.iter().any(|n| n == monitor))
        .map(|m| (m.start.into(), m.end.into()))
        .collect();
    for w in crate::maintenance::list(store).await? {
        if w.monitors.is_empty() || w.monitors.iter().any(|n| n == monitor) {
            out.push((w.starts_at, w.ends_at));
        }
    }
    Ok(out)
}

/// Every configured SLO evaluated at `now`.
///
/// # Errors
/// On a database error.
pub async fn all(
    store: &Store,
    config: &Config,
    now: Timestamp,
) -> Result<Vec<SloStatus>, StoreError> {
    let mut out = Vec::with_capacity(config.slos.len());
    for slo in &config.slos {
        // The longest burn window (3d) may reach past the SLO window's start.
        let from = super::window_start(slo, now).min(now - super::BURN_WINDOWS[5].1);
        let buckets = crate::uptime::buckets(store, &slo.monitor, from).await?;
        let maintenance = maintenance_windows(store, config, &slo.monitor).await?;
        out.push(super::evaluate(slo, &buckets, &maintenance, now));
    }
    Ok(out)
}

/// The strict SLOs that have consumed at least `threshold` of their budget:
/// what turns `/healthz/strict` to 503.
pub fn strict_failures<'a>(
    config: &Config,
    statuses: &'a [SloStatus],
    threshold: f64,
) -> Vec<&'a SloStatus> {
    statuses
        .iter()
        .filter(|s| {
            config.slos.iter().any(|c| c.name == s.name && c.strict)
                && s.total > 0
                && s.budget_consumed >= threshold
        })
        .collect()
}
