//! `GET /events`: server-sent events for the dashboard's live updates.
//!
//! Every second the stream compares each monitor's state with what it last
//! sent and sends the monitors that changed (all of them first), so a
//! monitor going down shows on an open page within a second of the engine
//! seeing it, well inside any probe interval. A session-authenticated
//! stream re-checks its session every minute and ends when the session
//! does (signed out, expired, key revoked), and every stream ends when the
//! server begins to shut down.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures_util::stream::{self, Stream};
use serde::Serialize;

use crate::api::MonitorWire;
use crate::auth::{find_session, session_token, Analyst, Auth};
use crate::error::ApiError;
use crate::routes;
use crate::state::AppState;

const TICK: Duration = Duration::from_secs(1);
/// Ticks between re-checks of the session or key behind the stream.
const SESSION_CHECK_EVERY: u32 = 60;
/// A stream ends after this many ticks (an hour); the browser's
/// EventSource reconnects by itself, authenticating again.
const MAX_TICKS: u32 = 3600;
/// Streams one caller (key or session holder) may hold at once: a few tabs.
const MAX_STREAMS_PER_CALLER: usize = 4;

/// What the page needs to redraw a monitor.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct MonitorEvent {
    name: String,
    up: Option<bool>,
    incident_open: bool,
    latency_ms: Option<u64>,
    error: Option<String>,
}

impl From<&MonitorWire> for MonitorEvent {
    fn from(m: &MonitorWire) -> Self {
        MonitorEvent {
            name: m.name.clone(),
            up: m.up,
            incident_open: m.incident_open,
            latency_ms: m.last.as_ref().map(|l| l.latency_ms),
            error: m.last.as_ref().and_then(|l| l.error.clone()),
        }
    }
}

struct Cursor {
    state: Arc<AppState>,
    principal: bulwark_ops::Principal,
    /// The session token, for streams opened by the dashboard.
    session: Option<String>,
    /// The key's digest, for streams opened with an API key.
    key: Option<[u8; 32]>,
    /// Held while the stream lives: one of the server's stream slots and of the
    /// caller's [`MAX_STREAMS_PER_CALLER`].
    _slot: StreamSlot,
    sent: HashMap<String, MonitorEvent>,
    ticks: u32,
    interval: tokio::time::Interval,
    closing: tokio::sync::watch::Receiver<bool>,
}

/// A stream's place in the limits; given back when the stream ends.
pub(crate) struct StreamSlot {
    state: Arc<AppState>,
    caller: String,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl StreamSlot {
    fn take(state: &Arc<AppState>, caller: &str) -> Option<StreamSlot> {
        let permit = state.streams.clone().try_acquire_owned().ok()?;
        let mut per = state.streams_per_caller.lock().ok()?;
        let n = per.entry(caller.to_string()).or_insert(0);
        if *n >= MAX_STREAMS_PER_CALLER {
            return None;
        }
        *n += 1;
        Some(StreamSlot {
            state: state.clone(),
            caller: caller.to_string(),
            _permit: permit,
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        if let Ok(mut per) = self.state.streams_per_caller.lock() {
            if let Some(n) = per.get_mut(&self.caller) {
                *n -= 1;
                if *n == 0 {
                    per.remove(&self.caller);
                }
            }
        }
    }
}

pub(crate) async fn events(
    State(state): State<Arc<AppState>>,
    auth: Auth<Analyst>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Some(slot) = StreamSlot::take(&state, &auth.principal.name) else {
        return Err(ApiError::Unavailable(
            "too many live streams open; close another tab or retry later".into(),
        ));
    };
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let closing = state.closing.subscribe();
    let cursor = Cursor {
        closing,
        state,
        principal: auth.principal,
        key: crate::auth::presented_key(&headers).map(bulwark_ops::key_digest),
        session: match crate::auth::presented_key(&headers) {
            Some(_) => None,
            None => session_token(&headers).map(str::to_string),
        },
        _slot: slot,
        sent: HashMap::new(),
        ticks: 0,
        interval,
    };
    let stream = stream::unfold(Some(cursor), |cursor| async move {
        let mut c = cursor?;
        loop {
            tokio::select! {
                _ = c.interval.tick() => {}
                // The server is shutting down: end the stream (the
                // browser's EventSource reconnects to whoever serves next).
                _ = c.closing.wait_for(|closing| *closing) => return None,
            }
            c.ticks += 1;
            if c.ticks >= MAX_TICKS {
                return None;
            }
            if c.ticks % SESSION_CHECK_EVERY == 0 && !c.caller_alive().await {
                let end = Event::default().event("signed-out").data("{}");
                return Some((Ok(end), None));
            }
            match c.changes().await {
                Ok(changed) if changed.is_empty() => continue,
                Ok(changed) => {
                    let data = serde_json::to_string(&changed).unwrap_or_else(|_| "[]".into());
                    return Some((Ok(Event::default().event("monitors").data(data)), Some(c)));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "live stream: cannot read monitor state");
                    continue;
                }
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

impl Cursor {
    /// Whether the session or key the stream was opened with still works.
    async fn caller_alive(&self) -> bool {
        if let Some(token) = &self.session {
            return matches!(find_session(&self.state, token).await, Ok(Some(_)));
        }
        match &self.key {
            Some(digest) => matches!(
                self.state.instance.auth.authenticate_digest(digest).await,
                Ok(Some(_))
            ),
            None => false,
        }
    }

    /// The monitors whose state differs from what was last sent.
    async fn changes(&mut self) -> Result<Vec<MonitorEvent>, ApiError> {
        let auth = Auth::<Analyst>::checked(self.principal.clone())
            .expect("the stream's caller passed the analyst check");
        let Json(monitors) = routes::monitors::list(State(self.state.clone()), auth).await?;
        let mut changed = Vec::new();
        for m in &monitors {
            let event = MonitorEvent::from(m);
            if self.sent.get(&m.name) != Some(&event) {
                self.sent.insert(m.name.clone(), event.clone());
                changed.push(event);
            }
        }
        Ok(changed)
    }
}
