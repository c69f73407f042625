//! What the public status page and badges show: monitors marked
//! `public = true`, their state, daily uptime and open incidents, and
//! nothing else. No target, no probe error or incident cause (both can name
//! hosts), no private monitor: the public view is built here, from the
//! config's public monitors only, so a front-end cannot show more than
//! this by mistake.
//!
//! Reading it costs three queries whatever the number of monitors (two
//! aggregates for the daily counts, one for open incidents).

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use sqlx::Row;

use crate::config::Config;
use crate::engine::MonitorLive;
use crate::store::{Store, StoreError};
use crate::time::Timestamp;
use crate::uptime::{DayCount, DAY};

/// Days of history on the status page, today included.
pub const HISTORY_DAYS: usize = 90;
/// Days a badge's uptime figure covers, today included.
pub const BADGE_DAYS: usize = 30;

/// A public monitor's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Up,
    /// An incident is open: `strikes` failures in a row, so one failed
    /// probe does not flap the public page.
    Down,
    /// Nothing measured yet (or for the whole last day, without a running
    /// engine to ask).
    Unknown,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Up => "up",
            State::Down => "down",
            State::Unknown => "unknown",
        }
    }
}

/// One public monitor.
#[derive(Debug, Clone, PartialEq)]
pub struct PublicMonitor {
    pub name: String,
    pub state: State,
    /// [`HISTORY_DAYS`] days, oldest first, today last.
    pub days: Vec<(NaiveDate, DayCount)>,
}

impl PublicMonitor {
    /// Uptime over the newest `last` days; None without measurements.
    pub fn uptime(&self, last: usize) -> Option<f64> {
        let skip = self.days.len().saturating_sub(last);
        let sum = self.days[skip..]
            .iter()
            .fold(DayCount::default(), |acc, (_, c)| DayCount {
                total: acc.total + c.total,
                bad: acc.bad + c.bad,
            });
        sum.uptime()
    }
}

/// An open incident of a public monitor: which and since when, never why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicIncident {
    pub monitor: String,
    pub opened_at: Timestamp,
}

/// The public view.
#[derive(Debug, Clone, PartialEq)]
pub struct PublicStatus {
    /// When it was read.
    pub at: Timestamp,
    /// In config order.
    pub monitors: Vec<PublicMonitor>,
    /// Newest first.
    pub incidents: Vec<PublicIncident>,
}

impl PublicStatus {
    /// The public monitor named `name`; None for a private or unknown one
    /// alike.
    pub fn monitor(&self, name: &str) -> Option<&PublicMonitor> {
        self.monitors.iter().find(|m| m.name == name)
    }

    /// Takes each monitor's state from a running engine's snapshot (fresher
    /// than the store): down while its incident is open, up once it has a
    /// result.
    pub fn apply_live(&mut self, live: &BTreeMap<String, MonitorLive>) {
        for m in &mut self.monitors {
            if let Some(l) = live.get(&m.name) {
                m.state = match (l.incident_open, &l.last) {
                    (true, _) => State::Down,
                    (false, Some(_)) => State::Up,
                    (false, None) => State::Unknown,
                };
            }
        }
    }
}

/// Reads the public view at `now` from the store (days that ended
/// through `history`, which keeps them). A monitor's state is
/// down while an incident is open, up when something was measured today or
/// yesterday (UTC), unknown otherwise; see [`PublicStatus::apply_live`] for a
/// running engine's fresher state.
///
/// # Errors
/// On a database error.
pub async fn public_status(
    store: &Store,
    config: &Config,
    history: &crate::uptime::DailyHistory,
    now: Timestamp,
) -> Result<PublicStatus, StoreError> {
    let public: Vec<&str> = config
        .monitors
        .iter()
        .filter(|m| m.public)
        .map(|m| m.name.as_str())
        .collect();
    if public.is_empty() {
        return Ok(PublicStatus {
            at: now,
            monitors: Vec::new(),
            incidents: Vec::new(),
        });
    }
    let today = now.floor(DAY);
    let first = today - (HISTORY_DAYS as u32 - 1) * DAY;
    let mut counts = history
        .counts(store, first, now + std::time::Duration::from_millis(1))
        .await?;
    let rows = sqlx::query(
        "SELECT monitor, opened_at FROM incidents WHERE resolved_at IS NULL ORDER BY opened_at DESC",
    )
    .fetch_all(store.pool())
    .await?;
    let names: BTreeSet<&str> = public.iter().copied().collect();
    let mut incidents = Vec::new();
    let mut down = BTreeSet::new();
    for row in &rows {
        let monitor: String = row.try_get("monitor")?;
        if !names.contains(monitor.as_str()) || down.contains(&monitor) {
            continue;
        }
        down.insert(monitor.clone());
        incidents.push(PublicIncident {
            monitor,
            opened_at: Timestamp::from_millis(row.try_get("opened_at")?),
        });
    }
    let monitors = public
        .iter()
        .map(|&name| {
            let mine = counts.remove(name).unwrap_or_default();
            let days: Vec<(NaiveDate, DayCount)> = (0..HISTORY_DAYS as u32)
                .map(|i| {
                    let start = first + i * DAY;
                    let date = start.to_datetime().date_naive();
                    (date, mine.get(&start).copied().unwrap_or_default())
                })
                .collect();
            let recent = mine.range(today - DAY..).any(|(_, c)| c.total > 0);
            let state = if down.contains(name) {
                State::Down
            } else if recent {
                State::Up
            } else {
                State::Unknown
            };
            PublicMonitor {
                name: name.to_string(),
                state,
                days,
            }
        })
        .collect();
    Ok(PublicStatus {
        at: now,
        monitors,
        incidents,
    })
}
