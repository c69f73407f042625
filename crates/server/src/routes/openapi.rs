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
        super::jobs::run_status,
        super::backups::restore,
        super::drills::last,
        super::evidence::snapshots,
        super::evidence::ops_check,
        super::evidence::monthly_report,
        super::evidence::drills,
        super::monitors::list,
        super::monitors::results,
        super::monitors::test,
        super::monitors::push,
        super::monitors::push_get,
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
    modifiers(&KeySchemes, &OperationIds)
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

/// Names every operation `<method>_<path>` (`get_api_v1_keys`,
/// `delete_api_v1_keys_id`): unique by construction, where utoipa's default,
/// the handler's name, repeats (`list` in nine modules), which breaks client
/// generators.
struct OperationIds;

impl Modify for OperationIds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let slug: String = path
                .trim_start_matches('/')
                .chars()
                .filter(|c| !matches!(c, '{' | '}'))
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            let operations = [
                ("get", &mut item.get),
                ("put", &mut item.put),
                ("post", &mut item.post),
                ("delete", &mut item.delete),
                ("options", &mut item.options),
                ("head", &mut item.head),
                ("patch", &mut item.patch),
                ("trace", &mut item.trace),
            ];
            for (method, operation) in operations {
                if let Some(op) = operation {
                    op.operation_id = Some(format!("{method}_{slug}"));
                }
            }
        }
    }
}

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new().route(
        "/api/openapi.json",
        get(|| async { Json(ApiDoc::openapi()) }),
    )
}
