//! Alert grouping, as Alertmanager does it: alerts a route sends to one
//! channel with equal values of the route's `group_by` labels form a group.
//! A new group waits `group_wait` before its first notification, so alerts
//! that fire together arrive in one message; later changes (an alert firing,
//! one resolving) go out at most every `group_interval`, as one message
//! listing the group's firing alerts and the ones resolved since; an
//! unchanged firing group is sent again after `repeat_interval`.
//!
//! [`advance`] is the whole state machine, pure: (group state, events, now)
//! in, (notification, next wake-up) out. The store side persists the state
//! per group and writes the notification to the outbox in the same
//! transaction, under a version check, so a change is queued exactly once
//! however many raisers (probe loops, instances) race.
//!
//! A route without `group_by` does not come here: each alert is notified on
//! its own, at once, as before grouping existed.

use std::collections::BTreeMap;
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::config::{Config, RouteConfig};
use crate::store::{Store, StoreError};
use crate::time::Timestamp;

use super::silence::{self, Silence};
use super::{outbox, Alert, AlertStatus, Notification};

/// A route's timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    pub send_resolved: bool,
}

/// The shortest wait between wake-ups, so a zero interval cannot spin.
const MIN_WAIT: Duration = Duration::from_millis(1);

impl Timing {
    pub fn of(route: &RouteConfig) -> Timing {
        Timing {
            group_wait: route.group_wait,
            group_interval: route.group_interval,
            repeat_interval: route.repeat_interval,
            send_resolved: route.send_resolved,
        }
    }
}

/// One alert in a group.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// Its latest state.
    pub alert: Alert,
    /// The episode (start time) the receiver was last told is firing; None
    /// while the receiver has not heard of it.
    pub told_firing: Option<Timestamp>,
}

/// A group's state between steps.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupState {
    /// By fingerprint.
    pub members: BTreeMap<String, Member>,
    /// When the group was formed; names this incarnation of the group in
    /// outbox ids, so a group that ends and forms again queues anew.
    pub created: Timestamp,
    /// When the next flush is due; None when nothing is to be sent.
    pub flush_at: Option<Timestamp>,
    /// When the last notification was queued.
    pub last_sent: Option<Timestamp>,
    /// Notifications queued so far in this incarnation.
    pub sent: i64,
}

/// What one [`advance`] produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Step {
    /// Alerts to notify now, in one message, each with its own status.
    pub notification: Option<Vec<Alert>>,
    /// When to call [`advance`] again (with no events) if nothing happens
    /// before; None when the group has nothing left to say.
    pub next_wake: Option<Timestamp>,
}

/// Applies `events` (alerts of this group changing state) at `now`, then
/// flushes if a flush is due. `muted` says which alerts a silence covers: they
/// are held out of notifications while it lasts.
///
/// A resolved alert the receiver never heard firing is dropped without a
/// word, as Alertmanager does: there is nothing to take back.
pub fn advance(
    state: &mut GroupState,
    events: &[Alert],
    now: Timestamp,
    timing: &Timing,
    muted: &dyn Fn(&Alert) -> bool,
) -> Step {
    for event in events {
        match event.status {
            AlertStatus::Firing => {
                if state.members.is_empty() && state.last_sent.is_none() {
                    state.created = now;
                }
                let told = state
                    .members
                    .get(&event.fingerprint)
                    .and_then(|m| m.told_firing);
                state.members.insert(
                    event.fingerprint.clone(),
                    Member {
                        alert: event.clone(),
                        told_firing: told,
                    },
                );
            }
            AlertStatus::Resolved => match state.members.get_mut(&event.fingerprint) {
                Some(m) => m.alert = event.clone(),
                None => continue,
            },
        }
        // A group that has never notified waits group_wait from its start;
        // after that, changes wait for the next group_interval.
        let due = match state.last_sent {
            None => state.created + timing.group_wait,
            Some(last) => now.max(last + timing.group_interval),
        };
        state.flush_at = Some(state.flush_at.map_or(due, |f| f.min(due)));
    }
    let notification = match state.flush_at {
        Some(at) if at <= now => flush(state, now, timing, muted),
        _ => None,
    };
    Step {
        notification,
        next_wake: state.flush_at,
    }
}

