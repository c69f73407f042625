//! The validated config: what the rest of Bulwark codes against.
//!
//! Every value here has passed validation, so consumers never re-check ranges
//! or references. Anything that may hold a credential is a [`Secret`], which
//! keeps it out of `Debug` output and therefore out of logs and panics.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::SnapshotSpec;
use crate::identity::Role;

/// A value that must never be printed: tokens, passwords, webhook URLs, DB URLs.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The value itself; call sites that use it are the ones to review.
    pub fn expose(&self) -> &T {
        &self.0
    }

    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The whole validated config.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub monitors: Vec<MonitorConfig>,
    pub slos: Vec<SloConfig>,
    pub maintenance: Vec<MaintenanceConfig>,
    pub channels: Vec<ChannelConfig>,
    pub routes: Vec<RouteConfig>,
    pub backups: Vec<BackupConfig>,
    pub secrets: Vec<SecretConfig>,
    pub drills: Vec<DrillConfig>,
    /// `[[sink]]`: event export.
    pub sinks: Vec<SinkConfig>,
    /// `[cost]`: storage prices and the monthly threshold.
    pub cost: CostConfig,
    /// The file it came from; None when running on the embedded default (no file).
    pub source: Option<PathBuf>,
}

impl Config {
    pub fn monitor(&self, name: &str) -> Option<&MonitorConfig> {
        self.monitors.iter().find(|m| m.name == name)
    }

    pub fn channel(&self, name: &str) -> Option<&ChannelConfig> {
        self.channels.iter().find(|c| c.name == name)
    }

    pub fn sink(&self, name: &str) -> Option<&SinkConfig> {
        self.sinks.iter().find(|s| s.name == name)
    }

    pub fn backup(&self, name: &str) -> Option<&BackupConfig> {
        self.backups.iter().find(|b| b.name == name)
    }
}

pub const DEFAULT_STRICT_BUDGET_THRESHOLD: f64 = 0.8;
pub const DEFAULT_MAX_SILENCE: Duration = Duration::from_secs(365 * 86_400);
pub const DEFAULT_RESULTS_RETENTION: Duration = Duration::from_secs(7 * 86_400);
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// A working day, so a forgotten tab does not stay signed in for a week.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// `[server]`
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Default 127.0.0.1:8080; env `BULWARK_LISTEN` overrides.
    pub listen: SocketAddr,
    /// A `postgres://` or `postgresql://` URL; None means SQLite in the data dir.
    pub database: Option<Secret<String>>,
    /// The share of an SLO's error budget, in (0, 1], whose consumption turns
    /// `/healthz/strict` to 503.
    pub strict_budget_threshold: f64,
    /// The longest a silence may last (default a year): a mistyped
    /// duration must not mute alerts for ever.
    pub max_silence: Duration,
    /// When false, `/metrics` is public.
    pub metrics_require_key: bool,
    /// How long raw probe results are kept; per-minute rollups stay 400 days.
    pub results_retention: Duration,
    /// Peers whose `X-Forwarded-For` is believed (reverse proxies); empty
    /// means the TCP peer is the client.
    pub trusted_proxies: Vec<IpNetwork>,
    /// How long a client has to send a request's headers; also how long an
    /// idle keep-alive connection stays open.
    pub header_read_timeout: Duration,
    /// Connections served at once; past this, new ones wait in the kernel's
    /// accept queue.
    pub max_connections: usize,
    /// After a shutdown signal, how long requests in flight may finish
    /// before their connections are dropped.
    pub shutdown_grace: Duration,
    /// How long a dashboard session lasts after sign-in (default 12 hours).
    pub session_ttl: Duration,
    /// Directories the restore API may write into (a target must be one of
    /// them or below one); empty lets it write anywhere but `/`.
    pub restore_roots: Vec<std::path::PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database: None,
            strict_budget_threshold: DEFAULT_STRICT_BUDGET_THRESHOLD,
            max_silence: DEFAULT_MAX_SILENCE,
            metrics_require_key: false,
            results_retention: DEFAULT_RESULTS_RETENTION,
            trusted_proxies: Vec::new(),
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            session_ttl: DEFAULT_SESSION_TTL,
            restore_roots: Vec::new(),
        }
    }
}

