//! Scheduled jobs: their timetable and last outcome; manual runs.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use bulwark_ops::{ClaimError, JobError};

use crate::api::{JobRunStatus, JobRunWire, JobWire, ProgressWire};
use crate::auth::{Admin, Analyst, Auth};
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(list))
        .route("/{name}/run", post(run))
        .route("/runs/{id}", get(run_status))
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> ApiError {
        match e {
            JobError::Unknown(_) => ApiError::NotFound(e.to_string()),
            JobError::Claim(ClaimError::AlreadyRunning(_) | ClaimError::SlotTaken { .. }) => {
                ApiError::Conflict(e.to_string())
            }
            other => ApiError::internal(other),
        }
    }
}

/// Every job with its schedule, next run and latest run.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs",
    security(("dash_key" = []), ("bearer" = [])),
    responses((status = 200, body = Vec<JobWire>), (status = 401, body = crate::api::ErrorBody)))]
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    _auth: Auth<Analyst>,
) -> Result<Json<Vec<JobWire>>, ApiError> {
    let jobs = state.instance.scheduler.list(chrono::Utc::now()).await?;
    Ok(Json(jobs.into_iter().map(JobWire::from).collect()))
}

/// Runs a job now and answers with the finished run (a failed run is a 200
/// whose `outcome` is `failure`). 409 while the job is already running.
#[utoipa::path(post, path = "/api/v1/jobs/{name}/run", tag = "jobs",
    params(("name" = String, Path, description = "Job name, e.g. rotate:DASHBOARD_KEY")),
    security(("dash_key" = []), ("bearer" = [])),
    responses((status = 200, body = JobRunWire), (status = 403, body = crate::api::ErrorBody),
              (status = 404, body = crate::api::ErrorBody), (status = 409, body = crate::api::ErrorBody)))]
pub(crate) async fn run(
    State(state): State<Arc<AppState>>,
    auth: Auth<Admin>,
    Path(name): Path<String>,
) -> Result<Json<JobRunWire>, ApiError> {
    let run = state
        .instance
        .scheduler
        .run_now(&name, &auth.actor())
        .await?;
    Ok(Json(run.into()))
}

/// One run: how it ended, or how far it got while it runs on this instance.
#[utoipa::path(get, path = "/api/v1/jobs/runs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "A run id, as a run or a started job gives it")),
    security(("dash_key" = []), ("bearer" = [])),
    responses((status = 200, body = JobRunStatus), (status = 404, body = crate::api::ErrorBody)))]
pub(crate) async fn run_status(
    State(state): State<Arc<AppState>>,
    _auth: Auth<Analyst>,
    Path(id): Path<String>,
) -> Result<Json<JobRunStatus>, ApiError> {
    let Some(run) = bulwark_ops::get_run(&state.instance.store, &id).await? else {
        return Err(ApiError::NotFound(format!("no job run {id:?}")));
    };
    // A run is recorded as finished a moment before its progress entry
    // goes: once finished, there is no progress to show.
    let progress = run
        .finished_at
        .is_none()
        .then(|| state.instance.scheduler.run_progress(&id))
        .flatten()
        .map(|p| ProgressWire {
            phase: p.phase,
            files: p.files,
            bytes: p.bytes,
        });
    Ok(Json(JobRunStatus {
        run: JobRunWire::from(run),
        progress,
    }))
}
