//! Probe results, rollups, incidents and heartbeats in the state store.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::audit::{AuditedTx, Entry, Outcome};
use crate::config::Secret;
use crate::identity::Actor;

use super::Bucket;
use crate::probe::ProbeResult;
use crate::store::{Store, StoreError};
use crate::time::Timestamp;

const MINUTE_MS: i64 = 60_000;
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// Stores one probe result.
///
/// # Errors
/// On a database error.
pub async fn record(store: &Store, r: &ProbeResult) -> Result<(), StoreError> {
    record_many(store, std::slice::from_ref(r)).await
}

/// Rows per multi-row INSERT: 6 parameters each stays far below SQLite's
/// 32,766 and PostgreSQL's 65,535 bound parameters per statement.
const RESULT_ROWS_PER_INSERT: usize = 500;

/// Stores probe results in one transaction, a few hundred rows per
/// statement: at thousands of results a second one INSERT (and one commit)
/// per row is what SQLite cannot keep up with.
///
/// # Errors
/// On a database error; then none of `results` is stored.
pub async fn record_many(store: &Store, results: &[ProbeResult]) -> Result<(), StoreError> {
    if results.is_empty() {
        return Ok(());
    }
    let mut tx = store.pool().begin().await?;
    for chunk in results.chunks(RESULT_ROWS_PER_INSERT) {
        let sql = values_sql(
            "INSERT INTO probe_results (monitor, ts, ok, latency_ms, status, error) VALUES ",
            6,
            chunk.len(),
        );
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q
                .bind(&r.monitor)
                .bind(r.at.as_millis())
                .bind(i64::from(r.ok))
                .bind(i64::try_from(r.latency.as_millis()).unwrap_or(i64::MAX))
                .bind(r.status.map(i64::from))
                .bind(r.error.as_deref());
        }
        q.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// `prefix` followed by `rows` groups of `columns` numbered placeholders:
/// `($1, $2), ($3, $4)`.
fn values_sql(prefix: &str, columns: usize, rows: usize) -> String {
    let mut sql = String::with_capacity(prefix.len() + rows * columns * 6);
    sql.push_str(prefix);
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for col in 0..columns {
            if col > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(row * columns + col + 1).to_string());
        }
        sql.push(')');
    }
    sql
}

fn result_from_row(row: &sqlx::any::AnyRow) -> Result<ProbeResult, StoreError> {
    let status: Option<i64> = row.try_get("status")?;
    Ok(ProbeResult {
        monitor: row.try_get("monitor")?,
        at: Timestamp::from_millis(row.try_get("ts")?),
        ok: row.try_get::<i64, _>("ok")? != 0,
        latency: Duration::from_millis(row.try_get::<i64, _>("latency_ms")?.max(0) as u64),
        status: status.and_then(|s| u16::try_from(s).ok()),
        error: row.try_get("error")?,
    })
}

/// A monitor's raw results in `[from, to)`, newest first, at most
/// `limit` (capped at 10,000) of them.
///
/// # Errors
/// On a database error.
pub async fn results(
    store: &Store,
    monitor: &str,
    from: Timestamp,
    to: Timestamp,
    limit: u32,
) -> Result<Vec<ProbeResult>, StoreError> {
    let rows = sqlx::query(
        "SELECT monitor, ts, ok, latency_ms, status, error FROM probe_results
         WHERE monitor = $1 AND ts >= $2 AND ts < $3 ORDER BY ts DESC LIMIT $4",
    )
    .bind(monitor)
    .bind(from.as_millis())
    .bind(to.as_millis())
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

/// One minute of one monitor, summarised; also one hour, once old minutes
/// are downsampled (see [`downsample`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollup {
    pub monitor: String,
    /// Start of the minute (of the hour, for an hourly rollup).
    pub minute: Timestamp,
    pub total: i64,
    pub failures: i64,
    pub p50_ms: i64,
    pub p95_ms: i64,
    pub p99_ms: i64,
    pub max_ms: i64,
}

