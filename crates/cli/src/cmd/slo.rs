use std::process::ExitCode;

use bulwark_ops::slo_statuses;
use bulwark_server::api::SloStatusWire;

use crate::Globals;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Every SLO: target, attainment, budget remaining, burn rates
    Status,
}

fn pct(x: f64) -> String {
    format!("{:.3}%", x * 100.0)
}

pub(crate) fn run(globals: &Globals, command: Command) -> anyhow::Result<ExitCode> {
    let Command::Status = command;
    let loaded = super::load_config(globals)?;
    super::runtime()?.block_on(async {
        let store = super::open_store(globals, &loaded.config).await?;
        let now = bulwark_ops::Timestamp::now();
        let statuses = slo_statuses(&store, &loaded.config, now).await?;
        store.close().await;
        if globals.json {
            // The document `GET /api/ops/slo/status` serves.
            let wire: Vec<SloStatusWire> = statuses.iter().map(SloStatusWire::from).collect();
            crate::output::print_json(&wire);
        } else if statuses.is_empty() {
            println!("no SLOs configured");
        } else {
            let rows: Vec<Vec<String>> = statuses
                .iter()
                .map(|s| {
                    vec![
                        s.name.clone(),
                        pct(s.target),
                        pct(s.attainment),
                        pct(s.budget_remaining),
                        s.burn_rates
                            .iter()
                            .map(|(w, r)| format!("{w}={r:.2}"))
                            .collect::<Vec<_>>()
                            .join(" "),
                        s.firing
                            .iter()
                            .map(|f| f.id.clone())
                            .collect::<Vec<_>>()
                            .join(","),
                    ]
                })
                .collect();
            crate::output::print_table(
                &[
                    "SLO",
                    "TARGET",
                    "ATTAINMENT",
                    "BUDGET LEFT",
                    "BURN RATES",
                    "FIRING",
                ],
                &rows,
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}
