//! `[[drill]] snapshot = ...` as the config holds it; the choice among a
//! repository's snapshots is `drill::select`.

use std::time::Duration;

use super::{format_duration, parse_duration};

/// A `snapshot` spec.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SnapshotSpec {
    /// The newest snapshot (the default).
    #[default]
    Latest,
    /// The newest snapshot at least this old.
    OlderThan(Duration),
    /// Any snapshot the repository holds (what retention kept), uniformly.
    Random,
    /// A snapshot id or unique id prefix (`--snapshot` only).
    Id(String),
}

impl SnapshotSpec {
    /// Parses `latest`, `older-than:90d` or `random`; with `allow_id`, also
    /// a hexadecimal snapshot id or prefix (at least 4 digits).
    ///
    /// # Errors
    /// Anything else, with what is accepted.
    pub fn parse(s: &str, allow_id: bool) -> Result<Self, String> {
        let s = s.trim();
        if s == "latest" {
            return Ok(Self::Latest);
        }
        if s == "random" {
            return Ok(Self::Random);
        }
        if let Some(age) = s.strip_prefix("older-than:") {
            return match parse_duration(age) {
                Ok(d) if !d.is_zero() => Ok(Self::OlderThan(d)),
                Ok(_) => Err("older-than needs an age above zero".to_string()),
                Err(e) => Err(format!("older-than: {e}")),
            };
        }
        if allow_id && s.len() >= 4 && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(Self::Id(s.to_ascii_lowercase()));
        }
        Err(format!(
            "{s:?} is not a snapshot choice: expected \"latest\", \"older-than:AGE\" (such as \"older-than:90d\") or \"random\"{}",
            if allow_id { ", or a snapshot id" } else { "" }
        ))
    }
}

/// An age in days (and hours) when it is a day or more, as `older-than:`
/// is written: `90d`, not `12w6d`.
pub(crate) fn days(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 86_400 {
        return format_duration(Duration::from_secs(secs));
    }
    match (secs % 86_400) / 3600 {
        0 => format!("{}d", secs / 86_400),
        h => format!("{}d{h}h", secs / 86_400),
    }
}

impl std::fmt::Display for SnapshotSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Latest => f.write_str("latest"),
            Self::OlderThan(d) => write!(f, "older-than:{}", days(*d)),
            Self::Random => f.write_str("random"),
            Self::Id(id) => f.write_str(id),
        }
    }
}