pub const HOUR_MS: i64 = 3_600_000;

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Rows per multi-row upsert of rollups (8 parameters each).
const ROLLUP_ROWS_PER_UPSERT: usize = 500;

/// Writes `rows` into `table` (`probe_rollups` keyed by `minute`, or
/// `probe_rollups_hourly` keyed by `hour`), replacing rows with the same key.
async fn upsert_rollups(
    conn: &mut sqlx::AnyConnection,
    table: &str,
    key: &str,
    rows: &[Rollup],
) -> Result<(), StoreError> {
    for chunk in rows.chunks(ROLLUP_ROWS_PER_UPSERT) {
        let mut sql = values_sql(
            &format!(
                "INSERT INTO {table} (monitor, {key}, total, failures, latency_p50_ms, \
                 latency_p95_ms, latency_p99_ms, latency_max_ms) VALUES "
            ),
            8,
            chunk.len(),
        );
        sql.push_str(&format!(
            " ON CONFLICT (monitor, {key}) DO UPDATE SET
               total = excluded.total, failures = excluded.failures,
               latency_p50_ms = excluded.latency_p50_ms, latency_p95_ms = excluded.latency_p95_ms,
               latency_p99_ms = excluded.latency_p99_ms, latency_max_ms = excluded.latency_max_ms"
        ));
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q
                .bind(&r.monitor)
                .bind(r.minute.as_millis())
                .bind(r.total)
                .bind(r.failures)
                .bind(r.p50_ms)
                .bind(r.p95_ms)
                .bind(r.p99_ms)
                .bind(r.max_ms);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Summarises each minute's raw results in `[from, to)` into rollups
/// (replacing earlier rollups of the same minutes, so re-running after late
/// results is safe). Returns how many minutes were written.
///
/// # Errors
/// On a database error.
pub async fn rollup(store: &Store, from: Timestamp, to: Timestamp) -> Result<usize, StoreError> {
    let from = from.as_millis().div_euclid(MINUTE_MS) * MINUTE_MS;
    let to = to.as_millis().div_euclid(MINUTE_MS) * MINUTE_MS;
    // A minute at a time: an hour of ten thousand monitors at 10 s is 3.6
    // million results, too many to hold at once.
    let mut written = 0;
    let mut minute = from;
    while minute < to {
        written += rollup_slice(store, minute, (minute + MINUTE_MS).min(to)).await?;
        minute += MINUTE_MS;
    }
    Ok(written)
}

async fn rollup_slice(store: &Store, from: i64, to: i64) -> Result<usize, StoreError> {
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
    drop(rows);
    let rollups: Vec<Rollup> = groups
        .into_iter()
        .map(|((monitor, minute), (total, failures, mut latencies))| {
            latencies.sort_unstable();
            Rollup {
                monitor,
                minute: Timestamp::from_millis(minute),
                total,
                failures,
                p50_ms: percentile(&latencies, 50.0),
                p95_ms: percentile(&latencies, 95.0),
                p99_ms: percentile(&latencies, 99.0),
                max_ms: latencies.last().copied().unwrap_or(0),
            }
        })
        .collect();
    let mut tx = store.pool().begin().await?;
    upsert_rollups(&mut tx, "probe_rollups", "minute", &rollups).await?;
    tx.commit().await?;
    Ok(rollups.len())
}

fn rollup_from_row(row: &sqlx::any::AnyRow, key: &str) -> Result<Rollup, StoreError> {
    Ok(Rollup {
        monitor: row.try_get("monitor")?,
        minute: Timestamp::from_millis(row.try_get(key)?),
        total: row.try_get("total")?,
        failures: row.try_get("failures")?,
        p50_ms: row.try_get("latency_p50_ms")?,
        p95_ms: row.try_get("latency_p95_ms")?,
        p99_ms: row.try_get("latency_p99_ms")?,
        max_ms: row.try_get("latency_max_ms")?,
    })
}

/// A monitor's per-minute rollups in `[from, to)`, oldest first.
/// Minutes older than the minute retention are only in [`hourly_rollups`].
///
/// # Errors
/// On a database error.
pub async fn rollups(
    store: &Store,
    monitor: &str,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<Rollup>, StoreError> {
    let rows = sqlx::query(
        "SELECT monitor, minute, total, failures, latency_p50_ms, latency_p95_ms, latency_p99_ms, latency_max_ms
         FROM probe_rollups WHERE monitor = $1 AND minute >= $2 AND minute < $3 ORDER BY minute",
    )
    .bind(monitor)
    .bind(from.as_millis())
    .bind(to.as_millis())
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(|r| rollup_from_row(r, "minute")).collect()
}

/// A monitor's hourly rollups (hours starting in `[from, to)`),
/// oldest first; `minute` holds the start of the hour.
///
/// # Errors
/// On a database error.
pub async fn hourly_rollups(
    store: &Store,
    monitor: &str,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<Rollup>, StoreError> {
    let rows = sqlx::query(
        "SELECT monitor, hour, total, failures, latency_p50_ms, latency_p95_ms, latency_p99_ms, latency_max_ms
         FROM probe_rollups_hourly WHERE monitor = $1 AND hour >= $2 AND hour < $3 ORDER BY hour",
    )
    .bind(monitor)
    .bind(from.as_millis())
    .bind(to.as_millis())
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(|r| rollup_from_row(r, "hour")).collect()
}

/// The width of the buckets of a rollup series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Resolution {
    Minute,
    Hour,
}

/// The newest `limit` rows of `table` for buckets (`key`) starting in
/// `[from, to)`, oldest first.
async fn newest_rollups(
    store: &Store,
    table: &str,
    key: &str,
    monitor: &str,
    (from, to): (Timestamp, Timestamp),
    limit: u32,
) -> Result<Vec<Rollup>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT monitor, {key}, total, failures, latency_p50_ms, latency_p95_ms, latency_p99_ms, latency_max_ms
         FROM {table} WHERE monitor = $1 AND {key} >= $2 AND {key} < $3 ORDER BY {key} DESC LIMIT $4"
    ))
    .bind(monitor)
    .bind(from.as_millis())
    .bind(to.as_millis())
    .bind(i64::from(limit))
    .fetch_all(store.pool())
    .await?;
    let mut out = rows
        .iter()
        .map(|r| rollup_from_row(r, key))
        .collect::<Result<Vec<_>, _>>()?;
    out.reverse();
    Ok(out)
}