fn flush(
    state: &mut GroupState,
    now: Timestamp,
    timing: &Timing,
    muted: &dyn Fn(&Alert) -> bool,
) -> Option<Vec<Alert>> {
    let visible = |m: &Member| m.alert.status == AlertStatus::Firing && !muted(&m.alert);
    let told_resolved = |m: &Member| {
        timing.send_resolved && m.alert.status == AlertStatus::Resolved && m.told_firing.is_some()
    };
    let new_firing = state
        .members
        .values()
        .any(|m| visible(m) && m.told_firing != Some(m.alert.started_at));
    let new_resolved = state.members.values().any(told_resolved);
    let any_visible = state.members.values().any(visible);
    let repeat = any_visible
        && state
            .last_sent
            .is_some_and(|last| now - last >= timing.repeat_interval);
    let mut out = None;
    if new_firing || new_resolved || repeat {
        let mut alerts: Vec<Alert> = state
            .members
            .values()
            .filter(|m| visible(m) || told_resolved(m))
            .map(|m| m.alert.clone())
            .collect();
        // Firing first, then oldest first: what a reader wants on top.
        alerts.sort_by(|a, b| {
            (
                a.status != AlertStatus::Firing,
                a.started_at,
                &a.fingerprint,
            )
                .cmp(&(
                    b.status != AlertStatus::Firing,
                    b.started_at,
                    &b.fingerprint,
                ))
        });
        for m in state.members.values_mut() {
            if visible(m) {
                m.told_firing = Some(m.alert.started_at);
            }
        }
        state.last_sent = Some(now);
        state.sent += 1;
        out = Some(alerts);
    }
    // Resolved alerts leave the group: told now, not to be told (send_resolved
    // off), or never heard of.
    state
        .members
        .retain(|_, m| m.alert.status == AlertStatus::Firing);
    let mut next: Option<Timestamp> = None;
    let mut at = |t: Timestamp| next = Some(next.map_or(t, |n| n.min(t)));
    if state.members.values().any(|m| muted(&m.alert)) {
        // Look again each interval: the silence may end.
        at(now + timing.group_interval.max(MIN_WAIT));
    }
    if let (true, Some(last)) = (state.members.values().any(visible), state.last_sent) {
        at(last + timing.repeat_interval.max(MIN_WAIT));
    }
    state.flush_at = next;
    out
}

/// The labels an alert is grouped by under `group_by`; None when the route
/// does not group (each alert on its own). `...` groups by every label.
pub fn group_labels(group_by: &[String], alert: &Alert) -> Option<BTreeMap<String, String>> {
    if group_by.is_empty() {
        return None;
    }
    let labels = alert.labels();
    if group_by.iter().any(|g| g == "...") {
        return Some(labels);
    }
    Some(
        group_by
            .iter()
            .map(|g| (g.clone(), labels.get(g).cloned().unwrap_or_default()))
            .collect(),
    )
}

/// Identity of a route that survives reordering the config: its channel,
/// matchers and grouping.
pub(super) fn route_key(route: &RouteConfig) -> String {
    let mut h = Sha256::new();
    let severity: Vec<&str> = route.severity.iter().map(|s| s.as_str()).collect();
    for part in [
        vec![route.channel.as_str()],
        route.monitors.iter().map(String::as_str).collect(),
        route.tags.iter().map(String::as_str).collect(),
        severity,
        route.group_by.iter().map(String::as_str).collect(),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        for p in part {
            h.update((p.len() as u64).to_be_bytes());
            h.update(p.as_bytes());
        }
    }
    hex::encode(&h.finalize()[..8])
}

/// Alertmanager's rendering of a label set: `{a="1", b="2"}`.
pub(super) fn label_string(labels: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}={}", serde_json::Value::from(v.as_str())))
        .collect();
    format!("{{{}}}", inner.join(", "))
}

