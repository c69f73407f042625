//! Timestamps as Go's `time.Time` marshals them to JSON (RFC 3339 with up to
//! nine fraction digits, trailing zeros dropped). restic parses any RFC 3339
//! form; matching Go's output keeps our tree ids stable and familiar.

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serializer};

/// Go's zero time, which restic writes for unknown timestamps.
pub(crate) fn zero() -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339("0001-01-01T00:00:00Z").unwrap_or_default()
}

pub(crate) fn format(t: &DateTime<FixedOffset>) -> String {
    let s = t.to_rfc3339_opts(SecondsFormat::Nanos, true);
    // Trim trailing zeros of the fraction the way Go does.
    let (main, zone) = match s
        .find(['Z', '+'])
        .or_else(|| s.rfind('-').filter(|&i| i > 10))
    {
        Some(i) => s.split_at(i),
        None => (s.as_str(), ""),
    };
    let main = if main.contains('.') {
        main.trim_end_matches('0').trim_end_matches('.')
    } else {
        main
    };
    format!("{main}{zone}")
}

pub(crate) fn serialize<S: Serializer>(t: &DateTime<FixedOffset>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(t))
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<DateTime<FixedOffset>, D::Error> {
    let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    DateTime::parse_from_rfc3339(&s).map_err(serde::de::Error::custom)
}

/// From seconds and nanoseconds since the epoch (file metadata), in UTC.
pub(crate) fn from_unix(secs: i64, nanos: i64) -> DateTime<FixedOffset> {
    let n = u32::try_from(nanos.clamp(0, 999_999_999)).unwrap_or(0);
    DateTime::<Utc>::from_timestamp(secs, n)
        .map(|t| t.fixed_offset())
        .unwrap_or_else(zero)
}

pub(crate) fn now() -> DateTime<FixedOffset> {
    Utc::now().fixed_offset()
}

#[cfg(test)]
mod tests {
    #[test]
    fn go_style_formatting() {
        let cases = [
            (
                "2014-12-22T14:47:59.912418701+01:00",
                "2014-12-22T14:47:59.912418701+01:00",
            ),
            (
                "2026-11-21T23:50:58.337711580Z",
                "2026-11-21T23:50:58.33771158Z",
            ),
            ("2026-11-21T23:50:58Z", "2026-11-21T23:50:58Z"),
            (
                "2026-11-21T23:50:58.100-05:00",
                "2026-11-21T23:50:58.1-05:00",
            ),
            ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"),
        ];
        for (input, want) in cases {
            let t = chrono::DateTime::parse_from_rfc3339(input).unwrap();
            assert_eq!(super::format(&t), want);
        }
    }
}