/// An IP address or a CIDR block (`10.0.0.0/8`, `::1`), as in
/// `[server] trusted_proxies`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNetwork {
    /// With the host bits cleared.
    addr: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    /// Parses `ADDR` or `ADDR/PREFIX`. Host bits below the prefix are
    /// refused (`10.0.0.1/8` is likely a typo for `10.0.0.1` or `10.0.0.0/8`).
    ///
    /// # Errors
    /// A message naming what is wrong.
    pub fn parse(s: &str) -> Result<IpNetwork, String> {
        let expected = "expected an ip address or a cidr block such as 10.0.0.0/8";
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("invalid address {s:?}: {expected}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => {
                    return Err(format!(
                        "invalid prefix length in {s:?}: expected 0 to {max}"
                    ))
                }
            },
        };
        let net = IpNetwork {
            addr: mask(addr, prefix),
            prefix,
        };
        if net.addr != addr {
            return Err(format!("{s:?} has host bits set: did you mean {net}?"));
        }
        Ok(net)
    }

    /// Whether `ip` is in this network. An IPv4-mapped IPv6 address
    /// (`::ffff:10.0.0.1`, as a dual-stack listener reports IPv4 peers)
    /// counts as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::from((bits & m).to_be_bytes())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::from((bits & m).to_be_bytes())
        }
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let max = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == max {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

/// `[[auth.key]]` entries plus the keys from env `ROLES_JSON`.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    pub keys: Vec<StaticKey>,
}

/// A key known only by its SHA-256; the raw key is never kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticKey {
    pub name: String,
    pub role: Role,
    pub sha256: [u8; 32],
}

pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_STRIKES: u32 = 2;
pub const DEFAULT_RECOVER_AFTER: u32 = 2;
/// Slack after a missed heartbeat before a push monitor counts as down.
pub const DEFAULT_PUSH_GRACE: Duration = Duration::from_secs(60);

/// `[[monitor]]`
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// Unique, `[A-Za-z0-9_.-]+`.
    pub name: String,
    pub kind: MonitorKind,
    /// Between probes; for push monitors, unused (see `MonitorKind::Push`).
    pub interval: Duration,
    pub timeout: Duration,
    /// Failures in a row before an incident opens.
    pub strikes: u32,
    /// Successes in a row before it resolves.
    pub recover_after: u32,
    pub tags: Vec<String>,
    /// Shown on the public status page (`/status`) and given a badge
    /// (`/badge/NAME.svg`); false unless `public = true`.
    pub public: bool,
}

/// What a monitor probes.
#[derive(Debug, Clone)]
pub enum MonitorKind {
    Http(HttpCheck),
    Tcp {
        host: String,
        port: u16,
    },
    Tls {
        host: String,
        port: u16,
        cert_min_days: Option<u32>,
    },
    /// A heartbeat: the service calls us at least every `period`, with `grace`
    /// of slack before it counts as down.
    Push {
        period: Duration,
        grace: Duration,
    },
}

/// An HTTP(S) probe and what makes its answer a success.
#[derive(Debug, Clone)]
pub struct HttpCheck {
    pub url: String,
    pub method: String,
    /// Values are secrets because they are where bearer tokens go.
    pub headers: Vec<(String, Secret<String>)>,
    pub body: Option<String>,
    /// Accepted status codes; the default, 200..=399, means any 2xx or 3xx.
    pub expect_status: Vec<std::ops::RangeInclusive<u16>>,
    pub max_latency: Option<Duration>,
    pub body_contains: Option<String>,
    /// Dotted path into the JSON body => expected value.
    pub json: Vec<(String, serde_json::Value)>,
    /// Only for https:// URLs.
    pub cert_min_days: Option<u32>,
}

impl HttpCheck {
    pub fn status_ok(&self, status: u16) -> bool {
        self.expect_status.iter().any(|r| r.contains(&status))
    }
}

pub const DEFAULT_SLO_TARGET: f64 = 0.995;
pub const DEFAULT_SLO_WINDOW: Duration = Duration::from_secs(30 * 86_400);

/// `[[slo]]`
#[derive(Debug, Clone)]
pub struct SloConfig {
    pub name: String,
    /// Names a configured monitor.
    pub monitor: String,
    /// In (0, 1).
    pub target: f64,
    /// Rolling window; ignored when `calendar` is set.
    pub window: Duration,
    pub calendar: Option<Calendar>,
    /// Whether it counts for `/healthz/strict`.
    pub strict: bool,
    /// Multi-window burn-rate alerts; the SRE workbook's four by default.
    pub alerts: Vec<BurnRateRule>,
}

