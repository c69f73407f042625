use std::sync::Arc;

use bulwark_ops::config::Config;
use bulwark_ops::{Authenticator, Store};

use crate::auth::FailureLimiter;
use crate::metrics::Metrics;

/// What every handler can reach; shared behind an `Arc`.
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub auth: Authenticator,
    pub metrics: Metrics,
    pub limiter: FailureLimiter,
}

impl AppState {
    pub fn new(config: Arc<Config>, store: Store) -> AppState {
        let auth = Authenticator::new(config.auth.keys.clone(), store.clone());
        AppState {
            config,
            store,
            auth,
            metrics: Metrics::new(),
            limiter: FailureLimiter::default(),
        }
    }
}
