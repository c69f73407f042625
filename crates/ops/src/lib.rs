//! Bulwark's domain: configuration, the state store, the audit trail and API
//! keys, and (as the product grows) probes, SLO math, alert routing, secrets,
//! drills and the scheduler.
//!
//! Nothing in here speaks HTTP or parses command lines: `bulwark-server` and
//! the `bulwark` binary are thin front-ends over the functions below, so every
//! action is reachable from both and is audited exactly once, here.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use bulwark_ops::{create_key, verify_audit, Actor, Role, Store};
//! let store = Store::open(None, std::path::Path::new("./bulwark-data")).await?;
//! let created = create_key(&store, &Actor::cli(), Role::Analyst, "grafana").await?;
//! println!("new key (shown once): {}", created.secret.expose());
//! assert!(verify_audit(&store).await?.is_intact());
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(unnameable_types)]

// Every module is crate-private, so a `pub` item inside one promises nothing
// outside this crate; what the server, the binary and the tests use is
// listed in the public API block at the end.
pub(crate) mod alert;
pub(crate) mod audit;
pub(crate) mod auth;
pub(crate) mod backups;
pub(crate) mod charts;
pub(crate) mod child_env;
pub(crate) mod config;
pub(crate) mod cost;
pub(crate) mod drill;
pub(crate) mod engine;
pub(crate) mod events;
pub(crate) mod files;
pub(crate) mod identity;
pub(crate) mod instance;
pub(crate) mod keys;
pub(crate) mod maintenance;
pub(crate) mod opscheck;
pub(crate) mod probe;
pub(crate) mod redact;
pub(crate) mod report;
pub(crate) mod scheduler;
pub(crate) mod secrets;
pub(crate) mod sessions;
pub(crate) mod settings;
pub(crate) mod slo;
pub(crate) mod status;
pub(crate) mod store;
pub(crate) mod time;
pub(crate) mod uptime;

/// A boxed future, so async work can sit behind trait objects (jobs, key
/// sources, failure sinks).
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

// Public API, by domain. Functions whose short names would clash across
// domains (`keys::list`, `secrets::list`) or say nothing on their own
// (`drill::last`, `opscheck::run`) get a domain-qualified name here
// (`list_keys`, `list_secrets`, `last_drills`, `run_ops_check`).

// The instance, the state store and who acts.
pub use auth::{Authenticator, KeySource};
pub use identity::{key_digest, Actor, Principal, Role, UnknownRole};
pub use instance::Instance;
pub use store::{Dialect, Store, StoreError};
pub use time::Timestamp;

// Configuration: loading with diagnostics, and the validated sections.
pub use config::{
    format_duration, parse_duration, AlertSeverity, AuthConfig, BackupConfig, BackupCostConfig,
    BackupKind, BurnRateRule, Calendar, ChannelConfig, ChannelKind, CloudwatchSink, CommandEnv,
    Config, ConfigErrors, CostConfig, CredentialSource, Diagnostic, DrillConfig, HttpCheck,
    HttpSink, IpNetwork, KeepPolicy, Loaded, MaintenanceConfig, MonitorConfig, MonitorKind, Notify,
    PasswordSource, PostgresSource, RouteConfig, Secret, SecretConfig, SecretHook, ServerConfig,
    Severity, SinkConfig, SinkKind, SloConfig, SqlCheck, StaticKey, SyslogSink, SyslogTransport,
    VerifyConfig, DEFAULT_INTERVAL, DEFAULT_RECOVER_AFTER, DEFAULT_STRIKES, DEFAULT_TIMEOUT,
};
pub use settings::{load as load_settings, parse as parse_settings};

// Audit trail, API keys, dashboard sessions; a URL shown without credentials.
pub use audit::{
    append as append_audit, export as export_audit, query as query_audit, verify as verify_audit,
    Break, Entry, ExportError, Filter, Outcome, Record, Verification, GENESIS as AUDIT_GENESIS,
};
pub use keys::{
    create as create_key, has_active_admin, list as list_keys, revoke as revoke_key, Created,
    KeyError, KeyInfo, StoreKeys, KEY_PREFIX,
};
pub use redact::url_origin;
pub use sessions::{find as find_session, sign_in, sign_out, NewSession, Session};

