//! PagerDuty Events API v2: trigger on firing, resolve on resolved, with the
//! alert fingerprint as the dedup key so both land on one PagerDuty incident.
//!
//! A grouped notification becomes one event per alert, not one per group:
//! PagerDuty then opens and resolves an incident per alert, which is what an
//! on-call engineer acknowledges. Grouping still batches them in time. The
//! group's firing alerts are re-sent with every group notification; a
//! trigger for an open incident with the same dedup key is merged into it by
//! PagerDuty, so re-sends (and retries after a partial failure) are harmless.

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
                "timestamp": rfc3339(alert.started_at),
                "component": alert.monitor,
                "class": alert.alertname,
                "custom_details": alert.labels(),
            },
        }),
    }
}
