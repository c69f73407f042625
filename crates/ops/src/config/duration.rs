//! Human durations as Gatus and Prometheus users write them: `500ms`, `1h30m`.

use std::time::Duration;

/// Parses `500ms`, `60s`, `5m`, `1h`, `30d`, `1w` and compounds such as
/// `1h30m`. A bare number is rejected: `60` is ambiguous between seconds and
/// minutes, and guessing wrong would silently change probe rates.
///
/// # Errors
///
/// Empty, negative, unitless, unknown-unit and overflowing input.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let input = s.trim();
    if input.is_empty() {
        return Err("empty duration".to_string());
    }
    if input.starts_with('-') {
        return Err(format!("invalid duration {s:?}: must not be negative"));
    }
    let bad = |why: &str| {
        Err(format!(
            "invalid duration {s:?}: {why} (e.g. \"500ms\", \"60s\", \"5m\", \"1h30m\", \"30d\")"
        ))
    };
    let mut total = Duration::ZERO;
    let mut rest = input;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return bad("expected a number");
        }
        let number: u64 = match rest[..digits].parse() {
            Ok(n) => n,
            Err(_) => return bad("number too large"),
        };
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let nanos_per: u128 = match unit {
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            "d" => 86_400 * 1_000_000_000,
            "w" => 7 * 86_400 * 1_000_000_000,
            "" => return bad("missing unit"),
            _ => return bad(&format!("unknown unit {unit:?}")),
        };
        let nanos = u128::from(number) * nanos_per;
        let secs = u64::try_from(nanos / 1_000_000_000);
        let part = match secs {
            Ok(secs) => Duration::new(secs, (nanos % 1_000_000_000) as u32),
            Err(_) => return bad("too large"),
        };
        total = match total.checked_add(part) {
            Some(t) => t,
            None => return bad("too large"),
        };
    }
    Ok(total)
}

/// The inverse of [`parse_duration`], using the largest units that fit, so
/// messages show durations the way users wrote them.
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("w", 604_800_000u128),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}
