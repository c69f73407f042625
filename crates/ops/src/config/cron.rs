//! Cron expressions are only checked here (field count, ranges, syntax) so a
//! typo is caught by `config check`; evaluating them is the scheduler's job.

/// Accepts 5 fields (minute hour day-of-month month day-of-week), 6 fields
/// (seconds first, as in the `cron` crate and Quartz), and the `@hourly`,
/// `@daily`/`@midnight`, `@weekly`, `@monthly`, `@yearly`/`@annually` macros.
///
/// # Errors
///
/// A message naming the first bad field.
pub fn validate_cron(expr: &str) -> Result<(), String> {
    let expr = expr.trim();
    if expr.starts_with('@') {
        return match expr {
            "@hourly" | "@daily" | "@midnight" | "@weekly" | "@monthly" | "@yearly"
            | "@annually" => Ok(()),
            _ => Err(format!("unknown cron macro {expr:?}")),
        };
    }
    let fields: Vec<&str> = expr.split_whitespace().collect();
    const MINUTE: (&str, u32, u32, &[&str]) = ("minute", 0, 59, &[]);
    const HOUR: (&str, u32, u32, &[&str]) = ("hour", 0, 23, &[]);
    const DOM: (&str, u32, u32, &[&str]) = ("day of month", 1, 31, &[]);
    const MONTH: (&str, u32, u32, &[&str]) = (
        "month",
        1,
        12,
        &[
            "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
        ],
    );
    // 7 is Sunday too, as in Vixie cron.
    const DOW: (&str, u32, u32, &[&str]) = (
        "day of week",
        0,
        7,
        &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    );
    const SECOND: (&str, u32, u32, &[&str]) = ("second", 0, 59, &[]);
    let specs: Vec<(&str, u32, u32, &[&str])> = match fields.len() {
        5 => vec![MINUTE, HOUR, DOM, MONTH, DOW],
        6 => vec![SECOND, MINUTE, HOUR, DOM, MONTH, DOW],
        n => {
            return Err(format!(
                "invalid cron expression {expr:?}: expected 5 or 6 fields, found {n}"
            ))
        }
    };
    for (field, (what, min, max, names)) in fields.iter().zip(specs) {
        check_field(field, min, max, names)
            .map_err(|why| format!("invalid cron expression {expr:?}: {what} {field:?}: {why}"))?;
    }
    Ok(())
}

fn check_field(field: &str, min: u32, max: u32, names: &[&str]) -> Result<(), String> {
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (item, None),
        };
        if let Some(step) = step {
            match step.parse::<u32>() {
                Ok(n) if n >= 1 && n <= max.max(1) => {}
                _ => return Err(format!("invalid step {step:?}")),
            }
        }
        if range == "*" || range == "?" {
            continue;
        }
        let value = |s: &str| -> Result<u32, String> {
            let lower = s.to_ascii_lowercase();
            if let Some(i) = names.iter().position(|n| *n == lower) {
                // Month names start at 1, weekday names at 0.
                return Ok(i as u32 + min);
            }
            match s.parse::<u32>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                Ok(n) => Err(format!("{n} is out of range {min}-{max}")),
                Err(_) => Err(format!("invalid value {s:?}")),
            }
        };
        match range.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (value(a)?, value(b)?);
                if a > b {
                    return Err(format!("range {range:?} runs backwards"));
                }
            }
            None => {
                value(range)?;
            }
        }
    }
    Ok(())
}