/// The start of the first hour at or after `t`.
fn hour_at_or_after(t: Timestamp) -> Timestamp {
    let floor = t.floor(HOUR);
    if floor < t {
        floor + HOUR
    } else {
        floor
    }
}

/// A monitor's rollups at `resolution` for the buckets starting in
/// `[from, to)`, oldest first; when there are more than `limit`, the
/// newest `limit`. `minute` holds each bucket's start.
///
/// Hourly buckets cover the whole retention: hours already downsampled come
/// from the hourly rows, newer ones are folded on the fly from their minute
/// rollups by the rule [`downsample`] stores (counts summed, latency
/// percentiles bounded, see `fold_hours`). Each bucket covers its whole
/// hour (the current one up to its newest rolled-up minute), however
/// `to` cuts it.
///
/// # Errors
/// On a database error.
pub async fn rollup_series(
    store: &Store,
    monitor: &str,
    resolution: Resolution,
    from: Timestamp,
    to: Timestamp,
    limit: u32,
) -> Result<Vec<Rollup>, StoreError> {
    if limit == 0 || from >= to {
        return Ok(Vec::new());
    }
    match resolution {
        Resolution::Minute => {
            let range = (from, to);
            return newest_rollups(store, "probe_rollups", "minute", monitor, range, limit).await;
        }
        Resolution::Hour => {}
    }
    // The newest `limit` hours of the union are among the newest `limit`
    // stored hours and the folded ones, so the hourly table is read with a
    // limit; the minutes are bounded by the minute retention anyway.
    let stored = newest_rollups(
        store,
        "probe_rollups_hourly",
        "hour",
        monitor,
        (from, to),
        limit,
    )
    .await?;
    let minutes = rollups(store, monitor, hour_at_or_after(from), hour_at_or_after(to)).await?;
    let mut by_hour: BTreeMap<Timestamp, Rollup> =
        stored.into_iter().map(|r| (r.minute, r)).collect();
    // An hour in both tables (minutes re-rolled after it was downsampled) is
    // read from its minutes alone: the next downsampling replaces the hourly
    // row with exactly this fold, so an hour reads the same before and
    // after it, and none is counted twice.
    for h in fold_hours(&minutes) {
        by_hour.insert(h.minute, h);
    }
    let skip = by_hour.len().saturating_sub(limit as usize);
    Ok(by_hour.into_values().skip(skip).collect())
}

