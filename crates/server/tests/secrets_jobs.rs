//! Managed secrets and scheduled jobs through the HTTP API (router driven
//! with `oneshot`, real SQLite store, real data directory).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bulwark_ops::audit::{self, Filter};
use bulwark_ops::config;
use bulwark_ops::Store;
use bulwark_server::AppState;
use http_body_util::BodyExt;
use tower::ServiceExt;

const ADMIN: &str = "k-admin";
const ANALYST: &str = "k-analyst";

struct Harness {
    state: Arc<AppState>,
    dir: tempfile::TempDir,
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let env = |k: &str| {
        (k == "ROLES_JSON").then(|| format!(r#"{{"{ADMIN}":"admin","{ANALYST}":"analyst"}}"#))
    };
    let text = "[[secret]]\nname = \"DASHBOARD_KEY\"\nmax_age = \"30d\"\ngrace = \"1d\"\n";
    let loaded = config::parse(text, None, &env).expect("config");
    let store = Store::open(None, dir.path()).await.unwrap();
    let state = AppState::new(Arc::new(loaded.config), store).with_data_dir(dir.path());
    Harness {
        state: Arc::new(state),
        dir,
    }
}

impl Harness {
    async fn call(&self, method: &str, uri: &str, key: Option<&str>) -> (StatusCode, String) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(key) = key {
            req = req.header("x-dash-key", key);
        }
        let resp = bulwark_server::app(self.state.clone())
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    async fn json(
        &self,
        method: &str,
        uri: &str,
        key: Option<&str>,
    ) -> (StatusCode, serde_json::Value) {
        let (status, body) = self.call(method, uri, key).await;
        (
            status,
            serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
        )
    }

    fn key(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("secrets/runtime/DASHBOARD_KEY")).unwrap()
    }
}

#[tokio::test]
async fn rotating_the_dashboard_key_through_the_api_keeps_the_old_key_during_grace() {
    let h = harness().await;
    let (status, body) = h.json("GET", "/api/v1/secrets", Some(ANALYST)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body[0]["name"], "DASHBOARD_KEY");
    assert_eq!(body[0]["version"], serde_json::Value::Null);
    assert_eq!(body[0]["present"], false);

    let rotate = "/api/v1/secrets/DASHBOARD_KEY/rotate";
    assert_eq!(
        h.call("POST", rotate, Some(ANALYST)).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, body) = h.json("POST", rotate, Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["rotated"], true);
    assert_eq!(body["version"], 1);
    let v1 = h.key();

    // The managed key is an admin key.
    let (status, who) = h.json("GET", "/api/v1/whoami", Some(&v1)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(who["role"], "admin");
    assert_eq!(who["name"], "secret:DASHBOARD_KEY");

    // Not due: nothing happens; forced: a new value, the old one still works.
    let (_, body) = h.json("POST", rotate, Some(&v1)).await;
    assert_eq!(body["rotated"], false);
    let (status, body) = h
        .json("POST", &format!("{rotate}?force=true"), Some(&v1))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["version"], 2);
    let v2 = h.key();
    assert_ne!(v1, v2);
    assert_eq!(
        h.call("GET", "/api/v1/whoami", Some(&v2)).await.0,
        StatusCode::OK
    );
    assert_eq!(
        h.call("GET", "/api/v1/whoami", Some(&v1)).await.0,
        StatusCode::OK
    );

    // Metadata only: no response ever carries a value.
    let (_, listing) = h.call("GET", "/api/v1/secrets", Some(ANALYST)).await;
    assert!(listing.contains("\"version\":2"), "{listing}");
    assert!(!listing.contains(&v1) && !listing.contains(&v2));
    assert_eq!(
        h.call("POST", "/api/v1/secrets/NOPE/rotate", Some(ADMIN))
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    let records = audit::query(
        &h.state.store,
        &Filter {
            action: Some("secret.rotate".into()),
            ..Filter::default()
        },
    )
    .await
    .unwrap();
    let actors: Vec<_> = records.iter().map(|r| r.actor.as_str()).collect();
    assert_eq!(actors, ["key:secret:DASHBOARD_KEY", "key:ROLES_JSON#1"]);
    let trail = serde_json::to_string(&records).unwrap();
    assert!(!trail.contains(&v1) && !trail.contains(&v2));
}

#[tokio::test]
async fn jobs_are_listed_for_analysts_and_run_by_admins() {
    let h = harness().await;
    let (status, body) = h.json("GET", "/api/v1/jobs", Some(ANALYST)).await;
    assert_eq!(status, StatusCode::OK);
    // Jobs come sorted by name; the monthly `report` job is always there.
    assert_eq!(body[0]["name"], "report");
    assert_eq!(body[1]["name"], "rotate:DASHBOARD_KEY");
    assert_eq!(body[1]["schedule"], "every 1h");
    assert!(body[1]["next_run"].is_string());
    assert_eq!(body[1]["last_run"], serde_json::Value::Null);

    let run = "/api/v1/jobs/rotate:DASHBOARD_KEY/run";
    assert_eq!(
        h.call("POST", run, Some(ANALYST)).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(h.call("POST", run, None).await.0, StatusCode::UNAUTHORIZED);
    let (status, body) = h.json("POST", run, Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["outcome"], "success");
    assert_eq!(body["trigger"], "manual");
    assert_eq!(body["summary"], "rotated to version 1");
    assert_eq!(
        h.call("POST", "/api/v1/jobs/backup:nope/run", Some(ADMIN))
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    let (_, body) = h.json("GET", "/api/v1/jobs", Some(ANALYST)).await;
    assert_eq!(body[1]["last_run"]["outcome"], "success");
    let audited = audit::query(
        &h.state.store,
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
    let h = harness().await;
    let (_, doc) = h.json("GET", "/api/openapi.json", None).await;
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
    let h = harness().await;
    assert_eq!(
        h.call("GET", "/api/ops/dr/last", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = h.json("GET", "/api/ops/dr/last", Some(ANALYST)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::json!([]));
}
