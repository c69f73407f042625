//! Bulwark's HTTP API: a thin axum layer over `bulwark-ops`.
//!
//! Every protected handler takes an [`auth::Auth`] extractor naming the least
//! role it needs, so the key check cannot be forgotten; refusals (401, 403,
//! 429) are written to the audit trail by the extractor itself. Wire types
//! live in [`api`] and are converted by hand from domain types, so the
//! domain can change without breaking clients. The CLI prints the same
//! types for `--json`, so a command and its route answer the same document.
//!
//! ```no_run
//! # async fn demo(state: std::sync::Arc<bulwark_server::AppState>) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let options = bulwark_server::ServeOptions::from_config(&state.instance.config.server);
//! bulwark_server::serve(listener, state, options, std::future::pending()).await;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod api;
pub(crate) mod auth;
pub(crate) mod cache;
pub(crate) mod client;
pub(crate) mod error;
pub(crate) mod limiter;
pub(crate) mod metrics;
pub(crate) mod monitoring;
pub(crate) mod routes;
pub(crate) mod serve;
pub(crate) mod state;
pub(crate) mod storage_metrics;
pub(crate) mod web;

use std::sync::Arc;

use axum::extract::Request;
use axum::Router;

// Public API.
pub use limiter::FailureLimiter;
pub use metrics::Metrics;
pub use monitoring::{events_observer, monitoring_observer};
pub use serve::{serve, ServeOptions};
pub use state::{AppState, DEFAULT_VIEW_TTL};

/// The whole HTTP application.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .merge(routes::router())
        .merge(web::router())
        .fallback(|| async { error::ApiError::NotFound("no such route".into()) })
        .with_state(state.clone())
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            strict_transport,
        ))
        // Pages of a thousand monitors are megabytes of repetitive markup
        // (tens of kB gzipped). tower-http leaves event streams and images
        // uncompressed.
        .layer(tower_http::compression::CompressionLayer::new().gzip(true))
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(request_span))
}

/// For a client that came over TLS (through a trusted proxy: Bulwark
/// serves plain HTTP): only the `__Host-` session cookie counts, the plain
/// one is taken out of the request (a plain-HTTP page or a subdomain may
/// have planted it, to sign the victim into the attacker's session); and
/// every answer carries HSTS, so the browser never tries plain HTTP on
/// this host for a year and a network attacker cannot strip TLS off the
/// sign-in. Over plain HTTP neither applies (browsers ignore HSTS there).
async fn strict_transport(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let (mut parts, body) = request.into_parts();
    let https = client::forwarded_https(&parts, &state.instance.config.server.trusted_proxies);
    if https {
        auth::drop_plain_session_cookie(&mut parts.headers);
    }
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if https {
        response.headers_mut().insert(
            axum::http::header::STRICT_TRANSPORT_SECURITY,
            axum::http::HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

/// The request's trace span. It names the route template, never the URI:
/// paths carry push tokens (`/api/v1/push/{token}`) and query strings
/// whatever clients put there, and debug logs are shared more widely than
/// secrets should be.
fn request_span(request: &Request) -> tracing::Span {
    tracing::debug_span!(
        "request",
        method = %metrics::method_label(request.method()),
        route = %metrics::route_label(request),
        version = ?request.version(),
    )
}
