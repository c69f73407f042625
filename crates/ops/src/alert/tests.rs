use super::*;
use crate::config::AlertSeverity;

fn alert(status: AlertStatus, severity: AlertSeverity) -> Alert {
    let mut a = Alert::new(
        "MonitorDown",
        "api",
        "",
        severity,
        "api is down: cannot connect".into(),
        1_768_435_200_000,
    );
    a.status = status;
    if status == AlertStatus::Resolved {
        a.ended_at_ms = Some(1_768_435_260_000);
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
    let p = webhook::payload("ops", &alert(AlertStatus::Firing, AlertSeverity::Critical));
    assert_eq!(p["version"], "4");
    assert_eq!(p["status"], "firing");
    assert_eq!(p["receiver"], "ops");
    assert_eq!(p["alerts"][0]["labels"]["alertname"], "MonitorDown");
    assert_eq!(p["alerts"][0]["labels"]["severity"], "critical");
    assert_eq!(p["alerts"][0]["startsAt"], "2026-01-15T00:00:00.000Z");
    assert_eq!(p["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    let r = webhook::payload(
        "ops",
        &alert(AlertStatus::Resolved, AlertSeverity::Critical),
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
        let p = slack::payload(&alert(status, severity));
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
    let p = telegram::payload("-100", &alert(AlertStatus::Firing, AlertSeverity::Critical));
    assert_eq!(p["chat_id"], "-100");
    assert!(p["text"]
        .as_str()
        .unwrap()
        .contains("FIRING MonitorDown api"));
}
