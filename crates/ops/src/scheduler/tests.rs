//! The scheduler's timeline with an injected clock: every time below is a
//! plain value, nothing sleeps.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::schedule::{missed_slot, tick, MissedRuns, Schedule};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn cron(expr: &str) -> Schedule {
    Schedule::cron(expr, None).unwrap()
}

/// `next_after(from)` must be `expected` (None: never).
fn check_next(schedule: &Schedule, from: &str, expected: Option<&str>) {
    assert_eq!(
        schedule.next_after(t(from)),
        expected.map(t),
        "{} after {from}",
        schedule.describe()
    );
}

#[test]
fn cron_next_run_table() {
    let cases: &[(&str, &str, Option<&str>)] = &[
        // The spec's weekly backup: Sundays 03:00 UTC.
        (
            "0 3 * * 0",
            "2026-03-04T10:00:00Z",
            Some("2026-03-08T03:00:00Z"),
        ),
        // Strictly after: at the very second of an occurrence, the next one.
        (
            "0 3 * * 0",
            "2026-03-08T03:00:00Z",
            Some("2026-03-15T03:00:00Z"),
        ),
        // Sub-second precision does not make the same second match again.
        (
            "30 2 * * *",
            "2026-03-08T02:30:00.250Z",
            Some("2026-03-09T02:30:00Z"),
        ),
        // Month end: the 31st skips months without one.
        (
            "0 0 31 * *",
            "2026-04-01T00:00:00Z",
            Some("2026-05-31T00:00:00Z"),
        ),
        // Leap day.
        (
            "0 12 29 2 *",
            "2026-03-01T00:00:00Z",
            Some("2028-02-29T12:00:00Z"),
        ),
        // Year rollover.
        (
            "0 0 1 1 *",
            "2026-12-31T23:59:59Z",
            Some("2027-01-01T00:00:00Z"),
        ),
        // Sunday as 7, as in Vixie cron.
        (
            "0 1 * * 7",
            "2026-03-04T10:00:00Z",
            Some("2026-03-08T01:00:00Z"),
        ),
        // Six fields: seconds first.
        (
            "15 */5 * * * *",
            "2026-03-04T10:00:20Z",
            Some("2026-03-04T10:05:15Z"),
        ),
        // Macros.
        (
            "@daily",
            "2026-03-04T10:00:00Z",
            Some("2026-03-05T00:00:00Z"),
        ),
        (
            "@hourly",
            "2026-03-04T10:59:59Z",
            Some("2026-03-04T11:00:00Z"),
        ),
    ];
    for (expr, from, expected) in cases {
        check_next(&cron(expr), from, *expected);
    }
}

#[test]
fn cron_in_a_time_zone_follows_daylight_saving() {
    // 02:30 Europe/Berlin does not exist on 2026-03-29 (clocks jump from
    // 02:00 to 03:00). Daily at 03:00 local is 02:00 UTC before the change
    // and 01:00 UTC after it.
    let s = Schedule::cron("0 3 * * *", Some("Europe/Berlin")).unwrap();
    check_next(&s, "2026-03-28T00:00:00Z", Some("2026-03-28T02:00:00Z"));
    check_next(&s, "2026-03-28T02:00:00Z", Some("2026-03-29T01:00:00Z"));
    assert!(Schedule::cron("0 3 * * *", Some("Mars/Olympus")).is_err());
}

#[test]
fn impossible_cron_has_no_next_run() {
    // February 30th never comes; the scheduler must not spin or panic.
    assert_eq!(
        cron("0 0 30 2 *").next_after(t("2026-01-01T00:00:00Z")),
        None
    );
}

#[test]
fn interval_slots_are_aligned_to_the_epoch() {
    // Aligned slots are the same on every instance, so the store dedupes them.
    let s = Schedule::every(Duration::from_secs(3600)).unwrap();
    check_next(&s, "2026-03-04T10:20:00Z", Some("2026-03-04T11:00:00Z"));
    check_next(&s, "2026-03-04T11:00:00Z", Some("2026-03-04T12:00:00Z"));
    assert_eq!(
        s.latest_at_or_before(t("2026-03-04T10:20:00Z")),
        Some(t("2026-03-04T10:00:00Z"))
    );
    assert!(Schedule::every(Duration::from_millis(500)).is_err());
}

#[test]
fn missed_run_runs_once_for_the_latest_missed_slot() {
    let daily = cron("0 3 * * *");
    // Last ran for the 1st; down until the 4th at noon: three slots missed,
    // one catch-up run, for the latest (the 4th 03:00).
    let slot = missed_slot(
        &daily,
        MissedRuns::RunOnce,
        Some(t("2026-03-01T03:00:00Z")),
        t("2026-03-04T12:00:00Z"),
    );
    assert_eq!(slot, Some(t("2026-03-04T03:00:00Z")));
}

#[test]
fn nothing_missed_when_the_latest_slot_already_ran() {
    let daily = cron("0 3 * * *");
    let slot = missed_slot(
        &daily,
        MissedRuns::RunOnce,
        Some(t("2026-03-04T03:00:00Z")),
        t("2026-03-04T12:00:00Z"),
    );
    assert_eq!(slot, None);
}

#[test]
fn a_job_that_never_ran_and_a_skip_policy_miss_nothing() {
    let daily = cron("0 3 * * *");
    assert_eq!(
        missed_slot(&daily, MissedRuns::RunOnce, None, t("2026-03-04T12:00:00Z")),
        None
    );
    assert_eq!(
        missed_slot(
            &daily,
            MissedRuns::Skip,
            Some(t("2026-03-01T03:00:00Z")),
            t("2026-03-04T12:00:00Z")
        ),
        None
    );
}

#[test]
fn tick_runs_a_due_slot_once_and_coalesces_a_backlog() {
    let every_min = cron("* * * * *");
    let next = Some(t("2026-03-04T10:01:00Z"));
    // Not yet.
    assert_eq!(
        tick(&every_min, next, t("2026-03-04T10:00:59Z")),
        (None, next)
    );
    // Due: run it, next is the following minute.
    assert_eq!(
        tick(&every_min, next, t("2026-03-04T10:01:00Z")),
        (
            Some(t("2026-03-04T10:01:00Z")),
            Some(t("2026-03-04T10:02:00Z"))
        )
    );
    // Woken 10 minutes late: one run for the overdue slot, then the next
    // future one; not ten runs.
    let (slot, following) = tick(&every_min, next, t("2026-03-04T10:11:30Z"));
    assert_eq!(slot, Some(t("2026-03-04T10:01:00Z")));
    assert_eq!(following, Some(t("2026-03-04T10:12:00Z")));
    let (again, _) = tick(&every_min, following, t("2026-03-04T10:11:31Z"));
    assert_eq!(again, None);
}

#[test]
fn a_day_of_ticks_runs_each_hourly_slot_exactly_once() {
    // Drive the timeline with an injected clock in 7-minute steps.
    let hourly = cron("0 * * * *");
    let start = Utc.with_ymd_and_hms(2026, 3, 4, 0, 0, 30).unwrap();
    let mut next = hourly.next_after(start);
    let mut ran = Vec::new();
    let mut now = start;
    while now < start + chrono::Duration::hours(24) {
        let (slot, following) = tick(&hourly, next, now);
        ran.extend(slot);
        next = following;
        now += chrono::Duration::minutes(7);
    }
    // 01:00 to 23:00; the last tick is 23:55:30.
    assert_eq!(ran.len(), 23);
    let mut dedup = ran.clone();
    dedup.dedup();
    assert_eq!(dedup, ran);
    assert_eq!(ran[0], t("2026-03-04T01:00:00Z"));
}
