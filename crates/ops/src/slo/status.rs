//! SLO status from the store: the impure edge around [`super::evaluate`].

use crate::config::Config;
use crate::store::{Store, StoreError};

use super::SloStatus;

/// Maintenance windows (config and API) that apply to `monitor`, as
/// `[start, end)` unix ms.
///
/// # Errors
/// On a database error.
pub async fn maintenance_windows(
    store: &Store,
    config: &Config,
    monitor: &str,
) -> Result<Vec<(i64, i64)>, StoreError> {
    let mut out: Vec<(i64, i64)> = config
        .maintenance
        .iter()
        .filter(|m| m.monitors.is_empty() || m.monitors.iter().any(|n| n == monitor))
        .map(|m| (m.start.timestamp_millis(), m.end.timestamp_millis()))
        .collect();
    for w in crate::maintenance::list(store).await? {
        if w.monitors.is_empty() || w.monitors.iter().any(|n| n == monitor) {
            out.push((w.starts_at_ms, w.ends_at_ms));
        }
    }
    Ok(out)
}

/// Every configured SLO evaluated at `now_ms`.
///
/// # Errors
/// On a database error.
pub async fn all(
    store: &Store,
    config: &Config,
    now_ms: i64,
) -> Result<Vec<SloStatus>, StoreError> {
    let mut out = Vec::with_capacity(config.slos.len());
    for slo in &config.slos {
        // The longest burn window (3d) may reach past the SLO window's start.
        let from = super::window_start(slo, now_ms).min(now_ms - 3 * 86_400_000);
        let buckets = crate::uptime::buckets(store, &slo.monitor, from).await?;
        let maintenance = maintenance_windows(store, config, &slo.monitor).await?;
        out.push(super::evaluate(slo, &buckets, &maintenance, now_ms));
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
