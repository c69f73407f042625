use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bulwark_ops::config::Config;
use bulwark_ops::engine::SloEvaluation;
use bulwark_ops::scheduler::Scheduler;
use bulwark_ops::{Authenticator, Store};
use tokio::sync::Semaphore;

use crate::api::{BackupSnapshots, OpsCheck};
use crate::auth::FailureLimiter;
use crate::cache::Cached;
use crate::metrics::Metrics;

/// The CLI's default `--data-dir`, used until [`AppState::with_data_dir`].
const DEFAULT_DATA_DIR: &str = "bulwark-data";

/// How long `/healthz/strict` (without an engine), `ops check` and snapshot
/// listings are served from cache; see [`AppState::with_view_ttl`].
pub const DEFAULT_VIEW_TTL: Duration = Duration::from_secs(15);

/// Repositories opened at once for snapshot listings: each opening derives
/// a key with scrypt, tens of MiB of memory for a fraction of a second.
const REPOSITORY_OPENINGS: usize = 2;

/// What every handler can reach; shared behind an `Arc`.
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub auth: Authenticator,
    pub metrics: Metrics,
    pub limiter: FailureLimiter,
    /// The running monitoring engine's snapshots; None when no engine runs
    /// (then monitor state is read from the store).
    pub live: Option<Arc<bulwark_ops::engine::Live>>,
    /// The data directory: managed secrets, event logs, drill reports.
    pub data_dir: PathBuf,
    /// Shared with `bulwark serve`'s scheduler loop, so a manual run through
    /// the API and a scheduled run of one job cannot overlap.
    pub scheduler: Arc<Scheduler>,
    pub(crate) views: Views,
    pub(crate) view_ttl: Duration,
}

/// The expensive views, each computed by one request at a time.
pub(crate) struct Views {
    /// Every SLO evaluated from the store (no engine, or the analyst routes).
    pub slo: Cached<Arc<SloEvaluation>>,
    pub ops_check: Cached<OpsCheck>,
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
    pub fn new(config: Arc<Config>, store: Store) -> AppState {
        let auth = Authenticator::new(config.auth.keys.clone(), store.clone());
        let data_dir = PathBuf::from(DEFAULT_DATA_DIR);
        let scheduler = Arc::new(Scheduler::from_config(
            config.clone(),
            store.clone(),
            data_dir.clone(),
        ));
        let metrics = Metrics::new();
        let views = Views::new(&config, &metrics);
        AppState {
            config,
            store,
            auth,
            metrics,
            limiter: FailureLimiter::default(),
            live: None,
            data_dir,
            scheduler,
            views,
            view_ttl: DEFAULT_VIEW_TTL,
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

    /// Uses `data_dir` for managed secrets (accepting `DASHBOARD_KEY` as an
    /// admin key) and for the jobs' files.
    pub fn with_data_dir(mut self, data_dir: &Path) -> AppState {
        self.data_dir = data_dir.to_path_buf();
        self.auth = Authenticator::new(self.config.auth.keys.clone(), self.store.clone())
            .with_managed_keys(data_dir);
        self.scheduler = Arc::new(Scheduler::from_config(
            self.config.clone(),
            self.store.clone(),
            data_dir.to_path_buf(),
        ));
        self
    }

    /// Shares `scheduler` (the one `bulwark serve` runs) with the API.
    pub fn with_scheduler(mut self, scheduler: Arc<Scheduler>) -> AppState {
        self.scheduler = scheduler;
        self
    }

    /// Attaches a running engine's snapshots.
    pub fn with_live(mut self, live: Arc<bulwark_ops::engine::Live>) -> AppState {
        self.live = Some(live);
        self
    }
}
