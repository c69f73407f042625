//! SLO status and the strict health check.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};

use crate::api::{SloStatusWire, StrictHealth};
use crate::auth::{Analyst, Auth};
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/ops/slo/status", get(status))
        .route("/api/v1/slos", get(list))
        .route("/healthz/strict", get(strict))
}

async fn statuses(state: &AppState) -> Result<Vec<bulwark_ops::slo::SloStatus>, ApiError> {
    // Always computed from the store, so the answer is as fresh as the last
    // probe, with or without a running engine.
    let now = chrono::Utc::now().timestamp_millis();
    Ok(bulwark_ops::slo::status_all(&state.store, &state.config, now).await?)
}

/// Every SLO's status, as `bulwark slo status --json`.
#[utoipa::path(get, path = "/api/ops/slo/status", tag = "slo",
    security(("dash_key" = []), ("bearer" = [])),
    responses((status = 200, body = Vec<SloStatusWire>), (status = 401, body = crate::api::ErrorBody)))]
pub(crate) async fn status(
    State(state): State<Arc<AppState>>,
    _auth: Auth<Analyst>,
) -> Result<Json<Vec<SloStatusWire>>, ApiError> {
    let s = statuses(&state).await?;
    Ok(Json(s.iter().map(SloStatusWire::from).collect()))
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
#[utoipa::path(get, path = "/healthz/strict", tag = "health",
    responses((status = 200, body = StrictHealth), (status = 503, body = StrictHealth)))]
pub(crate) async fn strict(
    State(state): State<Arc<AppState>>,
) -> Result<(StatusCode, Json<StrictHealth>), ApiError> {
    let s = statuses(&state).await?;
    let threshold = state.config.server.strict_budget_threshold;
    let failing: Vec<String> = bulwark_ops::slo::strict_failures(&state.config, &s, threshold)
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
        }),
    ))
}
