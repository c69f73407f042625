use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use bulwark_ops::Timestamp;
use bulwark_ops::{create_maintenance, delete_maintenance, list_maintenance, MaintenanceError};

use crate::api::{wire_time, CreateMaintenance, MaintenanceWire};
use crate::auth::{Admin, Analyst, Auth};
use crate::error::ApiError;
use crate::routes::ApiJson;
use crate::state::AppState;

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(list).post(create))
        .route("/{id}", delete(remove))
}

impl From<MaintenanceError> for ApiError {
    fn from(e: MaintenanceError) -> ApiError {
        match e {
            MaintenanceError::Invalid(_) => ApiError::BadRequest(e.to_string()),
            MaintenanceError::NotFound(_) => ApiError::NotFound(e.to_string()),
            other => ApiError::internal(other),
        }
    }
}

/// Maintenance windows from the config and the API.
#[utoipa::path(get, path = "/api/v1/maintenance", tag = "alerts",
    security(("dash_key" = []), ("bearer" = [])),
    responses((status = 200, body = Vec<MaintenanceWire>), (status = 401, body = crate::api::ErrorBody)))]
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    _auth: Auth<Analyst>,
) -> Result<Json<Vec<MaintenanceWire>>, ApiError> {
    let now = chrono::Utc::now();
    let mut out: Vec<MaintenanceWire> = state
        .instance
        .config
        .maintenance
        .iter()
        .map(|m| MaintenanceWire {
            id: None,
            name: m.name.clone(),
            monitors: m.monitors.clone(),
            starts_at: m.start,
            ends_at: m.end,
            source: "config",
            active: m.start <= now && now < m.end,
        })
        .collect();
    let now_t = Timestamp::from(now);
    for w in list_maintenance(&state.instance.store).await? {
        out.push(MaintenanceWire {
            id: Some(w.id),
            name: w.name,
            monitors: w.monitors,
            starts_at: wire_time(w.starts_at),
            ends_at: wire_time(w.ends_at),
            source: "api",
            active: w.starts_at <= now_t && now_t < w.ends_at,
        });
    }
    Ok(Json(out))
}

/// Adds a maintenance window: failures in it neither alert nor count against SLOs.
#[utoipa::path(post, path = "/api/v1/maintenance", tag = "alerts", request_body = CreateMaintenance,
    security(("dash_key" = []), ("bearer" = [])),
    responses((status = 201, body = MaintenanceWire), (status = 400, body = crate::api::ErrorBody)))]
pub(crate) async fn create(
    State(state): State<Arc<AppState>>,
    auth: Auth<Admin>,
    ApiJson(body): ApiJson<CreateMaintenance>,
) -> Result<(StatusCode, Json<MaintenanceWire>), ApiError> {
    for m in &body.monitors {
        if state.instance.config.monitor(m).is_none() {
            return Err(ApiError::BadRequest(format!("no monitor named {m:?}")));
        }
    }
    let w = create_maintenance(
        &state.instance.store,
        &auth.actor(),
        &body.name,
        &body.monitors,
        body.starts_at.into(),
        body.ends_at.into(),
    )
    .await?;
    let now = Timestamp::now();
    Ok((
        StatusCode::CREATED,
        Json(MaintenanceWire {
            id: Some(w.id),
            name: w.name,
            monitors: w.monitors,
            starts_at: wire_time(w.starts_at),
            ends_at: wire_time(w.ends_at),
            source: "api",
            active: w.starts_at <= now && now < w.ends_at,
        }),
    ))
}

/// Deletes a maintenance window made through the API.
#[utoipa::path(delete, path = "/api/v1/maintenance/{id}", tag = "alerts",
    params(("id" = String, Path, description = "Window id")),
    security(("dash_key" = []), ("bearer" = [])),
    responses((status = 204), (status = 404, body = crate::api::ErrorBody)))]
pub(crate) async fn remove(
    State(state): State<Arc<AppState>>,
    auth: Auth<Admin>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    delete_maintenance(&state.instance.store, &auth.actor(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
