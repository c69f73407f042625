//! The one time type of the domain.
//!
//! Timestamps are stored as Unix milliseconds (`BIGINT`): the one integer
//! type SQLite and PostgreSQL agree on through sqlx's `Any` driver, and it
//! sorts and compares without parsing. [`Timestamp`] carries that value
//! through the domain, so a time can never be mixed up with a duration or a
//! count; the raw milliseconds come out only where a row is bound or read
//! ([`Timestamp::from_millis`], [`Timestamp::as_millis`]), and wire types
//! convert explicitly ([`Timestamp::to_datetime`], `Display`).

use std::fmt;
use std::ops::{Add, AddAssign, Sub, SubAssign};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// A point in time, to the millisecond, in UTC.
///
/// Arithmetic saturates instead of overflowing: a bad value in a
/// hand-edited database must not panic the server. `Display` is RFC 3339
/// with milliseconds and `Z` (`2026-05-01T12:00:00.000Z`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// 1970-01-01T00:00:00Z.
    pub const EPOCH: Timestamp = Timestamp(0);

    pub fn now() -> Timestamp {
        Timestamp(Utc::now().timestamp_millis())
    }

    /// From Unix milliseconds: for values read from the store.
    pub const fn from_millis(ms: i64) -> Timestamp {
        Timestamp(ms)
    }

    /// As Unix milliseconds: for values bound into the store.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    pub fn to_datetime(self) -> DateTime<Utc> {
        // Out-of-range values can only come from a hand-edited database; pin
        // them to the epoch rather than fail a whole listing.
        Utc.timestamp_millis_opt(self.0)
            .single()
            .unwrap_or_default()
    }

    /// How long after `earlier` this is; zero if `earlier` is not earlier.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }

    /// This time rounded down to a multiple of `step` since the epoch (a
    /// zero step is taken as one millisecond).
    pub fn floor(self, step: Duration) -> Timestamp {
        let step = millis(step).max(1);
        // Saturates: a floor below i64::MIN (a corrupt stored time) pins there.
        Timestamp(self.0.div_euclid(step).saturating_mul(step))
    }
}

/// A duration in whole milliseconds, saturating at `i64::MAX`.
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(t: DateTime<Utc>) -> Timestamp {
        Timestamp(t.timestamp_millis())
    }
}

impl From<Timestamp> for DateTime<Utc> {
    fn from(t: Timestamp) -> DateTime<Utc> {
        t.to_datetime()
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(millis(d)))
    }
}

impl Sub<Duration> for Timestamp {
    type Output = Timestamp;
    fn sub(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(millis(d)))
    }
}

impl AddAssign<Duration> for Timestamp {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl SubAssign<Duration> for Timestamp {
    fn sub_assign(&mut self, d: Duration) {
        *self = *self - d;
    }
}

/// Calendar-free signed offsets (`chrono::Duration::days(-3)`).
impl Add<chrono::Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: chrono::Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(d.num_milliseconds()))
    }
}

impl Sub<chrono::Duration> for Timestamp {
    type Output = Timestamp;
    fn sub(self, d: chrono::Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(d.num_milliseconds()))
    }
}

/// The time from `earlier` to `self`, zero if `earlier` is later: see
/// [`Timestamp::since`].
impl Sub<Timestamp> for Timestamp {
    type Output = Duration;
    fn sub(self, earlier: Timestamp) -> Duration {
        self.since(earlier)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            &self
                .to_datetime()
                .to_rfc3339_opts(SecondsFormat::Millis, true),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&Utc)
            .into()
    }

    #[test]
    fn round_trips_through_the_store_and_datetime() {
        let ts = t("2026-05-01T12:34:56.789Z");
        assert_eq!(ts.as_millis(), 1_777_638_896_789);
        assert_eq!(Timestamp::from_millis(ts.as_millis()), ts);
        assert_eq!(Timestamp::from(ts.to_datetime()), ts);
    }

    #[test]
    fn displays_rfc3339_with_milliseconds() {
        let check = |s: &str, expected: &str| assert_eq!(t(s).to_string(), expected);
        check("2026-05-01T12:00:00Z", "2026-05-01T12:00:00.000Z");
        check("2026-05-01T14:00:00.5+02:00", "2026-05-01T12:00:00.500Z");
        // Sub-millisecond digits are dropped, as the store drops them.
        check("2026-05-01T12:00:00.123999Z", "2026-05-01T12:00:00.123Z");
        assert_eq!(Timestamp::EPOCH.to_string(), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn arithmetic_saturates() {
        let a = t("2026-05-01T12:00:00Z");
        let b = a + Duration::from_secs(90);
        assert_eq!(b.to_string(), "2026-05-01T12:01:30.000Z");
        assert_eq!(b - a, Duration::from_secs(90));
        assert_eq!(a - b, Duration::ZERO);
        assert_eq!(b - Duration::from_secs(90), a);
        assert_eq!(a + chrono::Duration::days(-1), t("2026-04-30T12:00:00Z"));
        assert_eq!(a - chrono::Duration::hours(1), t("2026-05-01T11:00:00Z"));
        let max = Timestamp::from_millis(i64::MAX);
        assert_eq!(max + Duration::from_secs(1), max);
        assert_eq!(max + Duration::MAX, max);
        let min = Timestamp::from_millis(i64::MIN);
        assert_eq!(min - Duration::from_secs(1), min);
        assert_eq!(max - min, Duration::from_millis(i64::MAX as u64));
    }

    #[test]
    fn floors_to_a_step() {
        let check = |ms: i64, step_ms: u64, expected: i64| {
            let got = Timestamp::from_millis(ms).floor(Duration::from_millis(step_ms));
            assert_eq!(got.as_millis(), expected, "{ms} floored to {step_ms}");
        };
        check(125_000, 60_000, 120_000);
        check(120_000, 60_000, 120_000);
        check(i64::MIN, 3_600_000, i64::MIN);
        check(-1, 60_000, -60_000);
        check(7, 0, 7);
    }

    #[test]
    fn out_of_range_shows_as_epoch() {
        assert_eq!(
            Timestamp::from_millis(i64::MAX).to_datetime(),
            DateTime::<Utc>::default()
        );
    }
}
