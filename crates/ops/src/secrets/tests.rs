use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::*;

fn cfg(rotate: bool) -> SecretConfig {
    SecretConfig {
        name: "DASHBOARD_KEY".into(),
        length: 48,
        alphabet: crate::config::DEFAULT_ALPHABET.into(),
        max_age: Duration::from_secs(30 * 86_400),
        grace: Duration::from_secs(86_400),
        rotate,
        schedule: None,
        hook: None,
    }
}

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, day, 12, 0, 0).unwrap()
}

fn meta_at(day: u32) -> SecretMeta {
    SecretMeta {
        name: "DASHBOARD_KEY".into(),
        version: 3,
        rotated_at: at(day),
        rotated_by: "system:test".into(),
        previous_valid_until: None,
    }
}

#[test]
fn due_once_max_age_has_passed() {
    let m = meta_at(1);
    assert!(!is_due(&cfg(true), Some(&m), true, at(30)));
    assert!(is_due(&cfg(true), Some(&m), true, at(31)));
}

#[test]
fn rotate_false_stops_rotation_but_not_creation() {
    let m = meta_at(1);
    assert!(!is_due(&cfg(false), Some(&m), true, at(31)));
    assert!(is_due(&cfg(false), None, false, at(1)));
    // The file was lost: a value must exist again.
    assert!(is_due(&cfg(false), Some(&m), false, at(2)));
}

#[test]
fn next_rotation_is_rotated_at_plus_max_age_and_none_when_disabled() {
    let m = meta_at(1);
    assert_eq!(next_rotation(&cfg(true), &m), Some(at(31)));
    assert_eq!(next_rotation(&cfg(false), &m), None);
}
