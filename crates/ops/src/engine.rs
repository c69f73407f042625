//! The monitoring engine: one probe loop per monitor, the SLO evaluator, the
//! outbox worker and housekeeping, started by `bulwark serve` and stopped on
//! shutdown.
//!
//! Each probe loop owns its monitor's strike counter, so results of one
//! monitor are handled in order without locks; what the API and metrics
//! read is a snapshot in [`Live`].
//!
//! Probes run on fixed wall-clock slots (a multiple of the interval plus a
//! phase hashed from the name), each monitor on its own task and timer.
//! Results go through a channel to one writer task, which appends them to
//! `logs/uptime.ndjson` and inserts them into the store in one transaction
//! per flush (every [`EngineOptions::flush_interval`] or
//! [`FLUSH_ROWS`] results): thousands of single-row commits a second are
//! more than SQLite keeps up with. A crash therefore loses at most the last
//! flush interval of raw results; an incident is opened only after the
//! result that opened it is stored, and [`Engine::stop`] flushes everything.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::alert::{self, Alert, AlertStatus};
use crate::config::{AlertSeverity, Config, MonitorConfig, MonitorKind};
use crate::files::NdjsonLog;
use crate::probe::{ProbeResult, Prober};
use crate::slo::SloStatus;
use crate::store::{Store, StoreError};
use crate::time::Timestamp;
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
    /// Raw results older than this are deleted.
    pub raw_retention: Duration,
    /// Per-minute rollups older than this are folded into hourly ones (kept
    /// `ROLLUP_RETENTION`). The engine keeps minutes longer when an SLO's
    /// window needs them: see `minute_retention`.
    pub minute_rollup_retention: Duration,
    /// How often buffered results are written to the store and the log: the
    /// most raw results a crash can lose.
    pub flush_interval: Duration,
    /// How often SLOs are evaluated and rollups written.
    pub slo_interval: Duration,
    /// How often the outbox is polled.
    pub outbox_interval: Duration,
    pub observer: Option<Arc<dyn Observer>>,
    /// The event shippers' polling and retry delays.
    pub ship: crate::events::ShipOptions,
}

impl EngineOptions {
    pub fn new(data_dir: &Path) -> EngineOptions {
        EngineOptions {
            data_dir: data_dir.to_path_buf(),
            raw_retention: DEFAULT_RAW_RETENTION,
            minute_rollup_retention: MINUTE_ROLLUP_RETENTION,
            flush_interval: Duration::from_secs(1),
            slo_interval: Duration::from_secs(30),
            outbox_interval: Duration::from_secs(1),
            observer: None,
            ship: crate::events::ShipOptions::default(),
        }
    }
}

pub const DEFAULT_RAW_RETENTION: Duration = Duration::from_secs(7 * 86_400);
/// How long hourly rollups are kept.
pub const ROLLUP_RETENTION: Duration = Duration::from_secs(400 * 86_400);
/// How long per-minute rollups are kept at least: the 30-day SLO windows,
/// the calendar month and the 3-day burn windows read minutes, and so does
/// the monthly report of last month made on the 1st.
pub const MINUTE_ROLLUP_RETENTION: Duration = Duration::from_secs(35 * DAY_SECS);
/// A flush happens early once this many results are waiting.
pub const FLUSH_ROWS: usize = 2000;
/// Results waiting for the writer before probe loops wait for it.
const RESULT_QUEUE: usize = 65_536;
/// Results kept for a retry while the store refuses writes; past this the
/// oldest are dropped (they are still in `logs/uptime.ndjson`).
const MAX_UNSTORED: usize = 500_000;
const DAY_SECS: u64 = 86_400;

/// How long per-minute rollups must stay so that every SLO of `config` is
/// computed from minutes only: at least `base`, and each SLO's window (a
/// calendar month counts as 32 days) plus a day.
pub fn minute_retention(config: &Config, base: Duration) -> Duration {
    config
        .slos
        .iter()
        .map(|s| match s.calendar {
            Some(crate::config::Calendar::Month) => Duration::from_secs(32 * DAY_SECS),
            None => s.window,
        })
        .map(|w| w.saturating_add(Duration::from_secs(DAY_SECS)))
        .fold(base, Duration::max)
}

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
    slos: RwLock<Option<Arc<SloEvaluation>>>,
}

/// The SLO evaluator's latest pass: what `/healthz/strict` serves, so a
/// public route does not evaluate every SLO per request.
#[derive(Debug, Clone)]
pub struct SloEvaluation {
    /// When it was evaluated.
    pub at: Timestamp,
    pub statuses: Vec<SloStatus>,
}

