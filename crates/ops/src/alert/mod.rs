//! Alert routing: alerts are deduplicated by fingerprint, matched to channels
//! by `[[route]]`, filtered by silences, and written to a persistent outbox
//! that a worker delivers with retry and backoff.
//!
//! Exactly-once per state change comes from the outbox ids: a row's id is a
//! hash of (channel, fingerprint, state, episode start, reminder number), so
//! raising the same change twice (a restart half-way, two instances) inserts
//! nothing new. Delivery is at-least-once at the wire (a crash between a
//! receiver's 200 and our commit re-sends that one row), which is why every
//! payload carries the fingerprint as its dedup key.
//!
//! A route with `group_by` batches alerts into groups first (see [`group`]):
//! its notifications name a group and list its alerts, each with its status.

pub(crate) mod config;
mod email;
pub mod group;
mod job_failures;
mod outbox;
mod pagerduty;
mod silence;
mod slack;
mod telegram;
mod webhook;

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::config::{
    AlertSeverity, ChannelConfig, Config, RouteConfig, DEFAULT_GROUP_INTERVAL, DEFAULT_GROUP_WAIT,
    DEFAULT_REPEAT_INTERVAL,
};
use crate::store::{Store, StoreError};
use crate::time::Timestamp;

pub use group::flush_due as flush_groups;
pub use job_failures::JobFailureAlerts;
pub use outbox::{deliver_due, pending, Delivery};
pub use silence::{
    create as create_silence, expire as expire_silence, list as list_silences, NewSilence, Silence,
    SilenceEnd,
};

/// Errors of alerting actions (silences).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AlertError {
    #[error("invalid silence: {0}")]
    InvalidSilence(String),
    #[error("no silence with id {0:?}")]
    NotFound(String),
    #[error("silence {0:?} has already expired")]
    AlreadyExpired(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertStatus {
    Firing,
    Resolved,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }
}

/// One alert: a monitor down, an SLO burning. Holds no secret.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub fingerprint: String,
    /// `MonitorDown`, `SloBurnRate`, `SloBudgetLow`.
    pub alertname: String,
    pub status: AlertStatus,
    pub severity: AlertSeverity,
    pub monitor: String,
    pub slo: Option<String>,
    pub tags: Vec<String>,
    pub summary: String,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
}

impl Alert {
    /// An alert named `alertname` about `monitor`; `key` distinguishes alerts
    /// of one name and monitor (the SLO and rule) in the fingerprint.
    pub fn new(
        alertname: &str,
        monitor: &str,
        key: &str,
        severity: AlertSeverity,
        summary: String,
        started_at: Timestamp,
    ) -> Alert {
        Alert {
            fingerprint: fingerprint(alertname, monitor, key),
            alertname: alertname.to_string(),
            status: AlertStatus::Firing,
            severity,
            monitor: monitor.to_string(),
            slo: None,
            tags: Vec::new(),
            summary,
            started_at,
            ended_at: None,
        }
    }

    /// Alertmanager-style labels.
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut l = BTreeMap::new();
        l.insert("alertname".to_string(), self.alertname.clone());
        l.insert("monitor".to_string(), self.monitor.clone());
        l.insert("severity".to_string(), self.severity.as_str().to_string());
        if let Some(slo) = &self.slo {
            l.insert("slo".to_string(), slo.clone());
        }
        if !self.tags.is_empty() {
            l.insert("tags".to_string(), self.tags.join(","));
        }
        l
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "fingerprint": self.fingerprint,
            "alertname": self.alertname,
            "status": self.status.as_str(),
            "severity": self.severity.as_str(),
            "monitor": self.monitor,
            "slo": self.slo,
            "tags": self.tags,
            "summary": self.summary,
            "started_at_ms": self.started_at.as_millis(),
            "ended_at_ms": self.ended_at.map(Timestamp::as_millis),
        })
    }

    pub(crate) fn from_json(v: &serde_json::Value) -> Option<Alert> {
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        Some(Alert {
            fingerprint: s("fingerprint")?,
            alertname: s("alertname")?,
            status: match s("status")?.as_str() {
                "firing" => AlertStatus::Firing,
                "resolved" => AlertStatus::Resolved,
                _ => return None,
            },
            severity: s("severity")?.parse().ok()?,
            monitor: s("monitor")?,
            slo: s("slo"),
            tags: v
                .get("tags")
                .and_then(|t| t.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            summary: s("summary")?,
            started_at: Timestamp::from_millis(v.get("started_at_ms")?.as_i64()?),
            ended_at: v
                .get("ended_at_ms")
                .and_then(|x| x.as_i64())
                .map(Timestamp::from_millis),
        })
    }
}

