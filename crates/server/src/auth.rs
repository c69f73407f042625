//! The authenticated-caller extractor and the limiter for failed attempts.
//!
//! A caller proves who it is with an API key (`X-Dash-Key` or
//! `Authorization: Bearer`) or with the dashboard's session cookie. A
//! session's state-changing requests must also carry the session's CSRF
//! token in `X-CSRF-Token`: the cookie goes with any request the browser
//! makes, the token only with requests our own pages make.

use std::marker::PhantomData;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use bulwark_ops::{append_audit, Actor, Entry, Outcome, Principal, Role, Session};

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

    /// The caller of a dashboard page whose session already passed
    /// [`authorize`] for at least `R`, so a page can call the handler of
    /// the route whose document it renders.
    pub(crate) fn checked(principal: Principal) -> Option<Auth<R>> {
        principal.role.allows(R::ROLE).then_some(Auth {
            principal,
            _role: PhantomData,
        })
    }
}

/// The dashboard's session cookie over plain HTTP.
pub(crate) const SESSION_COOKIE: &str = "bulwark_session";
/// The same cookie when the client came over TLS. Browsers accept a
/// `__Host-` cookie only with `Secure`, `Path=/` and no `Domain`, so no
/// subdomain and no plain-HTTP page can set or shadow it.
pub(crate) const SECURE_SESSION_COOKIE: &str = "__Host-bulwark_session";

/// The header carrying a session's CSRF token.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

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
    let principal = match presented_key(&parts.headers) {
        Some(key) => match state.instance.auth.authenticate(key).await? {
            Some(p) => p,
            None => return attempt.unauthenticated(state, "unknown key").await,
        },
        None => match session_token(&parts.headers) {
            Some(token) => {
                // Counted like a wrong key, so junk cookies cannot fill the
                // audit trail; the dashboard sends an expired session's
                // browser to sign in after one refusal.
                let Some(session) = find_session(state, token).await? else {
                    return attempt
                        .unauthenticated(state, "expired or unknown session")
                        .await;
                };
                if !is_safe(&parts.method) && !csrf_ok(&parts.headers, token) {
                    deny(
                        state,
                        &Actor::key(&session.principal),
                        "auth.csrf_rejected",
                        &attempt.target,
                        serde_json::json!({ "client": attempt.client_label }),
                    )
                    .await;
                    return Err(ApiError::CsrfRejected);
                }
                session.principal
            }
            None => return attempt.unauthenticated(state, "no key").await,
        },
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

/// The live session whose token is `token`.
pub(crate) async fn find_session(
    state: &AppState,
    token: &str,
) -> Result<Option<Session>, ApiError> {
    Ok(bulwark_ops::find_session(&state.instance.store, &state.instance.auth, token).await?)
}

/// Methods that change nothing, so need no CSRF token.
fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn csrf_ok(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|presented| Session::csrf_matches(token, presented.trim()))
}

/// Takes the plain session cookie out of `headers`, keeping every other
/// cookie: over TLS only the `__Host-` one is believed.
pub(crate) fn drop_plain_session_cookie(headers: &mut HeaderMap) {
    let kept: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            pair.split_once('=')
                .is_none_or(|(name, _)| name != SESSION_COOKIE)
        })
        .map(str::to_string)
        .collect();
    headers.remove(header::COOKIE);
    if kept.is_empty() {
        return;
    }
    if let Ok(v) = HeaderValue::from_str(&kept.join("; ")) {
        headers.insert(header::COOKIE, v);
    }
}

/// The session token from the request's cookies, the `__Host-` one first
/// (over TLS the plain one never gets here: see `strict_transport`).
pub(crate) fn session_token(headers: &HeaderMap) -> Option<&str> {
    let cookie = |wanted: &str| {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == wanted)
            .map(|(_, value)| value.trim())
            .filter(|v| !v.is_empty())
    };
    cookie(SECURE_SESSION_COOKIE).or_else(|| cookie(SESSION_COOKIE))
}

/// A request presenting a credential: who sent it and what it was for.
pub(crate) struct Attempt {
    client: Option<IpAddr>,
    pub(crate) client_label: String,
    /// `METHOD /route/{template}`: never the concrete path, which may hold
    /// a push token.
    target: String,
}

impl Attempt {
    /// Counts a failed attempt, audits it and refuses it with 401 (or 429
    /// once the address is over its budget).
    pub(crate) async fn unauthenticated<T>(
        &self,
        state: &AppState,
        reason: &str,
    ) -> Result<T, ApiError> {
        self.failed(state).await?;
        deny(
            state,
            &Actor::anonymous(&self.client_label),
            "auth.unauthenticated",
            &self.target,
            serde_json::json!({ "client": self.client_label, "reason": reason }),
        )
        .await;
        Err(ApiError::Unauthorized)
    }

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

    /// Whether the client's address is over its failure budget.
    pub(crate) fn is_blocked(&self, state: &AppState) -> bool {
        self.client
            .is_some_and(|ip| state.limiter.is_blocked(ip, Instant::now()))
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
    if let Err(e) = append_audit(&state.instance.store, entry).await {
        tracing::error!(error = %e, action, "cannot record refused request in the audit trail");
    }
}

/// The key from `X-Dash-Key` (the dashboard's header) or `Authorization: Bearer`.
pub(crate) fn presented_key(headers: &HeaderMap) -> Option<&str> {
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn session_token_reads_the_cookie_among_others() {
        let check = |cookies: &[&str], expected: Option<&str>| {
            let mut h = HeaderMap::new();
            for c in cookies {
                h.append(header::COOKIE, c.parse().unwrap());
            }
            assert_eq!(session_token(&h), expected, "{cookies:?}");
        };
        check(&["bulwark_session=abc"], Some("abc"));
        check(&["a=1; bulwark_session=abc; b=2"], Some("abc"));
        check(&["a=1", "bulwark_session=abc"], Some("abc"));
        check(&["xbulwark_session=abc"], None);
        check(&["bulwark_session="], None);
        check(&[], None);
        // Over TLS the `__Host-` cookie wins over a plain one someone planted.
        check(&["__Host-bulwark_session=tls"], Some("tls"));
        check(
            &["bulwark_session=planted; __Host-bulwark_session=tls"],
            Some("tls"),
        );
        check(
            &["bulwark_session=plain", "__Host-bulwark_session="],
            Some("plain"),
        );
    }

    #[test]
    fn over_tls_the_plain_session_cookie_is_dropped_and_the_rest_kept() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            "a=1; bulwark_session=planted".parse().unwrap(),
        );
        h.append(
            header::COOKIE,
            "__Host-bulwark_session=tls".parse().unwrap(),
        );
        drop_plain_session_cookie(&mut h);
        assert_eq!(h.get_all(header::COOKIE).iter().count(), 1);
        assert_eq!(h[header::COOKIE], "a=1; __Host-bulwark_session=tls");
        let mut only_planted = HeaderMap::new();
        only_planted.append(header::COOKIE, "bulwark_session=planted".parse().unwrap());
        drop_plain_session_cookie(&mut only_planted);
        assert_eq!(session_token(&only_planted), None);
    }
}
