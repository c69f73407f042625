//! Uptime: probe results, rollups, incidents and heartbeats in the store,
//! and the pure strike counter that turns results into incidents.

mod daily;
mod store;

pub use daily::*;
pub use store::*;

use std::time::Duration;

use crate::time::Timestamp;

/// One minute of a monitor: how many probes ran and how many failed. What
/// SLOs are computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub start: Timestamp,
    pub total: u64,
    pub bad: u64,
}

/// Counts results in a row and says when an incident opens or resolves.
/// Pure: the engine feeds it results; tests feed it booleans.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tracker {
    pub failures_in_a_row: u32,
    pub successes_in_a_row: u32,
    pub down: bool,
}

/// What a result changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    None,
    /// `strikes` failures in a row: an incident opens.
    Opened,
    /// `recover_after` successes in a row while down: it resolves.
    Resolved,
}

impl Tracker {
    /// A tracker for a monitor whose incident is already open (after a restart).
    pub fn down() -> Tracker {
        Tracker {
            down: true,
            ..Tracker::default()
        }
    }

    pub fn observe(&mut self, ok: bool, strikes: u32, recover_after: u32) -> Transition {
        if ok {
            self.failures_in_a_row = 0;
            self.successes_in_a_row = self.successes_in_a_row.saturating_add(1);
            if self.down && self.successes_in_a_row >= recover_after {
                self.down = false;
                return Transition::Resolved;
            }
        } else {
            self.successes_in_a_row = 0;
            self.failures_in_a_row = self.failures_in_a_row.saturating_add(1);
            if !self.down && self.failures_in_a_row >= strikes {
                self.down = true;
                return Transition::Opened;
            }
        }
        Transition::None
    }
}

/// How far into its interval a monitor's first probe starts: a stable hash
/// of the name, so restarts keep the same phase and a thousand monitors
/// with one interval do not all fire in the same millisecond.
pub fn start_offset(name: &str, interval: std::time::Duration) -> std::time::Duration {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(name.as_bytes());
    let mut n = [0_u8; 8];
    n.copy_from_slice(&digest[..8]);
    let ms = u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    std::time::Duration::from_millis(u64::from_be_bytes(n) % ms)
}

/// The first slot at or after `t` of a schedule that runs every `interval`
/// at `phase` past each multiple of the interval since the epoch.
pub fn slot_at_or_after(t: Timestamp, interval: Duration, phase: Duration) -> Timestamp {
    let interval = interval.max(Duration::from_millis(1));
    let base = Timestamp::EPOCH + phase;
    let slot = base
        + chrono::Duration::milliseconds(
            (t.as_millis() - base.as_millis()).div_euclid(ms(interval)) * ms(interval),
        );
    if slot < t {
        slot + interval
    } else {
        slot
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// When a monitor's first probe runs after a start at `now`: its first
/// slot, unless that is more than a minute away (long intervals), then
/// `soon` after the start.
pub fn first_slot(
    now: Timestamp,
    interval: Duration,
    phase: Duration,
    soon: Duration,
) -> Timestamp {
    let slot = slot_at_or_after(now, interval, phase);
    if slot - now > Duration::from_secs(60) {
        now + soon
    } else {
        slot
    }
}

/// When the probe after the one due at `prev` runs, asked at `now` (when
/// that probe is done): the next slot, even if it has just passed, so a
/// probe that takes about as long as the interval is not skipped; but a
/// monitor more than an interval behind skips to the next slot to come
/// rather than firing a burst to catch up.
pub fn next_slot(
    prev: Timestamp,
    now: Timestamp,
    interval: Duration,
    phase: Duration,
) -> Timestamp {
    let next = slot_at_or_after(prev + Duration::from_millis(1), interval, phase);
    if next < now - interval {
        slot_at_or_after(now, interval, phase)
    } else {
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `results` ('+' ok, '-' failure) and returns the transitions as
    /// 'O' (opened), 'R' (resolved) or '.'.
    fn run(results: &str, strikes: u32, recover_after: u32) -> String {
        let mut t = Tracker::default();
        results
            .chars()
            .map(|c| match t.observe(c == '+', strikes, recover_after) {
                Transition::Opened => 'O',
                Transition::Resolved => 'R',
                Transition::None => '.',
            })
            .collect()
    }

    #[test]
    fn strikes_and_recovery() {
        let check = |results: &str, strikes, recover, expected: &str| {
            assert_eq!(
                run(results, strikes, recover),
                expected,
                "{results} strikes={strikes} recover={recover}"
            );
        };
        check("++++", 2, 2, "....");
        check("-+-+-+", 2, 2, "......");
        check("--", 2, 2, ".O");
        check("---", 2, 2, ".O.");
        check("--+-++", 2, 2, ".O...R");
        check("--++--++", 2, 2, ".O.R.O.R");
        check("-", 1, 1, "O");
        check("-+", 1, 1, "OR");
        check("---+++", 3, 3, "..O..R");
    }

    #[test]
    fn offsets_are_stable_and_within_the_interval() {
        let i = std::time::Duration::from_secs(10);
        assert_eq!(start_offset("api", i), start_offset("api", i));
        for n in 0..100 {
            assert!(start_offset(&format!("m{n}"), i) < i);
        }
        let distinct: std::collections::BTreeSet<_> = (0..100)
            .map(|n| start_offset(&format!("m{n}"), i))
            .collect();
        assert!(distinct.len() > 90, "offsets spread out");
    }

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn d(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn slots() {
        // (t, interval, phase) -> first slot at or after t
        let check = |t, i, p, expected| {
            assert_eq!(
                slot_at_or_after(at(t), d(i), d(p)),
                at(expected),
                "t={t} interval={i} phase={p}"
            );
        };
        check(0, 10_000, 0, 0);
        check(1, 10_000, 0, 10_000);
        check(10_000, 10_000, 0, 10_000);
        check(12_345, 10_000, 2_345, 12_345);
        check(12_346, 10_000, 2_345, 22_345);
        check(1_700_000_000_123, 10_000, 7_000, 1_700_000_007_000);
        check(-5, 10_000, 0, 0);
    }

    #[test]
    fn first_and_next_slots() {
        // (now, interval, phase, soon) -> first probe
        let first = |now, i, p, soon, expected| {
            assert_eq!(
                first_slot(at(now), d(i), d(p), d(soon)),
                at(expected),
                "now={now} i={i} p={p}"
            );
        };
        first(100_000, 10_000, 3_000, 3_000, 103_000);
        first(104_000, 10_000, 3_000, 3_000, 113_000);
        // A one-hour interval whose slot is 50 minutes away starts soon instead.
        first(600_000, 3_600_000, 0, 42_000, 642_000);
        // ...and one whose slot is within a minute waits for it.
        first(3_570_000, 3_600_000, 0, 42_000, 3_600_000);

        // (prev, now, interval, phase) -> next probe
        let next = |prev, now, i, p, expected| {
            assert_eq!(
                next_slot(at(prev), at(now), d(i), d(p)),
                at(expected),
                "prev={prev} now={now}"
            );
        };
        next(103_000, 103_050, 10_000, 3_000, 113_000);
        // A probe that ran past its next slot: that slot still runs (late).
        next(103_000, 113_500, 10_000, 3_000, 113_000);
        // More than an interval behind: skip to the next slot to come.
        next(103_000, 125_000, 10_000, 3_000, 133_000);
        // After an off-grid first probe, back on the grid.
        next(642_000, 642_010, 3_600_000, 0, 3_600_000);
    }
}