// Uptime: probes, the engine that runs them, results, incidents, push monitors.
pub use engine::{
    check_all as check_all_monitors, log_results as log_probe_results, Engine, EngineOptions, Live,
    MonitorLive, Observer, SloEvaluation,
};
pub use probe::{ProbeResult, Prober};
pub use uptime::{
    buckets as uptime_buckets, create_push_token, downsample as downsample_results, has_push_token,
    hash_stored_push_tokens, hourly_rollups, incidents as list_incidents, last_ping,
    latest_results, monitors_with_open_incidents, open_incident, open_incident_of,
    ping as record_ping, prune as prune_uptime, prune_hourly as prune_hourly_rollups,
    prune_raw as prune_raw_results, record as record_result, record_many as record_results,
    resolve_incident, results as monitor_results, rollup as rollup_results, rollup_series, rollups,
    DailyHistory, DayCount, Incident, Resolution, Rollup, DAY, DAY_MS,
};

// SLOs.
pub use slo::{
    evaluate as evaluate_slo, status_all as slo_statuses, strict_failures as strict_slo_failures,
    Bucket, FiringRule, SloStatus,
};

// Alerts, their delivery and silences.
pub use alert::{
    create_silence, deliver_due, expire_silence, firing as firing_alerts,
    flush_groups as flush_alert_groups, list_silences, notify as notify_alert,
    pending as pending_deliveries, queue_reminders as queue_alert_reminders, Alert, AlertError,
    AlertStatus, Delivery, JobFailureAlerts, NewSilence, Notified, Silence, SilenceEnd,
};
pub use maintenance::{
    create as create_maintenance, delete as delete_maintenance, list as list_maintenance,
    MaintenanceError, Window,
};

// Backups: runs, verification, restores, storage cost.
pub use backups::restore::{
    find_snapshot, RestoreDone, RestoreJob, RestoreRequest, RestoreRequestError,
};
pub use backups::stream::{
    command as command_stream, stdin as stdin_stream, CommandHandle, Source,
};
pub use backups::{
    open as open_backup_repository, run_backup, snapshots as backup_snapshots,
    verify_all as verify_all_backups, BackupError, BackupRun, CopyRun, Mismatch, VerifyJob,
    VerifyReport,
};
pub use cost::job::{measure as measure_storage_cost, Measured};
pub use cost::{status as cost_status, BackupCost, ClassCost, RepositoryCost};

// Disaster-recovery drills.
pub use drill::{
    last as last_drills, run_named as run_drill, CopyCheck, DrillError, DrillJob, DrillReport,
    SnapshotSpec, Step as DrillStep,
};

// Managed secrets.
pub use secrets::{
    current_path as secret_current_path, expire_previous as expire_previous_secret,
    list as list_secrets, previous_path as secret_previous_path, rotate as rotate_secret,
    rotation_check as secret_rotation_check, RotateOptions, Rotation, SecretError, SecretMeta,
    SecretStatus, DASHBOARD_KEY, ROTATION_LOG,
};

// The scheduler: jobs, schedules and recorded runs.
pub use scheduler::runs::{
    claim as claim_run, finish as finish_run, get as get_run, history as run_history,
    last_scheduled as last_scheduled_run, latest as latest_runs, renew as renew_run,
};
pub use scheduler::{
    ClaimError, FailureSink, Job, JobAction, JobContext, JobError, JobRun, JobStatus, MissedRuns,
    Progress as JobProgress, ProgressHandle, RunError, RunOutcome, Schedule, Scheduler, Task,
    Trigger,
};

// Evidence: ops check, the monthly report, the public status page, charts.
pub use charts::{
    badge as badge_svg, burn_down, latency_chart, line_chart, uptime_bars, Day, Level, LineChart,
    Reference, Series,
};
pub use opscheck::{all_ok as all_checks_ok, run as run_ops_check, CheckRow};
pub use report::render::{html as report_html, json as report_json, markdown as report_markdown};
pub use report::{
    current_period, gather as gather_report, DayUptime, DrillRow, IncidentRow, JobSummary,
    MonitorUptime, Period, PeriodError, Report, ReportDocument, RotationRow, SloSummary,
    StorageClassRow, StorageRow,
};
pub use status::{
    public_status, PublicIncident, PublicMonitor, PublicStatus, State as MonitorState, BADGE_DAYS,
    HISTORY_DAYS,
};

// Event export.
pub use events::{
    cursor as event_cursor, head as event_head, list as list_events, prune as prune_events,
    ship_stream, Event, Kind as EventKind, Progress as ShipProgress, ShipError, ShipObserver,
    ShipOptions, Shipper, StreamSummary,
};
