//! `GET /api/ops/dr/last`: the latest DR drill reports.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use crate::api::DrillReportWire;
use crate::auth::{Analyst, Auth};
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new().route("/api/ops/dr/last", get(last))
}

/// The last 3 drill reports, newest first: steps, pass/fail, RTO and RPO
/// against their targets.
#[utoipa::path(get, path = "/api/ops/dr/last", tag = "drills",
    security(("dash_key" = []), ("bearer" = [])),
    responses((status = 200, body = Vec<DrillReportWire>), (status = 401, body = crate::api::ErrorBody)))]
pub(crate) async fn last(
    State(state): State<Arc<AppState>>,
    _auth: Auth<Analyst>,
) -> Result<Json<Vec<DrillReportWire>>, ApiError> {
    let reports = bulwark_ops::last_drills(&state.instance.store, 3).await?;
    Ok(Json(
        reports.into_iter().map(DrillReportWire::from).collect(),
    ))
}