impl Live {
    pub fn monitors(&self) -> BTreeMap<String, MonitorLive> {
        self.monitors.read().map(|m| m.clone()).unwrap_or_default()
    }

    pub fn slos(&self) -> Vec<SloStatus> {
        self.slo_evaluation()
            .map(|e| e.statuses.clone())
            .unwrap_or_default()
    }

    /// The latest evaluation; None until the first one completes.
    pub fn slo_evaluation(&self) -> Option<Arc<SloEvaluation>> {
        self.slos.read().ok().and_then(|s| s.clone())
    }

    /// Replaces the latest evaluation (the engine's SLO loop calls this).
    pub fn set_slos(&self, at: Timestamp, statuses: Vec<SloStatus>) {
        if let Ok(mut slos) = self.slos.write() {
            *slos = Some(Arc::new(SloEvaluation { at, statuses }));
        }
    }

    fn set_monitor(&self, name: &str, state: MonitorLive) {
        if let Ok(mut m) = self.monitors.write() {
            m.insert(name.to_string(), state);
        }
    }
}

pub(crate) fn result_json(r: &ProbeResult) -> serde_json::Value {
    serde_json::json!({
        "ts": crate::alert::rfc3339(r.at),
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
            uptime_log: NdjsonLog::open(&opts.data_dir, crate::files::UPTIME_LOG),
            slo_log: NdjsonLog::open(&opts.data_dir, crate::files::SLO_GUARD_LOG),
            config: config.clone(),
            store: store.clone(),
            prober: Prober::new(),
            live: Arc::new(Live::default()),
            opts,
        });
        let mut tasks = Vec::new();
        let (results, results_rx) = mpsc::channel(RESULT_QUEUE);
        // Tokens an earlier version stored in clear keep working as digests.
        uptime::hash_stored_push_tokens(&store).await?;
        for monitor in &config.monitors {
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
                results.clone(),
                rx.clone(),
            )));
        }
        // The writer ends once every probe loop (every sender) is gone, after
        // a last flush; it is awaited last by `stop`.
        drop(results);
        let writer = tokio::spawn(result_writer(shared.clone(), results_rx));
        tasks.push(tokio::spawn(slo_loop(shared.clone(), rx.clone())));
        tasks.push(tokio::spawn(outbox_loop(shared.clone(), rx.clone())));
        // One shipper per [[sink]]: a sink that is down waits on its own task.
        tasks.extend(crate::events::start_all(
            &store,
            &config,
            &shared.opts.data_dir,
            &shared.opts.ship,
            &rx,
        ));
        tasks.push(tokio::spawn(housekeeping_loop(shared.clone(), rx)));
        tasks.push(writer);
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
    /// is recorded, nothing new starts, and every buffered result is written
    /// to the store and the log.
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

/// Judges a push monitor from its last heartbeat. `started` is when the
/// engine started, None outside a running engine.
pub async fn judge_push(
    store: &Store,
    monitor: &MonitorConfig,
    period: Duration,
    grace: Duration,
    started: Option<Timestamp>,
) -> ProbeResult {
    let now = Timestamp::now();
    let allowed = period + grace;
    let (ok, error) = match uptime::last_ping(store, &monitor.name).await {
        Ok(Some(t)) if now - t <= allowed => (true, None),
        Ok(Some(t)) => (
            false,
            Some(format!("last heartbeat {} s ago", (now - t).as_secs())),
        ),
        // A monitor that never pinged gets one period (plus grace) from the
        // engine's start before it counts as late.
        Ok(None) if started.is_some_and(|s| now - s <= allowed) => (true, None),
        Ok(None) => (false, Some("no heartbeat received yet".to_string())),
        Err(e) => (false, Some(format!("cannot read heartbeat: {e}"))),
    };
    ProbeResult {
        monitor: monitor.name.clone(),
        at: now,
        ok,
        latency: Duration::ZERO,
        status: None,
        error,
    }
}

/// Appends `results` to `<data_dir>/logs/uptime.ndjson` in one write, in
/// the lines the running engine writes: a one-off `uptime check --once`
/// leaves the same trail for log shippers as `serve` does.
pub fn log_results(data_dir: &std::path::Path, results: &[ProbeResult]) {
    let mut lines = String::new();
    for r in results {
        lines.push_str(&result_json(r).to_string());
        lines.push('\n');
    }
    NdjsonLog::open(data_dir, crate::files::UPTIME_LOG).append(&lines);
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
                        judge_push(&store, &m, period, grace, None).await
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
            at: Timestamp::now(),
            ok: false,
            latency: Duration::ZERO,
            status: None,
            error: Some("probe task failed".to_string()),
        }));
    }
    out
}

