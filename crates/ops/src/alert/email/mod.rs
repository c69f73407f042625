//! Email over SMTP (lettre): plain text, one message per notification; a
//! group's message lists each of its alerts.
//! `starttls = true` upgrades the connection and verifies the server's
//! certificate; without it the connection stays plain (a local relay).

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::Secret;

use super::{rfc3339, Alert, Notification};

/// Where and how to send.
pub(crate) struct Smtp<'a> {
    pub host: &'a str,
    pub port: u16,
    pub username: Option<&'a str>,
    pub password: Option<&'a Secret<String>>,
    pub from: &'a str,
    pub to: &'a [String],
    pub starttls: bool,
}

pub(crate) fn subject(n: &Notification) -> String {
    let [alert] = n.alerts.as_slice() else {
        return n.title();
    };
    format!(
        "[{}] {} {} ({})",
        alert.status.as_str().to_uppercase(),
        alert.alertname,
        alert.monitor,
        alert.severity.as_str()
    )
}

pub(crate) fn body(n: &Notification) -> String {
    match n.alerts.as_slice() {
        [one] => alert_body(one),
        alerts => {
            let mut out = format!("{}\n", n.title());
            for a in alerts {
                out.push_str(&format!(
                    "\n-- [{}] {} {}\n",
                    a.status.as_str().to_uppercase(),
                    a.alertname,
                    a.monitor
                ));
                out.push_str(&alert_body(a));
            }
            out
        }
    }
}

fn alert_body(alert: &Alert) -> String {
    let mut out = format!(
        "{}\n\nstatus: {}\nseverity: {}\nmonitor: {}\nstarted: {}\n",
        alert.summary,
        alert.status.as_str(),
        alert.severity.as_str(),
        alert.monitor,
        rfc3339(alert.started_at)
    );
    if let Some(end) = alert.ended_at {
        out.push_str(&format!("ended: {}\n", rfc3339(end)));
    }
    if let Some(slo) = &alert.slo {
        out.push_str(&format!("slo: {slo}\n"));
    }
    out.push_str(&format!("fingerprint: {}\n", alert.fingerprint));
    out
}

pub(crate) async fn send(smtp: &Smtp<'_>, n: &Notification) -> Result<(), String> {
    let mut builder = Message::builder()
        .from(
            smtp.from
                .parse()
                .map_err(|_| "invalid from address".to_string())?,
        )
        .subject(subject(n));
    for to in smtp.to {
        builder = builder.to(to
            .parse()
            .map_err(|_| format!("invalid recipient {to:?}"))?);
    }
    let message = builder
        .header(ContentType::TEXT_PLAIN)
        .body(body(n))
        .map_err(|e| format!("cannot build the message: {e}"))?;
    let mut transport = if smtp.starttls {
        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(smtp.host)
            .map_err(|e| format!("cannot set up tls: {e}"))?
    } else {
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host)
    }
    .port(smtp.port)
    .timeout(Some(Duration::from_secs(10)));
    if let (Some(user), Some(password)) = (smtp.username, smtp.password) {
        transport = transport.credentials(Credentials::new(
            user.to_string(),
            password.expose().clone(),
        ));
    }
    transport
        .build()
        .send(message)
        .await
        .map(|_| ())
        // lettre's errors carry the server's reply, never our credentials.
        .map_err(|e| {
            format!(
                "smtp delivery failed: {}",
                crate::config::lowercase_first(&e.to_string())
            )
        })
}
