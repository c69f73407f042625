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
        super::health::healthz,
        super::health::metrics,
        super::whoami::whoami,
        super::keys::create,
        super::keys::list,
        super::keys::revoke,
        super::audit::list,
        super::secrets::list,
        super::secrets::rotate,
        super::jobs::list,
        super::jobs::run,
        super::drills::last,
        super::evidence::snapshots,
        super::evidence::ops_check,
        super::evidence::monthly_report,
        super::evidence::drills,
        super::monitors::list,
        super::monitors::results,
        super::monitors::test,
        super::monitors::push,
        super::monitors::create_push_token,
        super::slo::status,
        super::slo::list,
        super::slo::strict,
        super::incidents::list,
        super::silences::list,
        super::silences::create,
        super::silences::expire,
        super::maintenance::list,
        super::maintenance::create,
        super::maintenance::remove,
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
