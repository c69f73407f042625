//! Monitors, their results, one-off probing and heartbeats.

use bulwark_ops::{monitor_results, record_ping};
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use bulwark_ops::Timestamp;
use bulwark_ops::{MonitorKind, Resolution};

use crate::api::{
    wire_time, MonitorResults, MonitorWire, ProbeResultWire, PushAccepted, PushTokenCreated,
    ResolutionWire, ResultsQuery, RollupWire, UptimeTest,
};
use crate::auth::{Admin, Analyst, Attempt, Auth};
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/monitors", get(list))
        .route("/api/v1/monitors/{name}/results", get(results))
        .route("/api/ops/uptime/test", post(test))
        .route(
            "/api/v1/monitors/{name}/push-token",
            post(create_push_token),
        )
        .route("/api/v1/push/{token}", post(push).get(push_get))
}

/// Scheme, host and port of a URL: paths and query strings may hold tokens.
fn redact_target(kind: &MonitorKind) -> String {
    match kind {
        MonitorKind::Http(c) => bulwark_ops::url_origin(&c.url),
        MonitorKind::Tcp { host, port } => format!("tcp://{host}:{port}"),
        MonitorKind::Tls { host, port, .. } => format!("tls://{host}:{port}"),
        MonitorKind::Push { .. } => "push".to_string(),
    }
}

fn kind_name(kind: &MonitorKind) -> &'static str {
    match kind {
        MonitorKind::Http(_) => "http",
        MonitorKind::Tcp { .. } => "tcp",
        MonitorKind::Tls { .. } => "tls",
        MonitorKind::Push { .. } => "push",
    }
}

/// Every configured monitor with its current state.
#[utoipa::path(get, path = "/api/v1/monitors", tag = "monitors",
    security(("dash_key" = []), ("bearer" = [])),
    responses((status = 200, body = Vec<MonitorWire>), (status = 401, body = crate::api::ErrorBody)))]
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    _auth: Auth<Analyst>,
) -> Result<Json<Vec<MonitorWire>>, ApiError> {
    let live = state.live.as_ref().map(|l| l.monitors());
    // Without a running engine (one-off tools, tests) the store has the truth.
    let (latest, open) = match live {
        Some(_) => Default::default(),
        None => (
            bulwark_ops::latest_results(&state.instance.store).await?,
            bulwark_ops::monitors_with_open_incidents(&state.instance.store).await?,
        ),
    };
    let mut out = Vec::new();
    for m in &state.instance.config.monitors {
        let (up, incident_open, last) = match live.as_ref().and_then(|l| l.get(&m.name)) {
            Some(l) => (l.up, l.incident_open, l.last.clone()),
            None => {
                let open = open.contains(&m.name);
                let last = latest.get(&m.name).cloned();
                (last.as_ref().map(|_| !open), open, last)
            }
        };
        let has_push_token = match &m.kind {
            MonitorKind::Push { .. } => {
                Some(bulwark_ops::has_push_token(&state.instance.store, &m.name).await?)
            }
            _ => None,
        };
        out.push(MonitorWire {
            name: m.name.clone(),
            kind: kind_name(&m.kind),
            target: redact_target(&m.kind),
            interval_s: m.interval.as_secs(),
            timeout_ms: u64::try_from(m.timeout.as_millis()).unwrap_or(u64::MAX),
            strikes: m.strikes,
            recover_after: m.recover_after,
            tags: m.tags.clone(),
            up,
            incident_open,
            last: last.map(ProbeResultWire::from),
            has_push_token,
        });
    }
    Ok(Json(out))
}

/// A monitor's results: raw (newest first), or per-minute or hourly rollups
/// (oldest first).
#[utoipa::path(get, path = "/api/v1/monitors/{name}/results", tag = "monitors",
    params(("name" = String, Path, description = "Monitor name"), ResultsQuery),
    security(("dash_key" = []), ("bearer" = [])),
    responses((status = 200, body = MonitorResults),
        (status = 400, description = "A parameter is invalid; the message names it", body = crate::api::ErrorBody),
        (status = 404, body = crate::api::ErrorBody)))]
