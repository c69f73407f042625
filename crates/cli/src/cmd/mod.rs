//! One module per command group. Each parses nothing itself (clap did),
//! calls `bulwark-ops`, and prints.

pub(crate) mod audit;
pub(crate) mod config;
pub(crate) mod drill;
pub(crate) mod events;
pub(crate) mod jobs;
pub(crate) mod keys;
pub(crate) mod ops;
pub(crate) mod report;
pub(crate) mod secrets;
pub(crate) mod serve;
pub(crate) mod silence;
pub(crate) mod slo;
pub(crate) mod uptime;
pub(crate) mod verify;

use std::sync::Arc;

use anyhow::Context;
use bulwark_ops::{Config, Instance, Loaded, Store};

use crate::Globals;

/// Loads the config, printing its warnings to stderr; an invalid config is
/// an error listing every problem.
pub(crate) fn load_config(globals: &Globals) -> anyhow::Result<Loaded> {
    let loaded = bulwark_ops::load_settings(&globals.config_path, globals.config_required, &|k| {
        std::env::var(k).ok()
    })
    .map_err(|errors| anyhow::anyhow!("invalid configuration:\n{errors}"))?;
    for warning in &loaded.warnings {
        eprintln!("{warning}");
    }
    Ok(loaded)
}

/// Opens the state store the config names (SQLite in the data dir by default).
pub(crate) async fn open_store(globals: &Globals, config: &Config) -> anyhow::Result<Store> {
    let database = config.server.database.as_ref().map(|s| s.expose().as_str());
    Store::open(database, &globals.data_dir)
        .await
        .with_context(|| match database {
            Some(_) => {
                "cannot open the PostgreSQL state store named by [server] database".to_string()
            }
            None => format!(
                "cannot open the state store in {}",
                globals.data_dir.display()
            ),
        })
}

/// The instance the config describes: its store, authenticator and
/// scheduler, as `bulwark serve` builds them.
pub(crate) async fn open_instance(globals: &Globals, config: Config) -> anyhow::Result<Instance> {
    let store = open_store(globals, &config).await?;
    Ok(Instance::new(Arc::new(config), store, &globals.data_dir))
}

/// Cancels the instance's running jobs on SIGINT or SIGTERM, so a backup or
/// verification run from the command line stops cleanly (recorded as
/// cancelled, no snapshot saved after the signal).
pub(crate) fn cancel_jobs_on_signal(instance: &Instance) {
    let scheduler = instance.scheduler.clone();
    tokio::spawn(async move {
        serve::shutdown_signal().await;
        scheduler.cancel();
    });
}

/// A runtime for one command; `serve` builds its own multi-threaded one.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