/// Where a group lives: channel, route and group labels.
#[derive(Debug, Clone)]
pub(super) struct GroupKey {
    pub id: String,
    pub channel: String,
    pub route_key: String,
    pub labels: BTreeMap<String, String>,
}

impl GroupKey {
    pub fn new(channel: &str, route_key: &str, labels: BTreeMap<String, String>) -> GroupKey {
        let mut h = Sha256::new();
        h.update(format!("{channel}\n{route_key}\n{}", label_string(&labels)));
        GroupKey {
            id: hex::encode(&h.finalize()[..16]),
            channel: channel.to_string(),
            route_key: route_key.to_string(),
            labels,
        }
    }

    /// The `groupKey` receivers see, shaped like Alertmanager's
    /// (`{route}:{group labels}`).
    pub fn am_key(&self) -> String {
        format!(
            "{{}}/{{route=\"{}\"}}:{}",
            self.route_key,
            label_string(&self.labels)
        )
    }
}

/// The stored form of a group's state: times in Unix ms, as rows hold them.
pub(super) fn state_to_json(s: &GroupState) -> serde_json::Value {
    serde_json::json!({
        "created_ms": s.created.as_millis(),
        "flush_at_ms": s.flush_at.map(Timestamp::as_millis),
        "last_sent_ms": s.last_sent.map(Timestamp::as_millis),
        "sent": s.sent,
        "members": s.members.values().map(|m| serde_json::json!({
            "alert": m.alert.to_json(),
            "told_firing": m.told_firing.map(Timestamp::as_millis),
        })).collect::<Vec<_>>(),
    })
}

pub(super) fn state_from_json(v: &serde_json::Value) -> Option<GroupState> {
    let mut members = BTreeMap::new();
    for m in v.get("members")?.as_array()? {
        let alert = Alert::from_json(m.get("alert")?)?;
        let told_firing = m
            .get("told_firing")
            .and_then(serde_json::Value::as_i64)
            .map(Timestamp::from_millis);
        members.insert(alert.fingerprint.clone(), Member { alert, told_firing });
    }
    Some(GroupState {
        members,
        created: Timestamp::from_millis(v.get("created_ms")?.as_i64()?),
        flush_at: v
            .get("flush_at_ms")
            .and_then(serde_json::Value::as_i64)
            .map(Timestamp::from_millis),
        last_sent: v
            .get("last_sent_ms")
            .and_then(serde_json::Value::as_i64)
            .map(Timestamp::from_millis),
        sent: v.get("sent")?.as_i64()?,
    })
}

/// How often a write that lost a race is retried before giving up; each
/// loss means another writer made progress, so this is never reached in
/// practice.
const MAX_RACES: usize = 20;