/// Good/bad counts of a monitor since `from`: hourly rollups for the
/// oldest part, then per-minute rollups, then raw results for the newest
/// minutes not rolled up yet. Each stretch of time comes from one source
/// only, so nothing is counted twice. An hourly bucket counts when its hour
/// starts at or after `from`, so windows reaching past the per-minute
/// retention are cut at an hour boundary.
///
/// # Errors
/// On a database error.
pub async fn buckets(
    store: &Store,
    monitor: &str,
    from: Timestamp,
) -> Result<Vec<Bucket>, StoreError> {
    let end = Timestamp::from_millis(i64::MAX);
    let mut by_minute: BTreeMap<Timestamp, Bucket> = BTreeMap::new();
    let minutes = rollups(store, monitor, from, end).await?;
    let hours_with_minutes: std::collections::HashSet<Timestamp> =
        minutes.iter().map(|r| r.minute.floor(HOUR)).collect();
    for r in hourly_rollups(store, monitor, from, end).await? {
        // An hour that also has minute rows (a late re-roll of an hour
        // already downsampled) is read from the minutes alone, as
        // `rollup_series` reads it; every other hour counts.
        if hours_with_minutes.contains(&r.minute) {
            continue;
        }
        by_minute.insert(
            r.minute,
            Bucket {
                start: r.minute,
                total: r.total.max(0) as u64,
                bad: r.failures.max(0) as u64,
            },
        );
    }
    let mut raw_from = by_minute
        .keys()
        .next_back()
        .map_or(from, |h| (*h + HOUR).max(from));
    for r in minutes {
        raw_from = raw_from.max(r.minute + MINUTE);
        by_minute.insert(
            r.minute,
            Bucket {
                start: r.minute,
                total: r.total.max(0) as u64,
                bad: r.failures.max(0) as u64,
            },
        );
    }
    let rows = sqlx::query("SELECT ts, ok FROM probe_results WHERE monitor = $1 AND ts >= $2")
        .bind(monitor)
        .bind(raw_from.as_millis())
        .fetch_all(store.pool())
        .await?;
    for row in &rows {
        let ts = Timestamp::from_millis(row.try_get("ts")?);
        let ok: i64 = row.try_get("ok")?;
        let minute = ts.floor(MINUTE);
        let b = by_minute.entry(minute).or_insert(Bucket {
            start: minute,
            total: 0,
            bad: 0,
        });
        b.total += 1;
        b.bad += u64::from(ok == 0);
    }
    Ok(by_minute.into_values().collect())
}

/// One hour of one monitor being folded from its minute rollups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HourFold {
    total: i64,
    failures: i64,
    /// Sum of each minute's p50 weighted by its probe count.
    p50_weighted: i128,
    p95_ms: i64,
    p99_ms: i64,
    max_ms: i64,
}

