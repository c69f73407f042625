use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};

use crate::api::WhoAmI;
use crate::auth::{Analyst, Auth};
use crate::state::AppState;

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/whoami", get(whoami))
}

/// The caller's key name and role.
#[utoipa::path(get, path = "/api/v1/whoami", tag = "auth",
    security(("dash_key" = []), ("bearer" = [])),
    responses((status = 200, body = WhoAmI), (status = 401, body = crate::api::ErrorBody)))]
pub(crate) async fn whoami(auth: Auth<Analyst>) -> Json<WhoAmI> {
    Json(WhoAmI {
        name: auth.principal.name.clone(),
        role: auth.principal.role.into(),
        key_id: auth.principal.key_id.clone(),
    })
}
