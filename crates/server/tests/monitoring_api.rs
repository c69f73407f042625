//! The monitoring, SLO and alerting routes through the router: roles, audit,
//! secrets kept out of responses, and `/healthz/strict` flipping to 503 when
//! an SLO's budget is spent.

use bulwark_ops::slo_statuses;
use std::time::Duration;

use axum::http::StatusCode;
use bulwark_ops::{
    create_push_token, downsample_results, last_ping, query_audit, record_result, record_results,
    rollup_results, Filter, ProbeResult,
};

mod common;
use common::{ts, Harness, ADMIN, ANALYST};

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
                at: ts(now - 1000 * (n - i) as i64),
                ok,
                latency: Duration::from_millis(3),
                status: Some(if ok { 200 } else { 503 }),
                error: (!ok).then(|| "unexpected status 503".into()),
            };
            record_result(&self.state.instance.store, &r).await.unwrap();
        }
    }
}

#[tokio::test]
async fn healthz_strict_flips_to_503_when_the_budget_is_spent() {
    // No cache between the calls: each sees the results just recorded.
    let h = Harness::with_state(CONFIG, |s| s.with_view_ttl(Duration::ZERO)).await;
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
async fn monitors_hide_secrets_and_push_tokens_are_made_by_admins_and_shown_once() {
    let h = Harness::new(CONFIG).await;
    h.record(true, 2).await;
    let (status, list) = h.call("GET", "/api/v1/monitors", Some(ANALYST), None).await;
    assert_eq!(status, StatusCode::OK);
    let text = list.to_string();
    assert!(!text.contains("hunter2") && !text.contains("pw@"), "{text}");
    assert_eq!(list[0]["target"], "http://127.0.0.1:9");
    assert_eq!(list[0]["up"], true);
    assert_eq!(list[1]["has_push_token"], false);
    assert!(list[0]["has_push_token"].is_null());

    let (status, _) = h
        .call(
            "POST",
            "/api/v1/monitors/cron/push-token",
            Some(ANALYST),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = h
        .call("POST", "/api/v1/monitors/api/push-token", Some(ADMIN), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "api is not a push monitor");
    let (status, made) = h
        .call(
            "POST",
            "/api/v1/monitors/cron/push-token",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let path = made["push_path"].as_str().unwrap().to_string();
    let (_, list) = h.call("GET", "/api/v1/monitors", Some(ADMIN), None).await;
    assert_eq!(list[1]["has_push_token"], true);
    assert!(!list.to_string().contains(made["token"].as_str().unwrap()));
    let (status, body) = h.call("POST", &path, None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["monitor"], "cron");
    assert!(last_ping(&h.state.instance.store, "cron")
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

const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `(start, total, failures)` of each rollup in a results response.
fn buckets(body: &serde_json::Value) -> Vec<(String, i64, i64)> {
    body["rollups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["minute"].as_str().unwrap().to_string(),
                r["total"].as_i64().unwrap(),
                r["failures"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn results_serve_hourly_rollups_across_the_retention() {
    let h = Harness::new(CONFIG).await;
    let store = &h.state.instance.store;
    let now = chrono::Utc::now().timestamp_millis();
    let this_hour = now.div_euclid(HOUR) * HOUR;
    // Two hours 40 days ago (past the 35-day minute retention) and the two
    // complete hours before this one. Hour j has j + 1 minutes of two
    // results, the first failing in even minutes: totals 2, 4, 6, 8.
    let old = this_hour - 40 * DAY;
    let hours = [old, old + HOUR, this_hour - 2 * HOUR, this_hour - HOUR];
    let mut results = Vec::new();
    for (j, start) in hours.iter().enumerate() {
        for k in 0..=j as i64 {
            for i in 0..2 {
                let ok = !(i == 0 && k % 2 == 0);
                results.push(ProbeResult {
                    monitor: "api".into(),
                    at: ts(start + k * MIN + i * 1000),
                    ok,
                    latency: Duration::from_millis(5),
                    status: Some(if ok { 200 } else { 503 }),
                    error: (!ok).then(|| "unexpected status 503".into()),
                });
            }
        }
    }
    record_results(store, &results).await.unwrap();
    for start in hours {
        rollup_results(store, ts(start), ts(start + HOUR))
            .await
            .unwrap();
    }
    // What the engine's housekeeping does with the minute retention.
    let folded = downsample_results(store, ts(now - 35 * DAY)).await.unwrap();
    assert_eq!(folded, 1 + 2);

    let uri = |query: &str| format!("/api/v1/monitors/api/results?{query}");
    let range = format!("since={}&until={}", rfc3339(old), rfc3339(this_hour));
    let all_hours = vec![
        (rfc3339(hours[0]), 2, 1),
        (rfc3339(hours[1]), 4, 1),
        (rfc3339(hours[2]), 6, 2),
        (rfc3339(hours[3]), 8, 2),
    ];
    let (status, body) = h
        .call(
            "GET",
            &uri(&format!("resolution=hour&{range}")),
            Some(ANALYST),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["resolution"], "hour");
    assert_eq!(body["results"], serde_json::json!([]));
    assert_eq!(buckets(&body), all_hours);

    // An old hour re-rolled from its raw results is in both tables: once.
    rollup_results(store, ts(hours[1]), ts(hours[1] + HOUR))
        .await
        .unwrap();
    let (_, body) = h
        .call(
            "GET",
            &uri(&format!("resolution=hour&{range}")),
            Some(ANALYST),
            None,
        )
        .await;
    assert_eq!(buckets(&body), all_hours);
    downsample_results(store, ts(now - 35 * DAY)).await.unwrap();

    // `limit` keeps the newest buckets, oldest first.
    let (_, body) = h
        .call(
            "GET",
            &uri(&format!("resolution=hour&{range}&limit=1")),
            Some(ANALYST),
            None,
        )
        .await;
    assert_eq!(buckets(&body), all_hours[3..]);

    // Minutes: only the recent hours have them; `rollup=true` is the same
    // as `resolution=minute`, and `until` defaults to now.
    let since = format!("since={}", rfc3339(old));
    let recent_minutes = vec![
        (rfc3339(hours[2]), 2, 1),
        (rfc3339(hours[2] + MIN), 2, 0),
        (rfc3339(hours[2] + 2 * MIN), 2, 1),
        (rfc3339(hours[3]), 2, 1),
        (rfc3339(hours[3] + MIN), 2, 0),
        (rfc3339(hours[3] + 2 * MIN), 2, 1),
        (rfc3339(hours[3] + 3 * MIN), 2, 0),
    ];
    for query in [
        format!("rollup=true&{since}"),
        format!("resolution=minute&{since}"),
        format!("resolution=minute&rollup=true&{since}"),
    ] {
        let (status, body) = h.call("GET", &uri(&query), Some(ANALYST), None).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert_eq!(body["resolution"], "minute", "{query}");
        assert_eq!(buckets(&body), recent_minutes, "{query}");
    }
    let (_, body) = h
        .call(
            "GET",
            &uri(&format!("rollup=true&{since}&limit=2")),
            Some(ANALYST),
            None,
        )
        .await;
    assert_eq!(buckets(&body), recent_minutes[5..]);

    // Raw results honour `until` too; `rollup=false` is `resolution=raw`.
    let first_minute = format!(
        "since={}&until={}",
        rfc3339(hours[3]),
        rfc3339(hours[3] + MIN)
    );
    for query in [
        first_minute.clone(),
        format!("resolution=raw&{first_minute}"),
        format!("rollup=false&resolution=raw&{first_minute}"),
    ] {
        let (status, body) = h.call("GET", &uri(&query), Some(ANALYST), None).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert_eq!(body["resolution"], "raw", "{query}");
        assert_eq!(body["rollups"], serde_json::json!([]));
        let ts: Vec<_> = body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["ts"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ts, [rfc3339(hours[3] + 1000), rfc3339(hours[3])], "{query}");
    }
}

#[tokio::test]
async fn results_reject_bad_parameters_naming_them() {
    let h = Harness::new(CONFIG).await;
    let t = "2026-01-15T00:00:00Z";
    // (query, words the message must hold)
    let cases: &[(&str, &[&str])] = &[
        ("resolution=daily", &["resolution", "raw, minute or hour"]),
        ("resolution=Hour", &["resolution", "raw, minute or hour"]),
        ("rollup=yes", &["rollup", "true or false"]),
        (
            "rollup=true&resolution=hour",
            &["rollup=true", "resolution=hour"],
        ),
        (
            "rollup=true&resolution=raw",
            &["rollup=true", "resolution=raw"],
        ),
        (
            "rollup=false&resolution=minute",
            &["rollup=false", "resolution=minute"],
        ),
        ("since=yesterday", &["since", "RFC 3339"]),
        ("until=2026-13-01T00:00:00Z", &["until", "RFC 3339"]),
        ("limit=0", &["limit", "1 to 10000"]),
        ("limit=10001&resolution=hour", &["limit", "1 to 10000"]),
        ("limit=ten", &["limit", "1 to 10000"]),
        (
            "since=2026-01-15T00:00:00Z&until=2026-01-15T00:00:00Z",
            &["since", "until"],
        ),
        (
            "since=2026-01-15T01:00:00Z&until=2026-01-15T00:00:00Z&resolution=hour",
            &["since", "must be before until"],
        ),
    ];
    for (query, words) in cases {
        let uri = format!("/api/v1/monitors/api/results?{query}");
        let (status, body) = h.call("GET", &uri, Some(ANALYST), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        let message = body["error"].as_str().unwrap_or_default();
        for word in *words {
            assert!(message.contains(word), "{query}: {message}");
        }
    }
    // Without `since` the range is the hour before `until`, so a past
    // `until` alone is fine.
    for query in [
        format!("until={t}"),
        format!("until={t}&resolution=hour&limit=10000"),
        "rollup=false".to_string(),
    ] {
        let uri = format!("/api/v1/monitors/api/results?{query}");
        let (status, body) = h.call("GET", &uri, Some(ANALYST), None).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
    }
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

    let actions: Vec<String> = query_audit(&h.state.instance.store, &Filter::default())
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
    // The results query is described, allowed values and bounds included.
    let params = &doc["paths"]["/api/v1/monitors/{name}/results"]["get"]["parameters"];
    let param = |name: &str| {
        params
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no parameter {name}: {params}"))
            .clone()
    };
    let resolution = param("resolution");
    let allowed = &resolution["schema"]["enum"];
    for value in ["raw", "minute", "hour"] {
        assert!(
            allowed.as_array().unwrap().iter().any(|v| v == value),
            "{resolution}"
        );
    }
    assert_eq!(param("limit")["schema"]["maximum"], 10000);
    assert_eq!(param("until")["schema"]["format"], "date-time");
    assert_eq!(param("rollup")["schema"]["type"], "boolean");
    assert!(param("limit")["description"]
        .as_str()
        .unwrap()
        .contains("newest"));
}

/// The failure limiter as the real server feeds it: the TCP peer's address.
fn peer(n: u8) -> String {
    format!("192.0.2.{n}:40000")
}

#[tokio::test]
async fn push_token_guessing_is_limited_per_address() {
    let h = Harness::new(CONFIG).await;
    let token = create_push_token(&h.state.instance.store, &bulwark_ops::Actor::cli(), "cron")
        .await
        .unwrap()
        .into_inner();
    let push = |p: String, token: String| {
        let h = &h;
        async move {
            h.call_from(&p, "POST", &format!("/api/v1/push/{token}"), &[])
                .await
        }
    };
    for i in 0..10 {
        assert_eq!(
            push(peer(7), format!("guess{i}")).await,
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(
        push(peer(7), "guess-more".into()).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The real token still works from that address; others are unaffected.
    assert_eq!(push(peer(7), token.clone()).await, StatusCode::OK);
    assert_eq!(push(peer(8), "guess".into()).await, StatusCode::NOT_FOUND);
    // Wrong keys and wrong tokens draw on one budget.
    for _ in 0..5 {
        assert_eq!(
            h.call_from(
                &peer(9),
                "GET",
                "/api/v1/monitors",
                &[("x-dash-key", "nope")]
            )
            .await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(push(peer(9), "guess".into()).await, StatusCode::NOT_FOUND);
    }
    assert_eq!(
        h.call_from(
            &peer(9),
            "GET",
            "/api/v1/monitors",
            &[("x-dash-key", "nope")]
        )
        .await,
        StatusCode::TOO_MANY_REQUESTS
    );

    let records = query_audit(&h.state.instance.store, &Filter::default())
        .await
        .unwrap();
    let limited: Vec<&str> = records
        .iter()
        .filter(|r| r.action == "auth.rate_limited")
        .map(|r| r.target.as_str())
        .collect();
    assert_eq!(
        limited,
        ["GET /api/v1/monitors", "POST /api/v1/push/{token}"]
    );
    let all = format!("{records:?}");
    assert!(!all.contains("guess") && !all.contains(&token), "{all}");
}

#[tokio::test]
async fn healthz_strict_serves_the_engines_evaluation() {
    let live = std::sync::Arc::new(bulwark_ops::Live::default());
    let h = Harness::with_state(CONFIG, |s| s.with_live(live.clone())).await;
    // The engine's pass over an empty store: a full budget.
    let at_ms = chrono::Utc::now().timestamp_millis() - 5_000;
    let statuses = slo_statuses(&h.state.instance.store, &h.state.instance.config, ts(at_ms))
        .await
        .unwrap();
    live.set_slos(ts(at_ms), statuses);
    // Then the budget is spent, as the store shows; the engine has not
    // looked yet, and the public route does not evaluate by itself.
    h.record(true, 99).await;
    h.record(false, 1).await;
    let (status, body) = h.call("GET", "/healthz/strict", None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let evaluated_at =
        chrono::DateTime::parse_from_rfc3339(body["evaluated_at"].as_str().unwrap()).unwrap();
    assert_eq!(evaluated_at.timestamp_millis(), at_ms);
    assert_eq!(h.view_computations("slo_status"), 0);

    // The engine's next pass sees the spent budget.
    let now = chrono::Utc::now().timestamp_millis();
    let statuses = slo_statuses(&h.state.instance.store, &h.state.instance.config, ts(now))
        .await
        .unwrap();
    live.set_slos(ts(now), statuses);
    let (status, body) = h.call("GET", "/healthz/strict", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["failing"], serde_json::json!(["api-availability"]));
    assert_eq!(h.view_computations("slo_status"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_strict_health_checks_share_one_evaluation() {
    // No engine: the route evaluates, one request at a time, and serves the
    // result for the view TTL.
    let h = Harness::new(CONFIG).await;
    h.record(true, 99).await;
    h.record(false, 1).await;
    let answers = h.concurrently(16, "/healthz/strict", None).await;
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    }
    assert_eq!(h.view_computations("slo_status"), 1);
    // Later calls within the TTL: still one.
    let (status, _) = h.call("GET", "/healthz/strict", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(h.view_computations("slo_status"), 1);
}

/// Everything a subscriber writes, shared with the test.
#[derive(Clone, Default)]
struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn request_trace_names_the_route_not_the_push_token() {
    let h = Harness::new(CONFIG).await;
    let token = create_push_token(&h.state.instance.store, &bulwark_ops::Actor::cli(), "cron")
        .await
        .unwrap()
        .into_inner();
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (status, _) = h
        .call("POST", &format!("/api/v1/push/{token}"), None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = h
        .call(
            "GET",
            "/api/v1/push/not-a-token-4f1c?x=secret-query",
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let logged = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logged.contains("route=/api/v1/push/{token}"),
        "the trace names the route:\n{logged}"
    );
    for secret in [token.as_str(), "not-a-token-4f1c", "secret-query"] {
        assert!(!logged.contains(secret), "{secret} logged:\n{logged}");
    }
}
