//! The dashboard: server-rendered pages over the same handlers and wire
//! types as the JSON API, a small script for the buttons and live updates,
//! and the stylesheet, all inside the binary (no CDN, no build step).
//!
//! A page is rendered by calling the handler of the route whose document
//! it shows, with the signed-in viewer as the caller, so a page can show
//! nothing its viewer could not fetch from the API. Buttons call the JSON
//! API with the session cookie and the CSRF token from the page's
//! `<meta name="csrf-token">`.

use std::sync::Arc;

use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

mod layout;
mod live;
mod pages;
mod session;
pub(crate) mod status;

pub(crate) use session::Viewer;

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(pages::home))
        .route("/login", post(session::sign_in))
        .route("/logout", post(session::sign_out))
        .route("/monitors/{name}", get(pages::monitor))
        .route("/slos/{name}", get(pages::slo))
        .route("/backups", get(pages::backups))
        .route("/drills", get(pages::drills))
        .route("/secrets", get(pages::secrets))
        .route("/jobs", get(pages::jobs))
        .route("/jobs/runs/{id}", get(pages::job_run))
        .route("/audit", get(pages::audit))
        .route("/events", get(live::events))
        .merge(status::router())
        .route("/assets/app.css", get(stylesheet))
        .route("/assets/app.js", get(script))
}

const APP_CSS: &str = include_str!("../../assets/app.css");
const APP_JS: &str = include_str!("../../assets/app.js");

async fn stylesheet() -> impl IntoResponse {
    asset("text/css; charset=utf-8", APP_CSS)
}

async fn script() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", APP_JS)
}

/// Assets change only with the binary; an hour of caching is safe and
/// keeps page loads to one request.
fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
}
