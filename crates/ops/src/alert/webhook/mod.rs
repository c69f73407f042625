//! Generic webhook: the JSON Alertmanager sends to its webhook receivers
//! (payload version 4), so anything that consumes Alertmanager already
//! consumes Bulwark. One payload per notification: a group's alerts travel
//! together, each with its own status, labels and fingerprint.

use serde_json::json;

use super::{rfc3339, Alert, AlertStatus, Notification};

fn annotations(alert: &Alert) -> serde_json::Value {
    json!({ "summary": alert.summary })
}

fn alert_json(alert: &Alert) -> serde_json::Value {
    // Alertmanager's zero time for an alert that has not ended.
    let ends_at = alert
        .ended_at
        .filter(|_| alert.status == AlertStatus::Resolved)
        .map_or_else(|| "0001-01-01T00:00:00Z".to_string(), rfc3339);
    json!({
        "status": alert.status.as_str(),
        "labels": alert.labels(),
        "annotations": annotations(alert),
        "startsAt": rfc3339(alert.started_at),
        "endsAt": ends_at,
        "generatorURL": "",
        "fingerprint": alert.fingerprint,
    })
}

pub(crate) fn payload(receiver: &str, n: &Notification) -> serde_json::Value {
    // Annotations every alert shares (here: the summary, when all agree).
    let common_annotations = match n.alerts.split_first() {
        Some((first, rest)) if rest.iter().all(|a| a.summary == first.summary) => {
            annotations(first)
        }
        _ => json!({}),
    };
    json!({
        "version": "4",
        "groupKey": n.group_key,
        "truncatedAlerts": 0,
        "status": n.status().as_str(),
        "receiver": receiver,
        "groupLabels": n.group_labels,
        "commonLabels": n.common_labels(),
        "commonAnnotations": common_annotations,
        "externalURL": "",
        "alerts": n.alerts.iter().map(alert_json).collect::<Vec<_>>(),
    })
}
