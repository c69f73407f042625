//! One router per resource, merged here.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::Router;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

pub(crate) mod audit;
pub(crate) mod backups;
pub(crate) mod drills;
pub(crate) mod evidence;
pub(crate) mod health;
pub(crate) mod incidents;
pub(crate) mod jobs;
pub(crate) mod keys;
pub(crate) mod maintenance;
pub(crate) mod monitors;
pub(crate) mod openapi;
pub(crate) mod secrets;
pub(crate) mod silences;
pub(crate) mod slo;
pub(crate) mod whoami;

/// The JSON API's routes.
pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .merge(health::router())
        .nest("/api/v1/keys", keys::router())
        .nest("/api/v1/audit", audit::router())
        .nest("/api/v1/secrets", secrets::router())
        .nest("/api/v1/jobs", jobs::router())
        .merge(backups::router())
        .merge(drills::router())
        .merge(evidence::router())
        .merge(monitors::router())
        .merge(slo::router())
        .nest("/api/v1/incidents", incidents::router())
        .nest("/api/v1/silences", silences::router())
        .nest("/api/v1/maintenance", maintenance::router())
        .merge(whoami::router())
        .merge(openapi::router())
}

/// A JSON body whose rejection is an [`ApiError`] naming what is wrong
/// (axum's default answers plain text).
pub(crate) struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::BadRequest(format!(
                "invalid body: {}",
                e.body_text()
            ))),
            Err(e) => Err(ApiError::BadRequest(format!(
                "invalid body: {}",
                e.body_text()
            ))),
        }
    }
}
