use std::process::ExitCode;

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
        let now = chrono::Utc::now().timestamp_millis();
        let statuses = bulwark_ops::slo::status_all(&store, &loaded.config, now).await?;
        store.close().await;
        if globals.json {
            let items: Vec<_> = statuses
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "name": s.name,
                        "monitor": s.monitor,
                        "target": s.target,
                        "window_start": chrono::DateTime::from_timestamp_millis(s.window_start_ms),
                        "total": s.total,
                        "bad": s.bad,
                        "attainment": s.attainment,
                        "budget_total": s.budget_total,
                        "budget_consumed": s.budget_consumed,
                        "budget_remaining": s.budget_remaining,
                        "burn_rates": s.burn_rates.iter().map(|(w, r)| serde_json::json!({ "window": w, "rate": r })).collect::<Vec<_>>(),
                        "exhaustion_at": s.exhaustion_at_ms.and_then(chrono::DateTime::from_timestamp_millis),
                        "firing": s.firing.iter().map(|f| f.id.clone()).collect::<Vec<_>>(),
                    })
                })
                .collect();
            crate::output::print_json(&serde_json::Value::Array(items));
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
                &["SLO", "TARGET", "ATTAINMENT", "BUDGET LEFT", "BURN RATES", "FIRING"],
                &rows,
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}
