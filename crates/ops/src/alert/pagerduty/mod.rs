//! PagerDuty Events API v2: trigger on firing, resolve on resolved, with the
//! alert fingerprint as the dedup key so both land on one PagerDuty incident.

use serde_json::json;

use crate::config::AlertSeverity;

use super::{rfc3339, Alert, AlertStatus};

pub(crate) fn payload(routing_key: &str, alert: &Alert) -> serde_json::Value {
    match alert.status {
        AlertStatus::Resolved => json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": alert.fingerprint,
        }),
        AlertStatus::Firing => json!({
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": alert.fingerprint,
            "payload": {
                "summary": alert.summary,
                "source": alert.monitor,
                "severity": match alert.severity {
                    AlertSeverity::Critical => "critical",
                    AlertSeverity::Warning => "warning",
                    AlertSeverity::Info => "info",
                },
                "timestamp": rfc3339(alert.started_at_ms),
                "component": alert.monitor,
                "class": alert.alertname,
                "custom_details": alert.labels(),
            },
        }),
    }
}
