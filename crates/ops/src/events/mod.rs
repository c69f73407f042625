//! The event stream: one append-only table of what happened (audit
//! records, incidents, alert deliveries, job runs, drill reports, secret
//! rotations), shipped to every configured `[[sink]]`.
//!
//! Events are written in the transaction of the change they describe (an
//! audit record and its event commit together), with a dense `seq` taken
//! under a lock, so events become visible in `seq` order. Each sink has a
//! cursor in the store, the last `seq` it confirmed; its [`Shipper`] reads
//! what follows, sends it and only then moves the cursor. A sink that is
//! down waits with exponential backoff on its own task, delaying nothing
//! else; after it returns, or after a restart, shipping resumes at the
//! cursor, so nothing is lost and a confirmed batch is never sent again.
//!
//! Architecture invariant: no event carries a secret. Bodies hold names,
//! ids, versions and states; URLs only as their origin
//! ([`crate::redact`]); never a key, token, password or secret value.

pub(crate) mod config;
mod ship;
mod sink;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use crate::store::{Dialect, Store, StoreError};
use crate::time::Timestamp;

pub use crate::config::EventKind as Kind;
pub(crate) use ship::start_all;
pub use ship::{
    ship_stream, Progress, ShipError, ShipObserver, ShipOptions, Shipper, StreamSummary,
};

/// One stored event. Its only JSON form is the line a sink receives
/// ([`Event::to_json`]), which `bulwark events list --json` prints too, so
/// it shows exactly what a SIEM is sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub body: serde_json::Value,
}

/// The event as shipped: `{"at","body","kind","seq"}`, `at` in RFC 3339
/// with milliseconds. The fields are in the alphabetical order the first
/// shipped lines had, so a consumer comparing bytes sees no change.
#[derive(Serialize)]
struct Line<'a> {
    at: String,
    body: &'a serde_json::Value,
    kind: &'a str,
    seq: i64,
}

impl Event {
    fn line(&self) -> Line<'_> {
        Line {
            at: self.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            body: &self.body,
            kind: &self.kind,
            seq: self.seq,
        }
    }

    /// The line a sink receives.
    pub fn to_json(&self) -> String {
        // A string, a number and a JSON value: serialising cannot fail.
        serde_json::to_string(&self.line()).unwrap_or_default()
    }
}

const EVENTS_LOCK_KEY: i64 = 0x6275_6c77_0003;

/// Appends an event inside the caller's transaction: it commits with the
/// change it describes or not at all. On PostgreSQL the transaction holds
/// the events lock until it ends, so `seq` order is commit order.
pub(crate) async fn append_on(
    conn: &mut sqlx::AnyConnection,
    dialect: Dialect,
    kind: Kind,
    body: &serde_json::Value,
) -> Result<i64, StoreError> {
    match dialect {
        Dialect::Postgres => {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(EVENTS_LOCK_KEY)
                .execute(&mut *conn)
                .await?;
        }
        Dialect::Sqlite => {
            // Become the writer before reading MAX(seq) (see audit.rs): SQLite
            // then serialises every event writer, across processes too.
            sqlx::query("UPDATE bulwark_migrations SET version = version WHERE 1 = 0")
                .execute(&mut *conn)
                .await?;
        }
    }
    let seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) + 1 FROM events")
        .fetch_one(&mut *conn)
        .await?;
    sqlx::query("INSERT INTO events (seq, at, kind, body) VALUES ($1, $2, $3, $4)")
        .bind(seq)
        .bind(Timestamp::now().as_millis())
        .bind(kind.as_str())
        .bind(body.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(seq)
}