/// A calendar-aligned SLO window instead of a rolling one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Calendar {
    Month,
}

/// Fires when the burn rate over both windows is at least `burn_rate`.
#[derive(Debug, Clone, PartialEq)]
pub struct BurnRateRule {
    pub long_window: Duration,
    pub short_window: Duration,
    pub burn_rate: f64,
    pub severity: AlertSeverity,
}

impl BurnRateRule {
    /// The multi-window, multi-burn-rate alerts of the Google SRE workbook.
    pub fn defaults() -> Vec<BurnRateRule> {
        let h = |n: u64| Duration::from_secs(n * 3600);
        let m = |n: u64| Duration::from_secs(n * 60);
        vec![
            BurnRateRule {
                long_window: h(1),
                short_window: m(5),
                burn_rate: 14.4,
                severity: AlertSeverity::Critical,
            },
            BurnRateRule {
                long_window: h(6),
                short_window: m(30),
                burn_rate: 6.0,
                severity: AlertSeverity::Critical,
            },
            BurnRateRule {
                long_window: h(24),
                short_window: h(2),
                burn_rate: 3.0,
                severity: AlertSeverity::Warning,
            },
            BurnRateRule {
                long_window: h(72),
                short_window: h(6),
                burn_rate: 1.0,
                severity: AlertSeverity::Warning,
            },
        ]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlertSeverity {
    Info,
    Warning,
    Critical,
}

impl AlertSeverity {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertSeverity::Info => "info",
            AlertSeverity::Warning => "warning",
            AlertSeverity::Critical => "critical",
        }
    }
}

impl std::str::FromStr for AlertSeverity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "critical" => Ok(AlertSeverity::Critical),
            "warning" => Ok(AlertSeverity::Warning),
            "info" => Ok(AlertSeverity::Info),
            other => Err(format!(
                "unknown severity {other:?} (expected \"critical\", \"warning\" or \"info\")"
            )),
        }
    }
}

/// `[[maintenance]]`: a window during which failures neither alert nor count
/// against SLOs.
#[derive(Debug, Clone)]
pub struct MaintenanceConfig {
    pub name: String,
    /// Empty means every monitor.
    pub monitors: Vec<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// `[[channel]]`
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    pub name: String,
    pub kind: ChannelKind,
}

pub const DEFAULT_TELEGRAM_API: &str = "https://api.telegram.org";
pub const DEFAULT_PAGERDUTY_API: &str = "https://events.pagerduty.com";

#[derive(Debug, Clone)]
pub enum ChannelKind {
    Slack {
        url: Secret<String>,
    },
    Telegram {
        bot_token: Secret<String>,
        chat_id: String,
        api_base: String,
    },
    Webhook {
        url: Secret<String>,
        headers: Vec<(String, Secret<String>)>,
    },
    Email {
        smtp_host: String,
        smtp_port: u16,
        username: Option<String>,
        password: Option<Secret<String>>,
        from: String,
        to: Vec<String>,
        starttls: bool,
    },
    PagerDuty {
        routing_key: Secret<String>,
        api_base: String,
    },
}

impl ChannelKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            ChannelKind::Slack { .. } => "slack",
            ChannelKind::Telegram { .. } => "telegram",
            ChannelKind::Webhook { .. } => "webhook",
            ChannelKind::Email { .. } => "email",
            ChannelKind::PagerDuty { .. } => "pagerduty",
        }
    }
}

pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
pub const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(300);
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);

/// `[[route]]`: which alerts go to which channel. Empty match lists match all.
/// With no route at all, every channel receives everything.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    pub channel: String,
    pub monitors: Vec<String>,
    pub tags: Vec<String>,
    pub severity: Vec<AlertSeverity>,
    pub group_by: Vec<String>,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    pub send_resolved: bool,
}

