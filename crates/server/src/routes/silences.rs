use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use bulwark_ops::{
    create_silence, expire_silence, list_silences, AlertError, NewSilence, SilenceEnd,
};

use crate::api::{CreateSilence, SilenceQuery, SilenceWire};
use crate::auth::{Admin, Analyst, Auth};
use crate::error::ApiError;
use crate::routes::ApiJson;
use crate::state::AppState;

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(list).post(create))
        .route("/{id}", delete(expire))
}

impl From<AlertError> for ApiError {
    fn from(e: AlertError) -> ApiError {
        match e {
            AlertError::InvalidSilence(_) => ApiError::BadRequest(e.to_string()),
            AlertError::NotFound(_) => ApiError::NotFound(e.to_string()),
            AlertError::AlreadyExpired(_) => ApiError::Conflict(e.to_string()),
            other => ApiError::internal(other),
        }
    }
}

/// Active silences (all with `all=true`), newest first.
#[utoipa::path(get, path = "/api/v1/silences", tag = "alerts", params(SilenceQuery),
    security(("dash_key" = []), ("bearer" = [])),
    responses((status = 200, body = Vec<SilenceWire>), (status = 401, body = crate::api::ErrorBody)))]
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    _auth: Auth<Analyst>,
    query: Result<Query<SilenceQuery>, QueryRejection>,
) -> Result<Json<Vec<SilenceWire>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let now = bulwark_ops::Timestamp::now();
    let list = list_silences(&state.instance.store, q.all.unwrap_or(false), now).await?;
    Ok(Json(list.into_iter().map(SilenceWire::from).collect()))
}

/// Silences a monitor and/or tag until `ends_at` (or for `duration`).
#[utoipa::path(post, path = "/api/v1/silences", tag = "alerts", request_body = CreateSilence,
    security(("dash_key" = []), ("bearer" = [])),
    responses((status = 201, body = SilenceWire), (status = 400, body = crate::api::ErrorBody),
              (status = 403, body = crate::api::ErrorBody)))]
pub(crate) async fn create(
    State(state): State<Arc<AppState>>,
    auth: Auth<Admin>,
    ApiJson(body): ApiJson<CreateSilence>,
) -> Result<(StatusCode, Json<SilenceWire>), ApiError> {
    let ends = match (body.ends_at, body.duration.as_deref()) {
        (Some(t), None) => SilenceEnd::At(t.into()),
        (None, Some(d)) => SilenceEnd::After(
            bulwark_ops::parse_duration(d)
                .map_err(|e| ApiError::BadRequest(format!("invalid duration: {e}")))?,
        ),
        _ => {
            return Err(ApiError::BadRequest(
                "give exactly one of ends_at and duration".into(),
            ))
        }
    };
    let new = NewSilence {
        monitor: body.monitor.as_deref(),
        tag: body.tag.as_deref(),
        comment: &body.comment,
        ends,
    };
    let s = create_silence(
        &state.instance.store,
        &state.instance.config,
        &auth.actor(),
        new,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(s.into())))
}

/// Ends a silence now.
#[utoipa::path(delete, path = "/api/v1/silences/{id}", tag = "alerts",
    params(("id" = String, Path, description = "Silence id")),
    security(("dash_key" = []), ("bearer" = [])),
    responses((status = 200, body = SilenceWire), (status = 404, body = crate::api::ErrorBody),
              (status = 409, body = crate::api::ErrorBody)))]
pub(crate) async fn expire(
    State(state): State<Arc<AppState>>,
    auth: Auth<Admin>,
    Path(id): Path<String>,
) -> Result<Json<SilenceWire>, ApiError> {
    let s = expire_silence(&state.instance.store, &auth.actor(), &id).await?;
    Ok(Json(s.into()))
}
