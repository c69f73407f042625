//! Good/bad counts per monitor and UTC day, for every monitor at once: what
//! the status page's 90-day bars and badges are drawn from.

use std::collections::BTreeMap;

use sqlx::Row;

use super::HOUR_MS;
use crate::store::{Store, StoreError};
use crate::time::Timestamp;

pub const DAY_MS: i64 = 86_400_000;
pub const DAY: std::time::Duration = std::time::Duration::from_secs(86_400);

/// Probes of one monitor on one UTC day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayCount {
    pub total: u64,
    pub bad: u64,
}

impl DayCount {
    /// The share of good probes; None when nothing was measured.
    pub fn uptime(&self) -> Option<f64> {
        (self.total > 0).then(|| (self.total - self.bad.min(self.total)) as f64 / self.total as f64)
    }
}

/// How long after a day ends its counts are taken as final: results are
/// rolled up a minute or two after they arrive.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// `daily_counts` with the days that have ended kept between calls: a
/// past day's counts no longer change, so only the current day is read
/// again. Reading 90 days of 1,000 monitors takes seconds; the current day
/// alone a fraction of that.
#[derive(Debug, Default)]
pub struct DailyHistory {
    closed: tokio::sync::Mutex<Option<Closed>>,
}

#[derive(Debug)]
struct Closed {
    first: Timestamp,
    /// Days before this one are in `counts`.
    through: Timestamp,
    counts: BTreeMap<String, BTreeMap<Timestamp, DayCount>>,
}

impl DailyHistory {
    /// As [`daily_counts`]`(store, from_day, to)`.
    ///
    /// # Errors
    /// On a database error.
    pub async fn counts(
        &self,
        store: &Store,
        from_day: Timestamp,
        to: Timestamp,
    ) -> Result<BTreeMap<String, BTreeMap<Timestamp, DayCount>>, StoreError> {
        let through = (to - SETTLE).floor(DAY);
        let mut out: BTreeMap<String, BTreeMap<Timestamp, DayCount>> = {
            let mut closed = self.closed.lock().await;
            // A kept range that starts earlier serves a later start too.
            let fresh = closed
                .as_ref()
                .is_some_and(|c| c.first <= from_day && c.through == through);
            if !fresh {
                let counts = if through > from_day {
                    daily_counts(store, from_day, through).await?
                } else {
                    BTreeMap::new()
                };
                *closed = Some(Closed {
                    first: from_day,
                    through,
                    counts,
                });
            }
            closed
                .as_ref()
                .map(|c| {
                    c.counts
                        .iter()
                        .map(|(monitor, days)| {
                            let days = days.range(from_day..).map(|(d, c)| (*d, *c)).collect();
                            (monitor.clone(), days)
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let recent = daily_counts(store, through.max(from_day), to).await?;
        for (monitor, days) in recent {
            let mine = out.entry(monitor).or_default();
            for (day, c) in days {
                let e = mine.entry(day).or_default();
                e.total += c.total;
                e.bad += c.bad;
            }
        }
        Ok(out)
    }
}

/// Counts per monitor and day (the day's start) for the days from
/// `from_day` (a day boundary) up to `to`, read with two aggregate
/// queries over the rolled-up data, whatever the number of monitors: hourly
/// rollups for the old part, per-minute rollups for the recent part. An
/// hour in both tables (minutes re-rolled after it was downsampled) is read
/// from its minutes alone, as [`super::rollup_series`] reads it. Raw
/// results not rolled up yet (the last minute or two) are not counted.
///
/// # Errors
/// On a database error.
pub async fn daily_counts(
    store: &Store,
    from_day: Timestamp,
    to: Timestamp,
) -> Result<BTreeMap<String, BTreeMap<Timestamp, DayCount>>, StoreError> {
    let mut out: BTreeMap<String, BTreeMap<Timestamp, DayCount>> = BTreeMap::new();
    // `+h.hour`: SQLite would otherwise walk the `hour` index and fetch each
    // row at random; scanning the table in key order is three times faster
    // at 90 days of 1,000 monitors (docs/benchmarks.md).
    let hourly = sqlx::query(
        "SELECT h.monitor AS monitor, h.hour / 86400000 AS day,
                CAST(SUM(h.total) AS BIGINT) AS total, CAST(SUM(h.failures) AS BIGINT) AS failures
         FROM probe_rollups_hourly h
         WHERE +h.hour >= $1 AND +h.hour < $2
           AND NOT EXISTS (SELECT 1 FROM probe_rollups m WHERE m.monitor = h.monitor
                           AND m.minute >= h.hour AND m.minute < h.hour + $3)
         GROUP BY h.monitor, h.hour / 86400000",
    )
    .bind(from_day.as_millis())
    .bind(to.as_millis())
    .bind(HOUR_MS)
    .fetch_all(store.pool())
    .await?;
    let minutes = sqlx::query(
        "SELECT monitor, minute / 86400000 AS day,
                CAST(SUM(total) AS BIGINT) AS total, CAST(SUM(failures) AS BIGINT) AS failures
         FROM probe_rollups WHERE minute >= $1 AND minute < $2
         GROUP BY monitor, minute / 86400000",
    )
    .bind(from_day.as_millis())
    .bind(to.as_millis())
    .fetch_all(store.pool())
    .await?;
    for row in hourly.iter().chain(minutes.iter()) {
        let monitor: String = row.try_get("monitor")?;
        let day: i64 = row.try_get("day")?;
        let total: i64 = row.try_get("total")?;
        let failures: i64 = row.try_get("failures")?;
        let c = out
            .entry(monitor)
            .or_default()
            .entry(Timestamp::from_millis(day * DAY_MS))
            .or_default();
        c.total += total.max(0) as u64;
        c.bad += failures.max(0) as u64;
    }
    Ok(out)
}
