//! The scheduler's `slo` job: the recorded SLO evaluation, failing once an
//! SLO has spent its whole error budget.

mod common;

use std::sync::Arc;

use bulwark_ops::{parse_settings, Actor, Instance, RunOutcome, Store};
use common::TestDb;

on_both!(
    slo_job_records_evaluations_and_fails_on_an_exhausted_budget,
    slo_job_body
);
async fn slo_job_body(store: Store, db: TestDb) {
    let data = tempfile::tempdir().unwrap();
    let text = r#"
[[monitor]]
name = "api"
url = "http://127.0.0.1:9/health"

[[slo]]
name = "api-availability"
monitor = "api"
target = 0.99
window = "1d"
"#;
    let loaded = parse_settings(text, None, &|_| None).expect("config");
    let s = Instance::new(Arc::new(loaded.config), store.clone(), data.path()).scheduler;

    let run = s.run_now("slo", &Actor::cli()).await.unwrap();
    assert_eq!(run.outcome, RunOutcome::Success, "{}", run.summary);
    assert!(
        run.summary.starts_with("api-availability: 100.000%"),
        "{}",
        run.summary
    );

    // 10 failures in 100 probes an hour ago: ten times a 1% budget.
    let now = chrono::Utc::now().timestamp_millis();
    let mut conn = db.raw().await;
    for i in 0..100_i64 {
        sqlx::query(
            "INSERT INTO probe_results (monitor, ts, ok, latency_ms) VALUES ('api', $1, $2, 5)",
        )
        .bind(now - 3_600_000 + i * 1000)
        .bind(i64::from(i >= 10))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let run = s.run_now("slo", &Actor::cli()).await.unwrap();
    assert_eq!(run.outcome, RunOutcome::Failure, "{}", run.summary);
    assert!(
        run.summary.contains("budget exhausted") && run.summary.contains("90.000%"),
        "{}",
        run.summary
    );
}
