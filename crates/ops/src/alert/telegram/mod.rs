//! Telegram bot API `sendMessage`: one message per notification, a line per
//! alert. The bot token is part of the URL, which is why delivery errors
//! never include the URL.

use serde_json::json;

use super::{Alert, AlertStatus, Notification};

/// Telegram refuses messages over 4096 characters; stay below with room for
/// the "and N more" line.
const MAX_CHARS: usize = 3900;

fn icon(status: AlertStatus) -> &'static str {
    match status {
        AlertStatus::Firing => "\u{1f534}",
        AlertStatus::Resolved => "\u{2705}",
    }
}

fn line(alert: &Alert) -> String {
    format!(
        "{} {} {} {} ({})\n{}",
        icon(alert.status),
        alert.status.as_str().to_uppercase(),
        alert.alertname,
        alert.monitor,
        alert.severity.as_str(),
        alert.summary
    )
}

pub(crate) fn payload(chat_id: &str, n: &Notification) -> serde_json::Value {
    let text = match n.alerts.as_slice() {
        [one] => line(one),
        alerts => {
            let mut text = format!("{} {}", icon(n.status()), n.title());
            for (i, a) in alerts.iter().enumerate() {
                let next = line(a);
                if text.chars().count() + next.chars().count() + 2 > MAX_CHARS {
                    text.push_str(&format!("\n\nand {} more", alerts.len() - i));
                    break;
                }
                text.push_str("\n\n");
                text.push_str(&next);
            }
            text
        }
    };
    json!({
        "chat_id": chat_id,
        "text": text,
        "disable_web_page_preview": true,
    })
}
