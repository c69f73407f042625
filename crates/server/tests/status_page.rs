//! The public status page and badges over HTTP, on SQLite and PostgreSQL:
//! only `public = true` monitors appear, nothing names a target, a host or
//! a private monitor, and a private badge is indistinguishable from a
//! missing one.

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::ts;
use common::Harness;
use http_body_util::BodyExt;
use tower::ServiceExt;

const DAY_MS: i64 = 86_400_000;

const CONFIG: &str = r#"
[[monitor]]
name = "public-api"
url = "http://api-host.secret.internal:9000/health?token=hunter2"
public = true

[[monitor]]
name = "public-web"
url = "https://www.example.org/"
public = true

[[monitor]]
name = "public-new"
url = "tls://tls-host.secret.internal:8443"
public = true

[[monitor]]
name = "private-db"
url = "tcp://db-host.secret.internal:5432"
"#;

/// What nothing public may contain: targets, hosts, ports, tokens, probe
/// errors, incident causes and the private monitor.
const SECRETS: &[&str] = &[
    "private-db",
    "secret.internal",
    "api-host",
    "db-host",
    "example.org",
    "hunter2",
    "9000",
    "5432",
    "8443",
    "refused",
    "timeout",
];

struct Got {
    status: StatusCode,
    content_type: String,
    cache_control: String,
    body: String,
}