impl HourFold {
    /// Adds one minute. Counts add up exactly. Latency percentiles of an
    /// hour cannot be rebuilt from per-minute percentiles, so they are
    /// bounded instead: p50 is the probe-weighted mean of the minutes' p50,
    /// p95 and p99 the worst minute's (an upper bound), max the maximum.
    pub(crate) fn add(&mut self, m: &Rollup) {
        self.total += m.total;
        self.failures += m.failures;
        self.p50_weighted += i128::from(m.p50_ms) * i128::from(m.total.max(0));
        self.p95_ms = self.p95_ms.max(m.p95_ms);
        self.p99_ms = self.p99_ms.max(m.p99_ms);
        self.max_ms = self.max_ms.max(m.max_ms);
    }

    pub(crate) fn finish(&self, monitor: &str, hour: Timestamp) -> Rollup {
        let p50 = if self.total > 0 {
            i64::try_from(self.p50_weighted / i128::from(self.total)).unwrap_or(i64::MAX)
        } else {
            0
        };
        Rollup {
            monitor: monitor.to_string(),
            minute: hour,
            total: self.total,
            failures: self.failures,
            p50_ms: p50,
            p95_ms: self.p95_ms,
            p99_ms: self.p99_ms,
            max_ms: self.max_ms,
        }
    }
}

/// Folds per-minute rollups into hourly ones, one row per monitor and hour.
/// Pure: what [`downsample`] stores.
pub(crate) fn fold_hours(minutes: &[Rollup]) -> Vec<Rollup> {
    let mut hours: BTreeMap<(&str, Timestamp), HourFold> = BTreeMap::new();
    for m in minutes {
        hours
            .entry((m.monitor.as_str(), m.minute.floor(HOUR)))
            .or_default()
            .add(m);
    }
    hours
        .into_iter()
        .map(|((monitor, hour), f)| f.finish(monitor, hour))
        .collect()
}

/// Replaces per-minute rollups of every hour that ended at or before
/// `before` with one hourly rollup per monitor and hour ([`fold_hours`]).
/// It walks monitors through the `(monitor, minute)` primary key and folds
/// at most a day of one monitor per transaction, writing the hourly rows and
/// deleting the minute rows together, so a crash leaves every hour in
/// exactly one of the two tables and no query scans the whole table.
/// Returns how many minute rows were folded.
///
/// # Errors
/// On a database error.
pub async fn downsample(store: &Store, before: Timestamp) -> Result<u64, StoreError> {
    let cutoff = before.floor(HOUR);
    let mut folded = 0;
    let mut monitor: Option<String> =
        sqlx::query_scalar("SELECT monitor FROM probe_rollups ORDER BY monitor LIMIT 1")
            .fetch_optional(store.pool())
            .await?;
    while let Some(m) = monitor {
        loop {
            let oldest: Option<i64> =
                sqlx::query_scalar("SELECT MIN(minute) FROM probe_rollups WHERE monitor = $1")
                    .bind(&m)
                    .fetch_one(store.pool())
                    .await?;
            let Some(oldest) = oldest else { break };
            let from = Timestamp::from_millis(oldest).floor(HOUR);
            let to = (from + 24 * HOUR).min(cutoff);
            if from >= to {
                break;
            }
            let minutes = rollups(store, &m, from, to).await?;
            folded += minutes.len() as u64;
            let hours = fold_hours(&minutes);
            let mut tx = store.pool().begin().await?;
            upsert_rollups(&mut tx, "probe_rollups_hourly", "hour", &hours).await?;
            sqlx::query(
                "DELETE FROM probe_rollups WHERE monitor = $1 AND minute >= $2 AND minute < $3",
            )
            .bind(&m)
            .bind(from.as_millis())
            .bind(to.as_millis())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }
        monitor = sqlx::query_scalar(
            "SELECT monitor FROM probe_rollups WHERE monitor > $1 ORDER BY monitor LIMIT 1",
        )
        .bind(&m)
        .fetch_optional(store.pool())
        .await?;
    }
    Ok(folded)
}

