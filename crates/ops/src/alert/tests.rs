use super::*;
use crate::config::AlertSeverity;
use std::collections::BTreeMap;
use std::time::Duration;

use crate::time::Timestamp;

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn alert(status: AlertStatus, severity: AlertSeverity) -> Alert {
    let mut a = Alert::new(
        "MonitorDown",
        "api",
        "",
        severity,
        "api is down: cannot connect".into(),
        ts(1_768_435_200_000),
    );
    a.status = status;
    if status == AlertStatus::Resolved {
        a.ended_at = Some(ts(1_768_435_260_000));
    }
    a
}

#[test]
fn fingerprints_are_stable_and_distinct() {
    assert_eq!(fingerprint("A", "m", "k"), fingerprint("A", "m", "k"));
    assert_ne!(fingerprint("A", "m", "k"), fingerprint("A", "mk", ""));
    assert_eq!(fingerprint("A", "m", "k").len(), 16);
}

#[test]
fn alert_round_trips_through_its_stored_form() {
    let a = alert(AlertStatus::Resolved, AlertSeverity::Warning);
    assert_eq!(Alert::from_json(&a.to_json()), Some(a));
}

#[test]
fn alertmanager_v4_shape() {
    let p = webhook::payload(
        "ops",
        &Notification::single(alert(AlertStatus::Firing, AlertSeverity::Critical)),
    );
    assert_eq!(p["version"], "4");
    assert_eq!(p["status"], "firing");
    assert_eq!(p["receiver"], "ops");
    assert_eq!(p["alerts"][0]["labels"]["alertname"], "MonitorDown");
    assert_eq!(p["alerts"][0]["labels"]["severity"], "critical");
    assert_eq!(p["alerts"][0]["startsAt"], "2026-01-15T00:00:00.000Z");
    assert_eq!(p["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    let r = webhook::payload(
        "ops",
        &Notification::single(alert(AlertStatus::Resolved, AlertSeverity::Critical)),
    );
    assert_eq!(r["status"], "resolved");
    assert_eq!(r["alerts"][0]["endsAt"], "2026-01-15T00:01:00.000Z");
    for key in [
        "groupKey",
        "truncatedAlerts",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
    ] {
        assert!(p.get(key).is_some(), "{key}");
    }
}

#[test]
fn slack_colour_by_severity() {
    let cases = [
        (AlertStatus::Firing, AlertSeverity::Critical, "#d00000"),
        (AlertStatus::Firing, AlertSeverity::Warning, "#f2c744"),
        (AlertStatus::Firing, AlertSeverity::Info, "#439fe0"),
        (AlertStatus::Resolved, AlertSeverity::Critical, "#2eb886"),
    ];
    for (status, severity, colour) in cases {
        let p = slack::payload(&Notification::single(alert(status, severity)));
        assert_eq!(
            p["attachments"][0]["color"], colour,
            "{status:?} {severity:?}"
        );
    }
}

#[test]
fn pagerduty_trigger_and_resolve_share_the_dedup_key() {
    let t = pagerduty::payload("rk", &alert(AlertStatus::Firing, AlertSeverity::Critical));
    let r = pagerduty::payload("rk", &alert(AlertStatus::Resolved, AlertSeverity::Critical));
    assert_eq!(t["event_action"], "trigger");
    assert_eq!(r["event_action"], "resolve");
    assert_eq!(t["dedup_key"], r["dedup_key"]);
    assert_eq!(t["payload"]["severity"], "critical");
    assert_eq!(t["payload"]["source"], "api");
}

#[test]
fn telegram_message() {
    let p = telegram::payload(
        "-100",
        &Notification::single(alert(AlertStatus::Firing, AlertSeverity::Critical)),
    );
    assert_eq!(p["chat_id"], "-100");
    assert!(p["text"]
        .as_str()
        .unwrap()
        .contains("FIRING MonitorDown api"));
}

// ---- grouping -------------------------------------------------------------

use group::{advance, group_labels, GroupState, Timing};

const S: i64 = 1000;
const T0: i64 = 1_768_435_200_000;

/// Alertmanager's defaults, as the config compiles them.
const TIMING: Timing = Timing {
    group_wait: Duration::from_secs(30),
    group_interval: Duration::from_secs(300),
    repeat_interval: Duration::from_secs(4 * 3600),
    send_resolved: true,
};

/// `monitor` firing since `at` (ms after T0), tagged `db`.
fn fire(monitor: &str, at: i64) -> Alert {
    let mut a = Alert::new(
        "MonitorDown",
        monitor,
        "",
        AlertSeverity::Critical,
        format!("{monitor} is down"),
        ts(T0 + at),
    );
    a.tags = vec!["db".into()];
    a
}

/// `monitor`'s episode that started at `started` resolving at `at`.
fn resolve(monitor: &str, started: i64, at: i64) -> Alert {
    let mut a = fire(monitor, started);
    a.status = AlertStatus::Resolved;
    a.ended_at = Some(ts(T0 + at));
    a
}

type Sent = Vec<(i64, String, Vec<(String, &'static str)>)>;

/// Runs one state machine per group over a timeline: each event at its time
/// (ms after T0), and every wake-up a group asks for, up to `end`. Returns
/// each notification as (time, group labels, [(monitor, status)]).
fn simulate(group_by: &[&str], timing: Timing, events: &[(i64, Alert)], end: i64) -> Sent {
    let group_by: Vec<String> = group_by.iter().map(|s| s.to_string()).collect();
    let mut groups: BTreeMap<String, GroupState> = BTreeMap::new();
    let mut sent = Vec::new();
    let mut now = i64::MIN;
    loop {
        let next_event = events
            .iter()
            .map(|(t, _)| T0 + t)
            .filter(|&t| t > now)
            .min();
        let next_wake = groups
            .values()
            .filter_map(|g| g.flush_at.map(Timestamp::as_millis))
            .min();
        let Some(t) = next_event.into_iter().chain(next_wake).min() else {
            break;
        };
        if t > T0 + end {
            break;
        }
        assert!(t >= now, "a group asked to wake in the past: {t} < {now}");
        now = t;
        let mut due: BTreeMap<String, Vec<Alert>> = groups
            .iter()
            .filter(|(_, g)| g.flush_at.is_some_and(|f| f <= ts(now)))
            .map(|(k, _)| (k.clone(), Vec::new()))
            .collect();
        for (_, a) in events.iter().filter(|(at, _)| T0 + at == now) {
            let labels = group_labels(&group_by, a).expect("grouped route");
            due.entry(group::label_string(&labels))
                .or_default()
                .push(a.clone());
        }
        for (key, evs) in due {
            let g = groups.entry(key.clone()).or_default();
            let step = advance(g, &evs, ts(now), &timing, &|_| false);
            assert_eq!(step.next_wake, g.flush_at);
            if let Some(alerts) = step.notification {
                sent.push((
                    now - T0,
                    key.clone(),
                    alerts
                        .iter()
                        .map(|a| (a.monitor.clone(), a.status.as_str()))
                        .collect(),
                ));
            }
            if g.members.is_empty() {
                groups.remove(&key);
            }
        }
    }
    sent
}

/// (time, group labels, [(monitor, status)]) of one expected notification.
type Expected<'a> = (i64, &'a str, &'a [(&'a str, &'static str)]);

fn expect(list: &[Expected<'_>]) -> Sent {
    list.iter()
        .map(|(t, k, alerts)| {
            (
                *t,
                k.to_string(),
                alerts.iter().map(|(m, s)| (m.to_string(), *s)).collect(),
            )
        })
        .collect()
}

#[test]
fn grouping_state_machine() {
    const F: &str = "firing";
    const R: &str = "resolved";
    const DB: &str = "{tags=\"db\"}";
    let no_resolved = Timing {
        send_resolved: false,
        ..TIMING
    };
    let immediate = Timing {
        group_wait: Duration::ZERO,
        ..TIMING
    };
    let h = 3600 * S;
    #[allow(clippy::type_complexity)]
    let cases: Vec<(&str, &[&str], Timing, Vec<(i64, Alert)>, i64, Sent)> = vec![
        (
            "group_wait batches two alerts firing 1s apart into one notification",
            &["tags"],
            TIMING,
            vec![(0, fire("a", 0)), (S, fire("b", S))],
            h,
            expect(&[(30 * S, DB, &[("a", F), ("b", F)])]),
        ),
        (
            "a resolve within group_interval is held, then sent with the group",
            &["tags"],
            TIMING,
            vec![
                (0, fire("a", 0)),
                (S, fire("b", S)),
                (60 * S, resolve("a", 0, 60 * S)),
            ],
            h,
            expect(&[
                (30 * S, DB, &[("a", F), ("b", F)]),
                (330 * S, DB, &[("b", F), ("a", R)]),
            ]),
        ),
        (
            "an alert joining a notified group waits for group_interval",
            &["tags"],
            TIMING,
            vec![(0, fire("a", 0)), (100 * S, fire("c", 100 * S))],
            h,
            expect(&[
                (30 * S, DB, &[("a", F)]),
                (330 * S, DB, &[("a", F), ("c", F)]),
            ]),
        ),
        (
            "a change after a quiet spell goes out at once",
            &["tags"],
            TIMING,
            vec![(0, fire("a", 0)), (h, fire("c", h))],
            2 * h,
            expect(&[(30 * S, DB, &[("a", F)]), (h, DB, &[("a", F), ("c", F)])]),
        ),
        (
            "an unchanged firing group repeats after repeat_interval",
            &["tags"],
            TIMING,
            vec![(0, fire("a", 0))],
            8 * h + 31 * S,
            expect(&[
                (30 * S, DB, &[("a", F)]),
                (30 * S + 4 * h, DB, &[("a", F)]),
                (30 * S + 8 * h, DB, &[("a", F)]),
            ]),
        ),
        (
            "a fully resolved group says so once and then nothing",
            &["tags"],
            TIMING,
            vec![(0, fire("a", 0)), (60 * S, resolve("a", 0, 60 * S))],
            10 * h,
            expect(&[(30 * S, DB, &[("a", F)]), (330 * S, DB, &[("a", R)])]),
        ),
        (
            "group_by separates alerts by label",
            &["monitor"],
            TIMING,
            vec![(0, fire("a", 0)), (S, fire("b", S))],
            h,
            expect(&[
                (30 * S, "{monitor=\"a\"}", &[("a", F)]),
                (31 * S, "{monitor=\"b\"}", &[("b", F)]),
            ]),
        ),
        (
            "fired and resolved within group_wait: the receiver hears nothing",
            &["tags"],
            TIMING,
            vec![(0, fire("a", 0)), (10 * S, resolve("a", 0, 10 * S))],
            10 * h,
            expect(&[]),
        ),
        (
            "send_resolved off: a resolve alone sends nothing",
            &["tags"],
            no_resolved,
            vec![
                (0, fire("a", 0)),
                (0, fire("b", 0)),
                (60 * S, resolve("a", 0, 60 * S)),
            ],
            h,
            expect(&[(30 * S, DB, &[("a", F), ("b", F)])]),
        ),
        (
            "group_wait 0 notifies at once",
            &["tags"],
            immediate,
            vec![(0, fire("a", 0))],
            60 * S,
            expect(&[(0, DB, &[("a", F)])]),
        ),
        (
            "re-firing after a resolve is a new episode, told again",
            &["tags"],
            TIMING,
            vec![
                (0, fire("a", 0)),
                (60 * S, resolve("a", 0, 60 * S)),
                (400 * S, fire("a", 400 * S)),
            ],
            h,
            expect(&[
                (30 * S, DB, &[("a", F)]),
                (330 * S, DB, &[("a", R)]),
                (430 * S, DB, &[("a", F)]),
            ]),
        ),
    ];
    for (name, group_by, timing, events, end, want) in cases {
        let got = simulate(group_by, timing, &events, end);
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn silenced_members_are_held_until_the_silence_ends() {
    let mut g = GroupState::default();
    let a = fire("a", 0);
    let b = fire("b", 0);
    let muted_a = |x: &Alert| x.monitor == "a";
    let step = advance(&mut g, &[a.clone(), b.clone()], ts(T0), &TIMING, &muted_a);
    assert_eq!(step.notification, None);
    assert_eq!(step.next_wake, Some(ts(T0 + 30 * S)));
    let step = advance(&mut g, &[], ts(T0 + 30 * S), &TIMING, &muted_a);
    assert_eq!(step.notification, Some(vec![b.clone()]));
    // Looks again after group_interval, in case the silence ended.
    assert_eq!(step.next_wake, Some(ts(T0 + 330 * S)));
    let step = advance(&mut g, &[], ts(T0 + 330 * S), &TIMING, &|_| false);
    assert_eq!(step.notification, Some(vec![a, b]));
    assert_eq!(step.next_wake, Some(ts(T0 + 330 * S + 4 * 3600 * S)));
}

#[test]
fn group_labels_by_route() {
    let mut a = fire("api", 0);
    a.tags = vec!["db".into(), "eu".into()];
    let check = |group_by: &[&str], want: Option<&[(&str, &str)]>| {
        let group_by: Vec<String> = group_by.iter().map(|s| s.to_string()).collect();
        let want = want.map(|w| {
            w.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        });
        assert_eq!(group_labels(&group_by, &a), want, "{group_by:?}");
    };
    // No group_by: not grouped, each alert notified on its own.
    check(&[], None);
    check(&["monitor"], Some(&[("monitor", "api")]));
    check(
        &["severity", "tags"],
        Some(&[("severity", "critical"), ("tags", "db,eu")]),
    );
    // A label the alert lacks groups as empty, like Alertmanager.
    check(&["slo"], Some(&[("slo", "")]));
    check(
        &["..."],
        Some(&[
            ("alertname", "MonitorDown"),
            ("monitor", "api"),
            ("severity", "critical"),
            ("tags", "db,eu"),
        ]),
    );
}

#[test]
fn group_state_round_trips_through_its_stored_form() {
    let mut g = GroupState::default();
    advance(
        &mut g,
        &[fire("a", 0), fire("b", 0)],
        ts(T0),
        &TIMING,
        &|_| false,
    );
    advance(&mut g, &[], ts(T0 + 30 * S), &TIMING, &|_| false);
    advance(
        &mut g,
        &[resolve("a", 0, 40 * S)],
        ts(T0 + 40 * S),
        &TIMING,
        &|_| false,
    );
    assert_eq!(g.members.len(), 2);
    assert_eq!(
        group::state_from_json(&group::state_to_json(&g)).as_ref(),
        Some(&g)
    );
}

#[test]
fn webhook_payload_carries_the_group() {
    let mut api = fire("api", 0);
    api.severity = AlertSeverity::Warning;
    let db = resolve("db", 0, 60 * S);
    let mut labels = BTreeMap::new();
    labels.insert("tags".to_string(), "db".to_string());
    let n = Notification {
        group_key: "{}/{route=\"r\"}:{tags=\"db\"}".into(),
        group_labels: labels,
        alerts: vec![api.clone(), db.clone()],
    };
    let p = webhook::payload("ops", &n);
    assert_eq!(p["version"], "4");
    assert_eq!(p["status"], "firing");
    assert_eq!(p["groupKey"], "{}/{route=\"r\"}:{tags=\"db\"}");
    assert_eq!(p["groupLabels"], serde_json::json!({ "tags": "db" }));
    // Common labels: what both share; severity and monitor differ.
    assert_eq!(
        p["commonLabels"],
        serde_json::json!({ "alertname": "MonitorDown", "tags": "db" })
    );
    assert_eq!(p["commonAnnotations"], serde_json::json!({}));
    let alerts = p["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0]["status"], "firing");
    assert_eq!(alerts[0]["labels"]["monitor"], "api");
    assert_eq!(alerts[0]["fingerprint"], api.fingerprint.as_str());
    assert_eq!(alerts[0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(alerts[1]["status"], "resolved");
    assert_eq!(alerts[1]["labels"]["monitor"], "db");
    assert_eq!(alerts[1]["endsAt"], "2026-01-15T00:01:00.000Z");
    // All resolved: the group is resolved.
    let only_db = Notification {
        alerts: vec![db],
        ..n.clone()
    };
    assert_eq!(webhook::payload("ops", &only_db)["status"], "resolved");
    // What the outbox stores decodes to the same notification.
    assert_eq!(Notification::from_json(&n.to_json()), Some(n.clone()));
    assert_eq!(
        Notification::from_json(&api.to_json()),
        Some(Notification::single(api))
    );

    // The other channels list both alerts in one message.
    assert_eq!(n.title(), "[FIRING:1, RESOLVED:1] tags=db");
    let s = slack::payload(&n);
    assert_eq!(s["text"], "[FIRING:1, RESOLVED:1] tags=db");
    assert_eq!(s["attachments"].as_array().unwrap().len(), 2);
    assert_eq!(s["attachments"][1]["color"], "#2eb886");
    let t = telegram::payload("-1", &n);
    let text = t["text"].as_str().unwrap();
    assert!(text.contains("FIRING MonitorDown api (warning)"), "{text}");
    assert!(text.contains("RESOLVED MonitorDown db"), "{text}");
    assert_eq!(email::subject(&n), "[FIRING:1, RESOLVED:1] tags=db");
    let body = email::body(&n);
    assert!(body.contains("-- [FIRING] MonitorDown api"), "{body}");
    assert!(body.contains("-- [RESOLVED] MonitorDown db"), "{body}");
}

#[test]
fn a_job_success_message_is_green_and_names_run_snapshot_and_link() {
    use crate::scheduler::{JobRun, RunOutcome, Trigger};
    let started = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let run = JobRun {
        id: "r_0123456789ab".into(),
        job: "backup:app".into(),
        scheduled_at: started,
        trigger: Trigger::Manual,
        instance: "i".into(),
        actor: "cli:ops".into(),
        started_at: started,
        finished_at: Some(started + chrono::Duration::milliseconds(2500)),
        outcome: RunOutcome::Success,
        summary: "snapshot 1a2b3c4d: 3 files, 120 bytes".into(),
    };
    let a = job_failures::success_message(&run);
    assert_eq!(
        a.summary,
        "job backup:app succeeded in 2.5s: snapshot 1a2b3c4d: 3 files, 120 bytes \
         (run r_0123456789ab, snapshot 1a2b3c4d, /jobs/runs/r_0123456789ab)"
    );
    let s = slack::payload(&Notification::single(a));
    assert_eq!(s["attachments"][0]["color"], "#2eb886");
    assert_eq!(s["text"], "[SUCCEEDED] JobSucceeded backup:app");
    // A run whose summary names no snapshot says none.
    let mut other = run.clone();
    other.summary = "report d_1: passed, RTO 1.0s".into();
    assert!(!job_failures::success_message(&other)
        .summary
        .contains("snapshot"));
}