async fn get(h: &Harness, uri: &str) -> Got {
    let req = Request::builder().uri(uri).body(Body::empty()).unwrap();
    let resp = bulwark_server::app(h.state.clone())
        .oneshot(req)
        .await
        .unwrap();
    let header = |name: header::HeaderName| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let content_type = header(header::CONTENT_TYPE);
    let cache_control = header(header::CACHE_CONTROL);
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Got {
        status,
        content_type,
        cache_control,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

fn assert_nothing_private(what: &str, body: &str) {
    for s in SECRETS {
        assert!(!body.contains(s), "{what} leaks {s:?}:\n{body}");
    }
}

/// Two days ago `public-api` failed for an hour (60 of 60 probes), and
/// `private-db` too; yesterday both were fine for an hour, and so was
/// `public-web`. `public-api` and `private-db` have open incidents whose
/// causes name hosts; `public-new` has never been measured.
async fn seed(h: &Harness) -> (String, String) {
    let now = chrono::Utc::now().timestamp_millis();
    let today = now.div_euclid(DAY_MS) * DAY_MS;
    let (bad_day, good_day) = (today - 2 * DAY_MS, today - DAY_MS);
    let hour = 10 * 3_600_000;
    h.seed_hour("public-api", bad_day + hour, 60, 60).await;
    h.seed_hour("private-db", bad_day + hour, 60, 60).await;
    h.seed_hour("public-api", good_day + hour, 60, 0).await;
    h.seed_hour("private-db", good_day + hour, 60, 0).await;
    h.seed_hour("public-web", good_day + hour, 60, 0).await;
    let store = &h.state.instance.store;
    for m in ["public-api", "private-db"] {
        bulwark_ops::open_incident(
            store,
            m,
            ts(now - 3 * 3_600_000),
            "timeout: connect to db-host.secret.internal:5432 refused",
        )
        .await
        .unwrap();
    }
    let date = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .date_naive()
            .to_string()
    };
    (date(bad_day), date(good_day))
}

async fn status_page_shows_public_monitors_only(h: Harness) {
    let (bad_day, good_day) = seed(&h).await;
    let page = get(&h, "/status").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.content_type, "text/html; charset=utf-8");
    assert!(
        page.cache_control.starts_with("public, max-age="),
        "{}",
        page.cache_control
    );
    let body = &page.body;
    assert_nothing_private("/status", body);
    for m in ["public-api", "public-web", "public-new"] {
        assert!(
            body.contains(&format!("<span class=\"name\">{m}</span>")),
            "{m}:\n{body}"
        );
    }
    // States: an open incident is down, measured yesterday is up, never
    // measured is unknown.
    let state_of = |m: &str| {
        let at = body
            .find(&format!("<span class=\"name\">{m}</span>"))
            .unwrap();
        let rest = &body[at..];
        let s = rest.find("class=\"state ").unwrap() + 13;
        rest[s..].split('"').next().unwrap().to_string()
    };
    assert_eq!(state_of("public-api"), "down");
    assert_eq!(state_of("public-web"), "up");
    assert_eq!(state_of("public-new"), "unknown");
    assert!(body.contains("1 of 3 services down"), "{body}");
    // The open incident of the public monitor only, with no cause.
    let incidents = &body[body.find("Open incidents").expect("incidents section")..];
    let incidents = &incidents[..incidents.find("</ul>").unwrap()];
    assert!(
        incidents.contains("<strong>public-api</strong> is down since"),
        "{incidents}"
    );
    assert_eq!(incidents.matches("<li>").count(), 1, "{incidents}");
    // 90 daily bars each; the failed day reads as bad, the good one as ok.
    assert_eq!(body.matches("<svg").count(), 3, "{body}");
    assert_eq!(
        body.matches("<title>").count(),
        1 + 3 * 91,
        "a page title, and per chart one plus 90 days"
    );
    assert!(
        body.contains(&format!(
            "<g class=\"bw-bad\"><title>{bad_day} 0.000% up</title>"
        )),
        "{body}"
    );
    assert!(
        body.contains(&format!(
            "<g class=\"bw-ok\"><title>{good_day} 100.000% up</title>"
        )),
        "{body}"
    );
    assert!(body.contains("50.000% uptime, 90 days"), "{body}");
    // Self-contained: no script, nothing loaded from anywhere; the only
    // URL is the SVG namespace.
    assert!(!body.contains("<script"), "{body}");
    assert_eq!(
        body.matches("http").count(),
        body.matches("xmlns=\"http://www.w3.org/2000/svg\"").count(),
        "{body}"
    );
    assert!(
        body.contains("name=\"viewport\" content=\"width=device-width"),
        "{body}"
    );
    assert!(body.contains("prefers-color-scheme: dark"), "{body}");

    // Badges: public monitors only, with state and 30-day uptime.
    let badge = get(&h, "/badge/public-api.svg").await;
    assert_eq!(badge.status, StatusCode::OK, "{}", badge.body);
    assert_eq!(badge.content_type, "image/svg+xml");
    assert!(
        badge.cache_control.starts_with("public, max-age="),
        "{}",
        badge.cache_control
    );
    assert!(
        badge
            .body
            .starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
        "{}",
        badge.body
    );
    assert!(
        badge.body.contains(">down 50.000%</text>"),
        "{}",
        badge.body
    );
    assert_nothing_private("a badge", &badge.body);
    let web = get(&h, "/badge/public-web.svg").await;
    assert!(web.body.contains(">up 100%</text>"), "{}", web.body);
    let new = get(&h, "/badge/public-new.svg").await;
    assert!(new.body.contains(">unknown</text>"), "{}", new.body);

    // A private monitor's badge is answered exactly like a missing one.
    let missing = get(&h, "/badge/no-such-monitor.svg").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    for uri in [
        "/badge/private-db.svg",
        "/badge/private-db",
        "/badge/public-api.png",
        "/badge/public-api",
        "/badge/.svg",
    ] {
        let got = get(&h, uri).await;
        assert_eq!(got.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(got.body, missing.body, "{uri}");
        assert_eq!(got.content_type, missing.content_type, "{uri}");
        assert_nothing_private(uri, &got.body);
    }
    // None of it needed a key, and nothing was refused.
    assert!(h
        .audit_actions()
        .await
        .iter()
        .all(|a| !a.contains("denied")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_and_badges_on_sqlite() {
    status_page_shows_public_monitors_only(Harness::new(CONFIG).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_and_badges_on_postgres() {
    status_page_shows_public_monitors_only(Harness::postgres(CONFIG).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_public_monitors_the_page_says_so_and_names_nothing() {
    let h = Harness::new(
        "[[monitor]]\nname = \"private-db\"\nurl = \"tcp://db-host.secret.internal:5432\"\n",
    )
    .await;
    h.seed_hour("private-db", 0, 10, 10).await;
    let page = get(&h, "/status").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("No services are published here yet."),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<svg"), "{}", page.body);
    assert_nothing_private("/status", &page.body);
    assert_eq!(
        get(&h, "/badge/private-db.svg").await.status,
        StatusCode::NOT_FOUND
    );
}
