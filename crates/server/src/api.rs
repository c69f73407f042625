//! Wire types: what clients send and receive. Converted by hand from domain
//! types so the domain can change without breaking the API.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use bulwark_ops::Timestamp;
use bulwark_ops::{KeyInfo, Record, Role};

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for a person to read.
    pub error: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApiRole {
    Admin,
    Analyst,
}

impl From<Role> for ApiRole {
    fn from(r: Role) -> ApiRole {
        match r {
            Role::Admin => ApiRole::Admin,
            Role::Analyst => ApiRole::Analyst,
        }
    }
}

impl From<ApiRole> for Role {
    fn from(r: ApiRole) -> Role {
        match r {
            ApiRole::Admin => Role::Admin,
            ApiRole::Analyst => Role::Analyst,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WhoAmI {
    /// The key's name.
    pub name: String,
    pub role: ApiRole,
    /// The key's id when it was made with `bulwark keys create` or the API;
    /// absent for keys from the config file or `ROLES_JSON`.
    pub key_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    pub role: ApiRole,
    /// 1 to 64 letters, digits, `-`, `_`, `.` or `@`.
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    pub id: String,
    pub name: String,
    pub role: ApiRole,
    /// The key itself. Shown only in this response; store it now.
    pub key: String,
    pub created_at: DateTime<Utc>,
}

impl From<bulwark_ops::Created> for CreatedKey {
    fn from(created: bulwark_ops::Created) -> CreatedKey {
        CreatedKey {
            id: created.info.id,
            name: created.info.name,
            role: created.info.role.into(),
            key: created.secret.into_inner(),
            created_at: created.info.created_at.to_datetime(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyMeta {
    pub id: String,
    pub name: String,
    pub role: ApiRole,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<KeyInfo> for KeyMeta {
    fn from(k: KeyInfo) -> KeyMeta {
        KeyMeta {
            id: k.id,
            name: k.name,
            role: k.role.into(),
            created_at: k.created_at.to_datetime(),
            created_by: k.created_by,
            revoked_at: k.revoked_at.map(Timestamp::to_datetime),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only records by this actor (e.g. `key:ops-bot`, `cli:alice`).
    pub actor: Option<String>,
    /// Exact action, or a prefix ending in `*` (`key.*`).
    pub action: Option<String>,
    /// `success`, `failure` or `denied`.
    pub outcome: Option<String>,
    /// Only records at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Only records before this time (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// Only records with a sequence number below this (paging).
    pub before: Option<i64>,
    /// At most this many records (1 to 1000, default 100).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditRecord {
    pub seq: i64,
    pub ts: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

impl From<Record> for AuditRecord {
    fn from(r: Record) -> AuditRecord {
        AuditRecord {
            seq: r.seq,
            ts: r.ts,
            actor: r.actor,
            action: r.action,
            target: r.target,
            outcome: r.outcome,
            detail: r.detail,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Newest first.
    pub records: Vec<AuditRecord>,
    /// Pass as `before` to get the next (older) page; absent on the last page.
    pub next_before: Option<i64>,
}

// ---- Monitoring, SLOs and alerting ----

/// One probe result.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProbeResultWire {
    pub monitor: String,
    pub ts: DateTime<Utc>,
    pub ok: bool,
    pub latency_ms: u64,
    /// HTTP status, for HTTP probes that got an answer.
    pub status: Option<u16>,
    /// Why it failed.
    pub error: Option<String>,
}

impl From<bulwark_ops::ProbeResult> for ProbeResultWire {
    fn from(r: bulwark_ops::ProbeResult) -> Self {
        ProbeResultWire {
            monitor: r.monitor,
            ts: wire_time(r.at),
            ok: r.ok,
            latency_ms: u64::try_from(r.latency.as_millis()).unwrap_or(u64::MAX),
            status: r.status,
            error: r.error,
        }
    }
}

/// A domain time as the wire's RFC 3339 `DateTime`.
pub(crate) fn wire_time(t: Timestamp) -> DateTime<Utc> {
    t.to_datetime()
}

/// `POST /api/ops/uptime/test`: every monitor probed once.
#[derive(Debug, Serialize, ToSchema)]
pub struct UptimeTest {
    /// True when every monitor is up.
    pub ok: bool,
    pub results: Vec<ProbeResultWire>,
}

impl From<Vec<bulwark_ops::ProbeResult>> for UptimeTest {
    fn from(results: Vec<bulwark_ops::ProbeResult>) -> Self {
        UptimeTest {
            ok: results.iter().all(|r| r.ok),
            results: results.into_iter().map(ProbeResultWire::from).collect(),
        }
    }
}

/// A monitor and its current state.
#[derive(Debug, Serialize, ToSchema)]
pub struct MonitorWire {
    pub name: String,
    /// `http`, `tcp`, `tls` or `push`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Scheme, host and port only: paths and queries may hold tokens.
    pub target: String,
    pub interval_s: u64,
    pub timeout_ms: u64,
    pub strikes: u32,
    pub recover_after: u32,
    pub tags: Vec<String>,
    /// None until the first result.
    pub up: Option<bool>,
    pub incident_open: bool,
    pub last: Option<ProbeResultWire>,
    /// For push monitors: whether a heartbeat token was made (only its
    /// digest is kept; `POST /api/v1/monitors/{name}/push-token` makes one).
    pub has_push_token: Option<bool>,
}

/// A new heartbeat token, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct PushTokenCreated {
    pub monitor: String,
    pub token: String,
    /// Where the heartbeat goes: `POST` (or `GET`) this path.
    pub push_path: String,
}

/// One bucket (a minute or an hour, see `resolution`) of one monitor.
#[derive(Debug, Serialize, ToSchema)]
pub struct RollupWire {
    /// Start of the bucket: the minute, or the hour with `resolution=hour`.
    pub minute: DateTime<Utc>,
    pub total: i64,
    pub failures: i64,
    pub latency_p50_ms: i64,
    pub latency_p95_ms: i64,
    pub latency_p99_ms: i64,
    pub latency_max_ms: i64,
}

impl From<bulwark_ops::Rollup> for RollupWire {
    fn from(r: bulwark_ops::Rollup) -> Self {
        RollupWire {
            minute: wire_time(r.minute),
            total: r.total,
            failures: r.failures,
            latency_p50_ms: r.p50_ms,
            latency_p95_ms: r.p95_ms,
            latency_p99_ms: r.p99_ms,
            latency_max_ms: r.max_ms,
        }
    }
}

/// The resolution of `GET /api/v1/monitors/{name}/results`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ResolutionWire {
    /// Raw results, in `results`.
    Raw,
    /// Per-minute rollups, in `rollups`.
    Minute,
    /// Hourly rollups, in `rollups`.
    Hour,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MonitorResults {
    pub monitor: String,
    /// Which of `results` and `rollups` is filled, and the width of a rollup.
    pub resolution: ResolutionWire,
    /// Raw results, newest first (only with `resolution=raw`).
    pub results: Vec<ProbeResultWire>,
    /// Rollups, oldest first (only with `resolution=minute` or `hour`).
    pub rollups: Vec<RollupWire>,
}

/// Every parameter is read as text and parsed by the handler, so a bad value
/// gets a 400 naming its parameter and what it accepts (serde's messages name
/// neither); `value_type` gives OpenAPI the real types.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResultsQuery {
    /// Start of the range, inclusive (RFC 3339; default: an hour before
    /// `until`). Rollups whose bucket starts at or after it are returned, so
    /// with `resolution=hour` pass an hour boundary to get the hour holding it.
    #[param(value_type = Option<DateTime<Utc>>)]
    pub since: Option<String>,
    /// End of the range, exclusive (RFC 3339; default: now). Must be after
    /// `since`. A bucket starting before it is returned whole.
    #[param(value_type = Option<DateTime<Utc>>)]
    pub until: Option<String>,
    /// At most this many results or buckets, 1 to 10000 (default 500 raw
    /// results, 10000 rollups: 400 days of hours fit). When the range holds
    /// more, the newest are returned; to page back, pass the oldest time
    /// returned as `until`.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 10000)]
    pub limit: Option<String>,
    /// `raw` (default): raw results, kept `results_retention` (7 days by
    /// default). `minute`: per-minute rollups, kept 35 days (or the longest
    /// SLO window plus a day). `hour`: hourly rollups over the whole 400-day
    /// retention; hours not downsampled yet are folded from their minutes as
    /// the downsampler does (counts exact; p50 the probe-weighted mean of the
    /// minutes' p50, p95, p99 and max the worst minute's).
    #[param(inline, value_type = Option<ResolutionWire>)]
    pub resolution: Option<String>,
    /// `true` is `resolution=minute`, `false` is `resolution=raw` (older
    /// scripts); given with a different `resolution` it is a 400.
    #[param(value_type = Option<bool>)]
    pub rollup: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentWire {
    pub id: String,
    pub monitor: String,
    pub opened_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub cause: String,
}

impl From<bulwark_ops::Incident> for IncidentWire {
    fn from(i: bulwark_ops::Incident) -> Self {
        IncidentWire {
            id: i.id,
            monitor: i.monitor,
            opened_at: wire_time(i.opened_at),
            resolved_at: i.resolved_at.map(wire_time),
            cause: i.cause,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IncidentQuery {
    pub monitor: Option<String>,
    /// Only open incidents.
    pub open: Option<bool>,
    /// 1 to 1000, default 100.
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BurnRateWire {
    /// `5m`, `30m`, `1h`, `6h`, `1d` or `3d`.
    pub window: String,
    pub rate: f64,
}

/// An SLO's status (as `bulwark slo status --json`).
#[derive(Debug, Serialize, ToSchema)]
pub struct SloStatusWire {
    pub name: String,
    pub monitor: String,
    pub target: f64,
    pub window_start: DateTime<Utc>,
    pub total: u64,
    pub bad: u64,
    pub attainment: f64,
    /// Failures the window may hold.
    pub budget_total: f64,
    /// Share of the budget used (may exceed 1).
    pub budget_consumed: f64,
    pub budget_remaining: f64,
    pub burn_rates: Vec<BurnRateWire>,
    /// When the budget runs out at the last hour's burn rate.
    pub exhaustion_at: Option<DateTime<Utc>>,
    /// Alert rules firing now (`burn:1h:5m:14.4`, `budget:0.8`).
    pub firing: Vec<String>,
}

impl From<&bulwark_ops::SloStatus> for SloStatusWire {
    fn from(s: &bulwark_ops::SloStatus) -> Self {
        SloStatusWire {
            name: s.name.clone(),
            monitor: s.monitor.clone(),
            target: s.target,
            window_start: wire_time(s.window_start),
            total: s.total,
            bad: s.bad,
            attainment: s.attainment,
            budget_total: s.budget_total,
            budget_consumed: s.budget_consumed,
            budget_remaining: s.budget_remaining,
            burn_rates: s
                .burn_rates
                .iter()
                .map(|(w, r)| BurnRateWire {
                    window: (*w).to_string(),
                    rate: *r,
                })
                .collect(),
            exhaustion_at: s.exhaustion_at.map(wire_time),
            firing: s.firing.iter().map(|f| f.id.clone()).collect(),
        }
    }
}

/// `GET /healthz/strict`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StrictHealth {
    /// `ok` or `budget_exhausted`.
    pub status: &'static str,
    pub threshold: f64,
    /// The SLOs at or past the threshold.
    pub failing: Vec<String>,
    /// When the SLOs were evaluated: the monitoring engine's latest pass,
    /// at most a few seconds old without an engine.
    pub evaluated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SilenceWire {
    pub id: String,
    pub monitor: Option<String>,
    pub tag: Option<String>,
    pub comment: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub expired_at: Option<DateTime<Utc>>,
}

impl From<bulwark_ops::Silence> for SilenceWire {
    fn from(s: bulwark_ops::Silence) -> Self {
        SilenceWire {
            id: s.id,
            monitor: s.monitor,
            tag: s.tag,
            comment: s.comment,
            created_by: s.created_by,
            created_at: wire_time(s.created_at),
            ends_at: wire_time(s.ends_at),
            expired_at: s.expired_at.map(wire_time),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSilence {
    /// Silence this monitor (and/or `tag`).
    pub monitor: Option<String>,
    /// Silence monitors with this tag.
    pub tag: Option<String>,
    #[serde(default)]
    pub comment: String,
    /// When it ends; give this or `duration`.
    pub ends_at: Option<DateTime<Utc>>,
    /// How long from now, e.g. `2h`.
    pub duration: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SilenceQuery {
    /// Also list expired silences.
    pub all: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MaintenanceWire {
    pub id: Option<String>,
    pub name: String,
    /// Empty means every monitor.
    pub monitors: Vec<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// `config` or `api`.
    pub source: &'static str,
    pub active: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMaintenance {
    pub name: String,
    #[serde(default)]
    pub monitors: Vec<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PushAccepted {
    pub monitor: String,
}

/// A managed secret's metadata. There is deliberately no field for the value.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretMetaWire {
    pub name: String,
    /// Absent until the first value is generated.
    pub version: Option<i64>,
    pub rotated_at: Option<DateTime<Utc>>,
    pub rotated_by: Option<String>,
    pub age_seconds: Option<u64>,
    pub max_age_seconds: u64,
    pub grace_seconds: u64,
    /// Whether age-driven rotation is on.
    pub rotate: bool,
    /// Whether the value file exists in the data directory.
    pub present: bool,
    /// Whether the next rotation check will rotate it.
    pub due: bool,
    pub next_rotation: Option<DateTime<Utc>>,
    /// Until when the previous value is still accepted.
    pub previous_valid_until: Option<DateTime<Utc>>,
}

impl From<bulwark_ops::SecretStatus> for SecretMetaWire {
    fn from(s: bulwark_ops::SecretStatus) -> SecretMetaWire {
        SecretMetaWire {
            version: s.meta.as_ref().map(|m| m.version),
            rotated_at: s.meta.as_ref().map(|m| m.rotated_at),
            rotated_by: s.meta.as_ref().map(|m| m.rotated_by.clone()),
            previous_valid_until: s.meta.as_ref().and_then(|m| m.previous_valid_until),
            age_seconds: s.age.map(|a| a.as_secs()),
            max_age_seconds: s.max_age.as_secs(),
            grace_seconds: s.grace.as_secs(),
            rotate: s.rotate,
            present: s.present,
            due: s.due,
            next_rotation: s.next_rotation,
            name: s.name,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RotateQuery {
    /// Rotate even when not due (and even with `rotate = false`).
    pub force: Option<bool>,
    /// Revoke the previous value at once instead of after the grace period
    /// (implies `force`).
    pub no_grace: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RotateResult {
    pub name: String,
    /// False when the secret was not due and `force` was not set.
    pub rotated: bool,
    pub version: Option<i64>,
    pub rotated_at: Option<DateTime<Utc>>,
    pub previous_valid_until: Option<DateTime<Utc>>,
    /// `none`, `ok` or `failed`.
    pub hook: &'static str,
    pub hook_error: Option<String>,
}

impl RotateResult {
    /// The answer for secret `name`: `rotation` is None when it was not due.
    pub fn new(name: &str, rotation: Option<bulwark_ops::Rotation>) -> RotateResult {
        match rotation {
            None => RotateResult {
                name: name.to_string(),
                rotated: false,
                version: None,
                rotated_at: None,
                previous_valid_until: None,
                hook: "none",
                hook_error: None,
            },
            Some(r) => RotateResult {
                name: r.name,
                rotated: true,
                version: Some(r.version),
                rotated_at: Some(r.rotated_at),
                previous_valid_until: r.previous_valid_until,
                hook: match &r.hook {
                    None => "none",
                    Some(Ok(())) => "ok",
                    Some(Err(_)) => "failed",
                },
                hook_error: r.hook.and_then(Result::err),
            },
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobRunWire {
    pub id: String,
    pub job: String,
    pub scheduled_at: DateTime<Utc>,
    /// `schedule`, `catch_up` or `manual`.
    pub trigger: &'static str,
    pub instance: String,
    pub actor: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `running`, `success`, `failure` or `abandoned`.
    pub outcome: &'static str,
    pub summary: String,
}

impl From<bulwark_ops::JobRun> for JobRunWire {
    fn from(r: bulwark_ops::JobRun) -> JobRunWire {
        JobRunWire {
            id: r.id,
            job: r.job,
            scheduled_at: r.scheduled_at,
            trigger: r.trigger.as_str(),
            instance: r.instance,
            actor: r.actor,
            started_at: r.started_at,
            finished_at: r.finished_at,
            outcome: r.outcome.as_str(),
            summary: r.summary,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobWire {
    /// `backup:NAME`, `verify:NAME`, `drill:NAME`, `rotate:NAME`, `slo`, `report`.
    pub name: String,
    /// Absent for jobs that run only when asked.
    pub schedule: Option<String>,
    pub next_run: Option<DateTime<Utc>>,
    pub last_run: Option<JobRunWire>,
}

impl From<bulwark_ops::JobStatus> for JobWire {
    fn from(j: bulwark_ops::JobStatus) -> JobWire {
        JobWire {
            name: j.name,
            schedule: j.schedule,
            next_run: j.next_run,
            last_run: j.last_run.map(JobRunWire::from),
        }
    }
}

/// One snapshot (`bulwark snapshots --json`, `GET /api/v1/snapshots`), in
/// the fields restic's `snapshots --json` uses.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SnapshotWire {
    pub id: String,
    pub short_id: String,
    pub time: DateTime<chrono::FixedOffset>,
    /// The root tree.
    pub tree: String,
    /// The snapshot this one was based on.
    pub parent: Option<String>,
    pub hostname: String,
    pub username: String,
    pub paths: Vec<String>,
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<SnapshotSummaryWire>,
}

impl From<(bulwark_repo::Id, bulwark_repo::Snapshot)> for SnapshotWire {
    fn from((id, s): (bulwark_repo::Id, bulwark_repo::Snapshot)) -> Self {
        SnapshotWire {
            id: id.to_hex(),
            short_id: id.short(),
            time: s.time,
            tree: s.tree.to_hex(),
            parent: s.parent.map(|p| p.to_hex()),
            hostname: s.hostname,
            username: s.username,
            paths: s.paths,
            tags: s.tags,
            summary: s.summary.map(|m| SnapshotSummaryWire {
                backup_start: m.backup_start,
                backup_end: m.backup_end,
                files_new: m.files_new,
                files_changed: m.files_changed,
                files_unmodified: m.files_unmodified,
                data_added: m.data_added,
                data_added_packed: m.data_added_packed,
                total_files_processed: m.total_files_processed,
                total_bytes_processed: m.total_bytes_processed,
            }),
        }
    }
}

/// What the backup that made a snapshot did, as restic 0.17+ records it
/// (absent for snapshots made by older versions).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SnapshotSummaryWire {
    pub backup_start: DateTime<chrono::FixedOffset>,
    pub backup_end: DateTime<chrono::FixedOffset>,
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unmodified: u64,
    /// New data, before compression.
    pub data_added: u64,
    /// New data as stored.
    pub data_added_packed: u64,
    pub total_files_processed: u64,
    /// The snapshot's size: bytes of file content in it.
    pub total_bytes_processed: u64,
}

/// The snapshots of one `[[backup]]`, or why they could not be listed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BackupSnapshots {
    pub backup: String,
    /// Oldest first.
    pub snapshots: Vec<SnapshotWire>,
    /// Set when the repository could not be read; `snapshots` is then empty.
    pub error: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SnapshotQuery {
    /// Only this configured backup.
    pub backup: Option<String>,
}

/// `GET /api/v1/ops/check`: `bulwark ops check --json`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OpsCheck {
    /// Every row passed.
    pub ok: bool,
    pub rows: Vec<OpsCheckRow>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OpsCheckRow {
    /// config, monitor, slo, backup, verify, drill, secret or audit.
    pub area: &'static str,
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

impl From<Vec<bulwark_ops::CheckRow>> for OpsCheck {
    fn from(rows: Vec<bulwark_ops::CheckRow>) -> Self {
        OpsCheck {
            ok: bulwark_ops::all_checks_ok(&rows),
            rows: rows.into_iter().map(OpsCheckRow::from).collect(),
        }
    }
}

impl From<bulwark_ops::CheckRow> for OpsCheckRow {
    fn from(r: bulwark_ops::CheckRow) -> Self {
        OpsCheckRow {
            area: r.area,
            name: r.name,
            ok: r.ok,
            detail: r.detail,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// `json` (default), `md` or `html`.
    pub format: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DrillQuery {
    /// How many reports, newest first (1 to 100, default 10).
    pub limit: Option<u32>,
}

/// One timed step of a drill.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DrillStepWire {
    /// `validate_config`, `snapshot_age`, `copies`, `restore`,
    /// `verify_files`, `expect_files`, `start`, `health` or `cleanup`.
    pub name: String,
    pub ok: bool,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
    /// What it did or why it failed; URLs cut to scheme, host and port.
    pub detail: String,
}

/// A DR drill's report (`GET /api/ops/dr/last`, `bulwark drill last --json`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DrillReportWire {
    /// The version of the stored report it was read from.
    pub schema: u32,
    pub id: String,
    pub drill: String,
    pub backup: String,
    /// Who ran it: `system:scheduler`, `cli:USER` or `key:NAME`.
    pub actor: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub passed: bool,
    /// The first step that failed; none when only a target was missed.
    pub failed_step: Option<String>,
    /// The snapshot restored.
    pub snapshot: Option<String>,
    /// How it was chosen (`snapshot = "latest" | "older-than:AGE" |
    /// "random"`, or an id from `drill run --snapshot`).
    pub snapshot_choice: Option<String>,
    pub steps: Vec<DrillStepWire>,
    /// Restore start to healthy (to verified without `start`).
    pub rto_seconds: Option<f64>,
    pub rto_target_seconds: Option<u64>,
    pub rto_met: Option<bool>,
    /// The restored snapshot's age when the drill started.
    pub rpo_seconds: Option<f64>,
    pub rpo_target_seconds: Option<u64>,
    pub rpo_met: Option<bool>,
    /// Each copy of the backup (`repos = [...]`): whether it holds the
    /// restored snapshot, and its age against the RPO target.
    pub copies: Vec<DrillCopyWire>,
}

/// One copy in a drill report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DrillCopyWire {
    pub repo: String,
    /// The restored snapshot (same tree and time) is in the copy.
    pub present: bool,
    /// Its id in the copy, or the copy's newest snapshot when absent.
    pub snapshot: Option<String>,
    pub age_seconds: Option<f64>,
    pub rpo_met: Option<bool>,
    /// Why the copy could not be read.
    pub error: Option<String>,
}

impl From<bulwark_ops::DrillReport> for DrillReportWire {
    fn from(r: bulwark_ops::DrillReport) -> Self {
        DrillReportWire {
            schema: r.schema,
            id: r.id,
            drill: r.drill,
            backup: r.backup,
            actor: r.actor,
            started_at: r.started_at,
            finished_at: r.finished_at,
            passed: r.passed,
            failed_step: r.failed_step,
            snapshot: r.snapshot,
            snapshot_choice: r.snapshot_choice,
            steps: r
                .steps
                .into_iter()
                .map(|s| DrillStepWire {
                    name: s.name,
                    ok: s.ok,
                    started_at: s.started_at,
                    duration_ms: s.duration_ms,
                    detail: s.detail,
                })
                .collect(),
            rto_seconds: r.rto_seconds,
            rto_target_seconds: r.rto_target_seconds,
            rto_met: r.rto_met,
            rpo_seconds: r.rpo_seconds,
            rpo_target_seconds: r.rpo_target_seconds,
            rpo_met: r.rpo_met,
            copies: r
                .copies
                .into_iter()
                .map(|c| DrillCopyWire {
                    repo: c.repo,
                    present: c.present,
                    snapshot: c.snapshot,
                    age_seconds: c.age_seconds,
                    rpo_met: c.rpo_met,
                    error: c.error,
                })
                .collect(),
        }
    }
}

/// `POST /api/v1/backups/{name}/restore`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreBody {
    /// `latest`, a snapshot id or unique prefix, or an archive name as
    /// `bulwark export` writes it (`bulwark-<id>-<YYYYmmddTHHMMSSZ>.tar.gz`)
    /// or the original backup scripts did (`app-backup-20231115_030000.tar.gz`).
    pub snapshot: String,
    /// Absolute directory on the server's machine.
    pub target: String,
    /// Only these paths (restic's `--include`); all when absent.
    #[serde(default)]
    pub include: Vec<String>,
    /// Restore into a directory that is not empty.
    #[serde(default)]
    pub overwrite: bool,
}

/// A job started in the background: where to follow it.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobStarted {
    pub run_id: String,
    pub job: String,
    /// `GET` this for progress and the outcome.
    pub status_url: String,
}

/// How far a running job got.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProgressWire {
    pub phase: String,
    pub files: u64,
    pub bytes: u64,
}

/// One run with its progress while it runs on the instance answering.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobRunStatus {
    #[serde(flatten)]
    pub run: JobRunWire,
    /// Present while the run is going on the instance that answers.
    pub progress: Option<ProgressWire>,
}
