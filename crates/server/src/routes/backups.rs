//! Restores of configured backups, started through the API as our users'
//! CI workflow restores a backup by name.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use bulwark_ops::{append_audit, Entry, Outcome, RestoreJob, RestoreRequest};

use super::ApiJson;
use crate::api::{JobStarted, RestoreBody};
use crate::auth::{Admin, Auth};
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/backups/{name}/restore", post(restore))
}

/// Starts restoring a snapshot of backup NAME into a directory on the
/// server's machine and answers at once with the run to follow
/// (`GET /api/v1/jobs/runs/{id}`). Audited as `backup.restore`. 409 while
/// a restore of the same backup runs.
#[utoipa::path(post, path = "/api/v1/backups/{name}/restore", tag = "backups",
    params(("name" = String, Path, description = "A configured [[backup]]")),
    request_body = RestoreBody,
    security(("dash_key" = []), ("bearer" = [])),
    responses((status = 202, body = JobStarted),
        (status = 400, description = "The body or target is invalid; the message names it", body = crate::api::ErrorBody),
        (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::ErrorBody),
        (status = 409, body = crate::api::ErrorBody)))]
pub(crate) async fn restore(
    State(state): State<Arc<AppState>>,
    auth: Auth<Admin>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<RestoreBody>,
) -> Result<(StatusCode, Json<JobStarted>), ApiError> {
    let request = RestoreRequest {
        snapshot: body.snapshot,
        target: PathBuf::from(body.target),
        include: body.include,
        overwrite: body.overwrite,
    };
    let detail = serde_json::json!({
        "snapshot": request.snapshot,
        "target": request.target,
        "include": request.include,
        "overwrite": request.overwrite,
    });
    // Refusals are audited too: they say what someone tried to restore where.
    let refuse = |error: ApiError| async {
        let mut detail = detail.clone();
        detail["error"] = serde_json::json!(error.to_string());
        let entry =
            Entry::new(&auth.actor(), "backup.restore", &name, Outcome::Denied).detail(detail);
        if let Err(e) = append_audit(&state.instance.store, entry).await {
            tracing::error!(error = %e, "cannot record a refused restore in the audit trail");
        }
        Err(error)
    };
    let Some(backup) = state.instance.config.backup(&name) else {
        return refuse(ApiError::NotFound(format!("no backup named {name:?}"))).await;
    };
    if let Err(e) = request.validate(&state.instance.config.server.restore_roots) {
        return refuse(ApiError::BadRequest(e.to_string())).await;
    }
    let job = RestoreJob::job_name(&name);
    let task = RestoreJob {
        backup: backup.clone(),
        request,
        roots: state.instance.config.server.restore_roots.clone(),
    };
    let started = state
        .instance
        .scheduler
        .start_task(&job, task, &auth.actor())
        .await;
    let (outcome, run_id) = match &started {
        Ok(run) => (Outcome::Success, Some(run.id.clone())),
        Err(_) => (Outcome::Failure, None),
    };
    let mut detail = detail;
    detail["run"] = serde_json::json!(run_id);
    let entry = Entry::new(&auth.actor(), "backup.restore", &name, outcome).detail(detail);
    append_audit(&state.instance.store, entry).await?;
    let run = started?;
    Ok((
        StatusCode::ACCEPTED,
        Json(JobStarted {
            status_url: format!("/api/v1/jobs/runs/{}", run.id),
            run_id: run.id,
            job,
        }),
    ))
}