/// What probe loops tell the result writer.
enum WriterMsg {
    Result(ProbeResult),
    /// Write everything received so far, then answer.
    Flush(oneshot::Sender<()>),
}

/// The wait until `at` (zero when it has passed), to the nanosecond so
/// probes do not start up to a millisecond late from rounding.
fn until(at: Timestamp) -> Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_millis(u64::try_from(at.as_millis()).unwrap_or(0)).saturating_sub(now)
}

async fn probe_loop(
    shared: Arc<Shared>,
    monitor: MonitorConfig,
    mut tracker: Tracker,
    writer: mpsc::Sender<WriterMsg>,
    mut rx: watch::Receiver<bool>,
) {
    let engine_started = Timestamp::now();
    let interval = match monitor.kind {
        MonitorKind::Push { period, .. } => period
            .min(Duration::from_secs(60))
            .max(Duration::from_secs(1)),
        _ => monitor.interval,
    };
    // Slots are spread over the interval by the name's hash, so monitors
    // sharing an interval do not all start in the same instant and a restart
    // keeps each monitor's phase.
    let phase = uptime::start_offset(&monitor.name, interval);
    // A monitor with a long interval still gets its first probe within a
    // minute of the start.
    let soon = uptime::start_offset(&monitor.name, interval.min(Duration::from_secs(60)));
    let mut slot = uptime::first_slot(engine_started, interval, phase, soon);
    loop {
        if !sleep_or_stop(until(slot), &mut rx).await {
            return;
        }
        let result = match monitor.kind {
            MonitorKind::Push { period, grace } => {
                judge_push(&shared.store, &monitor, period, grace, Some(engine_started)).await
            }
            _ => shared.prober.probe(&monitor).await,
        };
        if let Err(e) = handle_result(&shared, &monitor, &mut tracker, result, &writer).await {
            tracing::error!(monitor = %monitor.name, error = %e, "cannot record probe result");
        }
        slot = uptime::next_slot(slot, Timestamp::now(), interval, phase);
    }
}

