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
use bulwark_ops::{
    gather_report, report_html, report_json, report_markdown, BackupConfig, Period, ReportDocument,
};

use crate::api::{BackupSnapshots, DrillQuery, OpsCheck, ReportQuery, SnapshotQuery, SnapshotWire};
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
        .instance
        .config
        .backups
        .iter()
        .filter(|b| q.backup.as_ref().is_none_or(|n| *n == b.name))
        .cloned()
        .collect();
    if let (Some(name), true) = (&q.backup, backups.is_empty()) {
        return Err(ApiError::NotFound(format!("no backup named {name:?}")));
    }
    let mut listed = Vec::with_capacity(backups.len());
    for b in backups {
        listed.push(backup_snapshots(&state, b).await?);
    }
    Ok(Json(listed))
}

/// One backup's listing, from cache when younger than the view TTL. Each
/// repository is opened by one request at a time, and at most
/// `REPOSITORY_OPENINGS` repositories at once: an opening derives the key
/// with scrypt (tens of MiB), and a burst of requests multiplied that.
async fn backup_snapshots(
    state: &AppState,
    backup: BackupConfig,
) -> Result<BackupSnapshots, ApiError> {
    let Some(cache) = state.views.snapshots.get(&backup.name) else {
        // Every configured backup has an entry; this is unreachable.
        return Err(ApiError::internal(anyhow::anyhow!(
            "no snapshot cache for backup {:?}",
            backup.name
        )));
    };
    let openings = state.views.repository_openings.clone();
    cache
        .get(state.view_ttl, || async move {
            let permit = openings.acquire_owned().await.map_err(ApiError::internal)?;
            // The engine is synchronous and reads the repository's snapshot
            // files. The permit goes with it, so the bound holds even when
            // this request is dropped before the listing ends.
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                match bulwark_ops::backup_snapshots(&backup) {
                    Ok(list) => BackupSnapshots {
                        backup: backup.name,
                        snapshots: list.into_iter().map(SnapshotWire::from).collect(),
                        error: None,
                    },
                    Err(e) => BackupSnapshots {
                        backup: backup.name,
                        snapshots: Vec::new(),
                        error: Some(e.to_string()),
                    },
                }
            })
            .await
            .map_err(ApiError::internal)
        })
        .await
}

/// `bulwark ops check` as JSON: probes every monitor once, then reads SLO
/// budgets, backup, verification and drill freshness, secret ages and the
/// audit chain. `ok` is false when any row failed (the CLI's exit 1).
///
/// Probing every monitor is expensive, so one check runs at a time and its
/// answer is served for the view TTL (15 s by default).
#[utoipa::path(get, path = "/api/v1/ops/check", tag = "ops",
    security(("dash_key" = []), ("bearer" = [])),
    responses((status = 200, body = OpsCheck), (status = 401, body = crate::api::ErrorBody)))]
pub(crate) async fn ops_check(
    State(state): State<Arc<AppState>>,
    _auth: Auth<Analyst>,
) -> Result<Json<OpsCheck>, ApiError> {
    let check = state
        .views
        .ops_check
        .get(state.view_ttl, || async {
            let rows = bulwark_ops::run_ops_check(
                &state.instance.store,
                &state.instance.config,
                &state.instance.data_dir,
                chrono::Utc::now(),
            )
            .await?;
            Ok::<_, ApiError>(OpsCheck::from(rows))
        })
        .await?;
    Ok(Json(check))
}

/// The monthly reliability report for `period` (YYYY-MM, UTC), as
/// `bulwark report` writes it: JSON (the versioned `ReportDocument`, the
/// default), Markdown or self-contained HTML.
#[utoipa::path(get, path = "/api/v1/reports/{period}", tag = "ops",
    params(("period" = String, Path, description = "YYYY-MM"), ReportQuery),
    security(("dash_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "the report in the asked format", content(
            (ReportDocument = "application/json"),
            (String = "text/markdown"),
            (String = "text/html"))),
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
    let data = gather_report(
        &state.instance.store,
        &state.instance.config,
        period,
        chrono::Utc::now(),
    )
    .await?;
    Ok(match format.as_str() {
        "md" => (
            [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
            report_markdown(&data),
        )
            .into_response(),
        "html" => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            report_html(&data),
        )
            .into_response(),
        _ => (
            [(header::CONTENT_TYPE, "application/json")],
            report_json(&data),
        )
            .into_response(),
    })
}

/// Drill reports, newest first (`bulwark drill last -n N`).
#[utoipa::path(get, path = "/api/v1/drills", tag = "drills", params(DrillQuery),
    security(("dash_key" = []), ("bearer" = [])),
    responses((status = 200, body = Vec<crate::api::DrillReportWire>), (status = 400, body = crate::api::ErrorBody),
        (status = 401, body = crate::api::ErrorBody)))]
pub(crate) async fn drills(
    State(state): State<Arc<AppState>>,
    _auth: Auth<Analyst>,
    query: Result<Query<DrillQuery>, QueryRejection>,
) -> Result<Json<Vec<crate::api::DrillReportWire>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = q.limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "invalid limit {limit}: expected 1 to 100"
        )));
    }
    let reports = bulwark_ops::last_drills(&state.instance.store, limit).await?;
    Ok(Json(reports.into_iter().map(Into::into).collect()))
}
