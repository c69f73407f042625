//! The limiter for failed attempts (wrong keys, unknown push tokens) per
//! client address. A leaf: the state holds one, the auth extractor and the
//! push route feed it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Limits failed authentication attempts per client address: after
/// `max_failures` failures within `window`, further failing attempts from
/// the address are refused with 429 until that window ends. Successful
/// attempts are never limited (see `auth::authorize`).
pub struct FailureLimiter {
    max_failures: u32,
    window: Duration,
    clients: Mutex<HashMap<IpAddr, Window>>,
}

struct Window {
    started: Instant,
    failures: u32,
    refusal_recorded: bool,
}

/// The answer of [`FailureLimiter::fail`] for a client over its budget.
pub(crate) struct Blocked {
    pub retry_after: Duration,
    /// True the first time this window refuses the client, so the audit
    /// trail records the block once rather than every refused request.
    pub first_refusal: bool,
}

/// Past this many tracked addresses, expired windows are swept, so a scan
/// from many addresses cannot grow the map without bound.
const SWEEP_AT: usize = 4096;

impl Default for FailureLimiter {
    fn default() -> Self {
        FailureLimiter::new(10, Duration::from_secs(60))
    }
}

impl FailureLimiter {
    pub fn new(max_failures: u32, window: Duration) -> FailureLimiter {
        FailureLimiter {
            max_failures,
            window,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `ip` is over its budget now: the sign-in form refuses such
    /// an address before it looks at the key, so guessing there stops
    /// at the budget even for the right key.
    pub(crate) fn is_blocked(&self, ip: IpAddr, now: Instant) -> bool {
        let clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients.get(&ip).is_some_and(|w| {
            now.saturating_duration_since(w.started) < self.window
                && w.failures >= self.max_failures
        })
    }

    /// Records a failed attempt from `ip`, or refuses it when `ip` already
    /// failed `max_failures` times in the current window (a refused attempt
    /// is not counted: the window is not extended).
    pub(crate) fn fail(&self, ip: IpAddr, now: Instant) -> Result<(), Blocked> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if clients.len() >= SWEEP_AT {
            let window = self.window;
            clients.retain(|_, w| now.saturating_duration_since(w.started) < window);
        }
        let w = clients.entry(ip).or_insert(Window {
            started: now,
            failures: 0,
            refusal_recorded: false,
        });
        let elapsed = now.saturating_duration_since(w.started);
        if elapsed >= self.window {
            *w = Window {
                started: now,
                failures: 0,
                refusal_recorded: false,
            };
        } else if w.failures >= self.max_failures {
            let first_refusal = !w.refusal_recorded;
            w.refusal_recorded = true;
            return Err(Blocked {
                retry_after: self.window - elapsed,
                first_refusal,
            });
        }
        w.failures += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_refuses_failures_past_the_budget_until_window_ends() {
        let limiter = FailureLimiter::new(3, Duration::from_secs(60));
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(
                limiter.fail(ip, t0 + Duration::from_secs(i)).is_ok(),
                "failure {i} counted, not refused"
            );
        }
        let blocked = limiter.fail(ip, t0 + Duration::from_secs(10)).unwrap_err();
        assert!(blocked.first_refusal);
        assert_eq!(blocked.retry_after, Duration::from_secs(50));
        let again = limiter.fail(ip, t0 + Duration::from_secs(11)).unwrap_err();
        assert!(!again.first_refusal, "a block is recorded once per window");
        assert_eq!(again.retry_after, Duration::from_secs(49), "not extended");
        assert!(
            limiter.fail(other, t0 + Duration::from_secs(10)).is_ok(),
            "other clients unaffected"
        );
        assert!(
            limiter.fail(ip, t0 + Duration::from_secs(60)).is_ok(),
            "window over: a new budget"
        );
        for i in 1..3 {
            assert!(limiter.fail(ip, t0 + Duration::from_secs(60 + i)).is_ok());
        }
        let blocked = limiter.fail(ip, t0 + Duration::from_secs(63)).unwrap_err();
        assert!(blocked.first_refusal, "the new window's block is recorded");
    }
}
