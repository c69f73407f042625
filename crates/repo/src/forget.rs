//! Retention: which snapshots a `forget` policy keeps, as restic decides it,
//! and the `forget` operation that removes the others.
//!
//! The policy is pure: snapshots in, decisions out, no clock and no I/O.
//! Snapshots are grouped by host and paths; within a group, newest first,
//! each `keep-*` rule keeps the newest snapshot of each of its last N
//! periods (hour, day, ISO week, month, year) that have snapshots; `last`
//! keeps the N newest; `within` keeps everything newer than the duration
//! before the group's newest snapshot; `tags` keeps snapshots with any of
//! those tags. A snapshot is kept if any rule keeps it.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, FixedOffset, Months, Timelike};

use crate::backend::FileType;
use crate::error::{Error, Result};
use crate::format::snapshot::Snapshot;
use crate::id::Id;
use crate::repository::Repository;

/// A retention policy. All zero and empty means "no policy": `forget`
/// then refuses to remove anything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetentionPolicy {
    /// Keep the N newest snapshots.
    pub last: u32,
    /// Keep the newest snapshot of each of the last N hours with snapshots.
    pub hourly: u32,
    /// ... days.
    pub daily: u32,
    /// ... ISO weeks.
    pub weekly: u32,
    /// ... months.
    pub monthly: u32,
    /// ... years.
    pub yearly: u32,
    /// Keep snapshots newer than this before the newest one.
    pub within: Option<KeepWithin>,
    /// Keep snapshots that have any of these tags.
    pub tags: Vec<String>,
}

impl RetentionPolicy {
    /// True when no rule is set.
    pub fn is_empty(&self) -> bool {
        *self == RetentionPolicy::default()
    }
}

/// A calendar duration as restic spells it: `1y2m3d4h` (any subset).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeepWithin {
    /// Years.
    pub years: u32,
    /// Months.
    pub months: u32,
    /// Days.
    pub days: u32,
    /// Hours.
    pub hours: u32,
}

impl std::str::FromStr for KeepWithin {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::InvalidArgument(format!("duration {s:?}: expected e.g. 1y2m3d4h"));
        let mut d = KeepWithin::default();
        let mut num = String::new();
        for c in s.chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            let n: u32 = num.parse().map_err(|_| bad())?;
            num.clear();
            match c {
                'y' => d.years = n,
                'm' => d.months = n,
                'd' => d.days = n,
                'h' => d.hours = n,
                _ => return Err(bad()),
            }
        }
        if !num.is_empty() || s.is_empty() {
            return Err(bad());
        }
        Ok(d)
    }
}

impl KeepWithin {
    /// The instant `self` before `t`, calendar-aware like Go's AddDate.
    fn before(&self, t: DateTime<FixedOffset>) -> DateTime<FixedOffset> {
        let months = self.years.saturating_mul(12).saturating_add(self.months);
        let t = t.checked_sub_months(Months::new(months)).unwrap_or(t);
        t - chrono::Duration::days(self.days as i64) - chrono::Duration::hours(self.hours as i64)
    }
}

/// The decision for one snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The snapshot.
    pub id: Id,
    /// Whether the policy keeps it.
    pub keep: bool,
    /// Which rules keep it (`last`, `hourly`, ..., `within`, `tag`).
    pub reasons: Vec<&'static str>,
}

