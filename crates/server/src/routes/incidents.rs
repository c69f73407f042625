use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};

use crate::api::{IncidentQuery, IncidentWire};
use crate::auth::{Analyst, Auth};
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new().route("/", get(list))
}

/// Incidents, newest first.
#[utoipa::path(get, path = "/api/v1/incidents", tag = "monitors", params(IncidentQuery),
    security(("dash_key" = []), ("bearer" = [])),
    responses((status = 200, body = Vec<IncidentWire>), (status = 401, body = crate::api::ErrorBody)))]
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    _auth: Auth<Analyst>,
    query: Result<Query<IncidentQuery>, QueryRejection>,
) -> Result<Json<Vec<IncidentWire>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "invalid limit {limit}: expected 1 to 1000"
        )));
    }
    let list = bulwark_ops::list_incidents(
        &state.instance.store,
        q.monitor.as_deref(),
        q.open.unwrap_or(false),
        limit,
    )
    .await?;
    Ok(Json(list.into_iter().map(IncidentWire::from).collect()))
}
