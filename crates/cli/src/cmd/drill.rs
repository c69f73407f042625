//! `bulwark drill run [NAME]` / `drill last [-n 3]`: DR drills and their
//! reports.

use std::process::ExitCode;

use bulwark_ops::{last_drills, Actor, DrillJob, SnapshotSpec};
use bulwark_server::api::DrillReportWire;

use crate::Globals;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Run a drill (all configured drills when NAME is omitted); exit 1 if any fails
    Run {
        name: Option<String>,
        /// Which snapshot to restore, overriding the drill's `snapshot`:
        /// latest, older-than:AGE (such as older-than:90d), random, or an id
        #[arg(long, value_name = "SPEC")]
        snapshot: Option<String>,
    },
    /// Show the latest drill reports
    Last {
        #[arg(short = 'n', long = "count", default_value_t = 3)]
        n: u32,
    },
}

pub(crate) fn run(globals: &Globals, command: Command) -> anyhow::Result<ExitCode> {
    let loaded = super::load_config(globals)?;
    super::runtime()?.block_on(async {
        let instance = super::open_instance(globals, loaded.config).await?;
        let store = instance.store.clone();
        let code = match command {
            Command::Run { name, snapshot } => {
                let config = &instance.config;
                let snapshot = snapshot
                    .map(|s| SnapshotSpec::parse(&s, true))
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("--snapshot: {e}"))?;
                let drills: Vec<String> = match &name {
                    Some(n) => vec![config
                        .drills
                        .iter()
                        .find(|d| &d.name == n)
                        .ok_or_else(|| anyhow::anyhow!("no drill named {n:?} is configured"))?
                        .name
                        .clone()],
                    None => config.drills.iter().map(|d| d.name.clone()).collect(),
                };
                if drills.is_empty() {
                    anyhow::bail!("no [[drill]] is configured");
                }
                super::cancel_jobs_on_signal(&instance);
                let mut failed = false;
                for name in drills {
                    // A run of `drill:NAME`, recorded and alerted like a
                    // scheduled one.
                    let config = match &snapshot {
                        None => instance.config.clone(),
                        Some(spec) => {
                            let mut c = (*instance.config).clone();
                            for d in c.drills.iter_mut().filter(|d| d.name == name) {
                                d.snapshot = spec.clone();
                            }
                            std::sync::Arc::new(c)
                        }
                    };
                    let job = DrillJob {
                        config,
                        name: name.clone(),
                        store: store.clone(),
                        data_dir: instance.data_dir.clone(),
                    };
                    let (run, report) = instance
                        .scheduler
                        .run_task(&format!("drill:{name}"), &job, &Actor::cli())
                        .await?;
                    let Some(report) = report else {
                        anyhow::bail!("drill {name} could not run: {}", run.summary);
                    };
                    failed |= !report.passed;
                    if globals.json {
                        crate::output::print_json(&DrillReportWire::from(report.clone()));
                    } else {
                        println!(
                            "drill {}: {}",
                            report.drill,
                            if report.passed { "PASSED" } else { "FAILED" }
                        );
                        if let (Some(id), Some(how)) = (&report.snapshot, &report.snapshot_choice) {
                            println!("  snapshot {} ({how})", &id[..8.min(id.len())]);
                        }
                        for s in &report.steps {
                            println!(
                                "  {:<16} {:<4} {:>8}ms  {}",
                                s.name,
                                if s.ok { "ok" } else { "FAIL" },
                                s.duration_ms,
                                s.detail
                            );
                        }
                        let fmt = |v: Option<f64>| {
                            v.map_or_else(|| "-".to_string(), |s| format!("{s:.1}s"))
                        };
                        let target =
                            |v: Option<u64>| v.map_or_else(|| "-".to_string(), |s| format!("{s}s"));
                        println!(
                            "  RTO {} (target {})  RPO {} (target {})",
                            fmt(report.rto_seconds),
                            target(report.rto_target_seconds),
                            fmt(report.rpo_seconds),
                            target(report.rpo_target_seconds)
                        );
                    }
                }
                if failed {
                    ExitCode::from(1)
                } else {
                    ExitCode::SUCCESS
                }
            }
            Command::Last { n } => {
                let reports = last_drills(&store, n).await?;
                if globals.json {
                    // The document `GET /api/ops/dr/last` serves.
                    let wire: Vec<DrillReportWire> =
                        reports.iter().cloned().map(DrillReportWire::from).collect();
                    crate::output::print_json(&wire);
                } else if reports.is_empty() {
                    println!("no drill has run yet");
                } else {
                    let rows: Vec<Vec<String>> = reports
                        .iter()
                        .map(|r| {
                            vec![
                                r.started_at.format("%Y-%m-%d %H:%M:%SZ").to_string(),
                                r.drill.clone(),
                                if r.passed {
                                    "passed".into()
                                } else {
                                    format!(
                                        "failed at {}",
                                        r.failed_step.as_deref().unwrap_or("targets")
                                    )
                                },
                                r.rto_seconds
                                    .map_or_else(|| "-".into(), |v| format!("{v:.1}s")),
                                r.rpo_seconds
                                    .map_or_else(|| "-".into(), |v| format!("{v:.0}s")),
                            ]
                        })
                        .collect();
                    crate::output::print_table(
                        &["STARTED", "DRILL", "RESULT", "RTO", "RPO"],
                        &rows,
                    );
                }
                ExitCode::SUCCESS
            }
        };
        store.close().await;
        Ok(code)
    })
}
