use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use crate::api::Health;
use crate::auth::authorize;
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
}

/// Liveness: 200 while the process serves.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "Serving", body = Health)))]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Prometheus text format. Public unless `[server] metrics_require_key`.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain")))]
pub(crate) async fn metrics(
    State(state): State<Arc<AppState>>,
    parts: Parts,
) -> Result<impl IntoResponse, ApiError> {
    if state.instance.config.server.metrics_require_key {
        authorize(&parts, &state, bulwark_ops::Role::Analyst).await?;
    }
    let instance = &state.instance;
    match bulwark_ops::cost_status(&instance.store, &instance.config).await {
        Ok(costs) => state.metrics.storage.set(&costs),
        // The other metrics are still worth serving; the storage gauges
        // keep their previous values.
        Err(e) => tracing::warn!(error = %e, "cannot read storage cost for metrics"),
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    ))
}