/// Steps one group in the store: reads its state, [`advance`]s it, and
/// writes the new state and any notification in one transaction, only if
/// nobody wrote the group meanwhile (else reads again). Returns whether the
/// events changed the group and whether a notification was queued.
pub(super) async fn apply(
    store: &Store,
    key: &GroupKey,
    timing: &Timing,
    events: &[Alert],
    now: Timestamp,
    silences: &[Silence],
) -> Result<(bool, bool), StoreError> {
    let muted = |a: &Alert| silences.iter().any(|s| s.matches(a));
    for _ in 0..MAX_RACES {
        let row = sqlx::query("SELECT state, version FROM alert_groups WHERE id = $1")
            .bind(&key.id)
            .fetch_optional(store.pool())
            .await?;
        let (mut state, version) = match row {
            Some(row) => {
                let text: String = row.try_get("state")?;
                let version: i64 = row.try_get("version")?;
                let state = serde_json::from_str(&text)
                    .ok()
                    .as_ref()
                    .and_then(state_from_json)
                    .ok_or_else(|| {
                        StoreError::Invalid(format!(
                            "alert group {} has a state that does not decode",
                            key.id
                        ))
                    })?;
                (state, Some(version))
            }
            None => (GroupState::default(), None),
        };
        let before = state.clone();
        let step = advance(&mut state, events, now, timing, &muted);
        if state == before && step.notification.is_none() {
            return Ok((false, false));
        }
        let mut tx = store.pool().begin().await?;
        // Write first: on SQLite that takes the write lock at once instead
        // of upgrading a read lock, which could fail rather than wait.
        let written = match version {
            None if state.members.is_empty() => 1,
            None => sqlx::query(
                "INSERT INTO alert_groups (id, channel, route_key, labels, state, flush_at, version, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, 1, $7)
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(&key.id)
            .bind(&key.channel)
            .bind(&key.route_key)
            .bind(serde_json::json!(key.labels).to_string())
            .bind(state_to_json(&state).to_string())
            .bind(state.flush_at.map(Timestamp::as_millis))
            .bind(now.as_millis())
            .execute(&mut *tx)
            .await?
            .rows_affected(),
            Some(v) if state.members.is_empty() => {
                sqlx::query("DELETE FROM alert_groups WHERE id = $1 AND version = $2")
                    .bind(&key.id)
                    .bind(v)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
            }
            Some(v) => sqlx::query(
                "UPDATE alert_groups SET state = $1, flush_at = $2, version = $3, updated_at = $4
                 WHERE id = $5 AND version = $6",
            )
            .bind(state_to_json(&state).to_string())
            .bind(state.flush_at.map(Timestamp::as_millis))
            .bind(v + 1)
            .bind(now.as_millis())
            .bind(&key.id)
            .bind(v)
            .execute(&mut *tx)
            .await?
            .rows_affected(),
        };
        if written != 1 {
            // Someone else stepped this group first: start over from theirs.
            tx.rollback().await?;
            continue;
        }
        let queued = step.notification.is_some();
        if let Some(alerts) = step.notification {
            let n = Notification {
                group_key: key.am_key(),
                group_labels: key.labels.clone(),
                alerts,
            };
            let id = {
                let mut h = Sha256::new();
                h.update(format!(
                    "group\n{}\n{}\n{}",
                    key.id,
                    state.created.as_millis(),
                    state.sent
                ));
                hex::encode(&h.finalize()[..16])
            };
            outbox::enqueue_on(
                &mut tx,
                &id,
                &key.channel,
                &format!("group:{}", key.id),
                n.status(),
                &n.to_json().to_string(),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        return Ok((true, queued));
    }
    Err(StoreError::Invalid(format!(
        "alert group {} kept changing under us; giving up this step",
        key.id
    )))
}

/// Flushes every group whose wake-up is due: the outbox worker calls this
/// each poll. Returns how many notifications were queued. A group whose
/// route or channel is no longer configured is dropped: its alerts now go
/// wherever the new config sends them.
///
/// # Errors
/// On a database error.
pub async fn flush_due(
    store: &Store,
    config: &Config,
    now: Timestamp,
) -> Result<usize, StoreError> {
    let rows = sqlx::query(
        "SELECT id, channel, route_key, labels FROM alert_groups
         WHERE flush_at IS NOT NULL AND flush_at <= $1 ORDER BY flush_at LIMIT 500",
    )
    .bind(now.as_millis())
    .fetch_all(store.pool())
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let silences = silence::active(store, now).await?;
    let mut queued = 0;
    for row in &rows {
        let id: String = row.try_get("id")?;
        let channel: String = row.try_get("channel")?;
        let route_key_stored: String = row.try_get("route_key")?;
        let labels: String = row.try_get("labels")?;
        let route = config
            .routes
            .iter()
            .find(|r| r.channel == channel && route_key(r) == route_key_stored)
            .filter(|_| config.channel(&channel).is_some());
        let (Some(route), Some(labels)) = (
            route,
            serde_json::from_str::<BTreeMap<String, String>>(&labels).ok(),
        ) else {
            tracing::warn!(group = %id, channel = %channel, "alert group's route is no longer configured; dropping the group");
            sqlx::query("DELETE FROM alert_groups WHERE id = $1")
                .bind(&id)
                .execute(store.pool())
                .await?;
            continue;
        };
        let key = GroupKey::new(&channel, &route_key_stored, labels);
        let (_, sent) = apply(store, &key, &Timing::of(route), &[], now, &silences).await?;
        queued += usize::from(sent);
    }
    Ok(queued)
}
