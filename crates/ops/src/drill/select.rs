//! Which snapshot a drill restores (`[[drill]] snapshot = ...`,
//! `bulwark drill run --snapshot`): pure, with the time and the random
//! roll as parameters.

use chrono::{DateTime, Utc};

use crate::config::snapshot::days;
pub use crate::config::SnapshotSpec;

/// Picks from `snaps` (`(id, time)`, any order) what `spec` asks for at
/// `now`; `roll` is a random number, used only by [`SnapshotSpec::Random`].
/// Returns the index chosen and how it was chosen, in words.
///
/// # Errors
/// No snapshot; none old enough (naming the age asked and the oldest
/// snapshot's age); no id matching, or several.
pub fn choose(
    snaps: &[(String, DateTime<Utc>)],
    now: DateTime<Utc>,
    spec: &SnapshotSpec,
    roll: u64,
) -> Result<(usize, String), String> {
    if snaps.is_empty() {
        return Err("the repository has no snapshots".to_string());
    }
    let age = |t: DateTime<Utc>| (now - t).to_std().unwrap_or_default();
    // Ties on time go to the larger id, so the choice does not depend on
    // the listing order.
    let newest = |it: &mut dyn Iterator<Item = usize>| {
        it.max_by(|&a, &b| {
            snaps[a]
                .1
                .cmp(&snaps[b].1)
                .then(snaps[a].0.cmp(&snaps[b].0))
        })
    };
    match spec {
        SnapshotSpec::Latest => {
            let i = newest(&mut (0..snaps.len())).unwrap_or_default();
            Ok((i, "latest: the newest snapshot".to_string()))
        }
        SnapshotSpec::OlderThan(min_age) => {
            match newest(&mut (0..snaps.len()).filter(|&i| age(snaps[i].1) >= *min_age)) {
                Some(i) => Ok((
                    i,
                    format!(
                        "older-than:{}: the newest snapshot at least that old",
                        days(*min_age)
                    ),
                )),
                None => {
                    let oldest = snaps.iter().map(|s| s.1).min().unwrap_or(now);
                    Err(format!(
                        "no snapshot is at least {} old: the oldest is {} old",
                        days(*min_age),
                        days(age(oldest))
                    ))
                }
            }
        }
        SnapshotSpec::Random => {
            // Sorted first, so the same roll picks the same snapshot
            // whatever order the listing came in.
            let mut order: Vec<usize> = (0..snaps.len()).collect();
            order.sort_by(|&a, &b| {
                snaps[a]
                    .1
                    .cmp(&snaps[b].1)
                    .then(snaps[a].0.cmp(&snaps[b].0))
            });
            let len = u64::try_from(order.len()).unwrap_or(u64::MAX);
            let i = order[usize::try_from(roll % len).unwrap_or_default()];
            Ok((
                i,
                format!(
                    "random: one of the {} snapshots in the repository",
                    snaps.len()
                ),
            ))
        }
        SnapshotSpec::Id(prefix) => {
            let found: Vec<usize> = (0..snaps.len())
                .filter(|&i| snaps[i].0.starts_with(prefix.as_str()))
                .collect();
            match found.as_slice() {
                [i] => Ok((*i, format!("id: snapshot {prefix} as asked"))),
                [] => Err(format!("no snapshot has the id {prefix}")),
                _ => Err(format!("the id prefix {prefix} matches several snapshots")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::time::Duration;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).single().unwrap()
    }

    /// Hand-dated snapshots, listed out of order on purpose.
    fn snaps() -> Vec<(String, DateTime<Utc>)> {
        vec![
            ("cccc03".to_string(), at(2026, 9, 1)),
            ("aaaa01".to_string(), at(2026, 1, 1)),
            ("eeee05".to_string(), at(2026, 11, 30)),
            ("bbbb02".to_string(), at(2026, 6, 1)),
            ("dddd04".to_string(), at(2026, 11, 1)),
        ]
    }

    fn check(spec: &str, now: DateTime<Utc>, roll: u64, expected: Result<&str, &str>) {
        let s = snaps();
        let spec = SnapshotSpec::parse(spec, true).unwrap();
        let got = choose(&s, now, &spec, roll).map(|(i, _)| s[i].0.as_str());
        match (got, expected) {
            (Ok(id), Ok(want)) => assert_eq!(id, want, "{spec}"),
            (Err(e), Err(want)) => assert!(e.contains(want), "{spec}: {e}"),
            (got, want) => panic!("{spec}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn picks_among_hand_dated_snapshots() {
        let now = at(2026, 12, 2);
        check("latest", now, 0, Ok("eeee05"));
        // The newest at least 90 days old (on or before 2026-09-03).
        check("older-than:90d", now, 0, Ok("cccc03"));
        check("older-than:1d", now, 0, Ok("eeee05"));
        check("older-than:30d", now, 0, Ok("dddd04"));
        check("older-than:200d", now, 0, Ok("aaaa01"));
        // Exactly that old counts: 2026-09-01 12:00 is 92 days before now.
        check("older-than:92d", now, 0, Ok("cccc03"));
        // One second more and it is the one before.
        check("older-than:7948801s", now, 0, Ok("bbbb02"));
        // None old enough: the age asked and the oldest's age.
        check(
            "older-than:400d",
            now,
            0,
            Err("no snapshot is at least 400d old: the oldest is 335d old"),
        );
        check("dddd", now, 0, Ok("dddd04"));
        check("ffff", now, 0, Err("no snapshot has the id ffff"));
    }

    #[test]
    fn random_covers_every_snapshot_and_only_those() {
        let s = snaps();
        let now = at(2026, 12, 2);
        let mut seen: Vec<&str> = (0..5)
            .map(|roll| {
                s[choose(&s, now, &SnapshotSpec::Random, roll).unwrap().0]
                    .0
                    .as_str()
            })
            .collect();
        // Rolls map to the snapshots in time order.
        assert_eq!(seen, ["aaaa01", "bbbb02", "cccc03", "dddd04", "eeee05"]);
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 5);
        assert_eq!(
            choose(&s, now, &SnapshotSpec::Random, 7).unwrap().0,
            choose(&s, now, &SnapshotSpec::Random, 2).unwrap().0
        );
    }

    #[test]
    fn empty_repository_fails_every_spec() {
        for spec in ["latest", "random", "older-than:1d", "abcd"] {
            let spec = SnapshotSpec::parse(spec, true).unwrap();
            let e = choose(&[], at(2026, 1, 1), &spec, 0).unwrap_err();
            assert_eq!(e, "the repository has no snapshots");
        }
    }

    #[test]
    fn parse_specs() {
        assert_eq!(
            SnapshotSpec::parse("latest", false),
            Ok(SnapshotSpec::Latest)
        );
        assert_eq!(
            SnapshotSpec::parse("random", false),
            Ok(SnapshotSpec::Random)
        );
        assert_eq!(
            SnapshotSpec::parse("older-than:90d", false),
            Ok(SnapshotSpec::OlderThan(Duration::from_secs(90 * 86_400)))
        );
        assert_eq!(
            SnapshotSpec::parse("older-than:90d", false)
                .unwrap()
                .to_string(),
            "older-than:90d"
        );
        assert!(SnapshotSpec::parse("older-than:0s", false).is_err());
        assert!(SnapshotSpec::parse("older-than:90", false).is_err());
        assert!(SnapshotSpec::parse("oldest", false).is_err());
        // Ids only where asked for (`--snapshot`), not in config.
        assert!(SnapshotSpec::parse("abcd1234", false).is_err());
        assert_eq!(
            SnapshotSpec::parse("ABCD1234", true),
            Ok(SnapshotSpec::Id("abcd1234".to_string()))
        );
    }
}
