//! Timestamps are stored as Unix milliseconds (`BIGINT`): the one integer
//! type SQLite and PostgreSQL agree on through sqlx's `Any` driver, and it
//! sorts and compares without parsing.

use chrono::{DateTime, TimeZone, Utc};

pub(crate) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

pub(crate) fn from_ms(ms: i64) -> DateTime<Utc> {
    // Out-of-range values can only come from a hand-edited database; pin them
    // to the epoch rather than fail a whole listing.
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}