/// Stable identity of an alert: the same condition always hashes alike.
pub fn fingerprint(alertname: &str, monitor: &str, key: &str) -> String {
    let mut h = Sha256::new();
    for part in [alertname, monitor, key] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(&h.finalize()[..8])
}

/// What one message to a channel carries: a group of alerts (one alert when
/// its route does not group), each with its own status.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Notification {
    /// Alertmanager's `groupKey`: stable for the group, opaque to receivers.
    pub group_key: String,
    pub group_labels: BTreeMap<String, String>,
    /// Firing first; never empty.
    pub alerts: Vec<Alert>,
}

impl Notification {
    /// A notification about one alert, keyed as before grouping existed.
    pub fn single(alert: Alert) -> Notification {
        let mut group_labels = BTreeMap::new();
        group_labels.insert("alertname".to_string(), alert.alertname.clone());
        group_labels.insert("monitor".to_string(), alert.monitor.clone());
        Notification {
            group_key: format!(
                "{{}}:{{alertname=\"{}\", monitor=\"{}\"}}",
                alert.alertname, alert.monitor
            ),
            group_labels,
            alerts: vec![alert],
        }
    }

    /// Firing while any of its alerts is.
    pub fn status(&self) -> AlertStatus {
        if self.alerts.iter().any(|a| a.status == AlertStatus::Firing) {
            AlertStatus::Firing
        } else {
            AlertStatus::Resolved
        }
    }

    pub fn count(&self, status: AlertStatus) -> usize {
        self.alerts.iter().filter(|a| a.status == status).count()
    }

    /// Labels every alert has with the same value.
    pub fn common_labels(&self) -> BTreeMap<String, String> {
        let mut it = self.alerts.iter();
        let Some(first) = it.next() else {
            return BTreeMap::new();
        };
        let mut common = first.labels();
        for a in it {
            let l = a.labels();
            common.retain(|k, v| l.get(k) == Some(v));
        }
        common
    }

    /// `[FIRING:2, RESOLVED:1] monitor="api"`: the headline of a group.
    pub fn title(&self) -> String {
        let mut counts = Vec::new();
        for status in [AlertStatus::Firing, AlertStatus::Resolved] {
            let n = self.count(status);
            if n > 0 {
                counts.push(format!("{}:{n}", status.as_str().to_uppercase()));
            }
        }
        let labels: Vec<String> = self
            .group_labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("[{}] {}", counts.join(", "), labels.join(" "))
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "group_key": self.group_key,
            "group_labels": self.group_labels,
            "alerts": self.alerts.iter().map(Alert::to_json).collect::<Vec<_>>(),
        })
    }

    /// Reads an outbox body: a group, or a single alert (rows queued by
    /// routes without grouping, and by versions before grouping).
    fn from_json(v: &serde_json::Value) -> Option<Notification> {
        if v.get("alerts").is_none() {
            return Alert::from_json(v).map(Notification::single);
        }
        let alerts = v
            .get("alerts")?
            .as_array()?
            .iter()
            .map(Alert::from_json)
            .collect::<Option<Vec<_>>>()?;
        if alerts.is_empty() {
            return None;
        }
        Some(Notification {
            group_key: v.get("group_key")?.as_str()?.to_string(),
            group_labels: serde_json::from_value(v.get("group_labels")?.clone()).ok()?,
            alerts,
        })
    }
}

