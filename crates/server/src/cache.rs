//! Views that are expensive to compute (every SLO evaluated, every monitor
//! probed, a repository opened through scrypt), computed by one request at
//! a time and shared for a short while.

use std::future::Future;
use std::time::{Duration, Instant};

use prometheus::IntCounter;
use tokio::sync::Mutex;

/// One cached value, computed by at most one caller at a time.
pub(crate) struct Cached<T> {
    /// Held for the whole computation: concurrent callers queue here and
    /// then find the value their predecessor computed.
    slot: Mutex<Option<Entry<T>>>,
    computations: IntCounter,
}

struct Entry<T> {
    /// When the computation started: the value reflects no state older
    /// than this.
    started: Instant,
    value: T,
}

impl<T: Clone> Cached<T> {
    /// `computations` counts every computation (each cache miss).
    pub(crate) fn new(computations: IntCounter) -> Cached<T> {
        Cached {
            slot: Mutex::new(None),
            computations,
        }
    }

    /// The cached value if its computation started at most `max_age` before
    /// this call, or after it (a caller that waited for a computation gets
    /// its result even with a zero `max_age`); otherwise computes it. Errors
    /// are not cached.
    ///
    /// # Errors
    /// Those of `compute`.
    pub(crate) async fn get<E, F, Fut>(&self, max_age: Duration, compute: F) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let arrived = Instant::now();
        let mut slot = self.slot.lock().await;
        if let Some(entry) = slot.as_ref() {
            if entry.started >= arrived || arrived.duration_since(entry.started) <= max_age {
                return Ok(entry.value.clone());
            }
        }
        let started = Instant::now();
        self.computations.inc();
        let value = compute().await?;
        *slot = Some(Entry {
            started,
            value: value.clone(),
        });
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use super::*;

    fn counter() -> IntCounter {
        IntCounter::new("c", "test").unwrap()
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_computation() {
        let cache = Arc::new(Cached::<u32>::new(counter()));
        let runs = Arc::new(AtomicU32::new(0));
        let (release, released) = tokio::sync::watch::channel(false);
        let mut callers = Vec::new();
        for _ in 0..8 {
            let (cache, runs, mut released) = (cache.clone(), runs.clone(), released.clone());
            callers.push(tokio::spawn(async move {
                cache
                    .get(Duration::from_secs(60), || async move {
                        // Held until every caller is queued behind it.
                        let _ = released.wait_for(|r| *r).await;
                        Ok::<_, ()>(runs.fetch_add(1, Ordering::SeqCst) + 1)
                    })
                    .await
            }));
        }
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        release.send(true).unwrap();
        for c in callers {
            assert_eq!(c.await.unwrap(), Ok(1));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(cache.computations.get(), 1);
    }

    #[tokio::test]
    async fn a_zero_max_age_recomputes_for_each_later_caller() {
        let cache = Cached::<u32>::new(counter());
        for n in 1..=3 {
            let got = cache.get(Duration::ZERO, || async { Ok::<_, ()>(n) }).await;
            assert_eq!(got, Ok(n), "computed anew");
        }
        assert_eq!(cache.computations.get(), 3);
        // Within a long max age, the last value stands.
        let got = cache
            .get(Duration::from_secs(60), || async { Ok::<_, ()>(99) })
            .await;
        assert_eq!(got, Ok(3));
    }

    #[tokio::test]
    async fn errors_are_not_cached() {
        let cache = Cached::<u32>::new(counter());
        let max_age = Duration::from_secs(60);
        assert_eq!(
            cache.get(max_age, || async { Err("down") }).await,
            Err("down")
        );
        assert_eq!(
            cache.get(max_age, || async { Ok::<_, &str>(7) }).await,
            Ok(7)
        );
        assert_eq!(
            cache.get(max_age, || async { Ok::<_, &str>(8) }).await,
            Ok(7)
        );
    }
}
