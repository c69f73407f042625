//! One Bulwark instance: a config, its state store and data directory, and
//! what is built from them once — the authenticator, the scheduler with
//! every job the config asks for, and (for `serve`) the probe engine.
//!
//! `bulwark serve`, the HTTP API and every one-shot CLI command work
//! through it, so a job run from the command line (`bulwark verify NAME`,
//! `drill run NAME`, `jobs run NAME`) is claimed, recorded, audited and
//! alerted exactly like a scheduled one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::alert::JobFailureAlerts;
use crate::auth::{Authenticator, KeySource, StaticKeys};
use crate::config::Config;
use crate::engine::{Engine, EngineOptions};
use crate::keys::StoreKeys;
use crate::scheduler::Scheduler;
use crate::secrets::ManagedAdminKeys;
use crate::store::{Store, StoreError};

/// A config with its store, authenticator and scheduler.
pub struct Instance {
    pub config: Arc<Config>,
    pub store: Store,
    /// Managed secrets, event logs, drill reports, monthly reports.
    pub data_dir: PathBuf,
    pub auth: Authenticator,
    /// Every job of the config; failed runs raise `JobFailed` alerts.
    pub scheduler: Arc<Scheduler>,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("data_dir", &self.data_dir)
            .field("scheduler", &self.scheduler)
            .finish_non_exhaustive()
    }
}

impl Instance {
    /// Opens the config's store (PostgreSQL when `[server] database` is
    /// set, else SQLite in `data_dir`) and builds the instance on it.
    ///
    /// # Errors
    /// When the store cannot be opened or migrated.
    pub async fn open(config: Arc<Config>, data_dir: &Path) -> Result<Instance, StoreError> {
        let database = config.server.database.as_ref().map(|d| d.expose().clone());
        let store = Store::open(database.as_deref(), data_dir).await?;
        Ok(Instance::new(config, store, data_dir))
    }

    /// Builds the authenticator and the scheduler over an open store.
    pub fn new(config: Arc<Config>, store: Store, data_dir: &Path) -> Instance {
        let auth = authenticator(&config, &store, data_dir);
        let mut scheduler = Scheduler::new(store.clone()).with_failure_sink(Arc::new(
            JobFailureAlerts::new(store.clone(), config.clone()),
        ));
        for job in jobs(&config, &store, data_dir) {
            scheduler.add(job);
        }
        Instance {
            config,
            store,
            data_dir: data_dir.to_path_buf(),
            auth,
            scheduler: Arc::new(scheduler),
        }
    }

    /// Starts the probe engine (`serve` only).
    ///
    /// # Errors
    /// When the store cannot be read at start.
    pub async fn start_engine(&self, options: EngineOptions) -> Result<Engine, StoreError> {
        Engine::start(self.config.clone(), self.store.clone(), options).await
    }
}

/// Keys from the config and `ROLES_JSON`, keys made with `bulwark keys
/// create`, and managed secrets that are admin keys (`DASHBOARD_KEY`).
fn authenticator(config: &Config, store: &Store, data_dir: &Path) -> Authenticator {
    let sources: Vec<Arc<dyn KeySource>> = vec![
        Arc::new(StaticKeys::new(config.auth.keys.clone())),
        Arc::new(ManagedAdminKeys::new(store.clone(), data_dir)),
        Arc::new(StoreKeys::new(store.clone())),
    ];
    Authenticator::new(sources)
}

/// Every job the config asks for.
fn jobs(config: &Arc<Config>, store: &Store, data_dir: &Path) -> Vec<crate::scheduler::Job> {
    let mut out = crate::backups::jobs(config, data_dir);
    out.extend(crate::drill::jobs(config, store, data_dir));
    out.extend(crate::secrets::jobs(config, store, data_dir));
    out.extend(crate::slo::job(config, store));
    out.extend(crate::report::job(config, store, data_dir));
    out.extend(crate::cost::job(config, store));
    out
}
