//! The monitoring engine: one probe loop per monitor, the SLO evaluator, the
//! outbox worker and housekeeping, started by `bulwark serve` and stopped on
//! shutdown.
//!
//! Each probe loop owns its monitor's strike counter, so results of one
//! monitor are handled in order without locks; what the API and metrics
//! read is a snapshot in [`Live`].

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::alert::{self, Alert, AlertStatus};
use crate::config::{AlertSeverity, Config, MonitorConfig, MonitorKind};
use crate::probe::{ProbeResult, Prober};
use crate::slo::SloStatus;
use crate::store::{Store, StoreError};
use crate::uptime::{self, Tracker, Transition};

/// Told about every result and evaluation, e.g. to update Prometheus metrics.
pub trait Observer: Send + Sync {
    fn probe(&self, result: &ProbeResult, up: bool);
    fn slo(&self, status: &SloStatus);
}

/// Knobs with production defaults; tests shorten them.
#[derive(Clone)]
pub struct EngineOptions {
    /// Where `logs/uptime.ndjson` and `logs/slo_guard.ndjson` go.
    pub data_dir: PathBuf,
    /// Raw results older than this are deleted (rollups stay 400 days).
    pub raw_retention: Duration,
    /// How often SLOs are evaluated and rollups written.
    pub slo_interval: Duration,
    /// How often the outbox is polled.
    pub outbox_interval: Duration,
    pub observer: Option<Arc<dyn Observer>>,
}

impl EngineOptions {
    pub fn new(data_dir: &Path) -> EngineOptions {
        EngineOptions {
            data_dir: data_dir.to_path_buf(),
            raw_retention: DEFAULT_RAW_RETENTION,
            slo_interval: Duration::from_secs(30),
            outbox_interval: Duration::from_secs(1),
            observer: None,
        }
    }
}

pub const DEFAULT_RAW_RETENTION: Duration = Duration::from_secs(7 * 86_400);
pub const ROLLUP_RETENTION: Duration = Duration::from_secs(400 * 86_400);

/// A monitor's state as last seen.
#[derive(Debug, Clone, Default)]
pub struct MonitorLive {
    /// None until the first result.
    pub up: Option<bool>,
    pub last: Option<ProbeResult>,
    pub failures_in_a_row: u32,
    pub incident_open: bool,
}

/// Snapshots the API reads.
#[derive(Debug, Default)]
pub struct Live {
    monitors: RwLock<BTreeMap<String, MonitorLive>>,
    slos: RwLock<Vec<SloStatus>>,
}

impl Live {
    pub fn monitors(&self) -> BTreeMap<String, MonitorLive> {
        self.monitors.read().map(|m| m.clone()).unwrap_or_default()
    }

    pub fn slos(&self) -> Vec<SloStatus> {
        self.slos.read().map(|s| s.clone()).unwrap_or_default()
    }

    fn set_monitor(&self, name: &str, state: MonitorLive) {
        if let Ok(mut m) = self.monitors.write() {
            m.insert(name.to_string(), state);
        }
    }
}

/// Appends JSON lines to a file in the data directory's `logs/`.
#[derive(Debug)]
pub(crate) struct NdjsonLog {
    file: Mutex<Option<std::fs::File>>,
}

impl NdjsonLog {
    pub(crate) fn open(data_dir: &Path, name: &str) -> NdjsonLog {
        let dir = data_dir.join("logs");
        let file = std::fs::create_dir_all(&dir)
            .and_then(|()| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join(name))
            })
            .map_err(|e| tracing::warn!(file = name, error = %e, "cannot open event log; continuing without it"))
            .ok();
        NdjsonLog {
            file: Mutex::new(file),
        }
    }

    pub(crate) fn write(&self, value: &serde_json::Value) {
        if let Ok(mut guard) = self.file.lock() {
            if let Some(f) = guard.as_mut() {
                let mut line = value.to_string();
                line.push('\n');
                if let Err(e) = f.write_all(line.as_bytes()) {
                    tracing::warn!(error = %e, "cannot append to event log");
                }
            }
        }
    }
}

pub(crate) fn result_json(r: &ProbeResult) -> serde_json::Value {
    serde_json::json!({
        "ts": crate::alert::rfc3339(r.at_ms),
        "monitor": r.monitor,
        "ok": r.ok,
        "latency_ms": r.latency.as_millis() as u64,
        "status": r.status,
        "error": r.error,
    })
}

