//! Cooperative cancellation of the long operations (backup, restore,
//! check, prune).
//!
//! The engine is synchronous and runs on threads it does not own (a
//! tokio blocking thread, the CLI's main thread), so a signal handler or a
//! scheduler cannot interrupt it; it has to ask. Each operation polls its
//! [`Cancel`] at least once per file, pack or blob batch, stops its
//! threads and returns [`Error::Cancelled`](crate::Error::Cancelled),
//! leaving the repository as consistent as after a crash at that point
//! (never a snapshot that refers to data not written).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A cancellation token: clones share one flag, so whoever holds a clone
/// (a signal handler, a shutdown path) can stop the operation that was
/// given another.
///
/// [`Cancel::default`] is a fresh token that nobody else holds: it is
/// never cancelled unless a clone of it is.
///
/// ```
/// let cancel = bulwark_repo::Cancel::new();
/// let handle = cancel.clone();
/// assert!(!cancel.is_cancelled());
/// handle.cancel();
/// assert!(cancel.is_cancelled());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A token that is not cancelled.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Ask every operation holding a clone of this token to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`Cancel::cancel`] was called on this token or a clone.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(Error::Cancelled)` once cancelled: the checkpoint the
    /// operations put between units of work.
    pub(crate) fn check(&self) -> crate::Result<()> {
        if self.is_cancelled() {
            Err(crate::Error::Cancelled)
        } else {
            Ok(())
        }
    }
}
