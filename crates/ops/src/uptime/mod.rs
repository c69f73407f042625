//! Uptime: probe results, rollups, incidents and heartbeats in the store,
//! and the pure strike counter that turns results into incidents.

mod store;

pub use store::*;

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
}
