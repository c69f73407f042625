//! The file as written. Each `[[section]]` element is deserialized on its own
//! (see `compile::de_item`), so one bad element does not hide the others.
//!
//! Fields are `Spanned` where validation needs to point at them (never around
//! tables: a `[x.y]` sub-table loses its span when the element is detached from
//! the document, and `Spanned` then fails to deserialize), and numbers
//! are `i64` so that a negative or oversized value gets our range message
//! rather than serde's.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

pub(super) type Sp<T> = Spanned<T>;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ServerRaw {
    pub listen: Option<Sp<String>>,
    pub database: Option<Sp<String>>,
    pub strict_budget_threshold: Option<Sp<f64>>,
    pub max_silence: Option<Sp<String>>,
    pub metrics_require_key: Option<bool>,
    pub results_retention: Option<Sp<String>>,
    pub trusted_proxies: Option<Vec<Sp<String>>>,
    pub header_read_timeout: Option<Sp<String>>,
    pub max_connections: Option<Sp<i64>>,
    pub shutdown_grace: Option<Sp<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KeyRaw {
    pub name: Sp<String>,
    pub role: Sp<String>,
    pub hash: Sp<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MonitorRaw {
    pub name: Sp<String>,
    #[serde(rename = "type")]
    pub kind: Option<Sp<String>>,
    pub url: Option<Sp<String>>,
    pub method: Option<Sp<String>>,
    pub headers: Option<BTreeMap<String, Sp<String>>>,
    pub body: Option<Sp<String>>,
    pub interval: Option<Sp<String>>,
    pub timeout: Option<Sp<String>>,
    pub strikes: Option<Sp<i64>>,
    pub recover_after: Option<Sp<i64>>,
    pub expect_status: Option<Sp<toml::Value>>,
    pub max_latency: Option<Sp<String>>,
    pub body_contains: Option<Sp<String>>,
    pub json: Option<BTreeMap<String, toml::Value>>,
    pub cert_min_days: Option<Sp<i64>>,
    pub tags: Option<Vec<Sp<String>>>,
    pub period: Option<Sp<String>>,
    pub grace: Option<Sp<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SloRaw {
    pub name: Sp<String>,
    pub monitor: Sp<String>,
    pub target: Option<Sp<f64>>,
    pub window: Option<Sp<String>>,
    pub calendar: Option<Sp<String>>,
    pub strict: Option<bool>,
    pub alert: Option<Vec<BurnRateRaw>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BurnRateRaw {
    pub long_window: Sp<String>,
    pub short_window: Sp<String>,
    pub burn_rate: Sp<f64>,
    pub severity: Option<Sp<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MaintenanceRaw {
    pub name: Sp<String>,
    pub monitors: Option<Vec<Sp<String>>>,
    /// String or TOML datetime; both must be RFC 3339 with an offset.
    pub start: Sp<toml::Value>,
    pub end: Sp<toml::Value>,
}

/// One flat struct for every channel type, so that a field belonging to
/// another type gets a precise message instead of serde's generic one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ChannelRaw {
    pub name: Sp<String>,
    #[serde(rename = "type")]
    pub kind: Sp<String>,
    pub url: Option<Sp<String>>,
    pub headers: Option<BTreeMap<String, Sp<String>>>,
    pub bot_token: Option<Sp<String>>,
    pub chat_id: Option<Sp<toml::Value>>,
    pub api_base: Option<Sp<String>>,
    pub smtp_host: Option<Sp<String>>,
    pub smtp_port: Option<Sp<i64>>,
    pub username: Option<Sp<String>>,
    pub password: Option<Sp<String>>,
    pub from: Option<Sp<String>>,
    pub to: Option<Sp<Vec<String>>>,
    pub starttls: Option<Sp<bool>>,
    pub routing_key: Option<Sp<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RouteRaw {
    pub channel: Sp<String>,
    pub monitors: Option<Vec<Sp<String>>>,
    pub tags: Option<Vec<String>>,
    pub severity: Option<Vec<Sp<String>>>,
    pub group_by: Option<Vec<Sp<String>>>,
    pub group_wait: Option<Sp<String>>,
    pub group_interval: Option<Sp<String>>,
    pub repeat_interval: Option<Sp<String>>,
    pub send_resolved: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BackupRaw {
    pub name: Sp<String>,
    pub repo: Sp<String>,
    pub password_file: Option<Sp<String>>,
    pub password_env: Option<Sp<String>>,
    pub paths: Option<Sp<Vec<String>>>,
    pub exclude: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    pub git: Option<bool>,
    pub schedule: Option<Sp<String>>,
    pub timezone: Option<Sp<String>>,
    pub keep: Option<KeepRaw>,
    pub verify: Option<VerifyRaw>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KeepRaw {
    pub last: Option<Sp<i64>>,
    pub hourly: Option<Sp<i64>>,
    pub daily: Option<Sp<i64>>,
    pub weekly: Option<Sp<i64>>,
    pub monthly: Option<Sp<i64>>,
    pub yearly: Option<Sp<i64>>,
    pub within: Option<Sp<String>>,
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct VerifyRaw {
    pub schedule: Option<Sp<String>>,
    pub read_data_subset: Option<Sp<String>>,
    pub sample_files: Option<Sp<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SecretRaw {
    pub name: Sp<String>,
    pub length: Option<Sp<i64>>,
    pub alphabet: Option<Sp<String>>,
    pub max_age: Option<Sp<String>>,
    pub grace: Option<Sp<String>>,
    pub rotate: Option<bool>,
    pub schedule: Option<Sp<String>>,
    pub hook: Option<HookRaw>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HookRaw {
    pub command: Option<Sp<Vec<String>>>,
    pub url: Option<Sp<String>>,
    pub env: Option<BTreeMap<String, Sp<String>>>,
    pub pass_env: Option<Vec<Sp<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DrillRaw {
    pub name: Sp<String>,
    pub backup: Sp<String>,
    pub schedule: Option<Sp<String>>,
    pub start: Option<Sp<String>>,
    pub health_url: Option<Sp<String>>,
    pub rto_target: Option<Sp<String>>,
    pub rpo_target: Option<Sp<String>>,
    pub timeout: Option<Sp<String>>,
    pub env: Option<BTreeMap<String, Sp<String>>>,
    pub pass_env: Option<Vec<Sp<String>>>,
}
