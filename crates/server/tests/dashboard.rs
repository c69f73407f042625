//! The dashboard at the HTTP level: sign-in and its cookie, CSRF, sign-out,
//! role-dependent pages and the live stream. The browser tests
//! (`crates/cli/tests/browser.rs`) drive the same pages in Chromium.

mod common;

use axum::http::StatusCode;
use common::{Harness, ADMIN, ANALYST};

const CONFIG: &str = r#"
[[monitor]]
name = "web"
url = "http://127.0.0.1:9/health"
interval = "60s"

[[slo]]
name = "web-availability"
monitor = "web"
target = 0.99
window = "30d"
"#;

#[tokio::test]
async fn sign_in_sets_a_strict_http_only_cookie_and_is_audited() {
    let h = Harness::new(&format!("[server]\nsession_ttl = \"2h\"\n{CONFIG}")).await;
    let s = h.post_sign_in(ADMIN, "127.0.0.1:50000", &[]).await;
    assert_eq!(s.status, StatusCode::SEE_OTHER);
    assert_eq!(s.location.as_deref(), Some("/"));
    let cookie = s.set_cookie.unwrap();
    assert!(cookie.starts_with("bulwark_session=bws_"), "{cookie}");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=7200"] {
        assert!(cookie.contains(flag), "{flag} missing from {cookie}");
    }
    // Plain HTTP from the client: a Secure cookie would never come back.
    assert!(!cookie.contains("Secure"), "{cookie}");
    // The key never appears in the cookie.
    assert!(!cookie.contains(ADMIN));
    let actions = h.audit_actions().await;
    assert_eq!(
        actions[0], "session.sign_in success dashboard",
        "{actions:?}"
    );
}

#[tokio::test]
async fn cookie_is_secure_behind_a_trusted_tls_proxy_only() {
    let h = Harness::new("[server]\ntrusted_proxies = [\"10.0.0.1\"]\n").await;
    let https = [("x-forwarded-proto", "https")];
    let via_proxy = h.post_sign_in(ADMIN, "10.0.0.1:40000", &https).await;
    let cookie = via_proxy.set_cookie.unwrap();
    // `__Host-`: only a Secure, host-only, Path=/ cookie may carry the name,
    // so neither a subdomain nor a plain-HTTP page can plant or shadow it.
    assert!(
        cookie.starts_with("__Host-bulwark_session=bws_"),
        "{cookie}"
    );
    assert!(
        cookie.contains("; Secure") && cookie.contains("Path=/"),
        "{cookie}"
    );
    assert!(!cookie.contains("Domain"), "{cookie}");
    assert_eq!(
        via_proxy.strict_transport.as_deref(),
        Some("max-age=31536000"),
        "HSTS over TLS"
    );
    // Anyone else can write the header; it proves nothing.
    let direct = h.post_sign_in(ADMIN, "192.0.2.7:40000", &https).await;
    let cookie = direct.set_cookie.unwrap();
    assert!(
        cookie.starts_with("bulwark_session=") && !cookie.contains("Secure"),
        "{cookie}"
    );
    assert_eq!(direct.strict_transport, None);

    // Over TLS only the `__Host-` cookie counts: a plain one, even holding
    // a live session (planted by a plain-HTTP page to sign the victim into
    // the attacker's session), is not believed.
    let plain = cookie.split(';').next().unwrap().to_string();
    let whoami = |peer: &'static str, cookie: String| {
        let h = &h;
        async move {
            let headers = [("x-forwarded-proto", "https"), ("cookie", cookie.as_str())];
            h.call_from(peer, "GET", "/api/v1/whoami", &headers).await
        }
    };
    assert_eq!(
        whoami("192.0.2.7:40000", plain.clone()).await,
        StatusCode::OK
    );
    assert_eq!(
        whoami("10.0.0.1:40000", plain.clone()).await,
        StatusCode::UNAUTHORIZED
    );
    let host = plain.replacen("bulwark_session", "__Host-bulwark_session", 1);
    assert_eq!(whoami("10.0.0.1:40000", host).await, StatusCode::OK);
}