/// The running engine; [`Engine::stop`] ends every task.
pub struct Engine {
    live: Arc<Live>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

struct Shared {
    config: Arc<Config>,
    store: Store,
    prober: Prober,
    live: Arc<Live>,
    uptime_log: NdjsonLog,
    slo_log: NdjsonLog,
    opts: EngineOptions,
}

impl Engine {
    /// Starts every loop.
    ///
    /// # Errors
    /// When the store cannot be read for the monitors' initial state.
    pub async fn start(
        config: Arc<Config>,
        store: Store,
        opts: EngineOptions,
    ) -> Result<Engine, StoreError> {
        let (shutdown, rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            uptime_log: NdjsonLog::open(&opts.data_dir, "uptime.ndjson"),
            slo_log: NdjsonLog::open(&opts.data_dir, "slo_guard.ndjson"),
            config: config.clone(),
            store: store.clone(),
            prober: Prober::new(),
            live: Arc::new(Live::default()),
            opts,
        });
        let mut tasks = Vec::new();
        for monitor in &config.monitors {
            if let MonitorKind::Push { .. } = monitor.kind {
                uptime::push_token(&store, &monitor.name).await?;
            }
            let open = uptime::open_incident_of(&store, &monitor.name)
                .await?
                .is_some();
            let tracker = if open {
                Tracker::down()
            } else {
                Tracker::default()
            };
            shared.live.set_monitor(
                &monitor.name,
                MonitorLive {
                    incident_open: open,
                    ..MonitorLive::default()
                },
            );
            tasks.push(tokio::spawn(probe_loop(
                shared.clone(),
                monitor.clone(),
                tracker,
                rx.clone(),
            )));
        }
        tasks.push(tokio::spawn(slo_loop(shared.clone(), rx.clone())));
        tasks.push(tokio::spawn(outbox_loop(shared.clone(), rx.clone())));
        tasks.push(tokio::spawn(housekeeping_loop(shared.clone(), rx)));
        Ok(Engine {
            live: shared.live.clone(),
            shutdown,
            tasks,
        })
    }

    pub fn live(&self) -> Arc<Live> {
        self.live.clone()
    }

    /// Signals every loop and waits for them: a probe in flight finishes and
    /// is recorded, nothing new starts.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Sleeps `d`, returning false when shutdown came first.
async fn sleep_or_stop(d: Duration, rx: &mut watch::Receiver<bool>) -> bool {
    if *rx.borrow() {
        return false;
    }
    tokio::select! {
        () = tokio::time::sleep(d) => !*rx.borrow(),
        _ = rx.changed() => false,
    }
}

/// Judges a push monitor from its last heartbeat.
pub async fn judge_push(
    store: &Store,
    monitor: &MonitorConfig,
    period: Duration,
    grace: Duration,
    started_ms: i64,
) -> ProbeResult {
    let now = crate::time::now_ms();
    let allowed = i64::try_from((period + grace).as_millis()).unwrap_or(i64::MAX);
    let (ok, error) = match uptime::last_ping(store, &monitor.name).await {
        Ok(Some(t)) if now - t <= allowed => (true, None),
        Ok(Some(t)) => (
            false,
            Some(format!("last heartbeat {} s ago", (now - t) / 1000)),
        ),
        // A monitor that never pinged gets one period (plus grace) from the
        // engine's start before it counts as late.
        Ok(None) if now - started_ms <= allowed => (true, None),
        Ok(None) => (false, Some("no heartbeat received yet".to_string())),
        Err(e) => (false, Some(format!("cannot read heartbeat: {e}"))),
    };
    ProbeResult {
        monitor: monitor.name.clone(),
        at_ms: now,
        ok,
        latency: Duration::ZERO,
        status: None,
        error,
    }
}

/// Probes every monitor once, concurrently: `uptime check --once` and
/// `POST /api/ops/uptime/test`. Push monitors are judged from their last
/// heartbeat. Results are not stored. In config order.
pub async fn check_all(store: &Store, config: &Config) -> Vec<ProbeResult> {
    let prober = Prober::new();
    let handles: Vec<_> = config
        .monitors
        .iter()
        .map(|m| {
            let (prober, store, m) = (prober.clone(), store.clone(), m.clone());
            tokio::spawn(async move {
                match m.kind {
                    MonitorKind::Push { period, grace } => {
                        // No engine start to measure from: a monitor that
                        // never pinged is simply down.
                        judge_push(&store, &m, period, grace, i64::MIN / 2).await
                    }
                    _ => prober.probe(&m).await,
                }
            })
        })
        .collect();
    let mut out = Vec::with_capacity(handles.len());
    for (h, m) in handles.into_iter().zip(&config.monitors) {
        out.push(h.await.unwrap_or_else(|_| ProbeResult {
            monitor: m.name.clone(),
            at_ms: crate::time::now_ms(),
            ok: false,
            latency: Duration::ZERO,
            status: None,
            error: Some("probe task failed".to_string()),
        }));
    }
    out
}

async fn probe_loop(
    shared: Arc<Shared>,
    monitor: MonitorConfig,
    mut tracker: Tracker,
    mut rx: watch::Receiver<bool>,
) {
    let engine_started = crate::time::now_ms();
    let interval = match monitor.kind {
        MonitorKind::Push { period, .. } => period
            .min(Duration::from_secs(60))
            .max(Duration::from_secs(1)),
        _ => monitor.interval,
    };
    // Spread first probes over one interval (at most a minute) so probes of
    // monitors sharing an interval do not all start in the same instant.
    let offset = uptime::start_offset(&monitor.name, interval.min(Duration::from_secs(60)));
    let start = tokio::time::Instant::now() + offset;
    let mut ticker = tokio::time::interval_at(start, interval);
    // A slow probe delays the next one rather than firing a burst to catch up.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = rx.changed() => return,
        }
        if *rx.borrow() {
            return;
        }
        let result = match monitor.kind {
            MonitorKind::Push { period, grace } => {
                judge_push(&shared.store, &monitor, period, grace, engine_started).await
            }
            _ => shared.prober.probe(&monitor).await,
        };
        if let Err(e) = handle_result(&shared, &monitor, &mut tracker, &result).await {
            tracing::error!(monitor = %monitor.name, error = %e, "cannot record probe result");
        }
    }
}

