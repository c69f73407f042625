//! Generic webhook: the JSON Alertmanager sends to its webhook receivers
//! (payload version 4), so anything that consumes Alertmanager already
//! consumes Bulwark.

use serde_json::json;

use super::{rfc3339, Alert, AlertStatus};

pub(crate) fn payload(receiver: &str, alert: &Alert) -> serde_json::Value {
    let labels = alert.labels();
    // Alertmanager's zero time for an alert that has not ended.
    let ends_at = alert
        .ended_at_ms
        .filter(|_| alert.status == AlertStatus::Resolved)
        .map_or_else(|| "0001-01-01T00:00:00Z".to_string(), rfc3339);
    let annotations = json!({ "summary": alert.summary });
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{}\", monitor=\"{}\"}}", alert.alertname, alert.monitor),
        "truncatedAlerts": 0,
        "status": alert.status.as_str(),
        "receiver": receiver,
        "groupLabels": { "alertname": alert.alertname, "monitor": alert.monitor },
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": "",
        "alerts": [{
            "status": alert.status.as_str(),
            "labels": labels,
            "annotations": annotations,
            "startsAt": rfc3339(alert.started_at_ms),
            "endsAt": ends_at,
            "generatorURL": "",
            "fingerprint": alert.fingerprint,
        }],
    })
}
