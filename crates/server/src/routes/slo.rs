//! SLO status and the strict health check.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use bulwark_ops::SloEvaluation;

use crate::api::{wire_time, SloStatusWire, StrictHealth};
use crate::auth::{Analyst, Auth};
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/ops/slo/status", get(status))
        .route("/api/v1/slos", get(list))
        .route("/healthz/strict", get(strict))
}

/// Every SLO evaluated from the store by a computation started after this
/// call, so the answer is as fresh as the last stored probe; concurrent
/// callers share one evaluation.
async fn fresh(state: &AppState) -> Result<Arc<SloEvaluation>, ApiError> {
    evaluated(state, Duration::ZERO).await
}

async fn evaluated(state: &AppState, max_age: Duration) -> Result<Arc<SloEvaluation>, ApiError> {
    state
        .views
        .slo
        .get(max_age, || async {
            let now = bulwark_ops::Timestamp::now();
            let statuses =
                bulwark_ops::slo_statuses(&state.instance.store, &state.instance.config, now)
                    .await?;
            Ok::<_, ApiError>(Arc::new(SloEvaluation { at: now, statuses }))
        })
        .await
}

/// Every SLO's status, as `bulwark slo status --json`.
#[utoipa::path(get, path = "/api/ops/slo/status", tag = "slo",
    security(("dash_key" = []), ("bearer" = [])),
    responses((status = 200, body = Vec<SloStatusWire>), (status = 401, body = crate::api::ErrorBody)))]
pub(crate) async fn status(
    State(state): State<Arc<AppState>>,
    _auth: Auth<Analyst>,
) -> Result<Json<Vec<SloStatusWire>>, ApiError> {
    let e = fresh(&state).await?;
    Ok(Json(e.statuses.iter().map(SloStatusWire::from).collect()))
}

/// Every SLO's status: the same answer as `/api/ops/slo/status`, under the
/// versioned API beside the other resources.
#[utoipa::path(get, path = "/api/v1/slos", tag = "slo",
    security(("dash_key" = []), ("bearer" = [])),
    responses((status = 200, body = Vec<SloStatusWire>), (status = 401, body = crate::api::ErrorBody)))]
pub(crate) async fn list(
    state: State<Arc<AppState>>,
    auth: Auth<Analyst>,
) -> Result<Json<Vec<SloStatusWire>>, ApiError> {
    status(state, auth).await
}

/// 503 when a strict SLO has consumed at least `strict_budget_threshold` of
/// its error budget, naming it; else 200.
///
/// Anyone may call it, so it never evaluates SLOs per request: it serves
/// the monitoring engine's latest evaluation, or without an engine (or
/// before its first pass) an evaluation at most the view TTL old.
#[utoipa::path(get, path = "/healthz/strict", tag = "health",
    responses((status = 200, body = StrictHealth), (status = 503, body = StrictHealth)))]
pub(crate) async fn strict(
    State(state): State<Arc<AppState>>,
) -> Result<(StatusCode, Json<StrictHealth>), ApiError> {
    let e = match state.live.as_ref().and_then(|l| l.slo_evaluation()) {
        Some(e) => e,
        None => evaluated(&state, state.view_ttl).await?,
    };
    let threshold = state.instance.config.server.strict_budget_threshold;
    let failing: Vec<String> =
        bulwark_ops::strict_slo_failures(&state.instance.config, &e.statuses, threshold)
            .into_iter()
            .map(|s| s.name.clone())
            .collect();
    let code = if failing.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((
        code,
        Json(StrictHealth {
            status: if failing.is_empty() {
                "ok"
            } else {
                "budget_exhausted"
            },
            threshold,
            failing,
            evaluated_at: wire_time(e.at),
        }),
    ))
}
