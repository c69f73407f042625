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
//! use bulwark_ops::{Actor, Role, Store};
//! let store = Store::open(None, std::path::Path::new("./bulwark-data")).await?;
//! let created = bulwark_ops::keys::create(&store, &Actor::cli(), Role::Analyst, "grafana").await?;
//! println!("new key (shown once): {}", created.secret.expose());
//! assert!(bulwark_ops::audit::verify(&store).await?.is_intact());
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

// Each domain is a public namespace (`uptime::ping`, `drill::last`,
// `secrets::list`): their functions share short names across domains, which
// a flat API block would have to rename. Helpers, and the building blocks
// `Instance` assembles, are crate-private; the items callers need from them
// are re-exported in the public API block below.
pub mod alert;
pub mod audit;
pub(crate) mod auth;
pub mod backups;
pub mod charts;
pub(crate) mod child_env;
pub mod config;
pub mod cost;
pub mod drill;
pub mod engine;
pub mod events;
pub(crate) mod files;
pub(crate) mod identity;
pub(crate) mod instance;
pub mod keys;
pub mod maintenance;
pub mod opscheck;
pub mod probe;
pub mod redact;
pub mod report;
pub mod scheduler;
pub mod secrets;
pub mod sessions;
pub mod settings;
pub mod slo;
pub mod status;
pub(crate) mod store;
pub(crate) mod time;
pub mod uptime;

/// A boxed future, so async work can sit behind trait objects (jobs, key
/// sources, failure sinks).
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

// Public API.
pub use auth::{Authenticator, KeySource};
pub use identity::{key_digest, Actor, Principal, Role, UnknownRole};
pub use instance::Instance;
pub use store::{Dialect, Store, StoreError};
pub use time::Timestamp;
