//! SLO math with plain numbers.

use std::time::Duration;

use super::*;
use crate::config::{AlertSeverity, BurnRateRule, SloConfig};
use crate::time::Timestamp;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
/// A fixed "now": 2026-01-15T00:00:00Z.
const NOW_MS: i64 = 1_768_435_200_000;
const NOW: Timestamp = Timestamp::from_millis(NOW_MS);

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn slo(target: f64, window_days: u64) -> SloConfig {
    SloConfig {
        name: "api-availability".into(),
        monitor: "api".into(),
        target,
        window: Duration::from_secs(window_days * 86_400),
        calendar: None,
        strict: true,
        alerts: BurnRateRule::defaults(),
    }
}

/// `minutes` buckets ending at NOW, each with `per_minute` probes of which
/// `bad` failed.
fn flat(minutes: i64, per_minute: u64, bad: u64) -> Vec<Bucket> {
    (1..=minutes)
        .map(|i| Bucket {
            start: at(NOW_MS - i * MIN),
            total: per_minute,
            bad,
        })
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn budget_table() {
    // (target, total per minute, bad per minute, attainment, consumed, remaining)
    let cases: &[(f64, u64, u64, f64, f64, f64)] = &[
        (0.99, 100, 0, 1.0, 0.0, 1.0),
        (0.99, 100, 1, 0.99, 1.0, 0.0),
        (0.99, 200, 1, 0.995, 0.5, 0.5),
        (0.995, 1000, 4, 0.996, 0.8, 0.2),
        (0.9, 10, 5, 0.5, 5.0, 0.0),
    ];
    for &(target, total, bad, attainment, consumed, remaining) in cases {
        let s = evaluate(&slo(target, 30), &flat(60, total, bad), &[], NOW);
        assert!(
            close(s.attainment, attainment),
            "{target} {total} {bad}: attainment {}",
            s.attainment
        );
        assert!(
            close(s.budget_consumed, consumed),
            "{target} {total} {bad}: consumed {}",
            s.budget_consumed
        );
        assert!(
            close(s.budget_remaining, remaining),
            "{target} {total} {bad}: remaining {}",
            s.budget_remaining
        );
        assert!(close(s.budget_total, (1.0 - target) * (60 * total) as f64));
    }
}

#[test]
fn no_data_means_full_budget() {
    let s = evaluate(&slo(0.999, 30), &[], &[], NOW);
    assert_eq!((s.total, s.bad), (0, 0));
    assert!(close(s.attainment, 1.0));
    assert!(close(s.budget_remaining, 1.0));
    assert!(s.firing.is_empty());
    assert!(s.burn_rates.iter().all(|(_, r)| *r == 0.0));
    assert_eq!(s.exhaustion_at, None);
}

#[test]
fn window_edges() {
    let s = slo(0.99, 1);
    // A bucket starting exactly at the window's start counts; one a minute
    // earlier does not; one in the future (clock skew) does not either.
    let buckets = vec![
        Bucket {
            start: at(NOW_MS - DAY),
            total: 1,
            bad: 1,
        },
        Bucket {
            start: at(NOW_MS - DAY - MIN),
            total: 1,
            bad: 1,
        },
        Bucket {
            start: at(NOW_MS + MIN),
            total: 1,
            bad: 1,
        },
        Bucket {
            start: at(NOW_MS - MIN),
            total: 1,
            bad: 0,
        },
    ];
    let st = evaluate(&s, &buckets, &[], NOW);
    assert_eq!((st.total, st.bad), (2, 1));
}

#[test]
fn burn_rates_per_window() {
    // Failing hard for the last 5 minutes, clean before that, over 3 days.
    let mut buckets = flat(3 * 24 * 60, 10, 0);
    for b in buckets.iter_mut().take(5) {
        b.bad = 10;
    }
    let s = slo(0.999, 30);
    let rate = |w: u64| burn_rate(&buckets, &[], s.target, Duration::from_secs(w), NOW);
    // Each window's error rate divided by the 0.1% allowed.
    let cases: &[(u64, f64)] = &[
        (300, 1000.0),
        (1800, 1000.0 * 5.0 / 30.0),
        (3600, 1000.0 * 5.0 / 60.0),
        (6 * 3600, 1000.0 * 5.0 / 360.0),
        (86_400, 1000.0 * 5.0 / 1440.0),
        (3 * 86_400, 1000.0 * 5.0 / 4320.0),
    ];
    for &(w, expected) in cases {
        assert!(
            (rate(w) - expected).abs() < 1e-6,
            "window {w}s: {} vs {expected}",
            rate(w)
        );
    }
    let st = evaluate(&s, &buckets, &[], NOW);
    let labels: Vec<_> = st.burn_rates.iter().map(|(l, _)| *l).collect();
    assert_eq!(labels, ["5m", "30m", "1h", "6h", "1d", "3d"]);
}

#[test]
fn multiwindow_rules() {
    let s = slo(0.999, 30);
    let burn_ids = |st: &SloStatus| -> Vec<String> {
        st.firing
            .iter()
            .filter(|f| f.id.starts_with("burn:"))
            .map(|f| f.id.clone())
            .collect()
    };
    // (minutes failing at the end, failures per 1000 probes in them, firing rules)
    let cases: &[(usize, u64, &[&str])] = &[
        (0, 0, &[]),
        // 20% errors for 5 minutes: 200x over 5m, 16.7x over 1h: page; 2.8x
        // over 6h is below the 6x rule.
        (5, 200, &["burn:1h:5m:14.4"]),
        // 2% errors for 6 hours: 20x up to 6h, 5x over 1d, 1.7x over 3d.
        (
            360,
            20,
            &[
                "burn:1h:5m:14.4",
                "burn:6h:30m:6",
                "burn:1d:2h:3",
                "burn:3d:6h:1",
            ],
        ),
        // 1% for 6 hours: 10x: the 6h page, not the 1h one (14.4x); 2.5x over
        // 1d stays under the 3x ticket.
        (360, 10, &["burn:6h:30m:6"]),
    ];
    for &(minutes, bad, expected) in cases {
        let mut buckets = flat(3 * 24 * 60, 1000, 0);
        for b in buckets.iter_mut().take(minutes) {
            b.bad = bad;
        }
        let st = evaluate(&s, &buckets, &[], NOW);
        assert_eq!(
            burn_ids(&st),
            expected,
            "{minutes} minutes at {bad} per mille"
        );
    }
    // A slow 1.5x burn for 3 days: only the ticket rule (1x over 3d and 6h).
    let buckets = flat(3 * 24 * 60, 1000, 1);
    let st = evaluate(&slo(0.99933, 30), &buckets, &[], NOW);
    assert_eq!(burn_ids(&st), ["burn:3d:6h:1"]);
    assert!(st
        .firing
        .iter()
        .all(|f| f.severity == AlertSeverity::Warning));
}

#[test]
fn budget_rule_fires_past_80_percent() {
    let cases: &[(u64, bool)] = &[(8, false), (9, true), (20, true)];
    for &(bad_per_mille, fires) in cases {
        let buckets = flat(60, 1000, bad_per_mille);
        let st = evaluate(&slo(0.99, 30), &buckets, &[], NOW);
        assert_eq!(
            st.firing.iter().any(|f| f.id == "budget:0.8"),
            fires,
            "{bad_per_mille} per mille"
        );
    }
}

#[test]
fn maintenance_is_excluded() {
    // One bad hour inside maintenance, one good hour outside.
    let mut buckets = flat(120, 10, 0);
    for b in buckets.iter_mut().skip(60) {
        b.bad = 10;
    }
    let window = (at(NOW_MS - 2 * HOUR), at(NOW_MS - HOUR));
    let st = evaluate(&slo(0.99, 30), &buckets, &[window], NOW);
    assert_eq!((st.total, st.bad), (600, 0));
    assert!(close(st.budget_remaining, 1.0));
    // Without the window the same data spends the budget.
    let st = evaluate(&slo(0.99, 30), &buckets, &[], NOW);
    assert_eq!((st.total, st.bad), (1200, 600));
    assert!(close(st.budget_remaining, 0.0));
    // A window that only touches a bucket's edge excludes it; one ending at
    // its start does not.
    let one = vec![Bucket {
        start: at(NOW_MS - MIN),
        total: 1,
        bad: 1,
    }];
    assert_eq!(
        evaluate(&slo(0.99, 30), &one, &[(at(NOW_MS - 30_000), NOW)], NOW).total,
        0
    );
    assert_eq!(
        evaluate(
            &slo(0.99, 30),
            &one,
            &[(at(NOW_MS - 2 * MIN), at(NOW_MS - MIN))],
            NOW
        )
        .total,
        1
    );
}

#[test]
fn exhaustion_forecast() {
    // Burning at exactly 1x over the last hour with half the budget left:
    // it lasts 0.5 x 30 days / 1 = 15 days.
    let mut buckets = flat(60, 1000, 20);
    buckets.extend((61..=120).map(|i| Bucket {
        start: at(NOW_MS - i * MIN),
        total: 1000,
        bad: 0,
    }));
    let s = slo(0.98, 30);
    let st = evaluate(&s, &buckets, &[], NOW);
    assert!(close(st.budget_remaining, 0.5));
    let hourly = burn_rate(&buckets, &[], s.target, Duration::from_secs(3600), NOW);
    assert!(close(hourly, 1.0), "{hourly}");
    assert_eq!(
        st.exhaustion_at,
        Some(at(NOW_MS + (0.5 * 30.0 * DAY as f64) as i64))
    );
    // Nothing burning: no forecast.
    assert_eq!(evaluate(&s, &flat(60, 10, 0), &[], NOW).exhaustion_at, None);
    // Already spent: exhausted now.
    assert_eq!(
        evaluate(&s, &flat(60, 10, 10), &[], NOW).exhaustion_at,
        Some(NOW)
    );
}

#[test]
fn calendar_month_starts_on_the_first() {
    let mut s = slo(0.99, 30);
    s.calendar = Some(crate::config::Calendar::Month);
    // NOW is 2026-01-15T00:00Z, so the month began 14 days earlier.
    assert_eq!(window_start(&s, NOW), at(NOW_MS - 14 * DAY));
}
