//! The authenticated-caller extractor and the limiter for failed attempts.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use bulwark_ops::audit::{self, Entry, Outcome};
use bulwark_ops::{Actor, Principal, Role};

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
pub(crate) async fn authorize(
    parts: &Parts,
    state: &AppState,
    required: Role,
) -> Result<Principal, ApiError> {
    let client = client_ip(parts);
    let route = parts
        .extensions
        .get::<MatchedPath>()
        .map_or_else(|| parts.uri.path().to_string(), |p| p.as_str().to_string());
    let target = format!("{} {}", parts.method, route);
    let client_label = client.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());

    if let Some(ip) = client {
        if let Err(blocked) = state.limiter.check(ip, Instant::now()) {
            if blocked.first_refusal {
                deny(
                    state,
                    &Actor::anonymous(&client_label),
                    "auth.rate_limited",
                    &target,
                    serde_json::json!({ "client": client_label }),
                )
                .await;
            }
            return Err(ApiError::TooManyRequests(blocked.retry_after));
        }
    }

    let presented = presented_key(&parts.headers);
    let principal = match presented {
        Some(key) => state.auth.authenticate(key).await?,
        None => None,
    };
    let Some(principal) = principal else {
        if let Some(ip) = client {
            state.limiter.record_failure(ip, Instant::now());
        }
        let reason = if presented.is_some() {
            "unknown key"
        } else {
            "no key"
        };
        deny(
            state,
            &Actor::anonymous(&client_label),
            "auth.unauthenticated",
            &target,
            serde_json::json!({ "client": client_label, "reason": reason }),
        )
        .await;
        return Err(ApiError::Unauthorized);
    };
    if !principal.role.allows(required) {
        deny(
            state,
            &Actor::key(&principal),
            "auth.forbidden",
            &target,
            serde_json::json!({ "client": client_label, "role": principal.role.as_str(), "required": required.as_str() }),
        )
        .await;
        return Err(ApiError::Forbidden(required));
    }
    Ok(principal)
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
    if let Err(e) = audit::append(&state.store, entry).await {
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

fn client_ip(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// Limits failed authentication attempts per client address: after
/// `max_failures` failures within `window`, the address is refused with 429
/// until that window ends, without the key even being looked at.
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

/// The answer of [`FailureLimiter::check`] for a blocked client.
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

    pub(crate) fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Blocked> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        let Some(w) = clients.get_mut(&ip) else {
            return Ok(());
        };
        let elapsed = now.saturating_duration_since(w.started);
        if elapsed >= self.window {
            clients.remove(&ip);
            return Ok(());
        }
        if w.failures < self.max_failures {
            return Ok(());
        }
        let first_refusal = !w.refusal_recorded;
        w.refusal_recorded = true;
        Err(Blocked {
            retry_after: self.window - elapsed,
            first_refusal,
        })
    }

    pub(crate) fn record_failure(&self, ip: IpAddr, now: Instant) {
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
        if now.saturating_duration_since(w.started) >= self.window {
            *w = Window {
                started: now,
                failures: 0,
                refusal_recorded: false,
            };
        }
        w.failures += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_blocks_after_max_failures_until_window_ends() {
        let limiter = FailureLimiter::new(3, Duration::from_secs(60));
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(limiter.check(ip, t0).is_ok(), "attempt {i} allowed");
            limiter.record_failure(ip, t0 + Duration::from_secs(i));
        }
        let blocked = limiter.check(ip, t0 + Duration::from_secs(10)).unwrap_err();
        assert!(blocked.first_refusal);
        assert_eq!(blocked.retry_after, Duration::from_secs(50));
        let again = limiter.check(ip, t0 + Duration::from_secs(11)).unwrap_err();
        assert!(!again.first_refusal, "a block is recorded once per window");
        assert!(
            limiter.check(other, t0 + Duration::from_secs(10)).is_ok(),
            "other clients unaffected"
        );
        assert!(
            limiter.check(ip, t0 + Duration::from_secs(60)).is_ok(),
            "window over"
        );
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
