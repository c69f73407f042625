//! Probe results, rollups, incidents and heartbeats in the state store.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::RngCore;
use sqlx::Row;

use crate::probe::ProbeResult;
use crate::slo::Bucket;
use crate::store::{Store, StoreError};

const MINUTE_MS: i64 = 60_000;

/// Stores one probe result.
///
/// # Errors
/// On a database error.
pub async fn record(store: &Store, r: &ProbeResult) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO probe_results (monitor, ts, ok, latency_ms, status, error)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&r.monitor)
    .bind(r.at_ms)
    .bind(i64::from(r.ok))
    .bind(i64::try_from(r.latency.as_millis()).unwrap_or(i64::MAX))
    .bind(r.status.map(i64::from))
    .bind(r.error.as_deref())
    .execute(store.pool())
    .await?;
    Ok(())
}

fn result_from_row(row: &sqlx::any::AnyRow) -> Result<ProbeResult, StoreError> {
    let status: Option<i64> = row.try_get("status")?;
    Ok(ProbeResult {
        monitor: row.try_get("monitor")?,
        at_ms: row.try_get("ts")?,
        ok: row.try_get::<i64, _>("ok")? != 0,
        latency: Duration::from_millis(row.try_get::<i64, _>("latency_ms")?.max(0) as u64),
        status: status.and_then(|s| u16::try_from(s).ok()),
        error: row.try_get("error")?,
    })
}

/// A monitor's raw results at or after `since_ms`, newest first.
///
/// # Errors
/// On a database error.
pub async fn results(
    store: &Store,
    monitor: &str,
    since_ms: i64,
    limit: u32,
) -> Result<Vec<ProbeResult>, StoreError> {
    let rows = sqlx::query(
        "SELECT monitor, ts, ok, latency_ms, status, error FROM probe_results
         WHERE monitor = $1 AND ts >= $2 ORDER BY ts DESC LIMIT $3",
    )
    .bind(monitor)
    .bind(since_ms)
    .bind(i64::from(limit.min(10_000)))
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(result_from_row).collect()
}

/// The newest result of every monitor that has one.
///
/// # Errors
/// On a database error.
pub async fn latest_results(store: &Store) -> Result<BTreeMap<String, ProbeResult>, StoreError> {
    let rows = sqlx::query(
        "SELECT r.monitor, r.ts, r.ok, r.latency_ms, r.status, r.error FROM probe_results r
         JOIN (SELECT monitor, MAX(ts) AS ts FROM probe_results GROUP BY monitor) m
           ON r.monitor = m.monitor AND r.ts = m.ts",
    )
    .fetch_all(store.pool())
    .await?;
    let mut out = BTreeMap::new();
    for row in &rows {
        let r = result_from_row(row)?;
        out.insert(r.monitor.clone(), r);
    }
    Ok(out)
}

/// One minute of one monitor, summarised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollup {
    pub monitor: String,
    /// Start of the minute, unix ms.
    pub minute: i64,
    pub total: i64,
    pub failures: i64,
    pub p50_ms: i64,
    pub p95_ms: i64,
    pub p99_ms: i64,
    pub max_ms: i64,
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Summarises each minute's raw results in `[from_ms, to_ms)` into rollups
/// (replacing earlier rollups of the same minutes, so re-running after late
/// results is safe). Returns how many minutes were written.
///
/// # Errors
/// On a database error.
pub async fn rollup(store: &Store, from_ms: i64, to_ms: i64) -> Result<usize, StoreError> {
    let from = from_ms.div_euclid(MINUTE_MS) * MINUTE_MS;
    let to = to_ms.div_euclid(MINUTE_MS) * MINUTE_MS;
    let rows = sqlx::query(
        "SELECT monitor, ts, ok, latency_ms FROM probe_results WHERE ts >= $1 AND ts < $2",
    )
    .bind(from)
    .bind(to)
    .fetch_all(store.pool())
    .await?;
    let mut groups: BTreeMap<(String, i64), (i64, i64, Vec<i64>)> = BTreeMap::new();
    for row in &rows {
        let monitor: String = row.try_get("monitor")?;
        let ts: i64 = row.try_get("ts")?;
        let ok: i64 = row.try_get("ok")?;
        let latency: i64 = row.try_get("latency_ms")?;
        let g = groups
            .entry((monitor, ts.div_euclid(MINUTE_MS) * MINUTE_MS))
            .or_default();
        g.0 += 1;
        g.1 += i64::from(ok == 0);
        g.2.push(latency);
    }
    let n = groups.len();
    let mut tx = store.pool().begin().await?;
    for ((monitor, minute), (total, failures, mut latencies)) in groups {
        latencies.sort_unstable();
        sqlx::query(
            "INSERT INTO probe_rollups
               (monitor, minute, total, failures, latency_p50_ms, latency_p95_ms, latency_p99_ms, latency_max_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (monitor, minute) DO UPDATE SET
               total = excluded.total, failures = excluded.failures,
               latency_p50_ms = excluded.latency_p50_ms, latency_p95_ms = excluded.latency_p95_ms,
               latency_p99_ms = excluded.latency_p99_ms, latency_max_ms = excluded.latency_max_ms",
        )
        .bind(&monitor)
        .bind(minute)
        .bind(total)
        .bind(failures)
        .bind(percentile(&latencies, 50.0))
        .bind(percentile(&latencies, 95.0))
        .bind(percentile(&latencies, 99.0))
        .bind(latencies.last().copied().unwrap_or(0))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(n)
}

/// A monitor's rollups in `[from_ms, to_ms)`, oldest first.
///
/// # Errors
/// On a database error.
pub async fn rollups(
    store: &Store,
    monitor: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<Rollup>, StoreError> {
    let rows = sqlx::query(
        "SELECT monitor, minute, total, failures, latency_p50_ms, latency_p95_ms, latency_p99_ms, latency_max_ms
         FROM probe_rollups WHERE monitor = $1 AND minute >= $2 AND minute < $3 ORDER BY minute",
    )
    .bind(monitor)
    .bind(from_ms)
    .bind(to_ms)
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Rollup {
                monitor: row.try_get("monitor")?,
                minute: row.try_get("minute")?,
                total: row.try_get("total")?,
                failures: row.try_get("failures")?,
                p50_ms: row.try_get("latency_p50_ms")?,
                p95_ms: row.try_get("latency_p95_ms")?,
                p99_ms: row.try_get("latency_p99_ms")?,
                max_ms: row.try_get("latency_max_ms")?,
            })
        })
        .collect()
}

