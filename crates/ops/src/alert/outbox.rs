//! The persistent outbox: notifications wait here until a channel takes
//! them, across channel outages and restarts.

use std::collections::BTreeMap;
use std::time::Duration;

use sqlx::Row;

use crate::config::Config;
use crate::store::{Store, StoreError};
use crate::time::Timestamp;

use super::{Alert, AlertStatus, Notification};

/// How long a worker owns a row it is delivering; after that another
/// worker (another instance) may take it over.
const CLAIM: Duration = Duration::from_secs(60);
/// Retry delays double from 1 s up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

pub(super) async fn enqueue(
    store: &Store,
    id: &str,
    channel: &str,
    alert: &Alert,
    body: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO alert_outbox (id, channel, fingerprint, status, body, created_at, next_attempt_at, attempts)
         VALUES ($1, $2, $3, $4, $5, $6, $6, 0)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(channel)
    .bind(&alert.fingerprint)
    .bind(alert.status.as_str())
    .bind(body)
    .bind(now.as_millis())
    .execute(store.pool())
    .await?;
    Ok(())
}

/// Queues a group notification inside the caller's transaction, so the group
/// state that produced it commits with it or not at all. `key` stands in the
/// fingerprint column (`group:<id>`).
pub(super) async fn enqueue_on(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    channel: &str,
    key: &str,
    status: AlertStatus,
    body: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO alert_outbox (id, channel, fingerprint, status, body, created_at, next_attempt_at, attempts)
         VALUES ($1, $2, $3, $4, $5, $6, $6, 0)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(channel)
    .bind(key)
    .bind(status.as_str())
    .bind(body)
    .bind(now.as_millis())
    .execute(conn)
    .await?;
    Ok(())
}

pub(super) async fn exists(store: &Store, id: &str) -> Result<bool, StoreError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM alert_outbox WHERE id = $1")
        .bind(id)
        .fetch_one(store.pool())
        .await?;
    Ok(n > 0)
}

/// (how many firing notifications, the newest one's time) for one episode.
pub(super) async fn firing_history(
    store: &Store,
    channel: &str,
    fingerprint: &str,
    started_at: Timestamp,
) -> Result<(i64, Option<Timestamp>), StoreError> {
    let rows = sqlx::query(
        "SELECT created_at, body FROM alert_outbox
         WHERE channel = $1 AND fingerprint = $2 AND status = 'firing'",
    )
    .bind(channel)
    .bind(fingerprint)
    .fetch_all(store.pool())
    .await?;
    let mut count = 0;
    let mut last = None;
    for row in &rows {
        let body: String = row.try_get("body")?;
        let started = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("started_at_ms").and_then(|s| s.as_i64()));
        if started == Some(started_at.as_millis()) {
            count += 1;
            let at = Timestamp::from_millis(row.try_get("created_at")?);
            last = Some(last.map_or(at, |l: Timestamp| l.max(at)));
        }
    }
    Ok((count, last))
}

/// One queued notification, as listed for operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    pub channel: String,
    pub fingerprint: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub delivered_at: Option<Timestamp>,
}

/// Notifications not delivered yet, oldest first.
///
/// # Errors
/// On a database error.
pub async fn pending(store: &Store) -> Result<Vec<Delivery>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, channel, fingerprint, status, attempts, next_attempt_at, last_error, delivered_at
         FROM alert_outbox WHERE delivered_at IS NULL ORDER BY created_at",
    )
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Delivery {
                id: row.try_get("id")?,
                channel: row.try_get("channel")?,
                fingerprint: row.try_get("fingerprint")?,
                status: row.try_get("status")?,
                attempts: row.try_get("attempts")?,
                next_attempt_at: Timestamp::from_millis(row.try_get("next_attempt_at")?),
                last_error: row.try_get("last_error")?,
                delivered_at: row
                    .try_get::<Option<i64>, _>("delivered_at")?
                    .map(Timestamp::from_millis),
            })
        })
        .collect()
}

/// A due row of the outbox.
struct Due {
    id: String,
    channel: String,
    fingerprint: String,
    status: String,
    body: String,
    attempts: i64,
}

/// Delivers every notification that is due; returns how many went out.
/// A failed one is retried later with exponential backoff; nothing is dropped
/// except rows for a channel no longer configured (marked, not deleted).
///
/// Channels are served concurrently, each in order of creation, so a slow
/// or unreachable channel delays only itself. Once a channel fails, its
/// later rows wait for the next pass: they would most likely fail too, and
/// sending them would reorder its messages.
///
/// # Errors
/// On a database error.
pub async fn deliver_due(
    store: &Store,
    config: &Config,
    client: &reqwest::Client,
    now: Timestamp,
) -> Result<usize, StoreError> {
    let rows = sqlx::query(
        "SELECT id, channel, fingerprint, status, body, attempts FROM alert_outbox
         WHERE delivered_at IS NULL AND next_attempt_at <= $1
           AND (claimed_until IS NULL OR claimed_until < $1)
         ORDER BY created_at LIMIT 100",
    )
    .bind(now.as_millis())
    .fetch_all(store.pool())
    .await?;
    let mut by_channel: BTreeMap<String, Vec<Due>> = BTreeMap::new();
    for row in &rows {
        let due = Due {
            id: row.try_get("id")?,
            channel: row.try_get("channel")?,
            fingerprint: row.try_get("fingerprint")?,
            status: row.try_get("status")?,
            body: row.try_get("body")?,
            attempts: row.try_get("attempts")?,
        };
        by_channel.entry(due.channel.clone()).or_default().push(due);
    }
    let passes = by_channel
        .into_values()
        .map(|queue| deliver_channel(store, config, client, queue, now));
    let mut delivered = 0;
    for result in futures_util::future::join_all(passes).await {
        delivered += result?;
    }
    Ok(delivered)
}

