use std::process::ExitCode;

use bulwark_server::api::{PushTokenCreated, UptimeTest};

use crate::Globals;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Probe every monitor; exit 1 if any is down
    Check {
        /// Probe once and exit (the only mode; continuous probing is `bulwark serve`)
        #[arg(long)]
        once: bool,
    },
    /// Make a new heartbeat token for push monitor NAME (shown once; the
    /// previous token stops working)
    PushToken {
        /// A configured monitor with `type = "push"`
        name: String,
    },
}

pub(crate) fn run(globals: &Globals, command: Command) -> anyhow::Result<ExitCode> {
    let loaded = super::load_config(globals)?;
    if let Command::PushToken { name } = command {
        return push_token(globals, &loaded.config, &name);
    }
    // Push monitors need the store for their last heartbeat.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store = super::open_store(globals, &loaded.config).await?;
        let results = bulwark_ops::check_all_monitors(&store, &loaded.config).await;
        store.close().await;
        bulwark_ops::log_probe_results(&globals.data_dir, &results);
        let all_up = results.iter().all(|r| r.ok);
        if globals.json {
            // The document `POST /api/ops/uptime/test` serves.
            crate::output::print_json(&UptimeTest::from(results.clone()));
        } else if results.is_empty() {
            println!("no monitors configured");
        } else {
            let rows: Vec<Vec<String>> = results
                .iter()
                .map(|r| {
                    vec![
                        r.monitor.clone(),
                        if r.ok { "up" } else { "DOWN" }.to_string(),
                        format!("{} ms", r.latency.as_millis()),
                        r.status.map_or_else(String::new, |s| s.to_string()),
                        r.error.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            crate::output::print_table(&["MONITOR", "STATE", "LATENCY", "STATUS", "ERROR"], &rows);
        }
        Ok(if all_up {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}

/// Only the token's digest is stored, so this is the one time it is shown.
fn push_token(
    globals: &Globals,
    config: &bulwark_ops::Config,
    name: &str,
) -> anyhow::Result<ExitCode> {
    match config.monitor(name).map(|m| &m.kind) {
        Some(bulwark_ops::MonitorKind::Push { .. }) => {}
        Some(_) => anyhow::bail!("monitor {name:?} is not a push monitor"),
        None => anyhow::bail!("no monitor named {name:?} is configured"),
    }
    super::runtime()?.block_on(async {
        let store = super::open_store(globals, config).await?;
        let token =
            bulwark_ops::create_push_token(&store, &bulwark_ops::Actor::cli(), name).await?;
        store.close().await;
        let path = format!("/api/v1/push/{}", token.expose());
        if globals.json {
            // `POST /api/v1/monitors/{name}/push-token`'s answer.
            crate::output::print_json(&PushTokenCreated {
                monitor: name.to_string(),
                token: token.expose().clone(),
                push_path: path,
            });
        } else {
            println!("heartbeat URL path for {name} (shown once): {path}");
        }
        Ok(ExitCode::SUCCESS)
    })
}