/// `[[backup]]`
#[derive(Debug, Clone)]
pub struct BackupConfig {
    pub name: String,
    /// As restic spells it: a local path, `s3:...`, `azure:...` or `gs:...`.
    pub repo: String,
    /// `repo`, parsed as the backend opener parses it.
    pub location: bulwark_repo::Location,
    /// `repos = [...]`: more repositories (any backend, the same password
    /// and options) that get a copy of every new snapshot, each verified
    /// like `repo`.
    pub copies: Vec<String>,
    /// `options = { "s3.storage-class" = "STANDARD_IA", ... }`, validated.
    pub options: bulwark_repo::BackendOptions,
    /// None: the run-time `BULWARK_PASSWORD` / `RESTIC_PASSWORD`.
    pub password: Option<PasswordSource>,
    /// `credentials = { AWS_ACCESS_KEY_ID = { env = "..." }, ... }`: the
    /// clouds' standard variables for this backup's repositories, used
    /// instead of the process environment's, read when a run opens them.
    pub credentials: Vec<(String, CredentialSource)>,
    pub paths: Vec<PathBuf>,
    pub exclude: Vec<String>,
    pub tags: Vec<String>,
    /// Snapshot exactly the tree at each path's git HEAD.
    pub git: bool,
    /// A validated cron expression (5 or 6 fields, or an `@daily`-style macro).
    pub schedule: Option<String>,
    /// IANA zone name for `schedule`; UTC when None.
    pub timezone: Option<String>,
    pub keep: KeepPolicy,
    pub verify: Option<VerifyConfig>,
    /// For `backup:NAME` (and `verify:NAME` unless its table sets its own).
    pub notify: Notify,
    /// `kind = "files" | "postgres" | "command"`: what a run reads.
    pub kind: BackupKind,
    /// `cost = { prices = {...}, monthly_threshold = N }`: over `[cost]`.
    pub cost: BackupCostConfig,
}

/// `[cost]`: what storage costs, per storage class, and when to alert.
#[derive(Debug, Clone, PartialEq)]
pub struct CostConfig {
    /// `[cost]` or some `[[backup]] cost` is in the file: only then is
    /// storage listed (the `cost` job) and priced.
    pub enabled: bool,
    /// Price per GB-month (GB = 10^9 bytes, as the clouds bill) by class
    /// name as the store reports it (`STANDARD_IA`, `Cool`, `local`).
    pub prices: std::collections::BTreeMap<String, f64>,
    /// A label for amounts (`USD`); prices are in it.
    pub currency: String,
    /// Per backup: a monthly cost above this raises `StorageCostHigh`.
    pub monthly_threshold: Option<f64>,
    /// How often the `cost` job lists the repositories.
    pub interval: Duration,
}

impl Default for CostConfig {
    fn default() -> Self {
        CostConfig {
            enabled: false,
            prices: Default::default(),
            currency: DEFAULT_CURRENCY.to_string(),
            monthly_threshold: None,
            interval: DEFAULT_COST_INTERVAL,
        }
    }
}

pub const DEFAULT_CURRENCY: &str = "USD";
pub const DEFAULT_COST_INTERVAL: Duration = Duration::from_secs(3600);

/// `[[backup]] cost`: prices that replace `[cost]`'s for the classes they
/// name, and the backup's own threshold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackupCostConfig {
    pub prices: std::collections::BTreeMap<String, f64>,
    pub monthly_threshold: Option<f64>,
}

/// What a `[[backup]]` backs up.
#[derive(Debug, Clone, Default)]
pub enum BackupKind {
    /// `paths` (or the git tree at them).
    #[default]
    Files,
    /// `pg_dump` of each database, one snapshot per database.
    Postgres(PostgresSource),
    /// Any dump command's stdout, as one file `NAME` (restic's `--stdin`).
    Command {
        argv: Vec<String>,
        /// `env = {..}`, `pass_env = [..]`: the command's environment
        /// beyond `PATH`, `HOME` and `LANG` (a dump tool's credentials).
        env: CommandEnv,
    },
}

/// `kind = "postgres"`.
#[derive(Debug, Clone)]
pub struct PostgresSource {
    /// `postgres://user:pass@host:port/db`, all of it secret. The password
    /// reaches `pg_dump` only through `PGPASSWORD` in its environment.
    pub url: Secret<String>,
    /// What to dump; the URL's database when the config lists none.
    pub databases: Vec<String>,
    /// Default `["-Fc"]`.
    pub pg_dump_options: Vec<String>,
    /// None: `pg_dump` on `PATH`, else the newest `/usr/lib/postgresql/*/bin`.
    pub pg_dump: Option<PathBuf>,
}

/// The backup kinds `kind` accepts.
pub const BACKUP_KINDS: &[&str] = &["files", "postgres", "command"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    File(PathBuf),
    Env(String),
}

