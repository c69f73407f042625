use std::path::{Path, PathBuf};
use std::sync::Arc;

use bulwark_ops::config::Config;
use bulwark_ops::scheduler::Scheduler;
use bulwark_ops::{Authenticator, Store};

use crate::auth::FailureLimiter;
use crate::metrics::Metrics;

/// The CLI's default `--data-dir`, used until [`AppState::with_data_dir`].
const DEFAULT_DATA_DIR: &str = "bulwark-data";

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
        AppState {
            config,
            store,
            auth,
            metrics: Metrics::new(),
            limiter: FailureLimiter::default(),
            live: None,
            data_dir,
            scheduler,
        }
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
