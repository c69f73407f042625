use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use bulwark_ops::{query_audit, Filter, Outcome};

use crate::api::{AuditPage, AuditQuery, AuditRecord};
use crate::auth::{Analyst, Auth};
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new().route("/", get(list))
}

/// The audit trail, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    security(("dash_key" = []), ("bearer" = [])),
    responses((status = 200, body = AuditPage), (status = 400, body = crate::api::ErrorBody),
              (status = 401, body = crate::api::ErrorBody)))]
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    _auth: Auth<Analyst>,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let outcome = match q.outcome.as_deref() {
        None => None,
        Some("success") => Some(Outcome::Success),
        Some("failure") => Some(Outcome::Failure),
        Some("denied") => Some(Outcome::Denied),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "invalid outcome {other:?}: expected success, failure or denied"
            )))
        }
    };
    if let Some(limit) = q.limit {
        if !(1..=1000).contains(&limit) {
            return Err(ApiError::BadRequest(format!(
                "invalid limit {limit}: expected 1 to 1000"
            )));
        }
    }
    let limit = q.limit.unwrap_or(100);
    let filter = Filter {
        actor: q.actor,
        action: q.action,
        outcome,
        since: q.since,
        until: q.until,
        before_seq: q.before,
        limit: Some(limit),
    };
    let records = query_audit(&state.instance.store, &filter).await?;
    let next_before = (records.len() == limit as usize)
        .then(|| records.last().map(|r| r.seq))
        .flatten();
    Ok(Json(AuditPage {
        records: records.into_iter().map(AuditRecord::from).collect(),
        next_before,
    }))
}