pub(crate) async fn results(
    State(state): State<Arc<AppState>>,
    _auth: Auth<Analyst>,
    Path(name): Path<String>,
    query: Result<Query<ResultsQuery>, QueryRejection>,
) -> Result<Json<MonitorResults>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if state.instance.config.monitor(&name).is_none() {
        return Err(ApiError::NotFound(format!("no monitor named {name:?}")));
    }
    let p = ResultsParams::parse(&q, Timestamp::now())?;
    let series = match p.resolution {
        ResolutionWire::Raw => {
            let results =
                monitor_results(&state.instance.store, &name, p.from, p.to, p.limit).await?;
            return Ok(Json(MonitorResults {
                monitor: name,
                resolution: p.resolution,
                results: results.into_iter().map(ProbeResultWire::from).collect(),
                rollups: Vec::new(),
            }));
        }
        ResolutionWire::Minute => Resolution::Minute,
        ResolutionWire::Hour => Resolution::Hour,
    };
    let rollups =
        bulwark_ops::rollup_series(&state.instance.store, &name, series, p.from, p.to, p.limit)
            .await?;
    Ok(Json(MonitorResults {
        monitor: name,
        resolution: p.resolution,
        results: Vec::new(),
        rollups: rollups.into_iter().map(RollupWire::from).collect(),
    }))
}

/// [`ResultsQuery`] checked, with its defaults filled in.
#[derive(Debug)]
struct ResultsParams {
    resolution: ResolutionWire,
    from: Timestamp,
    to: Timestamp,
    limit: u32,
}

impl ResultsParams {
    fn parse(q: &ResultsQuery, now: Timestamp) -> Result<ResultsParams, ApiError> {
        let bad = |name: &str, value: &str, expected: &str| {
            ApiError::BadRequest(format!("invalid {name} {value:?}: expected {expected}"))
        };
        let resolution = match q.resolution.as_deref() {
            None => None,
            Some("raw") => Some(ResolutionWire::Raw),
            Some("minute") => Some(ResolutionWire::Minute),
            Some("hour") => Some(ResolutionWire::Hour),
            Some(other) => return Err(bad("resolution", other, "raw, minute or hour")),
        };
        // `rollup` predates `resolution`; scripts still send it.
        let rollup = match q.rollup.as_deref() {
            None => None,
            Some("true") => Some(ResolutionWire::Minute),
            Some("false") => Some(ResolutionWire::Raw),
            Some(other) => return Err(bad("rollup", other, "true or false")),
        };
        let resolution = match (resolution, rollup) {
            (Some(r), Some(legacy)) if r != legacy => {
                return Err(ApiError::BadRequest(format!(
                    "rollup={} conflicts with resolution={}: give resolution alone \
                     (raw, minute or hour)",
                    q.rollup.as_deref().unwrap_or_default(),
                    q.resolution.as_deref().unwrap_or_default(),
                )))
            }
            (r, legacy) => r.or(legacy).unwrap_or(ResolutionWire::Raw),
        };
        let limit = match q.limit.as_deref() {
            None if resolution == ResolutionWire::Raw => 500,
            // Rollups had no limit before; 10,000 (almost a week of minutes,
            // all 400 days of hours) keeps most existing queries whole.
            None => 10_000,
            Some(text) => match text.parse::<u32>() {
                Ok(n) if (1..=10_000).contains(&n) => n,
                _ => return Err(bad("limit", text, "1 to 10000")),
            },
        };
        let time = |name: &str, text: &str| {
            text.parse::<chrono::DateTime<chrono::Utc>>()
                .map(Timestamp::from)
                .map_err(|_| bad(name, text, "an RFC 3339 time such as 2026-01-15T00:00:00Z"))
        };
        let to = match q.until.as_deref() {
            Some(text) => time("until", text)?,
            None => now,
        };
        let from = match q.since.as_deref() {
            Some(text) => time("since", text)?,
            None => to - std::time::Duration::from_secs(3600),
        };
        if from >= to {
            return Err(ApiError::BadRequest(format!(
                "since ({}) must be before until ({})",
                wire_time(from).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                wire_time(to).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            )));
        }
        Ok(ResultsParams {
            resolution,
            from,
            to,
            limit,
        })
    }
}

