//! Slack incoming webhook: one message per notification, one attachment per
//! alert coloured by severity (green once resolved).

use serde_json::json;

use crate::config::AlertSeverity;

use super::{Alert, AlertStatus, Notification};

/// Slack shows at most 100 attachments; a group listing more is cut here
/// with a note of how many were left out.
const MAX_ATTACHMENTS: usize = 20;

pub(crate) fn colour(alert: &Alert) -> &'static str {
    match (alert.status, alert.severity) {
        (AlertStatus::Resolved, _) => "#2eb886",
        (_, AlertSeverity::Critical) => "#d00000",
        (_, AlertSeverity::Warning) => "#f2c744",
        (_, AlertSeverity::Info) => "#439fe0",
    }
}

fn alert_title(alert: &Alert) -> String {
    // A job's `notify = "always"` message is a success, not a resolve.
    let status = if alert.alertname == "JobSucceeded" {
        "SUCCEEDED".to_string()
    } else {
        alert.status.as_str().to_uppercase()
    };
    format!("[{}] {} {}", status, alert.alertname, alert.monitor)
}

fn attachment(alert: &Alert) -> serde_json::Value {
    let title = alert_title(alert);
    json!({
        "color": colour(alert),
        "title": title,
        "text": alert.summary,
        "fallback": format!("{title}: {}", alert.summary),
        "fields": [
            { "title": "severity", "value": alert.severity.as_str(), "short": true },
            { "title": "fingerprint", "value": alert.fingerprint, "short": true },
        ],
    })
}

pub(crate) fn payload(n: &Notification) -> serde_json::Value {
    // One alert reads as it always did; a group gets a headline naming it.
    let text = match n.alerts.as_slice() {
        [one] => alert_title(one),
        _ => n.title(),
    };
    let mut attachments: Vec<serde_json::Value> = n
        .alerts
        .iter()
        .take(MAX_ATTACHMENTS)
        .map(attachment)
        .collect();
    if n.alerts.len() > MAX_ATTACHMENTS {
        let more = n.alerts.len() - MAX_ATTACHMENTS;
        attachments.push(json!({
            "text": format!("and {more} more"),
            "fallback": format!("and {more} more"),
        }));
    }
    json!({ "text": text, "attachments": attachments })
}
