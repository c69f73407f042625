//! The OpenAPI 3 description, generated from the handlers' annotations.

use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Bulwark", description = "Uptime, SLOs, alerting, verified backups and DR drills in one binary."),
    paths(
        crate::routes::health::healthz,
        crate::routes::health::metrics,
        crate::routes::whoami::whoami,
        crate::routes::keys::create,
        crate::routes::keys::list,
        crate::routes::keys::revoke,
        crate::routes::audit::list,
        crate::routes::secrets::list,
        crate::routes::secrets::rotate,
        crate::routes::jobs::list,
        crate::routes::jobs::run,
        crate::routes::drills::last,
        crate::routes::evidence::snapshots,
        crate::routes::evidence::ops_check,
        crate::routes::evidence::monthly_report,
        crate::routes::evidence::drills,
        crate::routes::monitors::list,
        crate::routes::monitors::results,
        crate::routes::monitors::test,
        crate::routes::monitors::push,
        crate::routes::monitors::create_push_token,
        crate::routes::slo::status,
        crate::routes::slo::list,
        crate::routes::slo::strict,
        crate::routes::incidents::list,
        crate::routes::silences::list,
        crate::routes::silences::create,
        crate::routes::silences::expire,
        crate::routes::maintenance::list,
        crate::routes::maintenance::create,
        crate::routes::maintenance::remove,
    ),
    modifiers(&KeySchemes)
)]
pub(crate) struct ApiDoc;

struct KeySchemes;

impl Modify for KeySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "dash_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Dash-Key"))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new().route(
        "/api/openapi.json",
        get(|| async { Json(ApiDoc::openapi()) }),
    )
}