/// Per-minute good/bad counts of a monitor since `from_ms`: rollups where
/// they exist, raw results for the newer minutes not rolled up yet.
///
/// # Errors
/// On a database error.
pub async fn buckets(
    store: &Store,
    monitor: &str,
    from_ms: i64,
) -> Result<Vec<Bucket>, StoreError> {
    let mut by_minute: BTreeMap<i64, Bucket> = BTreeMap::new();
    for r in rollups(store, monitor, from_ms, i64::MAX).await? {
        by_minute.insert(
            r.minute,
            Bucket {
                start_ms: r.minute,
                total: r.total.max(0) as u64,
                bad: r.failures.max(0) as u64,
            },
        );
    }
    let raw_from = by_minute
        .keys()
        .next_back()
        .map_or(from_ms, |m| (m + MINUTE_MS).max(from_ms));
    let rows = sqlx::query("SELECT ts, ok FROM probe_results WHERE monitor = $1 AND ts >= $2")
        .bind(monitor)
        .bind(raw_from)
        .fetch_all(store.pool())
        .await?;
    for row in &rows {
        let ts: i64 = row.try_get("ts")?;
        let ok: i64 = row.try_get("ok")?;
        let minute = ts.div_euclid(MINUTE_MS) * MINUTE_MS;
        let b = by_minute.entry(minute).or_insert(Bucket {
            start_ms: minute,
            total: 0,
            bad: 0,
        });
        b.total += 1;
        b.bad += u64::from(ok == 0);
    }
    Ok(by_minute.into_values().collect())
}

/// Deletes raw results older than `raw_before_ms` and rollups older than
/// `rollups_before_ms`; returns (raw, rollups) deleted.
///
/// # Errors
/// On a database error.
pub async fn prune(
    store: &Store,
    raw_before_ms: i64,
    rollups_before_ms: i64,
) -> Result<(u64, u64), StoreError> {
    let raw = sqlx::query("DELETE FROM probe_results WHERE ts < $1")
        .bind(raw_before_ms)
        .execute(store.pool())
        .await?
        .rows_affected();
    let rolled = sqlx::query("DELETE FROM probe_rollups WHERE minute < $1")
        .bind(rollups_before_ms)
        .execute(store.pool())
        .await?
        .rows_affected();
    Ok((raw, rolled))
}

/// An outage of one monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    pub id: String,
    pub monitor: String,
    pub opened_at_ms: i64,
    pub resolved_at_ms: Option<i64>,
    /// The error of the result that opened it.
    pub cause: String,
}

fn incident_from_row(row: &sqlx::any::AnyRow) -> Result<Incident, StoreError> {
    Ok(Incident {
        id: row.try_get("id")?,
        monitor: row.try_get("monitor")?,
        opened_at_ms: row.try_get("opened_at")?,
        resolved_at_ms: row.try_get("resolved_at")?,
        cause: row.try_get("cause")?,
    })
}

