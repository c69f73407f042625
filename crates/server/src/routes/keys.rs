use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use bulwark_ops::{create_key, list_keys, revoke_key, KeyError};

use crate::api::{CreateKey, CreatedKey, KeyMeta};
use crate::auth::{Admin, Auth};
use crate::error::ApiError;
use crate::routes::ApiJson;
use crate::state::AppState;

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(list).post(create))
        .route("/{id}", delete(revoke))
}

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> ApiError {
        match e {
            KeyError::InvalidName(_) => ApiError::BadRequest(e.to_string()),
            KeyError::NotFound(_) => ApiError::NotFound(e.to_string()),
            KeyError::AlreadyRevoked(_) => ApiError::Conflict(e.to_string()),
            other => ApiError::internal(other),
        }
    }
}

/// Creates a key. The key is in this response only.
#[utoipa::path(post, path = "/api/v1/keys", tag = "keys", request_body = CreateKey,
    security(("dash_key" = []), ("bearer" = [])),
    responses((status = 201, body = CreatedKey), (status = 400, body = crate::api::ErrorBody),
              (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody)))]
pub(crate) async fn create(
    State(state): State<Arc<AppState>>,
    auth: Auth<Admin>,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let created = create_key(
        &state.instance.store,
        &auth.actor(),
        body.role.into(),
        &body.name,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(CreatedKey::from(created))))
}

/// Every key's metadata (never the key), newest first.
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys",
    security(("dash_key" = []), ("bearer" = [])),
    responses((status = 200, body = Vec<KeyMeta>), (status = 403, body = crate::api::ErrorBody)))]
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    _auth: Auth<Admin>,
) -> Result<Json<Vec<KeyMeta>>, ApiError> {
    let keys = list_keys(&state.instance.store).await?;
    Ok(Json(keys.into_iter().map(KeyMeta::from).collect()))
}

/// Revokes a key; it stops working at once.
#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = "keys",
    params(("id" = String, Path, description = "Key id, e.g. k_3f9a2b1c04d5")),
    security(("dash_key" = []), ("bearer" = [])),
    responses((status = 200, body = KeyMeta), (status = 404, body = crate::api::ErrorBody),
              (status = 409, body = crate::api::ErrorBody)))]
pub(crate) async fn revoke(
    State(state): State<Arc<AppState>>,
    auth: Auth<Admin>,
    Path(id): Path<String>,
) -> Result<Json<KeyMeta>, ApiError> {
    let info = revoke_key(&state.instance.store, &auth.actor(), &id).await?;
    Ok(Json(info.into()))
}