/// Stores a result, logs it, moves the strike counter and opens or resolves
/// the incident (and its alert) when it flips.
async fn handle_result(
    shared: &Shared,
    monitor: &MonitorConfig,
    tracker: &mut Tracker,
    result: &ProbeResult,
) -> Result<(), StoreError> {
    let store = &shared.store;
    uptime::record(store, result).await?;
    shared.uptime_log.write(&result_json(result));
    let transition = tracker.observe(result.ok, monitor.strikes, monitor.recover_after);
    let now = crate::time::now_ms();
    match transition {
        Transition::Opened => {
            let cause = result.error.clone().unwrap_or_default();
            let incident =
                uptime::open_incident(store, &monitor.name, result.at_ms, &cause).await?;
            tracing::warn!(monitor = %monitor.name, incident = %incident.id, cause = %cause, "monitor down");
            let windows =
                crate::slo::maintenance_windows(store, &shared.config, &monitor.name).await?;
            if crate::maintenance::active(&windows, now) {
                tracing::info!(monitor = %monitor.name, "in a maintenance window: not alerting");
            } else {
                let mut a = monitor_alert(monitor, &cause, incident.opened_at_ms);
                a.status = AlertStatus::Firing;
                alert::notify(store, &shared.config, &a, now).await?;
            }
        }
        Transition::Resolved => {
            if let Some(incident) =
                uptime::resolve_incident(store, &monitor.name, result.at_ms).await?
            {
                tracing::info!(monitor = %monitor.name, incident = %incident.id, "monitor recovered");
            }
            let mut a = monitor_alert(monitor, "", result.at_ms);
            a.status = AlertStatus::Resolved;
            a.summary = format!("{} is up again", monitor.name);
            a.ended_at_ms = Some(result.at_ms);
            alert::notify(store, &shared.config, &a, now).await?;
        }
        Transition::None => {}
    }
    let state = MonitorLive {
        up: Some(!tracker.down),
        last: Some(result.clone()),
        failures_in_a_row: tracker.failures_in_a_row,
        incident_open: tracker.down,
    };
    shared.live.set_monitor(&monitor.name, state);
    if let Some(o) = &shared.opts.observer {
        o.probe(result, !tracker.down);
    }
    Ok(())
}

fn monitor_alert(monitor: &MonitorConfig, cause: &str, started_at_ms: i64) -> Alert {
    let mut a = Alert::new(
        "MonitorDown",
        &monitor.name,
        "",
        AlertSeverity::Critical,
        format!("{} is down: {cause}", monitor.name),
        started_at_ms,
    );
    a.tags = monitor.tags.clone();
    a
}

