use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bulwark_ops::{Config, Instance, SloEvaluation};
use tokio::sync::Semaphore;

use crate::api::{BackupSnapshots, OpsCheck};
use crate::cache::Cached;
use crate::limiter::FailureLimiter;
use crate::metrics::Metrics;

/// How long `/healthz/strict` (without an engine), `ops check` and snapshot
/// listings are served from cache; see [`AppState::with_view_ttl`].
pub const DEFAULT_VIEW_TTL: Duration = Duration::from_secs(15);

/// Live dashboard streams open at once, in all (and at most a quarter of
/// `[server] max_connections`), so streams can never take every
/// connection slot; see `web::live`.
const MAX_STREAMS: usize = 64;

/// Repositories opened at once for snapshot listings: each opening derives
/// a key with scrypt, tens of MiB of memory for a fraction of a second.
const REPOSITORY_OPENINGS: usize = 2;

/// What every handler can reach; shared behind an `Arc`.
pub struct AppState {
    /// The config, store, authenticator and scheduler `bulwark serve` (or a
    /// test) built once; a manual run through the API and a scheduled run
    /// of one job share its scheduler, so they cannot overlap.
    pub instance: Arc<Instance>,
    pub metrics: Metrics,
    pub limiter: FailureLimiter,
    /// The running monitoring engine's snapshots; None when no engine runs
    /// (then monitor state is read from the store).
    pub live: Option<Arc<bulwark_ops::Live>>,
    pub(crate) views: Views,
    pub(crate) view_ttl: Duration,
    /// Turns true when `serve` stops accepting: long-lived responses (the
    /// dashboard's live stream) end then, so shutdown need not wait out
    /// its grace period for them.
    pub(crate) closing: tokio::sync::watch::Sender<bool>,
    /// Live streams open at once (see `web::live`).
    pub(crate) streams: Arc<Semaphore>,
    /// Live streams per caller name.
    pub(crate) streams_per_caller: std::sync::Mutex<HashMap<String, usize>>,
}

/// The expensive views, each computed by one request at a time.
pub(crate) struct Views {
    /// Every SLO evaluated from the store (no engine, or the analyst routes).
    pub slo: Cached<Arc<SloEvaluation>>,
    pub ops_check: Cached<OpsCheck>,
    /// The public status page's view (`/status`, badges).
    pub status: Cached<Arc<bulwark_ops::PublicStatus>>,
    /// Daily uptime of every monitor, the days that ended kept: the status
    /// page's and the monitor pages' 90-day bars.
    pub daily: bulwark_ops::DailyHistory,
    /// Per configured backup: one opening of its repository at a time.
    pub snapshots: HashMap<String, Cached<BackupSnapshots>>,
    /// Bounds openings across repositories.
    pub repository_openings: Arc<Semaphore>,
}

impl Views {
    fn new(config: &Config, metrics: &Metrics) -> Views {
        let counter = |view: &str| metrics.view_computations.with_label_values(&[view]);
        Views {
            slo: Cached::new(counter("slo_status")),
            ops_check: Cached::new(counter("ops_check")),
            status: Cached::new(counter("public_status")),
            daily: Default::default(),
            snapshots: config
                .backups
                .iter()
                .map(|b| (b.name.clone(), Cached::new(counter("snapshots"))))
                .collect(),
            repository_openings: Arc::new(Semaphore::new(REPOSITORY_OPENINGS)),
        }
    }
}

impl AppState {
    pub fn new(instance: Arc<Instance>) -> AppState {
        let metrics = Metrics::new();
        let views = Views::new(&instance.config, &metrics);
        // A quarter of the connection slots at most, so streams leave room
        // for everything else however small the server is set.
        let streams = (instance.config.server.max_connections / 4).clamp(1, MAX_STREAMS);
        AppState {
            instance,
            metrics,
            limiter: FailureLimiter::default(),
            live: None,
            views,
            view_ttl: DEFAULT_VIEW_TTL,
            closing: tokio::sync::watch::Sender::new(false),
            streams: Arc::new(Semaphore::new(streams)),
            streams_per_caller: Default::default(),
        }
    }

    /// How long cached views may be served: `/healthz/strict` when no engine
    /// runs, `/api/v1/ops/check` and `/api/v1/snapshots` (default
    /// [`DEFAULT_VIEW_TTL`]). With zero, every request sees a computation
    /// started after it arrived, still one at a time.
    pub fn with_view_ttl(mut self, ttl: Duration) -> AppState {
        self.view_ttl = ttl;
        self
    }

    /// Reads the days of uptime history the status page and the monitor
    /// pages show, so their first visitor does not wait for it (seconds
    /// with a thousand monitors). `serve` runs it in the background.
    pub async fn warm_up(&self) {
        use bulwark_ops::DAY;
        let now = bulwark_ops::Timestamp::now();
        let days = bulwark_ops::HISTORY_DAYS as u32;
        let first = now.floor(DAY) - (days - 1) * DAY;
        if let Err(e) = self
            .views
            .daily
            .counts(&self.instance.store, first, now + Duration::from_millis(1))
            .await
        {
            tracing::warn!(error = %e, "cannot read the uptime history ahead of time");
        }
    }

    /// Attaches a running engine's snapshots.
    pub fn with_live(mut self, live: Arc<bulwark_ops::Live>) -> AppState {
        self.live = Some(live);
        self
    }
}