#[tokio::test]
async fn a_wrong_key_gets_the_sign_in_page_again_and_is_audited() {
    let h = Harness::new(CONFIG).await;
    let s = h.post_sign_in("not-a-key", "127.0.0.1:50000", &[]).await;
    assert_eq!(s.status, StatusCode::UNAUTHORIZED);
    assert!(s.set_cookie.is_none());
    let actions = h.audit_actions().await;
    assert_eq!(
        actions[0], "auth.unauthenticated denied POST /login",
        "{actions:?}"
    );
    // A form posted from another site is refused before the key is looked at.
    let cross = h
        .post_sign_in(
            ADMIN,
            "127.0.0.1:50000",
            &[
                ("origin", "https://evil.example"),
                ("host", "127.0.0.1:8080"),
            ],
        )
        .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    assert!(cross.set_cookie.is_none());
}

#[tokio::test]
async fn a_session_reads_the_api_but_changes_nothing_without_its_csrf_token() {
    let h = Harness::new(CONFIG).await;
    let admin = h.sign_in(ADMIN).await;
    let (status, body) = h.browse(&admin, "GET", "/api/v1/whoami", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains(r#""role":"admin""#), "{body}");

    let (status, body) = h.browse(&admin, "POST", "/api/ops/uptime/test", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("CSRF"), "{body}");
    assert!(h.audit_actions().await[0]
        .starts_with("auth.csrf_rejected denied POST /api/ops/uptime/test"));

    // Another session's token is no good either.
    let other = h.sign_in(ADMIN).await;
    assert_ne!(other.csrf, admin.csrf);
    let (status, _) = h
        .browse(
            &admin,
            "POST",
            "/api/ops/uptime/test",
            &[("x-csrf-token", &other.csrf)],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, body) = h.post_as(&admin, "/api/ops/uptime/test").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains(r#""monitor":"web""#), "{body}");
}

#[tokio::test]
async fn an_analyst_sees_no_admin_actions_and_the_api_refuses_them() {
    let h = Harness::new(CONFIG).await;
    let analyst = h.sign_in(ANALYST).await;
    let (status, page) = h.browse(&analyst, "GET", "/", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("View SLO") && page.contains("Last DR Report"),
        "{page}"
    );
    assert!(!page.contains("Run Uptime Test"), "{page}");
    let (_, jobs) = h.browse(&analyst, "GET", "/jobs", &[]).await;
    assert!(jobs.contains("slo") && !jobs.contains("Run now"), "{jobs}");
    let (status, _) = h.post_as(&analyst, "/api/ops/uptime/test").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let admin = h.sign_in(ADMIN).await;
    let (_, page) = h.browse(&admin, "GET", "/", &[]).await;
    assert!(page.contains("Run Uptime Test"), "{page}");
    let (_, jobs) = h.browse(&admin, "GET", "/jobs", &[]).await;
    assert!(jobs.contains("Run now"), "{jobs}");

    // A run has its own page, linked from the jobs page (notifications
    // link there too).
    let (status, run) = h.post_as(&admin, "/api/v1/jobs/slo/run").await;
    assert_eq!(status, StatusCode::OK, "{run}");
    let run: serde_json::Value = serde_json::from_str(&run).unwrap();
    let page_url = format!("/jobs/runs/{}", run["id"].as_str().unwrap());
    let (_, jobs) = h.browse(&analyst, "GET", "/jobs", &[]).await;
    assert!(jobs.contains(&format!("href=\"{page_url}\"")), "{jobs}");
    let (status, page) = h.browse(&analyst, "GET", &page_url, &[]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains(run["summary"].as_str().unwrap()), "{page}");
    let (status, _) = h.browse(&analyst, "GET", "/jobs/runs/nope", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn pages_are_served_with_a_strict_content_security_policy() {
    let h = Harness::new(CONFIG).await;
    let admin = h.sign_in(ADMIN).await;
    for path in [
        "/",
        "/monitors/web",
        "/slos/web-availability",
        "/backups",
        "/drills",
        "/secrets",
        "/jobs",
        "/audit?outcome=denied",
    ] {
        let mut req = axum::http::Request::builder()
            .uri(path)
            .header("cookie", &admin.cookie);
        req = req.header("accept", "text/html");
        let resp = tower::ServiceExt::oneshot(
            bulwark_server::app(h.state.clone()),
            req.body(axum::body::Body::empty()).unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let csp = resp.headers()["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        assert_eq!(resp.headers()["cache-control"], "no-store", "{path}");
        // `no-referrer` would make browsers post `Origin: null` from our
        // own forms, which sign-in and sign-out refuse (found by the
        // browser test).
        assert_eq!(resp.headers()["referrer-policy"], "same-origin", "{path}");
    }
    // Without a session, pages send the browser to sign in.
    let (status, _) = h.text("GET", "/jobs", None, None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, page) = h.text("GET", "/", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(r#"action="/login""#) && !page.contains("csrf-token"),
        "{page}"
    );
}

#[tokio::test]
async fn sign_out_needs_the_token_then_ends_the_session_everywhere() {
    let h = Harness::new(CONFIG).await;
    let admin = h.sign_in(ADMIN).await;
    let refused = h.sign_out(&admin, "wrong").await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let (status, _) = h.browse(&admin, "GET", "/api/v1/whoami", &[]).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a refused sign-out leaves the session alone"
    );

    let out = h.sign_out(&admin, &admin.csrf).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let cleared: Vec<&str> = out
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    for name in ["bulwark_session=;", "__Host-bulwark_session=;"] {
        assert!(
            cleared
                .iter()
                .any(|c| c.starts_with(name) && c.contains("Max-Age=0")),
            "{name} not cleared: {cleared:?}"
        );
    }
    assert!(h.audit_actions().await[0].starts_with("session.sign_out success"));

    // The old cookie, replayed, is dead.
    let (status, _) = h.browse(&admin, "GET", "/api/v1/whoami", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = h.browse(&admin, "GET", "/jobs", &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn revoking_the_key_ends_its_sessions() {
    let h = Harness::new(CONFIG).await;
    let created = bulwark_ops::create_key(
        &h.state.instance.store,
        &bulwark_ops::Actor::system("test"),
        bulwark_ops::Role::Analyst,
        "laptop",
    )
    .await
    .unwrap();
    let browser = h.sign_in(created.secret.expose()).await;
    let (status, _) = h.browse(&browser, "GET", "/api/v1/whoami", &[]).await;
    assert_eq!(status, StatusCode::OK);
    bulwark_ops::revoke_key(
        &h.state.instance.store,
        &bulwark_ops::Actor::system("test"),
        &created.info.id,
    )
    .await
    .unwrap();
    let (status, _) = h.browse(&browser, "GET", "/api/v1/whoami", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_live_stream_sends_every_monitor_first() {
    use http_body_util::BodyExt;
    let h = Harness::new(CONFIG).await;
    let admin = h.sign_in(ADMIN).await;
    let req = axum::http::Request::builder()
        .uri("/events")
        .header("cookie", &admin.cookie)
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = tower::ServiceExt::oneshot(bulwark_server::app(h.state.clone()), req)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    let frame = tokio::time::timeout(std::time::Duration::from_secs(10), body.frame())
        .await
        .expect("an event within a few ticks")
        .unwrap()
        .unwrap();
    let text = String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap();
    assert!(text.starts_with("event: monitors\n"), "{text}");
    // No engine runs here and nothing has probed yet: state unknown.
    assert!(text.contains(r#""name":"web","up":null"#), "{text}");
}

#[tokio::test]
async fn shutdown_ends_open_live_streams_instead_of_waiting_out_the_grace() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = Harness::new(CONFIG).await;
    let server = h
        .serve(bulwark_server::ServeOptions {
            // Far longer than the harness waits for `serve` to return: only
            // streams that end by themselves let it return in time.
            shutdown_grace: std::time::Duration::from_secs(3600),
            ..bulwark_server::ServeOptions::default()
        })
        .await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let request = format!(
        "GET /events HTTP/1.1\r\nHost: bulwark\r\nx-dash-key: {ADMIN}\r\naccept: text/event-stream\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0_u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("event: monitors") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(
            n > 0,
            "stream closed early: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    server.stop().await;
    // The stream ended, and the connection with it.
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await.unwrap();
}

#[tokio::test]
async fn pages_are_gzipped_for_clients_that_ask_but_live_streams_are_not() {
    let h = Harness::new(CONFIG).await;
    let admin = h.sign_in(ADMIN).await;
    let get = |uri: &'static str| {
        let req = axum::http::Request::builder()
            .uri(uri)
            .header("cookie", &admin.cookie)
            .header("accept-encoding", "gzip")
            .body(axum::body::Body::empty())
            .unwrap();
        tower::ServiceExt::oneshot(bulwark_server::app(h.state.clone()), req)
    };
    let page = get("/").await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["content-encoding"], "gzip");
    let events = get("/events").await.unwrap();
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    assert!(events.headers().get("content-encoding").is_none());
}

#[tokio::test]
async fn sessions_work_the_same_on_postgresql() {
    let h = Harness::postgres(CONFIG).await;
    let admin = h.sign_in(ADMIN).await;
    let (status, body) = h.browse(&admin, "GET", "/api/v1/whoami", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = h.post_as(&admin, "/api/ops/uptime/test").await;
    assert_eq!(status, StatusCode::OK);
    let out = h.sign_out(&admin, &admin.csrf).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let (status, _) = h.browse(&admin, "GET", "/api/v1/whoami", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let actions = h.audit_actions().await;
    assert!(
        actions[0].starts_with("auth.unauthenticated")
            || actions[0].starts_with("session.sign_out"),
        "{actions:?}"
    );
    assert!(
        actions
            .iter()
            .any(|a| a.starts_with("session.sign_in success")),
        "{actions:?}"
    );
}

#[tokio::test]
async fn one_caller_cannot_open_live_streams_without_limit() {
    let h = Harness::new(CONFIG).await;
    let open = || {
        let req = axum::http::Request::builder()
            .uri("/events")
            .header("x-dash-key", ADMIN)
            .body(axum::body::Body::empty())
            .unwrap();
        tower::ServiceExt::oneshot(bulwark_server::app(h.state.clone()), req)
    };
    // Held open: their bodies are alive.
    let mut held = Vec::new();
    for _ in 0..4 {
        let resp = open().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        held.push(resp);
    }
    let refused = open().await.unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Another caller is not held back by this one.
    let req = axum::http::Request::builder()
        .uri("/events")
        .header("x-dash-key", common::ANALYST)
        .body(axum::body::Body::empty())
        .unwrap();
    let other = tower::ServiceExt::oneshot(bulwark_server::app(h.state.clone()), req)
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);
    // A closed stream gives its place back.
    drop(held.pop());
    assert_eq!(open().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn junk_session_cookies_count_as_failed_attempts() {
    let h = Harness::new(CONFIG).await;
    let mut statuses = Vec::new();
    for i in 0..12 {
        let status = h
            .call_from(
                "192.0.2.9:4000",
                "GET",
                "/api/v1/whoami",
                &[("cookie", &format!("bulwark_session=junk{i}"))],
            )
            .await;
        statuses.push(status);
    }
    assert_eq!(statuses[0], StatusCode::UNAUTHORIZED);
    assert_eq!(
        *statuses.last().unwrap(),
        StatusCode::TOO_MANY_REQUESTS,
        "{statuses:?}"
    );
    // Over budget, even the right key gets no session from that address.
    let s = h.post_sign_in(ADMIN, "192.0.2.9:4000", &[]).await;
    assert_eq!(s.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(s.set_cookie.is_none());
}