/// The route a channel gets an alert through: the matching `[[route]]`, or
/// an implicit catch-all when no route is configured.
fn default_route(channel: &str) -> RouteConfig {
    RouteConfig {
        channel: channel.to_string(),
        monitors: Vec::new(),
        tags: Vec::new(),
        severity: Vec::new(),
        group_by: Vec::new(),
        group_wait: DEFAULT_GROUP_WAIT,
        group_interval: DEFAULT_GROUP_INTERVAL,
        repeat_interval: DEFAULT_REPEAT_INTERVAL,
        send_resolved: true,
    }
}

fn route_matches(route: &RouteConfig, alert: &Alert) -> bool {
    (route.monitors.is_empty() || route.monitors.contains(&alert.monitor))
        && (route.tags.is_empty() || route.tags.iter().any(|t| alert.tags.contains(t)))
        && (route.severity.is_empty() || route.severity.contains(&alert.severity))
}

/// (channel, route) pairs that receive `alert`; a channel matched by
/// several routes receives it once, through the first.
pub fn routes_for<'a>(config: &'a Config, alert: &Alert) -> Vec<(&'a ChannelConfig, RouteConfig)> {
    if config.routes.is_empty() {
        return config
            .channels
            .iter()
            .map(|c| (c, default_route(&c.name)))
            .collect();
    }
    let mut out: Vec<(&ChannelConfig, RouteConfig)> = Vec::new();
    for route in config.routes.iter().filter(|r| route_matches(r, alert)) {
        if out.iter().any(|(c, _)| c.name == route.channel) {
            continue;
        }
        if let Some(channel) = config.channel(&route.channel) {
            out.push((channel, route.clone()));
        }
    }
    out
}

fn outbox_id(
    channel: &str,
    fingerprint: &str,
    status: AlertStatus,
    started: Timestamp,
    n: i64,
) -> String {
    // Stored ids were hashed over the start in Unix ms: keep them stable.
    let started = started.as_millis();
    let mut h = Sha256::new();
    h.update(format!(
        "{channel}\n{fingerprint}\n{}\n{started}\n{n}",
        status.as_str()
    ));
    hex::encode(&h.finalize()[..16])
}

/// What [`notify`] did with an alert.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notified {
    /// The alert's state did not change: nothing was sent.
    pub duplicate: bool,
    /// Channels it was queued for.
    pub queued: Vec<String>,
    /// Channels skipped because a silence matched.
    pub silenced: Vec<String>,
}

