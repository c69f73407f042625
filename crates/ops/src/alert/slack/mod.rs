//! Slack incoming webhook: one attachment coloured by severity (green once
//! resolved).

use serde_json::json;

use crate::config::AlertSeverity;

use super::{Alert, AlertStatus};

pub(crate) fn colour(alert: &Alert) -> &'static str {
    match (alert.status, alert.severity) {
        (AlertStatus::Resolved, _) => "#2eb886",
        (_, AlertSeverity::Critical) => "#d00000",
        (_, AlertSeverity::Warning) => "#f2c744",
        (_, AlertSeverity::Info) => "#439fe0",
    }
}

pub(crate) fn payload(alert: &Alert) -> serde_json::Value {
    let title = format!(
        "[{}] {} {}",
        alert.status.as_str().to_uppercase(),
        alert.alertname,
        alert.monitor
    );
    json!({
        "text": title,
        "attachments": [{
            "color": colour(alert),
            "title": title,
            "text": alert.summary,
            "fallback": format!("{title}: {}", alert.summary),
            "fields": [
                { "title": "severity", "value": alert.severity.as_str(), "short": true },
                { "title": "fingerprint", "value": alert.fingerprint, "short": true },
            ],
        }],
    })
}