/// Opens an incident for `monitor`, or returns the one already open.
///
/// # Errors
/// On a database error.
pub async fn open_incident(
    store: &Store,
    monitor: &str,
    at_ms: i64,
    cause: &str,
) -> Result<Incident, StoreError> {
    if let Some(open) = open_incident_of(store, monitor).await? {
        return Ok(open);
    }
    let mut id = [0_u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut id);
    let incident = Incident {
        id: format!("inc_{}", hex::encode(id)),
        monitor: monitor.to_string(),
        opened_at_ms: at_ms,
        resolved_at_ms: None,
        cause: cause.to_string(),
    };
    sqlx::query(
        "INSERT INTO incidents (id, monitor, opened_at, resolved_at, cause) VALUES ($1, $2, $3, NULL, $4)",
    )
    .bind(&incident.id)
    .bind(monitor)
    .bind(at_ms)
    .bind(cause)
    .execute(store.pool())
    .await?;
    Ok(incident)
}

/// Resolves `monitor`'s open incident, if any, and returns it.
///
/// # Errors
/// On a database error.
pub async fn resolve_incident(
    store: &Store,
    monitor: &str,
    at_ms: i64,
) -> Result<Option<Incident>, StoreError> {
    let Some(mut open) = open_incident_of(store, monitor).await? else {
        return Ok(None);
    };
    sqlx::query("UPDATE incidents SET resolved_at = $1 WHERE id = $2")
        .bind(at_ms)
        .bind(&open.id)
        .execute(store.pool())
        .await?;
    open.resolved_at_ms = Some(at_ms);
    Ok(Some(open))
}

/// `monitor`'s open incident.
///
/// # Errors
/// On a database error.
pub async fn open_incident_of(
    store: &Store,
    monitor: &str,
) -> Result<Option<Incident>, StoreError> {
    let row = sqlx::query(
        "SELECT id, monitor, opened_at, resolved_at, cause FROM incidents
         WHERE monitor = $1 AND resolved_at IS NULL ORDER BY opened_at DESC LIMIT 1",
    )
    .bind(monitor)
    .fetch_optional(store.pool())
    .await?;
    row.as_ref().map(incident_from_row).transpose()
}

/// Incidents, newest first; only open ones when `open_only`.
///
/// # Errors
/// On a database error.
pub async fn incidents(
    store: &Store,
    monitor: Option<&str>,
    open_only: bool,
    limit: u32,
) -> Result<Vec<Incident>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, monitor, opened_at, resolved_at, cause FROM incidents
         WHERE ($1 = '' OR monitor = $1) AND ($2 = 0 OR resolved_at IS NULL)
         ORDER BY opened_at DESC LIMIT $3",
    )
    .bind(monitor.unwrap_or(""))
    .bind(i64::from(open_only))
    .bind(i64::from(limit.min(1000)))
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(incident_from_row).collect()
}

/// The heartbeat token of push monitor `monitor`, made on first use. The
/// token is random (not derived from the name) so nobody can guess it.
///
/// # Errors
/// On a database error.
pub async fn push_token(store: &Store, monitor: &str) -> Result<String, StoreError> {
    let mut bytes = [0_u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let fresh = hex::encode(bytes);
    sqlx::query(
        "INSERT INTO push_monitors (monitor, token, last_ping_at) VALUES ($1, $2, NULL)
         ON CONFLICT (monitor) DO NOTHING",
    )
    .bind(monitor)
    .bind(&fresh)
    .execute(store.pool())
    .await?;
    let token: String = sqlx::query_scalar("SELECT token FROM push_monitors WHERE monitor = $1")
        .bind(monitor)
        .fetch_one(store.pool())
        .await?;
    Ok(token)
}

/// Records a heartbeat; returns the monitor the token belongs to, or None
/// for an unknown token.
///
/// # Errors
/// On a database error.
pub async fn ping(store: &Store, token: &str, at_ms: i64) -> Result<Option<String>, StoreError> {
    let monitor: Option<String> =
        sqlx::query_scalar("SELECT monitor FROM push_monitors WHERE token = $1")
            .bind(token)
            .fetch_optional(store.pool())
            .await?;
    if let Some(m) = &monitor {
        sqlx::query("UPDATE push_monitors SET last_ping_at = $1 WHERE monitor = $2")
            .bind(at_ms)
            .bind(m)
            .execute(store.pool())
            .await?;
    }
    Ok(monitor)
}

/// When push monitor `monitor` was last pinged.
///
/// # Errors
/// On a database error.
pub async fn last_ping(store: &Store, monitor: &str) -> Result<Option<i64>, StoreError> {
    let v: Option<Option<i64>> =
        sqlx::query_scalar("SELECT last_ping_at FROM push_monitors WHERE monitor = $1")
            .bind(monitor)
            .fetch_optional(store.pool())
            .await?;
    Ok(v.flatten())
}

#[cfg(test)]
mod tests {
    #[test]
    fn percentiles() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(super::percentile(&v, 50.0), 50);
        assert_eq!(super::percentile(&v, 99.0), 99);
        assert_eq!(super::percentile(&[7], 95.0), 7);
        assert_eq!(super::percentile(&[], 95.0), 0);
    }
}
