//! Telegram bot API `sendMessage`. The bot token is part of the URL, which
//! is why delivery errors never include the URL.

use serde_json::json;

use super::{Alert, AlertStatus};

pub(crate) fn payload(chat_id: &str, alert: &Alert) -> serde_json::Value {
    let icon = match alert.status {
        AlertStatus::Firing => "\u{1f534}",
        AlertStatus::Resolved => "\u{2705}",
    };
    json!({
        "chat_id": chat_id,
        "text": format!(
            "{icon} {} {} {} ({})\n{}",
            alert.status.as_str().to_uppercase(),
            alert.alertname,
            alert.monitor,
            alert.severity.as_str(),
            alert.summary
        ),
        "disable_web_page_preview": true,
    })
}
