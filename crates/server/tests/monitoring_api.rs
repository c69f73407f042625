//! The monitoring, SLO and alerting routes through the router: roles, audit,
//! secrets kept out of responses, and `/healthz/strict` flipping to 503 when
//! an SLO's budget is spent.

use std::time::Duration;

use axum::http::StatusCode;
use bulwark_ops::audit::{self, Filter};
use bulwark_ops::probe::ProbeResult;
use bulwark_ops::uptime;

mod common;
use common::{Harness, ADMIN, ANALYST};

const CONFIG: &str = r#"
[[monitor]]
name = "api"
url = "http://user:pw@127.0.0.1:9/health?token=hunter2"
interval = "1s"
timeout = "500ms"

[[monitor]]
name = "cron"
type = "push"
period = "1m"

[[slo]]
name = "api-availability"
monitor = "api"
target = 0.99
window = "1h"

[[channel]]
name = "ops"
type = "webhook"
url = "http://127.0.0.1:9/hook-secret-path"
"#;

trait Record {
    async fn record(&self, ok: bool, n: usize);
}

impl Record for Harness {
    async fn record(&self, ok: bool, n: usize) {
        let now = chrono::Utc::now().timestamp_millis();
        for i in 0..n {
            let r = ProbeResult {
                monitor: "api".into(),
                at_ms: now - 1000 * (n - i) as i64,
                ok,
                latency: Duration::from_millis(3),
                status: Some(if ok { 200 } else { 503 }),
                error: (!ok).then(|| "unexpected status 503".into()),
            };
            uptime::record(&self.state.store, &r).await.unwrap();
        }
    }
}

#[tokio::test]
async fn healthz_strict_flips_to_503_when_the_budget_is_spent() {
    let h = Harness::new(CONFIG).await;
    // No data yet: a full budget.
    let (status, body) = h.call("GET", "/healthz/strict", None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["failing"], serde_json::json!([]));

    // 99 good and 1 bad spends 100% of a 99% SLO's budget.
    h.record(true, 99).await;
    let (status, _) = h.call("GET", "/healthz/strict", None, None).await;
    assert_eq!(status, StatusCode::OK);
    h.record(false, 1).await;
    let (status, body) = h.call("GET", "/healthz/strict", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["failing"], serde_json::json!(["api-availability"]));
    assert_eq!(body["threshold"], 0.8);

    let (status, slos) = h
        .call("GET", "/api/ops/slo/status", Some(ANALYST), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(slos[0]["name"], "api-availability");
    assert_eq!(slos[0]["total"], 100);
    assert_eq!(slos[0]["bad"], 1);
    assert!((slos[0]["budget_consumed"].as_f64().unwrap() - 1.0).abs() < 1e-9);
    assert_eq!(slos[0]["burn_rates"].as_array().unwrap().len(), 6);
    assert_eq!(
        h.call("GET", "/api/ops/slo/status", None, None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn monitors_hide_secrets_and_show_push_paths_to_admins_only() {
    let h = Harness::new(CONFIG).await;
    h.record(true, 2).await;
    let (status, list) = h.call("GET", "/api/v1/monitors", Some(ANALYST), None).await;
    assert_eq!(status, StatusCode::OK);
    let text = list.to_string();
    assert!(!text.contains("hunter2") && !text.contains("pw@"), "{text}");
    assert_eq!(list[0]["target"], "http://127.0.0.1:9");
    assert_eq!(list[0]["up"], true);
    assert!(list[1]["push_path"].is_null());

    let (_, list) = h.call("GET", "/api/v1/monitors", Some(ADMIN), None).await;
    let path = list[1]["push_path"].as_str().unwrap().to_string();
    let (status, body) = h.call("POST", &path, None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["monitor"], "cron");
    assert!(uptime::last_ping(&h.state.store, "cron")
        .await
        .unwrap()
        .is_some());
    let (status, _) = h.call("POST", "/api/v1/push/nope", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, r) = h
        .call(
            "GET",
            "/api/v1/monitors/api/results?limit=1",
            Some(ANALYST),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(r["results"].as_array().unwrap().len(), 1);
    let (status, _) = h
        .call("GET", "/api/v1/monitors/nope/results", Some(ANALYST), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn uptime_test_is_for_admins_and_reports_failures() {
    let h = Harness::new(CONFIG).await;
    assert_eq!(
        h.call("POST", "/api/ops/uptime/test", Some(ANALYST), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (status, body) = h
        .call("POST", "/api/ops/uptime/test", Some(ADMIN), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    // Nothing listens on port 9 and the push monitor never pinged.
    assert_eq!(body["ok"], false);
    assert_eq!(body["results"].as_array().unwrap().len(), 2);
    assert!(!body.to_string().contains("hunter2"));
}

#[tokio::test]
async fn silences_and_maintenance_are_admin_only_and_audited() {
    let h = Harness::new(CONFIG).await;
    let create = r#"{"monitor":"api","duration":"2h","comment":"deploy"}"#;
    assert_eq!(
        h.call("POST", "/api/v1/silences", Some(ANALYST), Some(create))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (status, s) = h
        .call("POST", "/api/v1/silences", Some(ADMIN), Some(create))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{s}");
    let id = s["id"].as_str().unwrap().to_string();
    let (_, list) = h.call("GET", "/api/v1/silences", Some(ANALYST), None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (status, _) = h
        .call(
            "POST",
            "/api/v1/silences",
            Some(ADMIN),
            Some(r#"{"duration":"1h"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = h
        .call(
            "DELETE",
            &format!("/api/v1/silences/{id}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = h
        .call(
            "DELETE",
            &format!("/api/v1/silences/{id}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let window = r#"{"name":"db upgrade","monitors":["api"],"starts_at":"2030-01-01T00:00:00Z","ends_at":"2030-01-01T02:00:00Z"}"#;
    let (status, w) = h
        .call("POST", "/api/v1/maintenance", Some(ADMIN), Some(window))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{w}");
    let bad = r#"{"name":"x","monitors":["nope"],"starts_at":"2030-01-01T00:00:00Z","ends_at":"2030-01-01T02:00:00Z"}"#;
    assert_eq!(
        h.call("POST", "/api/v1/maintenance", Some(ADMIN), Some(bad))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    let (_, list) = h
        .call("GET", "/api/v1/maintenance", Some(ANALYST), None)
        .await;
    assert_eq!(list[0]["name"], "db upgrade");
    let id = w["id"].as_str().unwrap();
    let (status, _) = h
        .call(
            "DELETE",
            &format!("/api/v1/maintenance/{id}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let (_, incidents) = h
        .call("GET", "/api/v1/incidents", Some(ANALYST), None)
        .await;
    assert_eq!(incidents, serde_json::json!([]));

    let actions: Vec<String> = audit::query(&h.state.store, &Filter::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.outcome == "success")
        .map(|r| r.action)
        .collect();
    assert_eq!(
        actions,
        [
            "maintenance.delete",
            "maintenance.create",
            "silence.expire",
            "silence.create"
        ]
    );
}

#[tokio::test]
async fn openapi_lists_the_monitoring_routes() {
    let h = Harness::new(CONFIG).await;
    let (_, doc) = h.call("GET", "/api/openapi.json", None, None).await;
    for path in [
        "/api/v1/monitors",
        "/api/v1/monitors/{name}/results",
        "/api/ops/uptime/test",
        "/api/ops/slo/status",
        "/healthz/strict",
        "/api/v1/incidents",
        "/api/v1/silences",
        "/api/v1/maintenance",
        "/api/v1/push/{token}",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path}");
    }
}