/// How far past the oldest remaining row each DELETE of raw results
/// reaches, so pruning ten thousand monitors' results never holds SQLite's
/// one write lock long enough to stall the result writer.
const PRUNE_SLICE_MS: i64 = 5 * MINUTE_MS;

/// Deletes raw results older than `raw_before` and per-minute rollups
/// older than `rollups_before`; returns (raw, rollups) deleted.
///
/// # Errors
/// On a database error.
pub async fn prune(
    store: &Store,
    raw_before: Timestamp,
    rollups_before: Timestamp,
) -> Result<(u64, u64), StoreError> {
    let raw = prune_raw(store, raw_before).await?;
    let rolled = sqlx::query("DELETE FROM probe_rollups WHERE minute < $1")
        .bind(rollups_before.as_millis())
        .execute(store.pool())
        .await?
        .rows_affected();
    Ok((raw, rolled))
}

/// Deletes raw results older than `before`, a few minutes of them per
/// statement; returns how many.
///
/// # Errors
/// On a database error.
pub async fn prune_raw(store: &Store, before: Timestamp) -> Result<u64, StoreError> {
    let before_ms = before.as_millis();
    let mut raw = 0;
    loop {
        let oldest: Option<i64> =
            sqlx::query_scalar("SELECT MIN(ts) FROM probe_results WHERE ts < $1")
                .bind(before_ms)
                .fetch_one(store.pool())
                .await?;
        let Some(oldest) = oldest else { break };
        raw += sqlx::query("DELETE FROM probe_results WHERE ts < $1")
            .bind(before_ms.min(oldest.saturating_add(PRUNE_SLICE_MS)))
            .execute(store.pool())
            .await?
            .rows_affected();
    }
    Ok(raw)
}

/// Deletes hourly rollups of hours that started before `before`.
///
/// # Errors
/// On a database error.
pub async fn prune_hourly(store: &Store, before: Timestamp) -> Result<u64, StoreError> {
    Ok(
        sqlx::query("DELETE FROM probe_rollups_hourly WHERE hour < $1")
            .bind(before.as_millis())
            .execute(store.pool())
            .await?
            .rows_affected(),
    )
}

/// An outage of one monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    pub id: String,
    pub monitor: String,
    pub opened_at: Timestamp,
    pub resolved_at: Option<Timestamp>,
    /// The error of the result that opened it.
    pub cause: String,
}