/// Apply `policy` to one group of snapshots. Pure: no clock, no I/O.
pub fn apply_policy_to_group(
    snapshots: &[(Id, Snapshot)],
    policy: &RetentionPolicy,
) -> Vec<Decision> {
    let mut list: Vec<&(Id, Snapshot)> = snapshots.iter().collect();
    // Newest first; ties broken by id so the result is deterministic.
    list.sort_by(|a, b| b.1.time.cmp(&a.1.time).then(b.0.cmp(&a.0)));
    type Bucket = fn(&DateTime<FixedOffset>, usize) -> i64;
    let rules: [(&'static str, u32, Bucket); 6] = [
        ("last", policy.last, |_, nr| nr as i64),
        ("hourly", policy.hourly, |t, _| {
            t.year() as i64 * 1_000_000
                + t.month() as i64 * 10_000
                + t.day() as i64 * 100
                + t.hour() as i64
        }),
        ("daily", policy.daily, |t, _| {
            t.year() as i64 * 10_000 + t.month() as i64 * 100 + t.day() as i64
        }),
        ("weekly", policy.weekly, |t, _| {
            let w = t.iso_week();
            w.year() as i64 * 100 + w.week() as i64
        }),
        ("monthly", policy.monthly, |t, _| {
            t.year() as i64 * 100 + t.month() as i64
        }),
        ("yearly", policy.yearly, |t, _| t.year() as i64),
    ];
    let mut remaining: Vec<u32> = rules.iter().map(|r| r.1).collect();
    let mut last: Vec<Option<i64>> = vec![None; rules.len()];
    let cutoff = match (policy.within, list.first()) {
        (Some(w), Some(newest)) => Some(w.before(newest.1.time)),
        _ => None,
    };
    let mut out = Vec::with_capacity(list.len());
    for (nr, (id, s)) in list.iter().enumerate() {
        let mut reasons = Vec::new();
        if s.tags.iter().any(|t| policy.tags.contains(t)) {
            reasons.push("tag");
        }
        if cutoff.is_some_and(|c| s.time > c) {
            reasons.push("within");
        }
        // Every rule sees every snapshot, whether or not another rule
        // already keeps it: that is how restic counts periods.
        for (i, (name, _, bucket)) in rules.iter().enumerate() {
            if remaining[i] == 0 {
                continue;
            }
            let v = bucket(&s.time, nr);
            if last[i] != Some(v) {
                last[i] = Some(v);
                remaining[i] -= 1;
                reasons.push(name);
            }
        }
        out.push(Decision {
            id: *id,
            keep: !reasons.is_empty(),
            reasons,
        });
    }
    out
}

/// Group by host and (sorted) paths, then apply the policy per group.
pub fn apply_policy(snapshots: &[(Id, Snapshot)], policy: &RetentionPolicy) -> Vec<Decision> {
    // Key: host and sorted paths, restic's default grouping.
    type Group = (String, Vec<String>);
    let mut groups: BTreeMap<Group, Vec<(Id, Snapshot)>> = BTreeMap::new();
    for (id, s) in snapshots {
        let mut paths = s.paths.clone();
        paths.sort();
        groups
            .entry((s.hostname.clone(), paths))
            .or_default()
            .push((*id, s.clone()));
    }
    groups
        .values()
        .flat_map(|g| apply_policy_to_group(g, policy))
        .collect()
}

/// Apply the policy to the repository and, unless `dry_run`, remove the
/// snapshots it does not keep (under an exclusive lock). Data stays until
/// `prune`.
///
/// # Errors
/// An empty policy, a lock held by someone else, backend failures.
pub fn forget(repo: &Repository, policy: &RetentionPolicy, dry_run: bool) -> Result<Vec<Decision>> {
    if policy.is_empty() {
        return Err(Error::InvalidArgument(
            "no retention policy given: nothing would be kept".into(),
        ));
    }
    let _lock = if dry_run {
        None
    } else {
        Some(crate::lock::lock(repo, true)?)
    };
    // Unreadable snapshot files cannot be judged: they are left alone
    // (`check` reports them).
    let decisions = apply_policy(&repo.load_snapshots()?.snapshots, policy);
    if !dry_run {
        for d in decisions.iter().filter(|d| !d.keep) {
            repo.backend.remove(FileType::Snapshot, &d.id.to_hex())?;
        }
    }
    Ok(decisions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(n: u8, time: &str, tags: &[&str]) -> (Id, Snapshot) {
        (
            Id([n; 32]),
            Snapshot {
                time: DateTime::parse_from_rfc3339(time).unwrap(),
                hostname: "h".into(),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                ..Snapshot::for_tests(Id::default(), "/srv")
            },
        )
    }

    /// Snapshots 1..=N, see the times; returns the kept numbers, newest first.
    fn check(policy: RetentionPolicy, expected: &[u8]) {
        let list = vec![
            snap(1, "2024-01-01T10:00:00Z", &[]),
            snap(2, "2024-01-01T11:00:00Z", &[]),
            snap(3, "2024-01-01T11:30:00Z", &["release"]),
            snap(4, "2024-01-02T09:00:00Z", &[]),
            snap(5, "2024-01-08T09:00:00Z", &[]),
            snap(6, "2024-02-15T09:00:00Z", &[]),
            snap(7, "2024-02-16T09:00:00Z", &[]),
            snap(8, "2025-03-01T09:00:00Z", &[]),
            snap(9, "2025-03-01T09:10:00Z", &[]),
        ];
        let kept: Vec<u8> = apply_policy(&list, &policy)
            .iter()
            .filter(|d| d.keep)
            .map(|d| d.id.0[0])
            .collect();
        assert_eq!(kept, expected, "{policy:?}");
    }

    #[test]
    fn policy_table() {
        let p = RetentionPolicy::default;
        check(RetentionPolicy { last: 3, ..p() }, &[9, 8, 7]);
        check(RetentionPolicy { hourly: 3, ..p() }, &[9, 7, 6]);
        check(RetentionPolicy { daily: 4, ..p() }, &[9, 7, 6, 5]);
        check(RetentionPolicy { daily: 10, ..p() }, &[9, 7, 6, 5, 4, 3]);
        // ISO weeks: 2024-01-01 and 01-02 share week 1; 01-08 is week 2.
        check(RetentionPolicy { weekly: 10, ..p() }, &[9, 7, 5, 4]);
        check(RetentionPolicy { monthly: 2, ..p() }, &[9, 7]);
        // The newest snapshot of each period is the one kept.
        check(RetentionPolicy { monthly: 5, ..p() }, &[9, 7, 5]);
        check(RetentionPolicy { yearly: 5, ..p() }, &[9, 7]);
        check(
            RetentionPolicy {
                tags: vec!["release".into()],
                ..p()
            },
            &[3],
        );
        check(
            RetentionPolicy {
                last: 1,
                yearly: 2,
                ..p()
            },
            &[9, 7],
        );
        check(
            RetentionPolicy {
                last: 2,
                hourly: 2,
                ..p()
            },
            &[9, 8, 7],
        );
        // Within is measured from the newest snapshot, not from now.
        check(
            RetentionPolicy {
                within: Some("1d".parse().unwrap()),
                ..p()
            },
            &[9, 8],
        );
        check(
            RetentionPolicy {
                within: Some("1y1m".parse().unwrap()),
                ..p()
            },
            &[9, 8, 7, 6],
        );
        check(p(), &[]);
    }

    #[test]
    fn groups_are_independent() {
        let mut a = snap(1, "2024-01-01T10:00:00Z", &[]);
        let b = snap(2, "2024-01-02T10:00:00Z", &[]);
        a.1.hostname = "other".into();
        let d = apply_policy(
            &[a, b],
            &RetentionPolicy {
                last: 1,
                ..Default::default()
            },
        );
        assert!(d.iter().all(|d| d.keep), "{d:?}");
    }

    #[test]
    fn within_durations_parse() {
        let ok = [
            ("1y2m3d4h", (1, 2, 3, 4)),
            ("7d", (0, 0, 7, 0)),
            ("36h", (0, 0, 0, 36)),
        ];
        for (s, (years, months, days, hours)) in ok {
            assert_eq!(
                s.parse::<KeepWithin>().unwrap(),
                KeepWithin {
                    years,
                    months,
                    days,
                    hours
                }
            );
        }
        for bad in ["", "5", "d", "1w", "1d2"] {
            assert!(bad.parse::<KeepWithin>().is_err(), "{bad}");
        }
    }
}
