//! `bulwark jobs list|run`: the scheduler's jobs, their next run and
//! history; running one now.

use std::process::ExitCode;

use bulwark_ops::{Actor, RunOutcome};
use bulwark_server::api::{JobRunWire, JobWire};

use crate::Globals;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Every job with its schedule, next run and last outcome
    List,
    /// Run one job now and wait for it (exit 1 when it fails)
    Run {
        /// e.g. `rotate:DASHBOARD_KEY`, `backup:app`
        name: String,
    },
}

fn ts(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map_or_else(
        || "-".to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%SZ").to_string(),
    )
}

pub(crate) fn run(globals: &Globals, command: Command) -> anyhow::Result<ExitCode> {
    let loaded = super::load_config(globals)?;
    super::runtime()?.block_on(async {
        // The same jobs `bulwark serve` schedules, run in this process and
        // recorded, audited and alerted the same way.
        let instance = super::open_instance(globals, loaded.config).await?;
        super::cancel_jobs_on_signal(&instance);
        let scheduler = &instance.scheduler;
        let store = instance.store.clone();
        let code = match command {
            Command::List => {
                let jobs = scheduler.list(chrono::Utc::now()).await?;
                if globals.json {
                    // The document `GET /api/v1/jobs` serves.
                    let wire: Vec<JobWire> = jobs.iter().cloned().map(JobWire::from).collect();
                    crate::output::print_json(&wire);
                } else if jobs.is_empty() {
                    println!("no jobs: configure [[backup]], [[drill]] or [[secret]] entries");
                } else {
                    let rows: Vec<Vec<String>> = jobs
                        .iter()
                        .map(|j| {
                            vec![
                                j.name.clone(),
                                j.schedule.clone().unwrap_or_else(|| "manual".to_string()),
                                ts(j.next_run),
                                ts(j.last_run.as_ref().map(|r| r.started_at)),
                                j.last_run.as_ref().map_or_else(
                                    || "-".to_string(),
                                    |r| r.outcome.as_str().to_string(),
                                ),
                                j.last_run
                                    .as_ref()
                                    .map_or_else(String::new, |r| r.summary.clone()),
                            ]
                        })
                        .collect();
                    crate::output::print_table(
                        &[
                            "JOB", "SCHEDULE", "NEXT RUN", "LAST RUN", "OUTCOME", "SUMMARY",
                        ],
                        &rows,
                    );
                }
                ExitCode::SUCCESS
            }
            Command::Run { name } => {
                let run = scheduler.run_now(&name, &Actor::cli()).await?;
                if globals.json {
                    crate::output::print_json(&JobRunWire::from(run.clone()));
                } else {
                    println!("{}: {} ({})", run.job, run.outcome.as_str(), run.summary);
                }
                if run.outcome == RunOutcome::Success {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
        };
        store.close().await;
        Ok(code)
    })
}