fn incident_from_row(row: &sqlx::any::AnyRow) -> Result<Incident, StoreError> {
    Ok(Incident {
        id: row.try_get("id")?,
        monitor: row.try_get("monitor")?,
        opened_at: Timestamp::from_millis(row.try_get("opened_at")?),
        resolved_at: row
            .try_get::<Option<i64>, _>("resolved_at")?
            .map(Timestamp::from_millis),
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
    at: Timestamp,
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
        opened_at: at,
        resolved_at: None,
        cause: cause.to_string(),
    };
    let mut tx = store.pool().begin().await?;
    sqlx::query(
        "INSERT INTO incidents (id, monitor, opened_at, resolved_at, cause) VALUES ($1, $2, $3, NULL, $4)",
    )
    .bind(&incident.id)
    .bind(monitor)
    .bind(at.as_millis())
    .bind(cause)
    .execute(&mut *tx)
    .await?;
    crate::events::append_on(
        &mut tx,
        store.dialect(),
        crate::events::Kind::Incident,
        &incident_event(&incident, "opened"),
    )
    .await?;
    tx.commit().await?;
    Ok(incident)
}

/// Resolves `monitor`'s open incident, if any, and returns it.
///
/// # Errors
/// On a database error.
pub async fn resolve_incident(
    store: &Store,
    monitor: &str,
    at: Timestamp,
) -> Result<Option<Incident>, StoreError> {
    let Some(mut open) = open_incident_of(store, monitor).await? else {
        return Ok(None);
    };
    let mut tx = store.pool().begin().await?;
    sqlx::query("UPDATE incidents SET resolved_at = $1 WHERE id = $2")
        .bind(at.as_millis())
        .bind(&open.id)
        .execute(&mut *tx)
        .await?;
    open.resolved_at = Some(at);
    crate::events::append_on(
        &mut tx,
        store.dialect(),
        crate::events::Kind::Incident,
        &incident_event(&open, "resolved"),
    )
    .await?;
    tx.commit().await?;
    Ok(Some(open))
}

/// An incident's event: the cause is a probe's reason, which names no URL.
fn incident_event(incident: &Incident, state: &str) -> serde_json::Value {
    serde_json::json!({
        "incident": incident.id,
        "monitor": incident.monitor,
        "state": state,
        "opened_at": incident.opened_at.to_datetime().to_rfc3339(),
        "resolved_at": incident.resolved_at.map(|t| t.to_datetime().to_rfc3339()),
        "cause": crate::redact::urls_in(&incident.cause),
    })
}

/// The monitors that have an open incident, in one query.
///
/// # Errors
/// On a database error.
pub async fn monitors_with_open_incidents(
    store: &Store,
) -> Result<std::collections::BTreeSet<String>, StoreError> {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT monitor FROM incidents WHERE resolved_at IS NULL")
            .fetch_all(store.pool())
            .await?;
    Ok(names.into_iter().collect())
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

/// How a push token is stored: its SHA-256, so the database (or a copy of
/// it) cannot be used to fake heartbeats. Tokens are 160 random bits, so a
/// fast hash is enough.
fn token_digest(token: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(token.as_bytes())))
}

/// Makes a new heartbeat token for push monitor `monitor`, replacing any
/// earlier one (which stops working at once), audited as
/// `monitor.push_token`. Only its digest is stored: the token is returned
/// here and never again.
///
/// # Errors
/// On a database error.
pub async fn create_push_token(
    store: &Store,
    actor: &Actor,
    monitor: &str,
) -> Result<Secret<String>, StoreError> {
    let mut bytes = [0_u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = Secret::new(hex::encode(bytes));
    let digest = token_digest(token.expose());
    let mut tx = AuditedTx::begin(store).await?;
    sqlx::query(
        "INSERT INTO push_monitors (monitor, token, last_ping_at) VALUES ($1, $2, NULL)
         ON CONFLICT (monitor) DO UPDATE SET token = excluded.token",
    )
    .bind(monitor)
    .bind(&digest)
    .execute(tx.conn())
    .await?;
    tx.commit(&Entry::new(
        actor,
        "monitor.push_token",
        monitor,
        Outcome::Success,
    ))
    .await?;
    Ok(token)
}

/// Whether push monitor `monitor` has a token.
///
/// # Errors
/// On a database error.
pub async fn has_push_token(store: &Store, monitor: &str) -> Result<bool, StoreError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM push_monitors WHERE monitor = $1")
        .bind(monitor)
        .fetch_one(store.pool())
        .await?;
    Ok(n > 0)
}

/// Replaces tokens stored in clear by earlier versions with their digest,
/// so they keep working without staying readable.
///
/// # Errors
/// On a database error.
pub async fn hash_stored_push_tokens(store: &Store) -> Result<usize, StoreError> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT monitor, token FROM push_monitors WHERE token NOT LIKE 'sha256:%'")
            .fetch_all(store.pool())
            .await?;
    for (monitor, token) in &rows {
        sqlx::query("UPDATE push_monitors SET token = $1 WHERE monitor = $2 AND token = $3")
            .bind(token_digest(token))
            .bind(monitor)
            .bind(token)
            .execute(store.pool())
            .await?;
    }
    Ok(rows.len())
}