/// Events after `after_seq`, oldest first, at most `limit`, optionally of
/// one kind.
///
/// # Errors
/// On a database error.
pub async fn list(
    store: &Store,
    after_seq: i64,
    kind: Option<Kind>,
    limit: u32,
) -> Result<Vec<Event>, StoreError> {
    let limit = i64::from(limit.clamp(1, 10_000));
    let rows = match kind {
        None => {
            sqlx::query(
                "SELECT seq, at, kind, body FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .bind(after_seq)
            .bind(limit)
            .fetch_all(store.pool())
            .await?
        }
        Some(k) => {
            sqlx::query(
                "SELECT seq, at, kind, body FROM events WHERE seq > $1 AND kind = $2 ORDER BY seq LIMIT $3",
            )
            .bind(after_seq)
            .bind(k.as_str())
            .bind(limit)
            .fetch_all(store.pool())
            .await?
        }
    };
    rows.iter().map(decode).collect()
}

fn decode(row: &sqlx::any::AnyRow) -> Result<Event, StoreError> {
    let body: String = row.try_get("body")?;
    Ok(Event {
        seq: row.try_get("seq")?,
        at: Timestamp::from_millis(row.try_get("at")?).to_datetime(),
        kind: row.try_get("kind")?,
        body: serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
    })
}

/// The newest `seq`, 0 when there is none.
///
/// # Errors
/// On a database error.
pub async fn head(store: &Store) -> Result<i64, StoreError> {
    let seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events")
        .fetch_one(store.pool())
        .await?;
    Ok(seq)
}

/// `sink`'s cursor: the last `seq` it confirmed (0 before its first batch).
///
/// # Errors
/// On a database error.
pub async fn cursor(store: &Store, sink: &str) -> Result<i64, StoreError> {
    let seq: Option<i64> = sqlx::query_scalar("SELECT seq FROM event_cursors WHERE sink = $1")
        .bind(sink)
        .fetch_optional(store.pool())
        .await?;
    Ok(seq.unwrap_or(0))
}

/// Takes or renews `owner`'s lease on `sink` until `until`; false when
/// another instance holds an unexpired one. Creates the cursor at 0.
pub(crate) async fn lease(
    store: &Store,
    sink: &str,
    owner: &str,
    now: Timestamp,
    until: Timestamp,
) -> Result<bool, StoreError> {
    sqlx::query(
        "INSERT INTO event_cursors (sink, seq, updated_at) VALUES ($1, 0, $2)
         ON CONFLICT (sink) DO NOTHING",
    )
    .bind(sink)
    .bind(now.as_millis())
    .execute(store.pool())
    .await?;
    let taken = sqlx::query(
        "UPDATE event_cursors SET lease_owner = $1, lease_until = $2
         WHERE sink = $3 AND (lease_owner IS NULL OR lease_owner = $1 OR lease_until < $4)",
    )
    .bind(owner)
    .bind(until.as_millis())
    .bind(sink)
    .bind(now.as_millis())
    .execute(store.pool())
    .await?
    .rows_affected();
    Ok(taken == 1)
}

/// Gives the lease up (clean shutdown), so another instance or the next
/// start takes over at once.
pub(crate) async fn release(store: &Store, sink: &str, owner: &str) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE event_cursors SET lease_owner = NULL, lease_until = NULL
         WHERE sink = $1 AND lease_owner = $2",
    )
    .bind(sink)
    .bind(owner)
    .execute(store.pool())
    .await?;
    Ok(())
}

/// Moves `sink`'s cursor forward to `seq`, if `owner` still holds the
/// lease; false when it lost it (then someone else ships, and this batch's
/// confirmation must not move their cursor).
pub(crate) async fn advance(
    store: &Store,
    sink: &str,
    owner: &str,
    seq: i64,
) -> Result<bool, StoreError> {
    let moved = sqlx::query(
        "UPDATE event_cursors SET seq = $1, updated_at = $2
         WHERE sink = $3 AND lease_owner = $4 AND seq <= $1",
    )
    .bind(seq)
    .bind(Timestamp::now().as_millis())
    .bind(sink)
    .bind(owner)
    .execute(store.pool())
    .await?
    .rows_affected();
    Ok(moved == 1)
}

/// How long events are kept once every sink has them.
pub const RETENTION: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

/// Deletes events older than `before` that every sink in `sinks` has
/// confirmed. The newest event is always kept, so `seq` never restarts
/// below a cursor.
///
/// # Errors
/// On a database error.
pub async fn prune(store: &Store, sinks: &[String], before: Timestamp) -> Result<u64, StoreError> {
    let mut confirmed = i64::MAX;
    for sink in sinks {
        confirmed = confirmed.min(cursor(store, sink).await?);
    }
    let deleted = sqlx::query(
        "DELETE FROM events WHERE at < $1 AND seq <= $2
           AND seq < (SELECT COALESCE(MAX(seq), 0) FROM events)",
    )
    .bind(before.as_millis())
    .bind(confirmed)
    .execute(store.pool())
    .await?
    .rows_affected();
    Ok(deleted)
}

/// Syslog severity (RFC 5424) of an event: problems are warnings or
/// errors, the rest notices or information.
pub(crate) fn severity(kind: &str, body: &serde_json::Value) -> u8 {
    let s = |k: &str| body.get(k).and_then(|v| v.as_str()).unwrap_or("");
    match kind {
        "audit" => match s("outcome") {
            "success" => 5,
            _ => 4,
        },
        "incident" => match s("state") {
            "opened" => 3,
            _ => 5,
        },
        "alert" => match s("outcome") {
            "delivered" => 6,
            _ => 4,
        },
        "job" => match s("status") {
            "success" => 6,
            "cancelled" => 5,
            _ => 3,
        },
        "drill" => {
            if body.get("passed").and_then(|v| v.as_bool()) == Some(true) {
                5
            } else {
                3
            }
        }
        "secret" => 5,
        // A line from `events ship`: its own level when it names one.
        _ => match s("level").to_ascii_lowercase().as_str() {
            "emerg" | "emergency" => 0,
            "alert" => 1,
            "crit" | "critical" | "fatal" => 2,
            "err" | "error" => 3,
            "warn" | "warning" => 4,
            "notice" => 5,
            "debug" | "trace" => 7,
            _ => 6,
        },
    }
}
