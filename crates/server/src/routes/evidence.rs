//! The evidence routes: snapshots of configured backups, the `ops check`
//! table, the monthly report and drill history — the HTTP side of
//! `bulwark snapshots`, `ops check`, `report` and `drill last`.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bulwark_ops::report::{self, render, Period};

use crate::api::{
    BackupSnapshots, DrillQuery, OpsCheck, OpsCheckRow, ReportQuery, SnapshotQuery, SnapshotWire,
};
use crate::auth::{Analyst, Auth};
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/snapshots", get(snapshots))
        .route("/api/v1/ops/check", get(ops_check))
        .route("/api/v1/reports/{period}", get(monthly_report))
        .route("/api/v1/drills", get(drills))
}

/// The snapshots of every configured backup (or of `backup`), oldest
/// first. A repository that cannot be read is reported in its entry's
/// `error`, not as a failure of the whole listing.
#[utoipa::path(get, path = "/api/v1/snapshots", tag = "backups", params(SnapshotQuery),
    security(("dash_key" = []), ("bearer" = [])),
    responses((status = 200, body = Vec<BackupSnapshots>), (status = 401, body = crate::api::ErrorBody),
        (status = 404, body = crate::api::ErrorBody)))]
pub(crate) async fn snapshots(
    State(state): State<Arc<AppState>>,
    _auth: Auth<Analyst>,
    query: Result<Query<SnapshotQuery>, QueryRejection>,
) -> Result<Json<Vec<BackupSnapshots>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let backups: Vec<_> = state
        .config
        .backups
        .iter()
        .filter(|b| q.backup.as_ref().is_none_or(|n| *n == b.name))
        .cloned()
        .collect();
    if let (Some(name), true) = (&q.backup, backups.is_empty()) {
        return Err(ApiError::NotFound(format!("no backup named {name:?}")));
    }
    // The engine is synchronous and reads the repository's snapshot files.
    let listed = tokio::task::spawn_blocking(move || {
        backups
            .into_iter()
            .map(|b| match bulwark_ops::backups::snapshots(&b) {
                Ok(list) => BackupSnapshots {
                    backup: b.name,
                    snapshots: list.into_iter().map(SnapshotWire::from).collect(),
                    error: None,
                },
                Err(e) => BackupSnapshots {
                    backup: b.name,
                    snapshots: Vec::new(),
                    error: Some(e.to_string()),
                },
            })
            .collect()
    })
    .await
    .map_err(ApiError::internal)?;
    Ok(Json(listed))
}

/// `bulwark ops check` as JSON: probes every monitor once, then reads SLO
/// budgets, backup, verification and drill freshness, secret ages and the
/// audit chain. `ok` is false when any row failed (the CLI's exit 1).
#[utoipa::path(get, path = "/api/v1/ops/check", tag = "ops",
    security(("dash_key" = []), ("bearer" = [])),
    responses((status = 200, body = OpsCheck), (status = 401, body = crate::api::ErrorBody)))]
pub(crate) async fn ops_check(
    State(state): State<Arc<AppState>>,
    _auth: Auth<Analyst>,
) -> Result<Json<OpsCheck>, ApiError> {
    let rows = bulwark_ops::opscheck::run(
        &state.store,
        &state.config,
        &state.data_dir,
        chrono::Utc::now(),
    )
    .await?;
    Ok(Json(OpsCheck {
        ok: bulwark_ops::opscheck::all_ok(&rows),
        rows: rows.into_iter().map(OpsCheckRow::from).collect(),
    }))
}

/// The monthly reliability report for `period` (YYYY-MM, UTC), as
/// `bulwark report` writes it: JSON, Markdown or self-contained HTML.
#[utoipa::path(get, path = "/api/v1/reports/{period}", tag = "ops",
    params(("period" = String, Path, description = "YYYY-MM"), ReportQuery),
    security(("dash_key" = []), ("bearer" = [])),
    responses((status = 200, description = "the report in the asked format"),
        (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody)))]
pub(crate) async fn monthly_report(
    State(state): State<Arc<AppState>>,
    _auth: Auth<Analyst>,
    Path(period): Path<String>,
    query: Result<Query<ReportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let period = Period::parse(&period).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let format = q.format.unwrap_or_else(|| "json".into());
    if !matches!(format.as_str(), "json" | "md" | "html") {
        return Err(ApiError::BadRequest(format!(
            "invalid format {format:?}: expected json, md or html"
        )));
    }
    let data = report::gather(&state.store, &state.config, period, chrono::Utc::now()).await?;
    Ok(match format.as_str() {
        "md" => (
            [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
            render::markdown(&data),
        )
            .into_response(),
        "html" => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            render::html(&data),
        )
            .into_response(),
        _ => Json(data).into_response(),
    })
}

/// Drill reports, newest first (`bulwark drill last -n N`).
#[utoipa::path(get, path = "/api/v1/drills", tag = "drills", params(DrillQuery),
    security(("dash_key" = []), ("bearer" = [])),
    responses((status = 200, body = Vec<Object>), (status = 400, body = crate::api::ErrorBody),
        (status = 401, body = crate::api::ErrorBody)))]
pub(crate) async fn drills(
    State(state): State<Arc<AppState>>,
    _auth: Auth<Analyst>,
    query: Result<Query<DrillQuery>, QueryRejection>,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = q.limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "invalid limit {limit}: expected 1 to 100"
        )));
    }
    Ok(Json(bulwark_ops::drill::last(&state.store, limit).await?))
}