/// Where one of a backup's `credentials` comes from.
#[derive(Debug, Clone)]
pub enum CredentialSource {
    /// Written in the config file.
    Value(Secret<String>),
    /// `{ env = "VAR" }`: read from Bulwark's environment at run time.
    Env(String),
    /// `{ file = "PATH" }`: the file's content, trimmed, read at run time
    /// (a mounted secret that may rotate).
    File(PathBuf),
}

impl BackupConfig {
    /// The backend options with `credentials` read now (a file may have
    /// been rotated since the config was loaded), for every opening and
    /// listing of this backup's repositories. The error names the
    /// credential and its source, never a value.
    pub(crate) fn backend_options(&self) -> Result<bulwark_repo::BackendOptions, String> {
        let mut options = self.options.clone();
        for (name, source) in &self.credentials {
            let value = match source {
                CredentialSource::Value(v) => Ok(v.expose().clone()),
                CredentialSource::Env(var) => {
                    std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))
                }
                CredentialSource::File(path) => std::fs::read_to_string(path)
                    .map(|s| s.trim().to_string())
                    .map_err(|e| format!("cannot read {}: {e}", path.display())),
            };
            value
                .and_then(|v| options.credentials.set(name, v).map_err(|e| e.to_string()))
                .map_err(|problem| format!("credential {name}: {problem}"))?;
        }
        Ok(options)
    }

    /// `repo`, then every copy.
    pub fn repositories(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.repo.as_str()).chain(self.copies.iter().map(String::as_str))
    }
}

/// restic's `forget --keep-*` flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeepPolicy {
    pub last: Option<u32>,
    pub hourly: Option<u32>,
    pub daily: Option<u32>,
    pub weekly: Option<u32>,
    pub monthly: Option<u32>,
    pub yearly: Option<u32>,
    pub within: Option<Duration>,
    pub tags: Vec<String>,
}

impl KeepPolicy {
    pub fn is_empty(&self) -> bool {
        *self == KeepPolicy::default()
    }
}

pub const DEFAULT_SAMPLE_FILES: u32 = 20;

#[derive(Debug, Clone, PartialEq)]
pub struct VerifyConfig {
    pub schedule: Option<String>,
    /// Percent of packs to read, in (0, 100].
    pub read_data_subset: Option<f64>,
    /// Files restored and compared by SHA-256.
    pub sample_files: u32,
    /// For `verify:NAME`; the backup's `notify` when not set.
    pub notify: Notify,
}

pub const DEFAULT_SECRET_LENGTH: usize = 48;
pub const DEFAULT_ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(30 * 86_400);
pub const DEFAULT_GRACE: Duration = Duration::from_secs(86_400);

/// `[[secret]]`: a generated secret Bulwark rotates.
#[derive(Debug, Clone)]
pub struct SecretConfig {
    pub name: String,
    /// 48..=64 characters.
    pub length: usize,
    /// Distinct printable ASCII characters, at least 16.
    pub alphabet: String,
    pub max_age: Duration,
    /// How long the previous value stays valid after a rotation.
    pub grace: Duration,
    pub rotate: bool,
    pub schedule: Option<String>,
    pub hook: Option<SecretHook>,
}

/// Told about a rotation so the consumer can reload.
#[derive(Debug, Clone)]
pub struct SecretHook {
    pub command: Vec<String>,
    pub url: Option<Secret<String>>,
    /// The command's environment beyond `PATH`, `HOME` and `LANG`.
    pub env: CommandEnv,
}

/// Never passed to a command, even when a config lists it in `pass_env`
/// (`config check` refuses them by name): the repository password and the
/// API keys.
pub const NEVER_PASSED: &[&str] = &[
    "BULWARK_PASSWORD",
    "BULWARK_PASSWORD_FILE",
    "RESTIC_PASSWORD",
    "RESTIC_PASSWORD_FILE",
    "ROLES_JSON",
];

/// What a command Bulwark runs may see of the environment (`env = { .. }`,
/// `pass_env = [..]`); everything else is cleared.
#[derive(Debug, Clone, Default)]
pub struct CommandEnv {
    /// Variables set to these values (may be credentials: never printed).
    pub set: Vec<(String, Secret<String>)>,
    /// Variables passed through from Bulwark's own environment.
    pub pass: Vec<String>,
}

/// Which runs of a job are notified through the alert channels
/// (`notify = "failure" | "always"`). Failures always alert (`JobFailed`);
/// `always` also sends a `JobSucceeded` message for every successful run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Notify {
    #[default]
    Failure,
    Always,
}