/// Records a heartbeat; returns the monitor the token belongs to, or None
/// for an unknown token.
///
/// # Errors
/// On a database error.
pub async fn ping(store: &Store, token: &str, at: Timestamp) -> Result<Option<String>, StoreError> {
    let monitor: Option<String> =
        sqlx::query_scalar("SELECT monitor FROM push_monitors WHERE token = $1")
            .bind(token_digest(token))
            .fetch_optional(store.pool())
            .await?;
    if let Some(m) = &monitor {
        sqlx::query("UPDATE push_monitors SET last_ping_at = $1 WHERE monitor = $2")
            .bind(at.as_millis())
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
pub async fn last_ping(store: &Store, monitor: &str) -> Result<Option<Timestamp>, StoreError> {
    let v: Option<Option<i64>> =
        sqlx::query_scalar("SELECT last_ping_at FROM push_monitors WHERE monitor = $1")
            .bind(monitor)
            .fetch_optional(store.pool())
            .await?;
    Ok(v.flatten().map(Timestamp::from_millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minute(monitor: &str, minute: i64, counts: (i64, i64), p: [i64; 4]) -> Rollup {
        Rollup {
            monitor: monitor.to_string(),
            minute: Timestamp::from_millis(minute),
            total: counts.0,
            failures: counts.1,
            p50_ms: p[0],
            p95_ms: p[1],
            p99_ms: p[2],
            max_ms: p[3],
        }
    }

    #[test]
    fn folding_minutes_into_hours() {
        const H: i64 = 1_768_435_200_000; // an hour boundary
        type Case = (Vec<Rollup>, Vec<Rollup>);
        let cases: Vec<Case> = vec![
            (vec![], vec![]),
            // One minute is its own hour.
            (
                vec![minute("a", H + 5 * MINUTE_MS, (6, 1), [10, 20, 30, 40])],
                vec![minute("a", H, (6, 1), [10, 20, 30, 40])],
            ),
            // Counts add up; p50 is weighted by probes: (10x6 + 40x2) / 8 = 17;
            // p95/p99 are the worst minute's, max the maximum.
            (
                vec![
                    minute("a", H, (6, 0), [10, 50, 90, 95]),
                    minute("a", H + MINUTE_MS, (2, 2), [40, 45, 60, 300]),
                ],
                vec![minute("a", H, (8, 2), [17, 50, 90, 300])],
            ),
            // Hours and monitors stay apart; the last minute of an hour
            // belongs to it, the next one to the next hour.
            (
                vec![
                    minute("b", H + 59 * MINUTE_MS, (1, 0), [5, 5, 5, 5]),
                    minute("a", H + HOUR_MS, (1, 1), [7, 7, 7, 7]),
                    minute("a", H, (1, 0), [3, 3, 3, 3]),
                ],
                vec![
                    minute("a", H, (1, 0), [3, 3, 3, 3]),
                    minute("a", H + HOUR_MS, (1, 1), [7, 7, 7, 7]),
                    minute("b", H, (1, 0), [5, 5, 5, 5]),
                ],
            ),
            // A minute with no probes does not move the weighted p50.
            (
                vec![
                    minute("a", H, (0, 0), [900, 900, 900, 900]),
                    minute("a", H + MINUTE_MS, (4, 0), [8, 9, 9, 9]),
                ],
                vec![minute("a", H, (4, 0), [8, 900, 900, 900])],
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(fold_hours(&input), expected, "{input:?}");
        }
    }

    #[test]
    fn multi_row_placeholders() {
        assert_eq!(values_sql("V ", 2, 1), "V ($1, $2)");
        assert_eq!(values_sql("V ", 3, 2), "V ($1, $2, $3), ($4, $5, $6)");
    }

    #[test]
    fn percentiles() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(super::percentile(&v, 50.0), 50);
        assert_eq!(super::percentile(&v, 99.0), 99);
        assert_eq!(super::percentile(&[7], 95.0), 7);
        assert_eq!(super::percentile(&[], 95.0), 0);
    }
}
