//! Signing in and out, and the signed-in viewer of a page.
//!
//! The sign-in form posts an API key once; the answer sets the session
//! cookie (`HttpOnly`, `SameSite=Strict`, `Path=/`, `Max-Age` of the
//! session; when a trusted proxy says the client came over TLS, `Secure`
//! and the `__Host-` name) and redirects to the overview. The key itself is never stored by the
//! browser. A refused key counts against the client's failure budget and
//! is audited like any refused credential.

use std::sync::Arc;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use bulwark_ops::{Principal, Role, Session};
use serde::Deserialize;

use super::layout;
use crate::auth::{find_session, session_token, Attempt, SECURE_SESSION_COOKIE, SESSION_COOKIE};
use crate::client::forwarded_https;
use crate::error::ApiError;
use crate::state::AppState;

/// The signed-in viewer of a page.
pub(crate) struct Viewer {
    pub principal: Principal,
    /// The session's CSRF token, for the page's `<meta>`.
    pub csrf: String,
    session: Session,
}

impl Viewer {
    pub(crate) fn is_admin(&self) -> bool {
        self.principal.role.allows(Role::Admin)
    }

    /// The viewer of a request, or None without a live session.
    pub(crate) async fn of(
        headers: &HeaderMap,
        state: &AppState,
    ) -> Result<Option<Viewer>, ApiError> {
        let Some(token) = session_token(headers) else {
            return Ok(None);
        };
        Ok(find_session(state, token).await?.map(|session| Viewer {
            principal: session.principal.clone(),
            csrf: Session::csrf_token(token),
            session,
        }))
    }
}

/// Pages need a session; without one the browser goes to the sign-in page.
impl FromRequestParts<Arc<AppState>> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Response> {
        match Viewer::of(&parts.headers, state).await {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(Redirect::to("/").into_response()),
            Err(e) => Err(e.into_response()),
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct SignInForm {
    key: String,
}

/// `POST /login`: exchanges a key for a session cookie.
pub(crate) async fn sign_in(
    State(state): State<Arc<AppState>>,
    parts: Parts,
    form: Result<Form<SignInForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    if !same_origin(&parts.headers) {
        return layout::sign_in_page(
            StatusCode::FORBIDDEN,
            Some("sign-in refused: the form was posted from another site"),
        )
        .into_response();
    }
    let attempt = Attempt::of(&parts, &state);
    if attempt.is_blocked(&state) {
        return layout::sign_in_page(
            StatusCode::TOO_MANY_REQUESTS,
            Some("too many failed attempts from this address; wait a minute"),
        )
        .into_response();
    }
    let key = form.map(|Form(f)| f.key).unwrap_or_default();
    let key = key.trim();
    if key.is_empty() {
        return layout::sign_in_page(StatusCode::BAD_REQUEST, Some("enter an API key"))
            .into_response();
    }
    let ttl = state.instance.config.server.session_ttl;
    let made = bulwark_ops::sign_in(
        &state.instance.store,
        &state.instance.auth,
        key,
        &attempt.client_label,
        ttl,
    )
    .await;
    match made {
        Ok(Some(session)) => {
            let secure = forwarded_https(&parts, &state.instance.config.server.trusted_proxies);
            let (name, flag) = if secure {
                (SECURE_SESSION_COOKIE, "; Secure")
            } else {
                (SESSION_COOKIE, "")
            };
            let cookie = format!(
                "{name}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{flag}",
                session.token.expose(),
                ttl.as_secs(),
            );
            let mut response = Redirect::to("/").into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, v);
            }
            response
        }
        Ok(None) => match attempt.unauthenticated::<()>(&state, "unknown key").await {
            Err(ApiError::TooManyRequests(_)) => layout::sign_in_page(
                StatusCode::TOO_MANY_REQUESTS,
                Some("too many failed attempts from this address; wait a minute"),
            )
            .into_response(),
            _ => layout::sign_in_page(StatusCode::UNAUTHORIZED, Some("unknown or revoked key"))
                .into_response(),
        },
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
pub(crate) struct SignOutForm {
    csrf: String,
}

/// `POST /logout`: revokes the session (it stops working at once, in every
/// tab) and clears the cookie. Needs the session's CSRF token, so another
/// site cannot sign the viewer out.
pub(crate) async fn sign_out(
    State(state): State<Arc<AppState>>,
    parts: Parts,
    form: Result<Form<SignOutForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let viewer = match Viewer::of(&parts.headers, &state).await {
        Ok(Some(v)) => v,
        Ok(None) => return clear_cookie(Redirect::to("/").into_response()),
        Err(e) => return e.into_response(),
    };
    let token = session_token(&parts.headers).unwrap_or_default();
    let csrf_ok = form.is_ok_and(|Form(f)| Session::csrf_matches(token, &f.csrf));
    if !csrf_ok || !same_origin(&parts.headers) {
        return ApiError::CsrfRejected.into_response();
    }
    let attempt = Attempt::of(&parts, &state);
    if let Err(e) = bulwark_ops::sign_out(
        &state.instance.store,
        &viewer.session,
        &attempt.client_label,
    )
    .await
    {
        return ApiError::from(e).into_response();
    }
    clear_cookie(Redirect::to("/").into_response())
}

/// Clears both forms of the cookie (a browser ignores the `__Host-` one's
/// clearing over plain HTTP, where it was never set).
fn clear_cookie(mut response: Response) -> Response {
    for cleared in [
        "bulwark_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
        "__Host-bulwark_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0; Secure",
    ] {
        response
            .headers_mut()
            .append(header::SET_COOKIE, HeaderValue::from_static(cleared));
    }
    response
}

/// A form post from one of our pages: browsers send `Origin` on every
/// POST, and it must name the host the request went to. A missing Origin
/// (curl, old clients) is allowed: it cannot come from another site's page.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}