pub const DEFAULT_DRILL_TIMEOUT: Duration = Duration::from_secs(300);

/// `[[drill]]`
#[derive(Debug, Clone)]
pub struct DrillConfig {
    pub name: String,
    /// Names a configured `[[backup]]`.
    pub backup: String,
    pub schedule: Option<String>,
    /// Boot command, run inside the restored tree.
    pub start: Option<String>,
    pub health_url: Option<String>,
    pub rto_target: Option<Duration>,
    pub rpo_target: Option<Duration>,
    pub timeout: Duration,
    /// The `start` command's environment beyond `PATH`, `HOME` and `LANG`.
    pub env: CommandEnv,
    /// Which snapshot to restore (`snapshot = "latest"`).
    pub snapshot: SnapshotSpec,
    /// Files that must be in the restored tree: relative to the backup's
    /// first path, or absolute as in the snapshot.
    pub expect_files: Vec<String>,
    pub notify: Notify,
    /// SQL checks against the restored database (database backups only).
    pub checks: Vec<SqlCheck>,
}

/// `checks = [{ sql = "...", min = N, max = N, equals = "text" }]`: judged
/// on the first column of the first row.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlCheck {
    pub sql: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub equals: Option<String>,
}

/// What an exported event is about (`[[sink]] events = [...]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventKind {
    /// Every audit record: sign-ins, key changes, rotations, drill runs,
    /// refusals.
    Audit,
    /// An incident opened or resolved.
    Incident,
    /// The outcome of one alert delivery attempt.
    Alert,
    /// A finished job run.
    Job,
    /// A stored drill report's summary.
    Drill,
    /// A secret rotation (name and version).
    Secret,
}

impl EventKind {
    pub const ALL: [EventKind; 6] = [
        EventKind::Audit,
        EventKind::Incident,
        EventKind::Alert,
        EventKind::Job,
        EventKind::Drill,
        EventKind::Secret,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Audit => "audit",
            EventKind::Incident => "incident",
            EventKind::Alert => "alert",
            EventKind::Job => "job",
            EventKind::Drill => "drill",
            EventKind::Secret => "secret",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// `[[sink]]`: where the event stream is exported.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    pub name: String,
    /// The kinds shipped; empty means every kind.
    pub events: Vec<EventKind>,
    /// Most events read and sent at once.
    pub batch: usize,
    pub kind: SinkKind,
}

impl SinkConfig {
    pub fn wants(&self, kind: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|k| k.as_str() == kind)
    }
}

#[derive(Debug, Clone)]
pub enum SinkKind {
    /// NDJSON appended to `<data-dir>/logs/<path>`.
    File {
        path: PathBuf,
    },
    Syslog(SyslogSink),
    Cloudwatch(CloudwatchSink),
    Http(HttpSink),
}

impl SinkKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            SinkKind::File { .. } => "file",
            SinkKind::Syslog(_) => "syslog",
            SinkKind::Cloudwatch(_) => "cloudwatch",
            SinkKind::Http(_) => "http",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogTransport {
    Udp,
    Tcp,
    Tls,
}

/// RFC 5424 syslog.
#[derive(Debug, Clone)]
pub struct SyslogSink {
    pub transport: SyslogTransport,
    pub host: String,
    pub port: u16,
    /// 0..=23 (`kern` .. `local7`).
    pub facility: u8,
    /// UDP: a longer message is cut (at a character boundary) to this many bytes.
    pub max_message: usize,
    /// Extra CA certificates (PEM) trusted for `tls://`.
    pub ca_file: Option<PathBuf>,
    /// HOSTNAME field; default the machine's host name.
    pub hostname: Option<String>,
}

/// AWS CloudWatch Logs.
#[derive(Debug, Clone)]
pub struct CloudwatchSink {
    pub group: String,
    pub stream: String,
    /// Default `AWS_REGION` / `AWS_DEFAULT_REGION`, else us-east-1.
    pub region: Option<String>,
    /// Default `AWS_ENDPOINT_URL_LOGS`, `AWS_ENDPOINT_URL`, else AWS's.
    pub endpoint: Option<String>,
}

/// NDJSON batches POSTed to a URL.
#[derive(Debug, Clone)]
pub struct HttpSink {
    /// May carry a token; shown only as its origin.
    pub url: Secret<String>,
    /// Values may be credentials (`Authorization`).
    pub headers: Vec<(String, Secret<String>)>,
    pub timeout: Duration,
}