/// Probes every monitor once now and returns the results (not stored).
#[utoipa::path(post, path = "/api/ops/uptime/test", tag = "monitors",
    security(("dash_key" = []), ("bearer" = [])),
    responses((status = 200, body = UptimeTest), (status = 403, body = crate::api::ErrorBody)))]
pub(crate) async fn test(
    State(state): State<Arc<AppState>>,
    _auth: Auth<Admin>,
) -> Json<UptimeTest> {
    let results =
        bulwark_ops::check_all_monitors(&state.instance.store, &state.instance.config).await;
    Json(UptimeTest::from(results))
}

/// Makes a new heartbeat token for a push monitor; the previous one stops
/// working. Only its digest is stored, so the answer is the one time the
/// token is shown. Audited.
#[utoipa::path(post, path = "/api/v1/monitors/{name}/push-token", tag = "monitors",
    params(("name" = String, Path, description = "A push monitor's name")),
    security(("dash_key" = []), ("bearer" = [])),
    responses((status = 201, body = PushTokenCreated), (status = 403, body = crate::api::ErrorBody),
              (status = 404, body = crate::api::ErrorBody)))]
pub(crate) async fn create_push_token(
    State(state): State<Arc<AppState>>,
    auth: Auth<Admin>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<PushTokenCreated>), ApiError> {
    match state.instance.config.monitor(&name).map(|m| &m.kind) {
        Some(MonitorKind::Push { .. }) => {}
        _ => {
            return Err(ApiError::NotFound(format!(
                "no push monitor named {name:?}"
            )))
        }
    }
    let token = bulwark_ops::create_push_token(&state.instance.store, &auth.actor(), &name).await?;
    let push_path = format!("/api/v1/push/{}", token.expose());
    Ok((
        StatusCode::CREATED,
        Json(PushTokenCreated {
            monitor: name,
            token: token.into_inner(),
            push_path,
        }),
    ))
}

/// A heartbeat from a push monitor's job. The token is the credential, so no
/// key is needed; an unknown token is 404 and counts as a failed attempt
/// against the client's address, like a wrong key (429 once over budget).
#[utoipa::path(post, path = "/api/v1/push/{token}", tag = "monitors",
    params(("token" = String, Path, description = "The push monitor's token")),
    responses((status = 200, body = PushAccepted), (status = 404, body = crate::api::ErrorBody),
        (status = 429, description = "Too many unknown tokens from this address", body = crate::api::ErrorBody)))]
pub(crate) async fn push(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    parts: Parts,
) -> Result<Json<PushAccepted>, ApiError> {
    let now = Timestamp::now();
    match record_ping(&state.instance.store, &token, now).await? {
        Some(monitor) if state.instance.config.monitor(&monitor).is_some() => {
            Ok(Json(PushAccepted { monitor }))
        }
        _ => {
            Attempt::of(&parts, &state).failed(&state).await?;
            Err(ApiError::NotFound("unknown push token".into()))
        }
    }
}

/// The same heartbeat as a `GET`, for jobs that can only fetch a URL (a
/// bare `curl URL` or `wget`, as Healthchecks-style pings are sent).
#[utoipa::path(get, path = "/api/v1/push/{token}", tag = "monitors",
    params(("token" = String, Path, description = "The push monitor's token")),
    responses((status = 200, body = PushAccepted), (status = 404, body = crate::api::ErrorBody),
        (status = 429, description = "Too many unknown tokens from this address", body = crate::api::ErrorBody)))]
pub(crate) async fn push_get(
    state: State<Arc<AppState>>,
    token: Path<String>,
    parts: Parts,
) -> Result<Json<PushAccepted>, ApiError> {
    push(state, token, parts).await
}
