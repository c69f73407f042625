//! The public status page (`GET /status`) and badges
//! (`GET /badge/{NAME}.svg`). No key: they show only what
//! [`bulwark_ops::public_status`] puts in the public view (monitors marked
//! `public = true`, their state, daily uptime, when their open incidents
//! began), never a target, a probe error or a private monitor's name.
//!
//! The view is read from the store by one request at a time and shared for
//! the view TTL (see [`crate::AppState::with_view_ttl`]), so a crowd of
//! visitors or a README full of badges costs three queries per TTL; the
//! running engine's state (up/down) is applied on every request.

use bulwark_ops::public_status;
use bulwark_ops::Timestamp;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bulwark_ops::{
    badge_svg, uptime_bars, Day, Level, MonitorState, PublicMonitor, PublicStatus, BADGE_DAYS,
};
use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::error::ApiError;
use crate::state::AppState;

const CSS: &str = include_str!("../../assets/status.css");
/// Clients and proxies may keep a page this long.
const PAGE_CACHE: &str = "public, max-age=30";
/// Badges are fetched through image proxies (GitHub's camo) that honour it.
const BADGE_CACHE: &str = "public, max-age=60";
/// Nothing but the inline stylesheet; no script at all.
const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; \
                        form-action 'none'; frame-ancestors 'none'";

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/status", get(page))
        .route("/badge/{file}", get(badge))
}

/// The public view, the engine's state applied.
async fn view(state: &AppState) -> Result<Arc<PublicStatus>, ApiError> {
    let cached = state
        .views
        .status
        .get(state.view_ttl, || async {
            let now = Timestamp::now();
            public_status(
                &state.instance.store,
                &state.instance.config,
                &state.views.daily,
                now,
            )
            .await
            .map(Arc::new)
        })
        .await?;
    Ok(match &state.live {
        Some(live) if !cached.monitors.is_empty() => {
            let mut fresh = (*cached).clone();
            fresh.apply_live(&live.monitors());
            Arc::new(fresh)
        }
        _ => cached,
    })
}

fn pct(uptime: Option<f64>) -> String {
    match uptime {
        Some(u) if u >= 1.0 => "100%".to_string(),
        Some(u) => {
            // Never round a bad figure up to 100%.
            let shown = (u * 100_000.0).floor() / 1000.0;
            format!("{shown:.3}%")
        }
        None => "no data".to_string(),
    }
}

fn time(t: Timestamp) -> chrono::DateTime<chrono::Utc> {
    t.to_datetime()
}

fn since(now: Timestamp, from: Timestamp) -> String {
    let secs = (now - from).as_secs();
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h) {
        (0, 0) => format!("{m}m"),
        (0, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

fn bars(m: &PublicMonitor) -> String {
    let days: Vec<Day> = m
        .days
        .iter()
        .map(|(date, c)| Day {
            date: *date,
            uptime: c.uptime(),
        })
        .collect();
    uptime_bars(&format!("Daily uptime of {}", m.name), &days)
}

fn render(view: &PublicStatus, now: Timestamp) -> Markup {
    let down = view
        .monitors
        .iter()
        .filter(|m| m.state == MonitorState::Down)
        .count();
    let (summary_class, summary) = match (view.monitors.len(), down) {
        (0, _) => ("unknown", "No services are published here yet.".to_string()),
        (_, 0) => ("up", "All systems operational".to_string()),
        (n, d) => ("down", format!("{d} of {n} services down")),
    };
    let days = view.monitors.first().map_or(0, |m| m.days.len());
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Service status" }
                style { (PreEscaped(CSS)) }
            }
            body {
                main {
                    h1 { "Service status" }
                    p class={ "summary " (summary_class) } role="status" { (summary) }
                    @if !view.incidents.is_empty() {
                        section aria-labelledby="incidents" {
                            h2 id="incidents" { "Open incidents" }
                            ul class="incidents" {
                                @for i in &view.incidents {
                                    li {
                                        strong { (i.monitor) } " is down since "
                                        time datetime=(time(i.opened_at).to_rfc3339()) {
                                            (time(i.opened_at).format("%Y-%m-%d %H:%M UTC"))
                                        }
                                        " (" (since(now, i.opened_at)) ")"
                                    }
                                }
                            }
                        }
                    }
                    @if !view.monitors.is_empty() {
                        section aria-labelledby="services" {
                            h2 id="services" { "Services" }
                            ul {
                                @for m in &view.monitors {
                                    li class="monitor" {
                                        div class="head" {
                                            span class="name" { (m.name) }
                                            span class={ "state " (m.state.as_str()) } { (m.state.as_str()) }
                                            span class="uptime" {
                                                (pct(m.uptime(days))) " uptime, " (days) " days"
                                            }
                                        }
                                        (PreEscaped(bars(m)))
                                        div class="axis" aria-hidden="true" {
                                            span { (days) " days ago" } span { "today" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    footer {
                        "Updated " (time(view.at).format("%Y-%m-%d %H:%M:%S UTC")) ". "
                        "Each bar is a UTC day: green is up; amber, orange and red mark "
                        "downtime (below 99.9%, 99% and 95%); grey means no data."
                    }
                }
            }
        }
    }
}

/// The public status page: monitors marked `public = true` only.
pub(crate) async fn page(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let view = view(&state).await?;
    let body = render(&view, Timestamp::now()).into_string();
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, PAGE_CACHE),
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response())
}

/// A public monitor's badge: its state and uptime over the last
/// [`BADGE_DAYS`] days. A private monitor and an unknown name get the same
/// 404, so the route does not tell which names exist.
pub(crate) async fn badge(
    State(state): State<Arc<AppState>>,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound("no such badge".into());
    let name = file.strip_suffix(".svg").ok_or_else(not_found)?;
    // Only configured public monitors are in the view; checking the config
    // first spares the store a lookup for names that cannot match.
    if !state
        .instance
        .config
        .monitor(name)
        .is_some_and(|m| m.public)
    {
        return Err(not_found());
    }
    let view = view(&state).await?;
    let m = view.monitor(name).ok_or_else(not_found)?;
    let uptime = m.uptime(BADGE_DAYS);
    let (message, level) = match m.state {
        MonitorState::Down => (format!("down {}", pct(uptime)), Level::Bad),
        MonitorState::Unknown => ("unknown".to_string(), Level::NoData),
        MonitorState::Up => match uptime {
            Some(_) => (format!("up {}", pct(uptime)), Level::of(uptime)),
            None => ("up".to_string(), Level::Ok),
        },
    };
    let svg = badge_svg(&m.name, &message, level);
    let mut resp = svg.into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(BADGE_CACHE));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_never_round_up_to_a_perfect_score() {
        let check = |u: Option<f64>, expected: &str| assert_eq!(pct(u), expected, "{u:?}");
        check(Some(1.0), "100%");
        check(Some(0.999_999), "99.999%");
        check(Some(0.5), "50.000%");
        check(Some(0.0), "0.000%");
        check(None, "no data");
    }

    #[test]
    fn durations_read_naturally() {
        let check = |secs: i64, expected: &str| {
            assert_eq!(
                since(Timestamp::from_millis(secs * 1000), Timestamp::EPOCH),
                expected
            )
        };
        check(59, "0m");
        check(125, "2m");
        check(3 * 3600 + 60, "3h 1m");
        check(2 * 86_400 + 5 * 3600, "2d 5h");
        check(-5, "0m");
    }
}
