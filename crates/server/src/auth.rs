//! The authenticated-caller extractor and the limiter for failed attempts.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use bulwark_ops::audit::{self, Entry, Outcome};
use bulwark_ops::{Actor, Principal, Role};

use crate::client::client_ip;
use crate::error::ApiError;
use crate::state::AppState;

/// The least role a route needs, as a type.
pub trait MinRole: Send + Sync + 'static {
    const ROLE: Role;
}

/// Routes for administrators only.
pub struct Admin;
/// Routes for any valid key (analysts and administrators).
pub struct Analyst;

impl MinRole for Admin {
    const ROLE: Role = Role::Admin;
}
impl MinRole for Analyst {
    const ROLE: Role = Role::Analyst;
}

/// An authenticated caller holding at least role `R`. Taking this as a
/// handler argument is the only way a handler learns who calls it, so a
/// handler cannot skip the check.
pub struct Auth<R: MinRole> {
    pub principal: Principal,
    _role: PhantomData<R>,
}

impl<R: MinRole> Auth<R> {
    pub fn actor(&self) -> Actor {
        Actor::key(&self.principal)
    }
}

impl<R: MinRole> FromRequestParts<Arc<AppState>> for Auth<R> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        let principal = authorize(parts, state, R::ROLE).await?;
        Ok(Auth {
            principal,
            _role: PhantomData,
        })
    }
}

/// Checks the request's key against `required`, auditing every refusal.
///
/// The key is checked first: a valid key always passes, so a client that
/// shares an address with someone guessing (behind a proxy or a NAT) is not
/// locked out. Only failing attempts count against the address, and once
/// over its budget a failing attempt gets 429 instead of 401.
pub(crate) async fn authorize(
    parts: &Parts,
    state: &AppState,
    required: Role,
) -> Result<Principal, ApiError> {
    let attempt = Attempt::of(parts, state);
    let presented = presented_key(&parts.headers);
    let principal = match presented {
        Some(key) => state.instance.auth.authenticate(key).await?,
        None => None,
    };
    let Some(principal) = principal else {
        attempt.failed(state).await?;
        let reason = if presented.is_some() {
            "unknown key"
        } else {
            "no key"
        };
        deny(
            state,
            &Actor::anonymous(&attempt.client_label),
            "auth.unauthenticated",
            &attempt.target,
            serde_json::json!({ "client": attempt.client_label, "reason": reason }),
        )
        .await;
        return Err(ApiError::Unauthorized);
    };
    if !principal.role.allows(required) {
        deny(
            state,
            &Actor::key(&principal),
            "auth.forbidden",
            &attempt.target,
            serde_json::json!({ "client": attempt.client_label, "role": principal.role.as_str(), "required": required.as_str() }),
        )
        .await;
        return Err(ApiError::Forbidden(required));
    }
    Ok(principal)
}

/// A request presenting a credential: who sent it and what it was for.
pub(crate) struct Attempt {
    client: Option<IpAddr>,
    client_label: String,
    /// `METHOD /route/{template}`: never the concrete path, which may hold
    /// a push token.
    target: String,
}

impl Attempt {
    pub(crate) fn of(parts: &Parts, state: &AppState) -> Attempt {
        let client = client_ip(parts, &state.instance.config.server.trusted_proxies);
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map_or("unmatched", |p| p.as_str());
        Attempt {
            client,
            client_label: client.map_or_else(|| "unknown".to_string(), |ip| ip.to_string()),
            target: format!("{} {route}", crate::metrics::method_label(&parts.method)),
        }
    }

    /// Counts a failed attempt (a wrong key, an unknown push token) against
    /// the client's address.
    ///
    /// # Errors
    /// 429 when the address is over its failure budget; the first refusal
    /// of each window is audited.
    pub(crate) async fn failed(&self, state: &AppState) -> Result<(), ApiError> {
        let Some(ip) = self.client else {
            return Ok(());
        };
        let Err(blocked) = state.limiter.fail(ip, Instant::now()) else {
            return Ok(());
        };
        if blocked.first_refusal {
            deny(
                state,
                &Actor::anonymous(&self.client_label),
                "auth.rate_limited",
                &self.target,
                serde_json::json!({ "client": self.client_label }),
            )
            .await;
        }
        Err(ApiError::TooManyRequests(blocked.retry_after))
    }
}

async fn deny(
    state: &AppState,
    actor: &Actor,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) {
    let entry = Entry::new(actor, action, target, Outcome::Denied).detail(detail);
    // The refusal stands even if it cannot be recorded; the failure is logged.
    if let Err(e) = audit::append(&state.instance.store, entry).await {
        tracing::error!(error = %e, action, "cannot record refused request in the audit trail");
    }
}

/// The key from `X-Dash-Key` (the seed's header) or `Authorization: Bearer`.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get("x-dash-key").and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        if !v.is_empty() {
            return Some(v);
        }
    }
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = auth.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Limits failed authentication attempts per client address: after
/// `max_failures` failures within `window`, further failing attempts from
/// the address are refused with 429 until that window ends. Successful
/// attempts are never limited (see [`authorize`]).
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

    #[test]
    fn presented_key_reads_both_headers() {
        let check = |pairs: &[(&'static str, &str)], expected: Option<&str>| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            assert_eq!(presented_key(&h), expected, "{pairs:?}");
        };
        check(&[("x-dash-key", "abc")], Some("abc"));
        check(&[("authorization", "Bearer abc")], Some("abc"));
        check(&[("authorization", "bearer   abc ")], Some("abc"));
        check(&[("authorization", "Basic abc")], None);
        check(&[("authorization", "Bearer ")], None);
        check(&[("x-dash-key", "")], None);
        check(
            &[("x-dash-key", "one"), ("authorization", "Bearer two")],
            Some("one"),
        );
        check(&[], None);
    }
}
