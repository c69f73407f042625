//! The page shell every dashboard page shares, the sign-in page, and small
//! formatting helpers.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::Viewer;

/// Where a page sits in the navigation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Overview,
    Backups,
    Drills,
    Secrets,
    Jobs,
    Audit,
}

const NAV: &[(Section, &str, &str)] = &[
    (Section::Overview, "/", "Overview"),
    (Section::Backups, "/backups", "Backups"),
    (Section::Drills, "/drills", "Drills"),
    (Section::Secrets, "/secrets", "Secrets"),
    (Section::Jobs, "/jobs", "Jobs"),
    (Section::Audit, "/audit", "Audit"),
];

/// Scripts and styles from our own origin only, no inline script, no
/// framing: a value that slipped past escaping still could not run.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// An HTML response with the dashboard's security headers. Pages show
/// live state, so nothing is cached.
pub(crate) fn html_response(status: StatusCode, body: Markup) -> Response {
    let mut response = (status, body.into_string()).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Not `no-referrer`: under it browsers send `Origin: null` with the
    // page's own form posts, and sign-in and sign-out (which check Origin)
    // would refuse every real browser. `same-origin` still tells other
    // sites nothing.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

fn head(title: &str, csrf: Option<&str>) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="color-scheme" content="light dark";
            @if let Some(token) = csrf { meta name="csrf-token" content=(token); }
            title { (title) " · Bulwark" }
            link rel="stylesheet" href="/assets/app.css";
            script src="/assets/app.js" defer {}
        }
    }
}

/// A signed-in page: navigation, who is signed in, sign-out, and `body`.
pub(crate) fn page(viewer: &Viewer, section: Section, title: &str, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, Some(&viewer.csrf)))
            body data-role=(viewer.principal.role.as_str()) {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "Bulwark" }
                    nav aria-label="Sections" {
                        ul {
                            @for (s, href, label) in NAV {
                                li {
                                    @if *s == section {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                    form.signout method="post" action="/logout" {
                        span.who { (viewer.principal.name) " · " (viewer.principal.role.as_str()) }
                        input type="hidden" name="csrf" value=(viewer.csrf);
                        button type="submit" { "Sign out" }
                    }
                }
                main #main {
                    h1 { (title) }
                    (body)
                }
                div #toast role="status" aria-live="polite" {}
            }
        }
    };
    html_response(StatusCode::OK, markup)
}

/// The sign-in page, with an optional error.
pub(crate) fn sign_in_page(status: StatusCode, error: Option<&str>) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head("Sign in", None))
            body {
                main #main .signin {
                    h1 { "Bulwark" }
                    p { "Sign in with an API key. The key is exchanged once for a session cookie and is not stored by the browser." }
                    @if let Some(e) = error { p.error role="alert" { (e) } }
                    form method="post" action="/login" {
                        label for="key" { "API key" }
                        input #key type="password" name="key" autocomplete="current-password" required autofocus;
                        button type="submit" { "Sign in" }
                    }
                    p { a href="/status" { "Public status page" } }
                }
            }
        }
    };
    html_response(status, markup)
}

/// `2026-12-02 13:05 UTC`, in a `<time>` the script can localise.
pub(crate) fn time(t: &DateTime<Utc>) -> Markup {
    html! { time datetime=(t.to_rfc3339()) { (t.format("%Y-%m-%d %H:%M UTC")) } }
}

/// `3d 4h`, `5m 2s`: the two largest units.
pub(crate) fn age(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// A percentage with enough digits to tell 99.9 from 99.95.
pub(crate) fn pct(x: f64) -> String {
    format!("{:.3}%", x * 100.0)
}

/// A state badge: up, down, or no data yet. `data-monitor` lets the live
/// stream update it in place.
pub(crate) fn state_badge(monitor: &str, up: Option<bool>) -> Markup {
    let (class, label) = match up {
        Some(true) => ("badge up", "up"),
        Some(false) => ("badge down", "DOWN"),
        None => ("badge unknown", "no data"),
    };
    html! { span class=(class) data-monitor=(monitor) { (label) } }
}

/// An inline SVG made by `bulwark_ops`'s charts (escaped there).
pub(crate) fn svg(s: String) -> Markup {
    PreEscaped(s)
}
