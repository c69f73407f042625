//! Managed secrets and scheduled jobs through the HTTP API (router driven
//! with `oneshot`, real SQLite store, real data directory).

use axum::http::StatusCode;
use bulwark_ops::{query_audit, Filter};
mod common;
use common::{Harness, ADMIN, ANALYST};

const CONFIG: &str = "[[secret]]\nname = \"DASHBOARD_KEY\"\nmax_age = \"30d\"\ngrace = \"1d\"\n";

fn dashboard_key(h: &Harness) -> String {
    std::fs::read_to_string(h.dir.path().join("secrets/runtime/DASHBOARD_KEY")).unwrap()
}

#[tokio::test]
async fn rotating_the_dashboard_key_through_the_api_keeps_the_old_key_during_grace() {
    let h = Harness::new(CONFIG).await;
    let (status, body) = h.call("GET", "/api/v1/secrets", Some(ANALYST), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body[0]["name"], "DASHBOARD_KEY");
    assert_eq!(body[0]["version"], serde_json::Value::Null);
    assert_eq!(body[0]["present"], false);

    let rotate = "/api/v1/secrets/DASHBOARD_KEY/rotate";
    assert_eq!(
        h.text("POST", rotate, Some(ANALYST), None).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, body) = h.call("POST", rotate, Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["rotated"], true);
    assert_eq!(body["version"], 1);
    let v1 = dashboard_key(&h);

    // The managed key is an admin key.
    let (status, who) = h.call("GET", "/api/v1/whoami", Some(&v1), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(who["role"], "admin");
    assert_eq!(who["name"], "secret:DASHBOARD_KEY");

    // Not due: nothing happens; forced: a new value, the old one still works.
    let (_, body) = h.call("POST", rotate, Some(&v1), None).await;
    assert_eq!(body["rotated"], false);
    let (status, body) = h
        .call("POST", &format!("{rotate}?force=true"), Some(&v1), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["version"], 2);
    let v2 = dashboard_key(&h);
    assert_ne!(v1, v2);
    assert_eq!(
        h.text("GET", "/api/v1/whoami", Some(&v2), None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        h.text("GET", "/api/v1/whoami", Some(&v1), None).await.0,
        StatusCode::OK
    );

    // Metadata only: no response ever carries a value.
    let (_, listing) = h.text("GET", "/api/v1/secrets", Some(ANALYST), None).await;
    assert!(listing.contains("\"version\":2"), "{listing}");
    assert!(!listing.contains(&v1) && !listing.contains(&v2));
    assert_eq!(
        h.call("POST", "/api/v1/secrets/NOPE/rotate", Some(ADMIN), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    let records = query_audit(
        &h.state.instance.store,
        &Filter {
            action: Some("secret.rotate".into()),
            ..Filter::default()
        },
    )
    .await
    .unwrap();
    let actors: Vec<_> = records.iter().map(|r| r.actor.as_str()).collect();
    assert_eq!(actors, ["key:secret:DASHBOARD_KEY", "key:ROLES_JSON#1"]);
    let trail = format!("{records:?}");
    assert!(!trail.contains(&v1) && !trail.contains(&v2));
}

#[tokio::test]
async fn jobs_are_listed_for_analysts_and_run_by_admins() {
    let h = Harness::new(CONFIG).await;
    let (status, body) = h.call("GET", "/api/v1/jobs", Some(ANALYST), None).await;
    assert_eq!(status, StatusCode::OK);
    // Jobs come sorted by name; the monthly `report` job is always there.
    assert_eq!(body[0]["name"], "report");
    assert_eq!(body[1]["name"], "rotate:DASHBOARD_KEY");
    assert_eq!(body[1]["schedule"], "every 1h");
    assert!(body[1]["next_run"].is_string());
    assert_eq!(body[1]["last_run"], serde_json::Value::Null);

    let run = "/api/v1/jobs/rotate:DASHBOARD_KEY/run";
    assert_eq!(
        h.text("POST", run, Some(ANALYST), None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        h.text("POST", run, None, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = h.call("POST", run, Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["outcome"], "success");
    assert_eq!(body["trigger"], "manual");
    assert_eq!(body["summary"], "rotated to version 1");
    assert_eq!(
        h.call("POST", "/api/v1/jobs/backup:nope/run", Some(ADMIN), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    let (_, body) = h.call("GET", "/api/v1/jobs", Some(ANALYST), None).await;
    assert_eq!(body[1]["last_run"]["outcome"], "success");
    let audited = query_audit(
        &h.state.instance.store,
        &Filter {
            action: Some("job.run".into()),
            ..Filter::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(audited.len(), 1);
    assert_eq!(audited[0].actor, "key:ROLES_JSON#1");
    assert_eq!(audited[0].target, "rotate:DASHBOARD_KEY");
}

#[tokio::test]
async fn openapi_describes_secrets_and_jobs() {
    let h = Harness::new(CONFIG).await;
    let (_, doc) = h.call("GET", "/api/openapi.json", None, None).await;
    for path in [
        "/api/v1/secrets",
        "/api/v1/secrets/{name}/rotate",
        "/api/v1/jobs",
        "/api/v1/jobs/{name}/run",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
}

#[tokio::test]
async fn dr_last_serves_reports_to_analysts_only_with_a_key() {
    let h = Harness::new(CONFIG).await;
    assert_eq!(
        h.text("GET", "/api/ops/dr/last", None, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = h.call("GET", "/api/ops/dr/last", Some(ANALYST), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::json!([]));
}