/// Records an alert's state and queues notifications for a change: firing to
/// every routed, unsilenced channel; resolved to the channels that were told
/// it was firing (and whose route has `send_resolved`).
///
/// # Errors
/// On a database error.
pub async fn notify(
    store: &Store,
    config: &Config,
    alert: &Alert,
    now: Timestamp,
) -> Result<Notified, StoreError> {
    let prev = sqlx::query("SELECT status, started_at FROM alerts WHERE fingerprint = $1")
        .bind(&alert.fingerprint)
        .fetch_optional(store.pool())
        .await?;
    let prev: Option<(String, i64)> = match prev {
        Some(row) => Some((row.try_get("status")?, row.try_get("started_at")?)),
        None => None,
    };
    let mut alert = alert.clone();
    match (alert.status, &prev) {
        (AlertStatus::Firing, Some((s, _))) if s == "firing" => {
            return Ok(Notified {
                duplicate: true,
                ..Notified::default()
            })
        }
        (AlertStatus::Resolved, None) => {
            return Ok(Notified {
                duplicate: true,
                ..Notified::default()
            })
        }
        (AlertStatus::Resolved, Some((s, _))) if s == "resolved" => {
            return Ok(Notified {
                duplicate: true,
                ..Notified::default()
            })
        }
        (AlertStatus::Resolved, Some((_, started))) => {
            // The episode is named by when it started firing.
            alert.started_at = Timestamp::from_millis(*started);
            alert.ended_at.get_or_insert(now);
        }
        _ => {}
    }
    let body = alert.to_json().to_string();
    sqlx::query(
        "INSERT INTO alerts (fingerprint, status, body, started_at, ended_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (fingerprint) DO UPDATE SET status = excluded.status, body = excluded.body,
           started_at = excluded.started_at, ended_at = excluded.ended_at, updated_at = excluded.updated_at",
    )
    .bind(&alert.fingerprint)
    .bind(alert.status.as_str())
    .bind(&body)
    .bind(alert.started_at.as_millis())
    .bind(alert.ended_at.map(Timestamp::as_millis))
    .bind(now.as_millis())
    .execute(store.pool())
    .await?;

    let silences = silence::active(store, now).await?;
    let mut out = Notified::default();
    for (channel, route) in routes_for(config, &alert) {
        if let Some(labels) = group::group_labels(&route.group_by, &alert) {
            if alert.status == AlertStatus::Firing && silences.iter().any(|s| s.matches(&alert)) {
                out.silenced.push(channel.name.clone());
                continue;
            }
            let key = group::GroupKey::new(&channel.name, &group::route_key(&route), labels);
            let timing = group::Timing::of(&route);
            let (changed, _) = group::apply(
                store,
                &key,
                &timing,
                std::slice::from_ref(&alert),
                now,
                &silences,
            )
            .await?;
            // A resolve the channel never heard firing changes nothing.
            if changed {
                out.queued.push(channel.name.clone());
            }
            continue;
        }
        let firing_id = outbox_id(
            &channel.name,
            &alert.fingerprint,
            AlertStatus::Firing,
            alert.started_at,
            0,
        );
        match alert.status {
            AlertStatus::Firing => {
                if silences.iter().any(|s| s.matches(&alert)) {
                    out.silenced.push(channel.name.clone());
                    continue;
                }
                outbox::enqueue(store, &firing_id, &channel.name, &alert, &body, now).await?;
            }
            AlertStatus::Resolved => {
                if !route.send_resolved || !outbox::exists(store, &firing_id).await? {
                    continue;
                }
                let id = outbox_id(
                    &channel.name,
                    &alert.fingerprint,
                    AlertStatus::Resolved,
                    alert.started_at,
                    0,
                );
                outbox::enqueue(store, &id, &channel.name, &alert, &body, now).await?;
            }
        }
        out.queued.push(channel.name.clone());
    }
    Ok(out)
}

/// Queues a one-off message (a job's `notify = "always"` report) on every
/// channel routed to `alert`: no alert state, no grouping, no silences
/// (those mute firing alerts), and nothing when no channel is configured.
/// Returns the channels it was queued on.
///
/// # Errors
/// On a database error.
pub async fn notify_once(
    store: &Store,
    config: &Config,
    alert: &Alert,
    now: Timestamp,
) -> Result<Vec<String>, StoreError> {
    let routed = routes_for(config, alert);
    if routed.is_empty() {
        tracing::debug!(alert = %alert.alertname, monitor = %alert.monitor, "no alert channel configured: not sent");
        return Ok(Vec::new());
    }
    let body = alert.to_json().to_string();
    let mut queued = Vec::new();
    for (channel, _) in routed {
        let id = outbox_id(
            &channel.name,
            &alert.fingerprint,
            alert.status,
            alert.started_at,
            0,
        );
        outbox::enqueue(store, &id, &channel.name, alert, &body, now).await?;
        queued.push(channel.name.clone());
    }
    Ok(queued)
}

/// Queues `repeat_interval` reminders for alerts still firing; returns how many.
///
/// # Errors
/// On a database error.
pub async fn queue_reminders(
    store: &Store,
    config: &Config,
    now: Timestamp,
) -> Result<usize, StoreError> {
    let rows = sqlx::query("SELECT body FROM alerts WHERE status = 'firing'")
        .fetch_all(store.pool())
        .await?;
    let silences = silence::active(store, now).await?;
    let mut queued = 0;
    for row in &rows {
        let body: String = row.try_get("body")?;
        let Some(alert) = serde_json::from_str(&body)
            .ok()
            .as_ref()
            .and_then(Alert::from_json)
        else {
            continue;
        };
        if silences.iter().any(|s| s.matches(&alert)) {
            continue;
        }
        for (channel, route) in routes_for(config, &alert) {
            // Grouped routes repeat whole groups, on their own schedule.
            if !route.group_by.is_empty() {
                continue;
            }
            let (count, last) =
                outbox::firing_history(store, &channel.name, &alert.fingerprint, alert.started_at)
                    .await?;
            let Some(last) = last else { continue };
            if now - last >= route.repeat_interval {
                let id = outbox_id(
                    &channel.name,
                    &alert.fingerprint,
                    AlertStatus::Firing,
                    alert.started_at,
                    count,
                );
                outbox::enqueue(store, &id, &channel.name, &alert, &body, now).await?;
                queued += 1;
            }
        }
    }
    Ok(queued)
}

