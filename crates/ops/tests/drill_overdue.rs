//! A scheduled drill that stops passing raises an alert: the
//! `drill-overdue:NAME` job fails while no drill has passed since the run
//! due a day ago, and succeeds once one has.

mod common;

use std::sync::Arc;

use bulwark_ops::{parse_settings, Actor, Instance, RunOutcome, Store};
use common::TestDb;

on_both!(
    overdue_drill_fails_its_watch_until_a_drill_passes,
    overdue_body
);
async fn overdue_body(store: Store, db: TestDb) {
    let data = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
[[backup]]
name = "app"
repo = "{repo}"
paths = ["{src}"]

[[drill]]
name = "weekly"
backup = "app"
schedule = "0 1 * * 0"
"#,
        repo = data.path().join("repo").display(),
        src = data.path().display(),
    );
    let loaded = parse_settings(&text, None, &|_| None).expect("config");
    let s = Instance::new(Arc::new(loaded.config), store.clone(), data.path()).scheduler;

    let run = s
        .run_now("drill-overdue:weekly", &Actor::cli())
        .await
        .unwrap();
    assert_eq!(run.outcome, RunOutcome::Failure, "{}", run.summary);
    assert!(
        run.summary.contains("overdue") && run.summary.contains("no drill has passed yet"),
        "{}",
        run.summary
    );

    // A drill that passed just now satisfies the watch.
    let now = chrono::Utc::now().timestamp_millis();
    let mut conn = db.raw().await;
    sqlx::query(
        "INSERT INTO drill_reports (id, drill, started_at, finished_at, passed, report)
         VALUES ('r1', 'weekly', $1, $1, 1, '{}')",
    )
    .bind(now)
    .execute(&mut conn)
    .await
    .unwrap();
    let run = s
        .run_now("drill-overdue:weekly", &Actor::cli())
        .await
        .unwrap();
    assert_eq!(run.outcome, RunOutcome::Success, "{}", run.summary);
    assert!(run.summary.contains("on time"), "{}", run.summary);
}
