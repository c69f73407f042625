//! Managed secrets: metadata for analysts, rotation for admins. No route
//! ever returns a value.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use bulwark_ops::{list_secrets, rotate_secret, RotateOptions, SecretError};

use crate::api::{RotateQuery, RotateResult, SecretMetaWire};
use crate::auth::{Admin, Analyst, Auth};
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(list))
        .route("/{name}/rotate", post(rotate))
}

impl From<SecretError> for ApiError {
    fn from(e: SecretError) -> ApiError {
        match e {
            SecretError::Unknown(_) => ApiError::NotFound(e.to_string()),
            SecretError::Conflict(_) => ApiError::Conflict(e.to_string()),
            other => ApiError::internal(other),
        }
    }
}

/// Every configured secret's metadata: version, age, next rotation.
#[utoipa::path(get, path = "/api/v1/secrets", tag = "secrets",
    security(("dash_key" = []), ("bearer" = [])),
    responses((status = 200, body = Vec<SecretMetaWire>), (status = 401, body = crate::api::ErrorBody)))]
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    _auth: Auth<Analyst>,
) -> Result<Json<Vec<SecretMetaWire>>, ApiError> {
    let list = list_secrets(
        &state.instance.store,
        &state.instance.data_dir,
        &state.instance.config.secrets,
        chrono::Utc::now(),
    )
    .await?;
    Ok(Json(list.into_iter().map(SecretMetaWire::from).collect()))
}

/// Rotates a secret when due, or now with `force=true`; `no_grace=true`
/// also revokes the previous value at once (it leaked). Audited.
#[utoipa::path(post, path = "/api/v1/secrets/{name}/rotate", tag = "secrets",
    params(("name" = String, Path, description = "Secret name, e.g. DASHBOARD_KEY"), RotateQuery),
    security(("dash_key" = []), ("bearer" = [])),
    responses((status = 200, body = RotateResult), (status = 403, body = crate::api::ErrorBody),
              (status = 404, body = crate::api::ErrorBody), (status = 409, body = crate::api::ErrorBody)))]
pub(crate) async fn rotate(
    State(state): State<Arc<AppState>>,
    auth: Auth<Admin>,
    Path(name): Path<String>,
    query: Result<Query<RotateQuery>, QueryRejection>,
) -> Result<Json<RotateResult>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let cfg = state
        .instance
        .config
        .secrets
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| SecretError::Unknown(name.clone()))?;
    let rotation = rotate_secret(
        &state.instance.store,
        &state.instance.data_dir,
        cfg,
        &auth.actor(),
        RotateOptions {
            force: q.force.unwrap_or(false),
            no_grace: q.no_grace.unwrap_or(false),
        },
        chrono::Utc::now(),
    )
    .await?;
    Ok(Json(RotateResult::new(&name, rotation)))
}