/// Alerts currently firing.
///
/// # Errors
/// On a database error.
pub async fn firing(store: &Store) -> Result<Vec<Alert>, StoreError> {
    let rows = sqlx::query("SELECT body FROM alerts WHERE status = 'firing' ORDER BY started_at")
        .fetch_all(store.pool())
        .await?;
    let mut out = Vec::new();
    for row in &rows {
        let body: String = row.try_get("body")?;
        if let Some(a) = serde_json::from_str(&body)
            .ok()
            .as_ref()
            .and_then(Alert::from_json)
        {
            out.push(a);
        }
    }
    Ok(out)
}

/// Posts JSON and turns any failure into a message that names no URL (webhook
/// URLs and bot tokens are secrets).
pub(crate) async fn post_json(
    client: &reqwest::Client,
    url: &str,
    headers: &[(String, String)],
    body: &serde_json::Value,
) -> Result<(), String> {
    let mut req = client.post(url).json(body);
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    match req.send().await {
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(resp) => Err(format!("receiver answered {}", resp.status().as_u16())),
        Err(e) if e.is_timeout() => Err("timed out".to_string()),
        Err(e) if e.is_connect() => Err("cannot connect".to_string()),
        Err(_) => Err("request failed".to_string()),
    }
}

/// Sends one notification to one channel.
pub(crate) async fn send(
    client: &reqwest::Client,
    channel: &ChannelConfig,
    n: &Notification,
) -> Result<(), String> {
    use crate::config::ChannelKind;
    match &channel.kind {
        ChannelKind::Webhook { url, headers } => {
            let headers: Vec<(String, String)> = headers
                .iter()
                .map(|(k, v)| (k.clone(), v.expose().clone()))
                .collect();
            post_json(
                client,
                url.expose(),
                &headers,
                &webhook::payload(&channel.name, n),
            )
            .await
        }
        ChannelKind::Slack { url } => {
            post_json(client, url.expose(), &[], &slack::payload(n)).await
        }
        ChannelKind::Telegram {
            bot_token,
            chat_id,
            api_base,
        } => {
            let url = format!(
                "{}/bot{}/sendMessage",
                api_base.trim_end_matches('/'),
                bot_token.expose()
            );
            post_json(client, &url, &[], &telegram::payload(chat_id, n)).await
        }
        ChannelKind::PagerDuty {
            routing_key,
            api_base,
        } => {
            let url = format!("{}/v2/enqueue", api_base.trim_end_matches('/'));
            // One event per alert (see pagerduty/mod.rs): a retry after a
            // partial failure re-sends events PagerDuty dedups by key.
            for alert in &n.alerts {
                post_json(
                    client,
                    &url,
                    &[],
                    &pagerduty::payload(routing_key.expose(), alert),
                )
                .await?;
            }
            Ok(())
        }
        ChannelKind::Email {
            smtp_host,
            smtp_port,
            username,
            password,
            from,
            to,
            starttls,
        } => {
            let smtp = email::Smtp {
                host: smtp_host,
                port: *smtp_port,
                username: username.as_deref(),
                password: password.as_ref(),
                from,
                to,
                starttls: *starttls,
            };
            email::send(&smtp, n).await
        }
    }
}

/// RFC 3339 with milliseconds and `Z`, as channels send times.
pub(crate) fn rfc3339(t: Timestamp) -> String {
    t.to_string()
}

#[cfg(test)]
mod tests;