/// Hands a result to the writer, moves the strike counter and opens or
/// resolves the incident (and its alert) when it flips.
async fn handle_result(
    shared: &Shared,
    monitor: &MonitorConfig,
    tracker: &mut Tracker,
    result: ProbeResult,
    writer: &mpsc::Sender<WriterMsg>,
) -> Result<(), StoreError> {
    let store = &shared.store;
    let transition = tracker.observe(result.ok, monitor.strikes, monitor.recover_after);
    let mut sent = writer.send(WriterMsg::Result(result.clone())).await.is_ok();
    if sent && transition != Transition::None {
        // The incident and its alert must find the result that flipped it
        // in the store: wait until it is written.
        let (ack, acked) = oneshot::channel();
        sent = writer.send(WriterMsg::Flush(ack)).await.is_ok() && acked.await.is_ok();
    }
    if !sent {
        tracing::error!(monitor = %monitor.name, "the result writer has stopped; result not stored");
    }
    let result = &result;
    let now = Timestamp::now();
    match transition {
        Transition::Opened => {
            let cause = result.error.clone().unwrap_or_default();
            let incident = uptime::open_incident(store, &monitor.name, result.at, &cause).await?;
            tracing::warn!(monitor = %monitor.name, incident = %incident.id, cause = %cause, "monitor down");
            let windows =
                crate::slo::maintenance_windows(store, &shared.config, &monitor.name).await?;
            if crate::maintenance::active(&windows, now) {
                tracing::info!(monitor = %monitor.name, "in a maintenance window: not alerting");
            } else {
                let mut a = monitor_alert(monitor, &cause, incident.opened_at);
                a.status = AlertStatus::Firing;
                alert::notify(store, &shared.config, &a, now).await?;
            }
        }
        Transition::Resolved => {
            if let Some(incident) =
                uptime::resolve_incident(store, &monitor.name, result.at).await?
            {
                tracing::info!(monitor = %monitor.name, incident = %incident.id, "monitor recovered");
            }
            let mut a = monitor_alert(monitor, "", result.at);
            a.status = AlertStatus::Resolved;
            a.summary = format!("{} is up again", monitor.name);
            a.ended_at = Some(result.at);
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

/// The one task that writes results: it buffers them and, every flush
/// interval, after [`FLUSH_ROWS`] results or when asked, appends them to
/// `logs/uptime.ndjson` and inserts them in one transaction. It returns
/// after a last flush once every probe loop has dropped its sender.
async fn result_writer(shared: Arc<Shared>, mut rx: mpsc::Receiver<WriterMsg>) {
    let mut batch = Batch::default();
    let mut tick = tokio::time::interval(shared.opts.flush_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut msgs = Vec::with_capacity(256);
    loop {
        tokio::select! {
            n = rx.recv_many(&mut msgs, 256) => {
                if n == 0 {
                    batch.flush(&shared).await;
                    return;
                }
                for msg in msgs.drain(..) {
                    match msg {
                        WriterMsg::Result(r) => batch.push(r),
                        WriterMsg::Flush(ack) => batch.waiters.push(ack),
                    }
                }
                if batch.unlogged >= FLUSH_ROWS || !batch.waiters.is_empty() {
                    batch.flush(&shared).await;
                }
            }
            _ = tick.tick() => batch.flush(&shared).await,
        }
    }
}

/// Results received by the writer and not yet written.
#[derive(Default)]
struct Batch {
    /// Not yet in the store (oldest first); kept for a retry when an
    /// insert fails.
    unstored: Vec<ProbeResult>,
    /// Log lines of the results received since the last flush.
    lines: String,
    unlogged: usize,
    waiters: Vec<oneshot::Sender<()>>,
}

impl Batch {
    fn push(&mut self, r: ProbeResult) {
        self.lines.push_str(&result_json(&r).to_string());
        self.lines.push('\n');
        self.unlogged += 1;
        self.unstored.push(r);
    }

    async fn flush(&mut self, shared: &Shared) {
        shared.uptime_log.append(&self.lines);
        self.lines.clear();
        self.unlogged = 0;
        if !self.unstored.is_empty() {
            match uptime::record_many(&shared.store, &self.unstored).await {
                Ok(()) => self.unstored.clear(),
                Err(e) => {
                    tracing::error!(results = self.unstored.len(), error = %e, "cannot store probe results; retrying at the next flush");
                    if self.unstored.len() > MAX_UNSTORED {
                        let dropped = self.unstored.len() - MAX_UNSTORED;
                        self.unstored.drain(..dropped);
                        tracing::error!(dropped, "dropped the oldest unstored probe results (they are in logs/uptime.ndjson)");
                    }
                }
            }
        }
        for w in self.waiters.drain(..) {
            let _ = w.send(());
        }
    }
}

fn monitor_alert(monitor: &MonitorConfig, cause: &str, started_at: Timestamp) -> Alert {
    let mut a = Alert::new(
        "MonitorDown",
        &monitor.name,
        "",
        AlertSeverity::Critical,
        format!("{} is down: {cause}", monitor.name),
        started_at,
    );
    a.tags = monitor.tags.clone();
    a
}

const MINUTE: Duration = Duration::from_secs(60);

/// The end of the newest minute whose results are all stored at `now`:
/// a result is stored up to `lateness` (the longest probe timeout plus
/// flushing) after the minute it started in.
pub(crate) fn complete_minutes_end(now: Timestamp, lateness: Duration) -> Timestamp {
    (now - lateness.max(MINUTE)).floor(MINUTE)
}

async fn slo_loop(shared: Arc<Shared>, mut rx: watch::Receiver<bool>) {
    let longest_timeout = shared
        .config
        .monitors
        .iter()
        .map(|m| m.timeout)
        .max()
        .unwrap_or_default();
    let lateness = longest_timeout + 2 * shared.opts.flush_interval + Duration::from_secs(5);
    // Rolled up to here (exclusive). At start, the last ten minutes are
    // re-rolled in case a previous run stopped before rolling them.
    let mut rolled_to: Option<Timestamp> = None;
    loop {
        let now = Timestamp::now();
        // Each complete minute is rolled up once (at ten thousand monitors a
        // minute is sixty thousand results); newer ones are read raw.
        let to = complete_minutes_end(now, lateness);
        let from = rolled_to.unwrap_or(to - 10 * MINUTE);
        let rolled = if from < to {
            uptime::rollup(&shared.store, from, to).await.map(|_| to)
        } else {
            Ok(from)
        };
        let result = match rolled {
            Ok(to) => {
                rolled_to = Some(to);
                crate::slo::evaluate_rolled(&shared.store, &shared.config, now).await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(statuses) => {
                for s in &statuses {
                    shared.slo_log.write(&crate::slo::slo_json(s));
                    if let Some(o) = &shared.opts.observer {
                        o.slo(s);
                    }
                }
                shared.live.set_slos(now, statuses);
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
    let mut last_reminders = Timestamp::EPOCH;
    loop {
        let now = Timestamp::now();
        if now - last_reminders >= Duration::from_secs(10) {
            last_reminders = now;
            if let Err(e) = alert::queue_reminders(&shared.store, &shared.config, now).await {
                tracing::error!(error = %e, "cannot queue alert reminders");
            }
        }
        // Grouped alerts whose group_wait/group_interval/repeat is up join
        // the outbox first, so they go out in this same pass.
        if let Err(e) = alert::flush_groups(&shared.store, &shared.config, now).await {
            tracing::error!(error = %e, "cannot flush alert groups");
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
    let minutes_kept = minute_retention(&shared.config, shared.opts.minute_rollup_retention);
    loop {
        let now = Timestamp::now();
        let raw_before = now - shared.opts.raw_retention;
        let minutes_before = now - minutes_kept;
        let hours_before = now - ROLLUP_RETENTION;
        // Roll up everything about to be pruned first, so no minute is lost;
        // then fold old minutes into hours before those age out too.
        let result = async {
            uptime::rollup(&shared.store, raw_before - 60 * MINUTE, raw_before).await?;
            let raw = uptime::prune_raw(&shared.store, raw_before).await?;
            let folded = uptime::downsample(&shared.store, minutes_before).await?;
            let hours = uptime::prune_hourly(&shared.store, hours_before).await?;
            // Events every sink has confirmed, once they are old enough.
            let sinks: Vec<String> = shared.config.sinks.iter().map(|s| s.name.clone()).collect();
            let events =
                crate::events::prune(&shared.store, &sinks, now - crate::events::RETENTION).await?;
            if events > 0 {
                tracing::info!(events, "pruned shipped events");
            }
            Ok::<_, StoreError>((raw, folded, hours))
        }
        .await;
        match result {
            Ok((raw, folded, hours)) if raw + folded + hours > 0 => {
                tracing::info!(
                    raw,
                    minutes_downsampled = folded,
                    hourly_rollups = hours,
                    "pruned old probe results"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "pruning probe results failed"),
        }
        if !sleep_or_stop(Duration::from_secs(3600), &mut rx).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_are_kept_as_long_as_slos_need_them() {
        let day = Duration::from_secs(DAY_SECS);
        let check = |slos: &str, expected: Duration| {
            let text =
                format!("[[monitor]]\nname = \"api\"\nurl = \"http://127.0.0.1:1/\"\n{slos}");
            let config = crate::settings::parse(&text, None, &|_| None)
                .unwrap_or_else(|e| panic!("config {text}: {e:?}"))
                .config;
            assert_eq!(
                minute_retention(&config, MINUTE_ROLLUP_RETENTION),
                expected,
                "{slos}"
            );
        };
        check("", 35 * day);
        check(
            "[[slo]]\nname = \"s\"\nmonitor = \"api\"\nwindow = \"30d\"",
            35 * day,
        );
        check(
            "[[slo]]\nname = \"s\"\nmonitor = \"api\"\ncalendar = \"month\"",
            35 * day,
        );
        check(
            "[[slo]]\nname = \"s\"\nmonitor = \"api\"\nwindow = \"90d\"",
            91 * day,
        );
        check(
            "[[slo]]\nname = \"s\"\nmonitor = \"api\"\nwindow = \"40d\"\n\
             [[slo]]\nname = \"t\"\nmonitor = \"api\"\nwindow = \"7d\"",
            41 * day,
        );
    }

    #[test]
    fn complete_minutes() {
        let check = |now: i64, lateness_ms: u64, expected: i64| {
            assert_eq!(
                complete_minutes_end(
                    Timestamp::from_millis(now),
                    Duration::from_millis(lateness_ms)
                ),
                Timestamp::from_millis(expected),
                "now={now} lateness={lateness_ms}"
            );
        };
        // At least a minute of lateness is always allowed for.
        check(600_000, 0, 540_000);
        check(659_999, 7_000, 540_000);
        check(660_000, 7_000, 600_000);
        // A 50 s timeout plus flushing pushes it back one more minute.
        check(660_000, 62_000, 540_000);
    }
}