/// Evaluates every SLO once: rollups first, then the math, the log line,
/// the alerts.
///
/// # Errors
/// On a database error.
pub async fn evaluate_slos(
    store: &Store,
    config: &Config,
    now_ms: i64,
) -> Result<Vec<SloStatus>, StoreError> {
    // Re-roll the last few complete minutes: results arrive up to a timeout
    // after the minute they started in.
    uptime::rollup(store, now_ms - 5 * 60_000, now_ms - 60_000).await?;
    let statuses = crate::slo::status_all(store, config, now_ms).await?;
    for s in &statuses {
        let Some(slo) = config.slos.iter().find(|c| c.name == s.name) else {
            continue;
        };
        let tags = config
            .monitor(&slo.monitor)
            .map(|m| m.tags.clone())
            .unwrap_or_default();
        // Every rule this SLO can fire, so the ones that stopped resolve.
        let mut rules: Vec<(String, AlertSeverity)> = slo
            .alerts
            .iter()
            .map(|r| {
                (
                    format!(
                        "burn:{}:{}:{}",
                        crate::config::format_duration(r.long_window),
                        crate::config::format_duration(r.short_window),
                        r.burn_rate
                    ),
                    r.severity,
                )
            })
            .collect();
        rules.push((
            format!("budget:{}", crate::slo::BUDGET_ALERT_THRESHOLD),
            AlertSeverity::Warning,
        ));
        for (id, severity) in rules {
            let firing = s.firing.iter().find(|f| f.id == id);
            let name = if id.starts_with("budget:") {
                "SloBudgetLow"
            } else {
                "SloBurnRate"
            };
            let mut a = Alert::new(
                name,
                &slo.monitor,
                &format!("{}/{id}", slo.name),
                severity,
                firing.map_or_else(
                    || format!("{} is within its budget", slo.name),
                    |f| f.summary.clone(),
                ),
                now_ms,
            );
            a.slo = Some(slo.name.clone());
            a.tags = tags.clone();
            a.status = if firing.is_some() {
                AlertStatus::Firing
            } else {
                AlertStatus::Resolved
            };
            alert::notify(store, config, &a, now_ms).await?;
        }
    }
    Ok(statuses)
}

pub(crate) fn slo_json(s: &SloStatus) -> serde_json::Value {
    serde_json::json!({
        "ts": crate::alert::rfc3339(s.now_ms),
        "slo": s.name,
        "monitor": s.monitor,
        "target": s.target,
        "attainment": s.attainment,
        "total": s.total,
        "bad": s.bad,
        "budget_consumed": s.budget_consumed,
        "budget_remaining": s.budget_remaining,
        "burn_rates": s.burn_rates.iter().map(|(l, r)| (l.to_string(), serde_json::json!(r))).collect::<serde_json::Map<_, _>>(),
        "exhaustion_at": s.exhaustion_at_ms.map(crate::alert::rfc3339),
        "firing": s.firing.iter().map(|f| f.id.clone()).collect::<Vec<_>>(),
    })
}

async fn slo_loop(shared: Arc<Shared>, mut rx: watch::Receiver<bool>) {
    loop {
        match evaluate_slos(&shared.store, &shared.config, crate::time::now_ms()).await {
            Ok(statuses) => {
                for s in &statuses {
                    shared.slo_log.write(&slo_json(s));
                    if let Some(o) = &shared.opts.observer {
                        o.slo(s);
                    }
                }
                if let Ok(mut slos) = shared.live.slos.write() {
                    *slos = statuses;
                }
            }
            Err(e) => tracing::error!(error = %e, "slo evaluation failed"),
        }
        if !sleep_or_stop(shared.opts.slo_interval, &mut rx).await {
            return;
        }
    }
}

async fn outbox_loop(shared: Arc<Shared>, mut rx: watch::Receiver<bool>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let mut last_reminders = 0_i64;
    loop {
        let now = crate::time::now_ms();
        if now - last_reminders >= 10_000 {
            last_reminders = now;
            if let Err(e) = alert::queue_reminders(&shared.store, &shared.config, now).await {
                tracing::error!(error = %e, "cannot queue alert reminders");
            }
        }
        if let Err(e) = alert::deliver_due(&shared.store, &shared.config, &client, now).await {
            tracing::error!(error = %e, "alert outbox delivery failed");
        }
        if !sleep_or_stop(shared.opts.outbox_interval, &mut rx).await {
            return;
        }
    }
}

async fn housekeeping_loop(shared: Arc<Shared>, mut rx: watch::Receiver<bool>) {
    loop {
        let now = crate::time::now_ms();
        let raw_before =
            now - i64::try_from(shared.opts.raw_retention.as_millis()).unwrap_or(i64::MAX);
        let rollups_before = now - i64::try_from(ROLLUP_RETENTION.as_millis()).unwrap_or(i64::MAX);
        // Roll up everything about to be pruned first, so no minute is lost.
        let result = async {
            uptime::rollup(&shared.store, raw_before - 3_600_000, raw_before).await?;
            uptime::prune(&shared.store, raw_before, rollups_before).await
        }
        .await;
        match result {
            Ok((raw, rolled)) if raw + rolled > 0 => {
                tracing::info!(raw, rollups = rolled, "pruned old probe results")
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "pruning probe results failed"),
        }
        if !sleep_or_stop(Duration::from_secs(3600), &mut rx).await {
            return;
        }
    }
}
