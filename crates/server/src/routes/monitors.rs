//! Monitors, their results, one-off probing and heartbeats.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use bulwark_ops::config::MonitorKind;
use bulwark_ops::Role;

use crate::api::{
    ms_to_time, MonitorResults, MonitorWire, ProbeResultWire, PushAccepted, ResultsQuery,
    RollupWire, UptimeTest,
};
use crate::auth::{Admin, Analyst, Auth};
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/monitors", get(list))
        .route("/api/v1/monitors/{name}/results", get(results))
        .route("/api/ops/uptime/test", post(test))
        .route("/api/v1/push/{token}", post(push).get(push))
}

/// Scheme, host and port of a URL: paths and query strings may hold tokens.
fn redact_target(kind: &MonitorKind) -> String {
    match kind {
        MonitorKind::Http(c) => {
            let (scheme, rest) = c.url.split_once("://").unwrap_or(("http", &c.url));
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            // Drop any user:password@ part.
            let host = authority.rsplit('@').next().unwrap_or(authority);
            format!("{scheme}://{host}")
        }
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
    auth: Auth<Analyst>,
) -> Result<Json<Vec<MonitorWire>>, ApiError> {
    let live = state.live.as_ref().map(|l| l.monitors());
    // Without a running engine (one-off tools, tests) the store has the truth.
    let latest = match live {
        Some(_) => Default::default(),
        None => bulwark_ops::uptime::latest_results(&state.store).await?,
    };
    let mut out = Vec::new();
    for m in &state.config.monitors {
        let (up, incident_open, last) = match live.as_ref().and_then(|l| l.get(&m.name)) {
            Some(l) => (l.up, l.incident_open, l.last.clone()),
            None => {
                let open = bulwark_ops::uptime::open_incident_of(&state.store, &m.name)
                    .await?
                    .is_some();
                let last = latest.get(&m.name).cloned();
                (last.as_ref().map(|_| !open), open, last)
            }
        };
        let push_path = match (&m.kind, auth.principal.role) {
            (MonitorKind::Push { .. }, Role::Admin) => Some(format!(
                "/api/v1/push/{}",
                bulwark_ops::uptime::push_token(&state.store, &m.name).await?
            )),
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
            push_path,
        });
    }
    Ok(Json(out))
}

/// A monitor's results: raw (newest first) or per-minute rollups.
#[utoipa::path(get, path = "/api/v1/monitors/{name}/results", tag = "monitors",
    params(("name" = String, Path, description = "Monitor name"), ResultsQuery),
    security(("dash_key" = []), ("bearer" = [])),
    responses((status = 200, body = MonitorResults), (status = 404, body = crate::api::ErrorBody)))]
pub(crate) async fn results(
    State(state): State<Arc<AppState>>,
    _auth: Auth<Analyst>,
    Path(name): Path<String>,
    query: Result<Query<ResultsQuery>, QueryRejection>,
) -> Result<Json<MonitorResults>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if state.config.monitor(&name).is_none() {
        return Err(ApiError::NotFound(format!("no monitor named {name:?}")));
    }
    let limit = q.limit.unwrap_or(500);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "invalid limit {limit}: expected 1 to 10000"
        )));
    }
    let now = chrono::Utc::now().timestamp_millis();
    let since = q.since.map_or(now - 3_600_000, |t| t.timestamp_millis());
    if q.rollup.unwrap_or(false) {
        let rollups = bulwark_ops::uptime::rollups(&state.store, &name, since, i64::MAX).await?;
        return Ok(Json(MonitorResults {
            monitor: name,
            results: Vec::new(),
            rollups: rollups
                .into_iter()
                .map(|r| RollupWire {
                    minute: ms_to_time(r.minute),
                    total: r.total,
                    failures: r.failures,
                    latency_p50_ms: r.p50_ms,
                    latency_p95_ms: r.p95_ms,
                    latency_p99_ms: r.p99_ms,
                    latency_max_ms: r.max_ms,
                })
                .collect(),
        }));
    }
    let results = bulwark_ops::uptime::results(&state.store, &name, since, limit).await?;
    Ok(Json(MonitorResults {
        monitor: name,
        results: results.into_iter().map(ProbeResultWire::from).collect(),
        rollups: Vec::new(),
    }))
}

/// Probes every monitor once now and returns the results (not stored).
#[utoipa::path(post, path = "/api/ops/uptime/test", tag = "monitors",
    security(("dash_key" = []), ("bearer" = [])),
    responses((status = 200, body = UptimeTest), (status = 403, body = crate::api::ErrorBody)))]
pub(crate) async fn test(
    State(state): State<Arc<AppState>>,
    _auth: Auth<Admin>,
) -> Json<UptimeTest> {
    let results = bulwark_ops::engine::check_all(&state.store, &state.config).await;
    Json(UptimeTest {
        ok: results.iter().all(|r| r.ok),
        results: results.into_iter().map(ProbeResultWire::from).collect(),
    })
}

/// A heartbeat from a push monitor's job. The token is the credential, so no
/// key is needed; an unknown token is 404.
#[utoipa::path(post, path = "/api/v1/push/{token}", tag = "monitors",
    params(("token" = String, Path, description = "The push monitor's token")),
    responses((status = 200, body = PushAccepted), (status = 404, body = crate::api::ErrorBody)))]
pub(crate) async fn push(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
) -> Result<Json<PushAccepted>, ApiError> {
    let now = chrono::Utc::now().timestamp_millis();
    match bulwark_ops::uptime::ping(&state.store, &token, now).await? {
        Some(monitor) if state.config.monitor(&monitor).is_some() => {
            Ok(Json(PushAccepted { monitor }))
        }
        _ => Err(ApiError::NotFound("unknown push token".into())),
    }
}