/// One channel's due rows, in order, until one fails.
async fn deliver_channel(
    store: &Store,
    config: &Config,
    client: &reqwest::Client,
    queue: Vec<Due>,
    now: Timestamp,
) -> Result<usize, StoreError> {
    let mut delivered = 0;
    for Due {
        id,
        channel: channel_name,
        fingerprint,
        status,
        body,
        attempts,
    } in queue
    {
        // Claim it, so a second worker (another instance) skips it.
        let claimed = sqlx::query(
            "UPDATE alert_outbox SET claimed_until = $1
             WHERE id = $2 AND delivered_at IS NULL AND (claimed_until IS NULL OR claimed_until < $3)",
        )
        .bind((now + CLAIM).as_millis())
        .bind(&id)
        .bind(now.as_millis())
        .execute(store.pool())
        .await?
        .rows_affected();
        if claimed != 1 {
            continue;
        }
        let notification = serde_json::from_str(&body)
            .ok()
            .as_ref()
            .and_then(Notification::from_json);
        let outcome = match (config.channel(&channel_name), notification) {
            (Some(channel), Some(n)) => super::send(client, channel, &n).await,
            (None, _) => {
                let why = "channel is no longer configured";
                let event = DeliveryEvent::new(&channel_name, &fingerprint, &status, attempts);
                mark(
                    store,
                    &id,
                    now,
                    attempts,
                    Some(why),
                    event.body("dropped", Some(why)),
                )
                .await?;
                continue;
            }
            (_, None) => {
                let why = "stored alert does not decode";
                let event = DeliveryEvent::new(&channel_name, &fingerprint, &status, attempts);
                mark(
                    store,
                    &id,
                    now,
                    attempts,
                    Some(why),
                    event.body("dropped", Some(why)),
                )
                .await?;
                continue;
            }
        };
        let event = DeliveryEvent::new(&channel_name, &fingerprint, &status, attempts + 1);
        match outcome {
            Ok(()) => {
                let body = event.body("delivered", None);
                mark(store, &id, Timestamp::now(), attempts + 1, None, body).await?;
                delivered += 1;
            }
            Err(e) => {
                let backoff =
                    (Duration::from_secs(1) * (1_u32 << attempts.clamp(0, 20))).min(MAX_BACKOFF);
                tracing::warn!(channel = %channel_name, attempt = attempts + 1, error = %e, "alert delivery failed; will retry");
                let mut tx = store.pool().begin().await?;
                sqlx::query(
                    "UPDATE alert_outbox SET attempts = $1, next_attempt_at = $2, last_error = $3, claimed_until = NULL
                     WHERE id = $4",
                )
                .bind(attempts + 1)
                .bind((now + backoff).as_millis())
                .bind(&e)
                .bind(&id)
                .execute(&mut *tx)
                .await?;
                crate::events::append_on(
                    &mut tx,
                    store.dialect(),
                    crate::events::Kind::Alert,
                    &event.body("failed", Some(&e)),
                )
                .await?;
                tx.commit().await?;
                break;
            }
        }
    }
    Ok(delivered)
}

/// Marks a row done (delivered or dropped), with its event.
async fn mark(
    store: &Store,
    id: &str,
    at: Timestamp,
    attempts: i64,
    error: Option<&str>,
    event: serde_json::Value,
) -> Result<(), StoreError> {
    let mut tx = store.pool().begin().await?;
    sqlx::query(
        "UPDATE alert_outbox SET delivered_at = $1, attempts = $2, last_error = $3, claimed_until = NULL WHERE id = $4",
    )
    .bind(at.as_millis())
    .bind(attempts)
    .bind(error)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    crate::events::append_on(&mut tx, store.dialect(), crate::events::Kind::Alert, &event).await?;
    tx.commit().await?;
    Ok(())
}

/// The `alert` event of one delivery attempt: which channel, alert and
/// state, never the channel's URL or token.
struct DeliveryEvent<'a> {
    channel: &'a str,
    fingerprint: &'a str,
    state: &'a str,
    attempt: i64,
}

impl<'a> DeliveryEvent<'a> {
    fn new(channel: &'a str, fingerprint: &'a str, state: &'a str, attempt: i64) -> Self {
        DeliveryEvent {
            channel,
            fingerprint,
            state,
            attempt,
        }
    }

    fn body(&self, outcome: &str, error: Option<&str>) -> serde_json::Value {
        serde_json::json!({
            "channel": self.channel,
            "fingerprint": self.fingerprint,
            "state": self.state,
            "outcome": outcome,
            "attempt": self.attempt,
            // Delivery errors name origins only; cut again in case one
            // quotes a URL from a response.
            "error": error.map(crate::redact::urls_in),
        })
    }
}
